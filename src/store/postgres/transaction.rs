//! One batch's transaction: a few statements whatever the number of
//! operations (arrays and `unnest`). It reads and locks first (the lease rows
//! `FOR SHARE`, so that no claim slips in before the commit; the counters
//! `FOR UPDATE`, in one order on every node, so that batches of different
//! nodes never deadlock), then writes the rows the plan arranges, then sends
//! the notification every node (this one too) receives at commit.

use std::collections::HashMap;

use sqlx::{Postgres, Row, Transaction};

use super::plan::{arrange, Plan, Read, Rows, Wake};
use super::ClusterOp;
use crate::store::app_records::RecordChange;

/// The channel every node listens on.
pub(super) const CHANNEL: &str = "webhooks_emitter";
/// A notification's payload must stay under PostgreSQL's 8000 bytes.
const MAX_PAYLOAD: usize = 7900;

type Tx<'a> = Transaction<'a, Postgres>;

/// Does the batch; returns what it wrote, for the notices after the commit.
pub(super) async fn write(
    tx: &mut Tx<'_>,
    node: &str,
    plan: &Plan,
    batch: &[ClusterOp],
) -> Result<Rows, sqlx::Error> {
    register(tx, node, plan).await?;
    let read = Read {
        epochs: epochs(tx, node, plan).await?,
        redelivered: take_redelivered(tx, plan).await?,
        counters: lock_counters(tx, plan).await?,
    };
    let rows = arrange(plan, batch, read);
    save_counters(tx, &rows).await?;
    save_tallies(tx, &rows).await?;
    insert_events(tx, &rows).await?;
    update_attempts(tx, &rows).await?;
    insert_dead_letters(tx, &rows).await?;
    delete_events(tx, &rows).await?;
    set_paused(tx, plan).await?;
    release(tx, node, &rows).await?;
    forget_configs(tx, node, plan).await?;
    group_records(tx, batch).await?;
    notify(tx, &rows.wake).await?;
    Ok(rows)
}

/// The application records sent to ride with this batch, in order.
async fn group_records(tx: &mut Tx<'_>, batch: &[ClusterOp]) -> Result<(), sqlx::Error> {
    let changes: Vec<&RecordChange> = batch
        .iter()
        .filter_map(|op| match op {
            ClusterOp::GroupRecords { changes, .. } => Some(changes.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    super::app_records::apply_changes(tx, &changes).await
}

/// The rows of newly registered emitters (and of any emitter written to).
async fn register(tx: &mut Tx<'_>, node: &str, plan: &Plan) -> Result<(), sqlx::Error> {
    let mut ids: Vec<&str> = plan.registers.iter().map(|(e, _)| e.as_str()).collect();
    ids.extend(plan.counters.iter().map(String::as_str));
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO webhooks_emitter_emitters (emitter) SELECT unnest($1::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    if plan.registers.is_empty() {
        return Ok(());
    }
    let (ids, prints): (Vec<&str>, Vec<&str>) = plan
        .registers
        .iter()
        .map(|(e, f)| (e.as_str(), f.as_str()))
        .unzip();
    sqlx::query(
        "INSERT INTO webhooks_emitter_leases (emitter) SELECT unnest($1::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO webhooks_emitter_configs (emitter, node, fingerprint) \
         SELECT e, $2, f FROM unnest($1::text[], $3::text[]) AS t(e, f) \
         ON CONFLICT (emitter, node) DO UPDATE SET fingerprint = EXCLUDED.fingerprint",
    )
    .bind(&ids)
    .bind(node)
    .bind(&prints)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The epochs this node holds, locked against claims until the commit.
async fn epochs(
    tx: &mut Tx<'_>,
    node: &str,
    plan: &Plan,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    if plan.fenced.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = plan.fenced.iter().map(String::as_str).collect();
    let rows = sqlx::query(
        "SELECT emitter, epoch FROM webhooks_emitter_leases \
         WHERE owner = $1 AND emitter = ANY($2) ORDER BY emitter FOR SHARE",
    )
    .bind(node)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Deletes the dead letters being redelivered; returns those still there.
async fn take_redelivered(
    tx: &mut Tx<'_>,
    plan: &Plan,
) -> Result<HashMap<(String, i64), Vec<u8>>, sqlx::Error> {
    if plan.redeliver.is_empty() {
        return Ok(HashMap::new());
    }
    let (ids, numbers): (Vec<&str>, Vec<i64>) = plan
        .redeliver
        .iter()
        .map(|(e, id)| (e.as_str(), *id))
        .unzip();
    let rows = sqlx::query(
        "DELETE FROM webhooks_emitter_dead_letters d \
         USING unnest($1::text[], $2::int8[]) AS v(emitter, id) \
         WHERE d.emitter = v.emitter AND d.id = v.id RETURNING d.emitter, d.id, d.record",
    )
    .bind(&ids)
    .bind(&numbers)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)))
        .collect()
}

/// The counters of the emitters the batch appends to or dead-letters in,
/// locked in one order: sequence order is commit order.
async fn lock_counters(
    tx: &mut Tx<'_>,
    plan: &Plan,
) -> Result<HashMap<String, (i64, i64)>, sqlx::Error> {
    if plan.counters.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = plan.counters.iter().map(String::as_str).collect();
    let rows = sqlx::query(
        "SELECT emitter, next_seq, next_dead_letter FROM webhooks_emitter_emitters \
         WHERE emitter = ANY($1) ORDER BY emitter FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
        .collect()
}

async fn save_counters(tx: &mut Tx<'_>, rows: &Rows) -> Result<(), sqlx::Error> {
    if rows.counters.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(rows.counters.len());
    let (mut seqs, mut letters) = (Vec::new(), Vec::new());
    for (emitter, (seq, letter)) in &rows.counters {
        ids.push(emitter.as_str());
        seqs.push(*seq);
        letters.push(*letter);
    }
    sqlx::query(
        "UPDATE webhooks_emitter_emitters AS e SET next_seq = v.s, next_dead_letter = v.d \
         FROM unnest($1::text[], $2::int8[], $3::int8[]) AS v(emitter, s, d) \
         WHERE e.emitter = v.emitter",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&letters)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds the batch's deliveries, failed attempts and dead letters to the
/// emitters' stored stats (their rows are locked already).
async fn save_tallies(tx: &mut Tx<'_>, rows: &Rows) -> Result<(), sqlx::Error> {
    if rows.tallies.is_empty() {
        return Ok(());
    }
    let mut columns: (Vec<&str>, Vec<i64>, Vec<i64>, Vec<i64>) = Default::default();
    for (emitter, tally) in &rows.tallies {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        columns.0.push(emitter.as_str());
        columns.1.push(signed(tally.delivered));
        columns.2.push(signed(tally.failed_attempts));
        columns.3.push(signed(tally.dead_lettered));
    }
    sqlx::query(
        "UPDATE webhooks_emitter_emitters AS e SET delivered = e.delivered + v.a, \
         failed_attempts = e.failed_attempts + v.f, dead_lettered = e.dead_lettered + v.d \
         FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[]) AS v(emitter, a, f, d) \
         WHERE e.emitter = v.emitter",
    )
    .bind(&columns.0)
    .bind(&columns.1)
    .bind(&columns.2)
    .bind(&columns.3)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_events(tx: &mut Tx<'_>, rows: &Rows) -> Result<(), sqlx::Error> {
    if rows.events.0.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO webhooks_emitter_events (emitter, seq, attempts, record) \
         SELECT e, s, 0, r FROM unnest($1::text[], $2::int8[], $3::bytea[]) AS t(e, s, r)",
    )
    .bind(&rows.events.0)
    .bind(&rows.events.1)
    .bind(&rows.events.2)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn update_attempts(tx: &mut Tx<'_>, rows: &Rows) -> Result<(), sqlx::Error> {
    if rows.attempts.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(rows.attempts.len());
    let (mut seqs, mut counts, mut dues) = (Vec::new(), Vec::new(), Vec::new());
    for ((emitter, seq), (count, due)) in &rows.attempts {
        ids.push(emitter.as_str());
        seqs.push(*seq);
        counts.push(*count);
        dues.push(*due);
    }
    sqlx::query(
        "UPDATE webhooks_emitter_events AS ev SET attempts = v.a, retry_at_ms = v.r \
         FROM unnest($1::text[], $2::int8[], $3::int4[], $4::int8[]) AS v(emitter, seq, a, r) \
         WHERE ev.emitter = v.emitter AND ev.seq = v.seq",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&counts)
    .bind(&dues)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// New dead letters, then the oldest beyond each emitter's bound dropped.
async fn insert_dead_letters(tx: &mut Tx<'_>, rows: &Rows) -> Result<(), sqlx::Error> {
    if rows.letters.0.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO webhooks_emitter_dead_letters (emitter, id, record) \
         SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])",
    )
    .bind(&rows.letters.0)
    .bind(&rows.letters.1)
    .bind(&rows.letters.2)
    .execute(&mut **tx)
    .await?;
    let (ids, below): (Vec<&str>, Vec<i64>) =
        rows.trims.iter().map(|(e, b)| (e.as_str(), *b)).unzip();
    sqlx::query(
        "DELETE FROM webhooks_emitter_dead_letters AS d \
         USING unnest($1::text[], $2::int8[]) AS v(emitter, below) \
         WHERE d.emitter = v.emitter AND d.id < v.below",
    )
    .bind(&ids)
    .bind(&below)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Events delivered, or moved to the dead letters.
async fn delete_events(tx: &mut Tx<'_>, rows: &Rows) -> Result<(), sqlx::Error> {
    if rows.deletes.0.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM webhooks_emitter_events AS ev \
         USING unnest($1::text[], $2::int8[]) AS v(emitter, seq) \
         WHERE ev.emitter = v.emitter AND ev.seq = v.seq",
    )
    .bind(&rows.deletes.0)
    .bind(&rows.deletes.1)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_paused(tx: &mut Tx<'_>, plan: &Plan) -> Result<(), sqlx::Error> {
    if plan.paused.is_empty() {
        return Ok(());
    }
    let (ids, paused): (Vec<&str>, Vec<bool>) =
        plan.paused.iter().map(|(e, p)| (e.as_str(), *p)).unzip();
    sqlx::query(
        "UPDATE webhooks_emitter_emitters AS e SET paused = v.p \
         FROM unnest($1::text[], $2::bool[]) AS v(emitter, p) WHERE e.emitter = v.emitter",
    )
    .bind(&ids)
    .bind(&paused)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Leases given back: free at once (a claim waits for no expiry).
async fn release(tx: &mut Tx<'_>, node: &str, rows: &Rows) -> Result<(), sqlx::Error> {
    if rows.releases.is_empty() {
        return Ok(());
    }
    let (ids, held): (Vec<&str>, Vec<i64>) =
        rows.releases.iter().map(|(e, p)| (e.as_str(), *p)).unzip();
    sqlx::query(
        "UPDATE webhooks_emitter_leases AS l SET owner = NULL, expires_at = now() \
         FROM unnest($1::text[], $2::int8[]) AS v(emitter, epoch) \
         WHERE l.emitter = v.emitter AND l.epoch = v.epoch AND l.owner = $3",
    )
    .bind(&ids)
    .bind(&held)
    .bind(node)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// This node's configurations of the emitters it detached: it no longer
/// uses them (so that their rows can be discarded once no node does).
async fn forget_configs(tx: &mut Tx<'_>, node: &str, plan: &Plan) -> Result<(), sqlx::Error> {
    if plan.unregistered.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM webhooks_emitter_configs WHERE node = $1 AND emitter = ANY($2)")
        .bind(node)
        .bind(&plan.unregistered)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Wakes every node (this one too) once the transaction commits.
async fn notify(tx: &mut Tx<'_>, wake: &Wake) -> Result<(), sqlx::Error> {
    if wake.e.is_empty() && wake.d.is_empty() && wake.p.is_empty() {
        return Ok(());
    }
    let mut payload = serde_json::to_string(wake).unwrap_or_default();
    if payload.len() > MAX_PAYLOAD {
        // Too many to name: every holder looks (the poll would, later).
        payload = r#"{"all":true}"#.to_owned();
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(&payload)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
