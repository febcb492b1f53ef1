//! Group commit: the operations of a short interval go to the database in one
//! transaction, a few statements whatever their number (arrays, `unnest`).
//! A holder's writes count only if its lease epoch is still the lease's (the
//! lease rows are read `FOR SHARE`, so no claim slips in before the commit).
//! After a failure the batch is tried again, backing off; appends a caller
//! waits on (`emit_durable`) fail at once instead, and are not kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::errors::from_sqlx;
use super::reads::{self, signed, LoadRequest};
use super::{Fence, Notice, Op, Shared};
use crate::store::records;
use crate::store::StoreError;

/// The channel every node listens on.
pub(super) const CHANNEL: &str = "webhooks_emitter";
/// A notification's payload must stay under PostgreSQL's 8000 bytes.
const MAX_PAYLOAD: usize = 7900;
/// First and longest wait before a failed batch is tried again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At close, how long a failing batch is retried before it is given up.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Runs until the channel is closed and what it held is committed.
pub(super) async fn run(pool: PgPool, shared: Arc<Shared>, mut ops: mpsc::UnboundedReceiver<Op>) {
    let (interval, max_batch) = (shared.options.commit_interval, shared.options.max_batch);
    let mut carried: Vec<Op> = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    let mut closed_at: Option<Instant> = None;
    loop {
        if carried.is_empty() {
            if closed_at.is_some() {
                return;
            }
            if shared.failing() {
                // Emits are refused while failing, so no batch may come to
                // prove the database is back: look, backing off.
                match tokio::time::timeout(backoff, ops.recv()).await {
                    Ok(Some(op)) => carried.push(op),
                    Ok(None) => return,
                    Err(_) => {
                        if sqlx::query("SELECT 1").execute(&pool).await.is_ok() {
                            tracing::info!("PostgreSQL store reaches the database again");
                            shared.set_failure(None);
                            backoff = FIRST_BACKOFF;
                        } else {
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                        continue;
                    }
                }
            } else {
                match ops.recv().await {
                    Some(op) => carried.push(op),
                    None => return,
                }
            }
        }
        let gather_until = Instant::now() + interval;
        while closed_at.is_none() && carried.len() < max_batch {
            match tokio::time::timeout_at(gather_until, ops.recv()).await {
                Ok(Some(op)) => carried.push(op),
                Ok(None) => closed_at = Some(Instant::now()),
                Err(_) => break,
            }
        }
        let batch = std::mem::take(&mut carried);
        match commit(&pool, &shared, batch).await {
            Ok(()) => {
                if shared.failing() {
                    tracing::info!("PostgreSQL store reaches the database again");
                }
                backoff = FIRST_BACKOFF;
                shared.set_failure(None);
            }
            Err((error, retry)) => {
                tracing::error!(%error, retry_in = ?backoff, "PostgreSQL store: batch not committed; retrying");
                shared.set_failure(Some(error));
                carried = retry;
                if closed_at.is_some_and(|at| at.elapsed() > CLOSE_GRACE) {
                    tracing::error!(dropped = carried.len(), "PostgreSQL store closing with the database unavailable; pending writes dropped (stored events stay)");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// What one batch does, gathered from its operations.
#[derive(Default)]
struct Plan {
    registers: Vec<(String, String)>,
    fenced: HashSet<String>,
    redeliver: Vec<(String, i64)>,
    /// Emitters whose counters change (appends, dead letters): locked in order.
    counters: HashSet<String>,
    attempts: BTreeMap<(String, u64), u32>,
    paused: BTreeMap<String, bool>,
    releases: Vec<(String, i64)>,
}

/// What a committed batch owes the workers.
#[derive(Default, Serialize)]
struct Wake {
    /// New events: emitter and newest sequence number.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    e: Vec<(String, u64)>,
    /// Dead letters changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    d: Vec<String>,
    /// Paused or resumed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    p: Vec<(String, bool)>,
}

async fn commit(
    pool: &PgPool,
    shared: &Arc<Shared>,
    mut batch: Vec<Op>,
) -> Result<(), (StoreError, Vec<Op>)> {
    let plan = plan(shared, &mut batch);
    let result = async {
        let mut tx = pool.begin().await?;
        let outcome = write(&mut tx, shared, &plan, &batch).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(outcome)
    }
    .await;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => return Err(failed(shared, from_sqlx(&error), batch)),
    };
    shared
        .commits
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reads = settle(shared, batch, outcome);
    if let Err(error) = perform(pool, shared, &reads).await {
        // Committed; only the reads are tried again.
        return Err((from_sqlx(&error), reads.into_ops()));
    }
    Ok(())
}

/// Registers members at once (their workers wait for nothing else) and
/// gathers the batch's writes by kind.
fn plan(shared: &Shared, batch: &mut [Op]) -> Plan {
    let mut plan = Plan::default();
    for op in batch.iter_mut() {
        match op {
            Op::Register { emitter, member } => {
                let mut members = shared.members();
                // `None` once registered (a retried batch, or a read again).
                let Some(mut member) = member.take() else {
                    if let Some(known) = members.get(emitter) {
                        plan.registers
                            .push((emitter.to_string(), known.fingerprint.clone()));
                    }
                    continue;
                };
                if let Some(old) = members.get(emitter) {
                    // A restarted worker: the lease this node holds stays.
                    member.epoch = old.epoch;
                    member.deadline = old.deadline.clone();
                }
                plan.registers
                    .push((emitter.to_string(), member.fingerprint.clone()));
                members.insert(emitter.clone(), member);
            }
            Op::Unregister { emitter, token } => {
                let members = shared.members();
                if let Some(member) = members.get(emitter).filter(|m| m.token == *token) {
                    if let Some(epoch) = member.epoch {
                        plan.releases.push((emitter.to_string(), epoch));
                    }
                }
            }
            Op::Append { emitter, .. } => {
                plan.counters.insert(emitter.to_string());
            }
            Op::Attempted {
                emitter,
                fence,
                attempts,
            } => {
                plan.fenced.insert(emitter.to_string());
                let key = (emitter.to_string(), fence.seq);
                let entry = plan.attempts.entry(key).or_default();
                *entry = (*entry).max(*attempts);
            }
            Op::Ack { emitter, .. } => {
                plan.fenced.insert(emitter.to_string());
            }
            Op::DeadLetter { emitter, fence, .. } => {
                plan.counters.insert(emitter.to_string());
                if fence.is_some() {
                    plan.fenced.insert(emitter.to_string());
                }
            }
            Op::Redeliver { emitter, ids } => {
                plan.counters.insert(emitter.to_string());
                plan.redeliver
                    .extend(ids.iter().map(|id| (emitter.to_string(), signed(*id))));
            }
            Op::SetPaused { emitter, paused } => {
                plan.paused.insert(emitter.to_string(), *paused);
            }
            Op::Release { emitter, epoch } => {
                plan.fenced.insert(emitter.to_string());
                plan.releases.push((emitter.to_string(), *epoch));
            }
            Op::Load { .. } | Op::ReadDeadLetters { .. } | Op::Flush { .. } => {}
        }
    }
    plan
}

/// What the transaction did, for the notices after commit.
#[derive(Default)]
struct Outcome {
    /// Fenced writes refused: the lease moved on.
    fenced_off: HashSet<(String, i64)>,
    wake: Wake,
}

impl Outcome {
    /// The newest sequence number of an emitter this batch appended to.
    fn newest(&self, emitter: &str) -> Option<u64> {
        self.wake
            .e
            .iter()
            .find(|(id, _)| id == emitter)
            .map(|(_, last)| *last)
    }
}

async fn write(
    tx: &mut Transaction<'_, Postgres>,
    shared: &Shared,
    plan: &Plan,
    batch: &[Op],
) -> Result<Outcome, sqlx::Error> {
    let mut outcome = Outcome::default();
    if !plan.registers.is_empty() {
        let ids: Vec<&str> = plan.registers.iter().map(|(e, _)| e.as_str()).collect();
        let prints: Vec<&str> = plan.registers.iter().map(|(_, f)| f.as_str()).collect();
        sqlx::query(
            "INSERT INTO webhooks_emitter_emitters (emitter) SELECT unnest($1::text[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
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
        .bind(shared.node())
        .bind(&prints)
        .execute(&mut **tx)
        .await?;
    }
    if !plan.counters.is_empty() {
        // Rows exist before they are locked, whatever happened before.
        let ids: Vec<&str> = plan.counters.iter().map(String::as_str).collect();
        sqlx::query(
            "INSERT INTO webhooks_emitter_emitters (emitter) SELECT unnest($1::text[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    }
    // The epochs this node holds, locked against claims until the commit.
    let mut epochs: HashMap<String, i64> = HashMap::new();
    if !plan.fenced.is_empty() {
        let ids: Vec<&str> = plan.fenced.iter().map(String::as_str).collect();
        let rows = sqlx::query(
            "SELECT emitter, epoch FROM webhooks_emitter_leases \
             WHERE owner = $1 AND emitter = ANY($2) ORDER BY emitter FOR SHARE",
        )
        .bind(shared.node())
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            epochs.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    let holds = |emitter: &str, epoch: i64, outcome: &mut Outcome| -> bool {
        let held = epochs.get(emitter) == Some(&epoch);
        if !held {
            outcome.fenced_off.insert((emitter.to_owned(), epoch));
        }
        held
    };
    // Dead letters going back to the queue: those still there.
    let mut redelivered: HashMap<(String, i64), Vec<u8>> = HashMap::new();
    if !plan.redeliver.is_empty() {
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
        for row in rows {
            let (emitter, id): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            redelivered.insert((emitter, id), row.try_get(2)?);
        }
    }
    // Counters, locked in one order on every node (no deadlock between
    // nodes' batches): sequence order is commit order.
    let mut next: HashMap<String, (i64, i64)> = HashMap::new();
    if !plan.counters.is_empty() {
        let mut ids: Vec<&str> = plan.counters.iter().map(String::as_str).collect();
        ids.sort_unstable();
        let rows = sqlx::query(
            "SELECT emitter, next_seq, next_dead_letter FROM webhooks_emitter_emitters \
             WHERE emitter = ANY($1) ORDER BY emitter FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            next.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
    }
    let mut events: (Vec<String>, Vec<i64>, Vec<Vec<u8>>) = Default::default();
    let mut letters: (Vec<String>, Vec<i64>, Vec<Vec<u8>>) = Default::default();
    let mut trims: BTreeMap<String, i64> = BTreeMap::new();
    let mut deletes: (Vec<String>, Vec<i64>) = Default::default();
    let mut woken: HashSet<String> = HashSet::new();
    let mut letters_changed: HashSet<String> = HashSet::new();
    for op in batch {
        match op {
            Op::Append { emitter, event, .. } => {
                if let Some((seq, _)) = next.get_mut(&**emitter) {
                    events.0.push(emitter.to_string());
                    events.1.push(*seq);
                    events.2.push(records::encode_event(event, 0));
                    *seq += 1;
                    woken.insert(emitter.to_string());
                }
            }
            Op::Redeliver { emitter, ids } => {
                letters_changed.insert(emitter.to_string());
                let mut ids = ids.clone();
                ids.sort_unstable();
                for id in ids {
                    let key = (emitter.to_string(), signed(id));
                    let Some(record) = redelivered.remove(&key) else {
                        continue;
                    };
                    let Some(letter) = records::decode_dead_letter(id, &record) else {
                        continue;
                    };
                    if let Some((seq, _)) = next.get_mut(&**emitter) {
                        events.0.push(emitter.to_string());
                        events.1.push(*seq);
                        events.2.push(records::encode_event(&letter.event, 0));
                        *seq += 1;
                        woken.insert(emitter.to_string());
                    }
                }
            }
            Op::DeadLetter {
                emitter,
                fence,
                letter,
                capacity,
                ..
            } => {
                if let Some(Fence { epoch, seq }) = fence {
                    if !holds(emitter, *epoch, &mut outcome) {
                        continue;
                    }
                    deletes.0.push(emitter.to_string());
                    deletes.1.push(signed(*seq));
                }
                if let Some((_, id)) = next.get_mut(&**emitter) {
                    letters.0.push(emitter.to_string());
                    letters.1.push(*id);
                    letters.2.push(records::encode_dead_letter(letter));
                    *id += 1;
                    let keep = i64::try_from(*capacity).unwrap_or(i64::MAX);
                    trims.insert(emitter.to_string(), id.saturating_sub(keep));
                    letters_changed.insert(emitter.to_string());
                }
            }
            Op::Ack { emitter, fence } => {
                let held = holds(emitter, fence.epoch, &mut outcome);
                if held {
                    deletes.0.push(emitter.to_string());
                    deletes.1.push(signed(fence.seq));
                }
            }
            Op::Release { emitter, epoch } => {
                holds(emitter, *epoch, &mut outcome);
            }
            _ => {}
        }
    }
    if !next.is_empty() {
        let (ids, counters): (Vec<&str>, Vec<(i64, i64)>) =
            next.iter().map(|(e, c)| (e.as_str(), *c)).unzip();
        let (seqs, letter_ids): (Vec<i64>, Vec<i64>) = counters.into_iter().unzip();
        sqlx::query(
            "UPDATE webhooks_emitter_emitters AS e SET next_seq = v.s, next_dead_letter = v.d \
             FROM unnest($1::text[], $2::int8[], $3::int8[]) AS v(emitter, s, d) \
             WHERE e.emitter = v.emitter",
        )
        .bind(&ids)
        .bind(&seqs)
        .bind(&letter_ids)
        .execute(&mut **tx)
        .await?;
    }
    if !events.0.is_empty() {
        sqlx::query(
            "INSERT INTO webhooks_emitter_events (emitter, seq, attempts, record) \
             SELECT e, s, 0, r FROM unnest($1::text[], $2::int8[], $3::bytea[]) AS t(e, s, r)",
        )
        .bind(&events.0)
        .bind(&events.1)
        .bind(&events.2)
        .execute(&mut **tx)
        .await?;
    }
    let attempts: Vec<(&str, i64, i32)> = plan
        .attempts
        .iter()
        .filter(|((emitter, _), _)| epochs.contains_key(emitter))
        .map(|((e, seq), a)| {
            (
                e.as_str(),
                signed(*seq),
                i32::try_from(*a).unwrap_or(i32::MAX),
            )
        })
        .collect();
    for op in batch {
        if let Op::Attempted { emitter, fence, .. } = op {
            holds(emitter, fence.epoch, &mut outcome);
        }
    }
    if !attempts.is_empty() {
        let ids: Vec<&str> = attempts.iter().map(|a| a.0).collect();
        let seqs: Vec<i64> = attempts.iter().map(|a| a.1).collect();
        let counts: Vec<i32> = attempts.iter().map(|a| a.2).collect();
        sqlx::query(
            "UPDATE webhooks_emitter_events AS ev SET attempts = v.a \
             FROM unnest($1::text[], $2::int8[], $3::int4[]) AS v(emitter, seq, a) \
             WHERE ev.emitter = v.emitter AND ev.seq = v.seq",
        )
        .bind(&ids)
        .bind(&seqs)
        .bind(&counts)
        .execute(&mut **tx)
        .await?;
    }
    if !letters.0.is_empty() {
        sqlx::query(
            "INSERT INTO webhooks_emitter_dead_letters (emitter, id, record) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::bytea[])",
        )
        .bind(&letters.0)
        .bind(&letters.1)
        .bind(&letters.2)
        .execute(&mut **tx)
        .await?;
        let (ids, below): (Vec<&str>, Vec<i64>) =
            trims.iter().map(|(e, b)| (e.as_str(), *b)).unzip();
        sqlx::query(
            "DELETE FROM webhooks_emitter_dead_letters AS d \
             USING unnest($1::text[], $2::int8[]) AS v(emitter, below) \
             WHERE d.emitter = v.emitter AND d.id < v.below",
        )
        .bind(&ids)
        .bind(&below)
        .execute(&mut **tx)
        .await?;
    }
    if !deletes.0.is_empty() {
        sqlx::query(
            "DELETE FROM webhooks_emitter_events AS ev \
             USING unnest($1::text[], $2::int8[]) AS v(emitter, seq) \
             WHERE ev.emitter = v.emitter AND ev.seq = v.seq",
        )
        .bind(&deletes.0)
        .bind(&deletes.1)
        .execute(&mut **tx)
        .await?;
    }
    if !plan.paused.is_empty() {
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
    }
    if !plan.releases.is_empty() {
        let (ids, held): (Vec<&str>, Vec<i64>) =
            plan.releases.iter().map(|(e, p)| (e.as_str(), *p)).unzip();
        sqlx::query(
            "UPDATE webhooks_emitter_leases AS l SET owner = NULL, expires_at = now() \
             FROM unnest($1::text[], $2::int8[]) AS v(emitter, epoch) \
             WHERE l.emitter = v.emitter AND l.epoch = v.epoch AND l.owner = $3",
        )
        .bind(&ids)
        .bind(&held)
        .bind(shared.node())
        .execute(&mut **tx)
        .await?;
    }
    outcome.wake = Wake {
        e: woken
            .into_iter()
            .filter_map(|id| {
                let last = next
                    .get(&id)
                    .map(|(seq, _)| u64::try_from(*seq - 1).unwrap_or(0))?;
                Some((id, last))
            })
            .collect(),
        d: letters_changed.into_iter().collect(),
        p: plan.paused.clone().into_iter().collect(),
    };
    notify(tx, &outcome.wake).await?;
    Ok(outcome)
}

/// Wakes every node (this one too) once the transaction commits.
async fn notify(tx: &mut Transaction<'_, Postgres>, wake: &Wake) -> Result<(), sqlx::Error> {
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

/// After a commit: callers and workers are told, members updated, reads done.
fn settle(shared: &Arc<Shared>, batch: Vec<Op>, outcome: Outcome) -> Reads {
    let mut committed: HashMap<Arc<str>, usize> = HashMap::new();
    let mut reads = Reads::default();
    for op in batch {
        match op {
            Op::Append {
                emitter, durable, ..
            } => {
                if let Some(durable) = durable {
                    durable.done();
                }
                *committed.entry(emitter).or_default() += 1;
            }
            Op::DeadLetter {
                durable: Some(durable),
                ..
            } => durable.done(),
            Op::Flush { reply } => {
                let _ = reply.send(Ok(()));
            }
            Op::Register { emitter, .. } => reads.registered.push(emitter),
            Op::Unregister { emitter, token } => {
                let mut members = shared.members();
                if members.get(&emitter).is_some_and(|m| m.token == token) {
                    members.remove(&emitter);
                }
            }
            Op::Release { emitter, epoch } => {
                let mut members = shared.members();
                if let Some(member) = members.get_mut(&emitter) {
                    if member.epoch == Some(epoch) {
                        member.epoch = None;
                        member.releasing = false;
                        member.deadline.clear();
                    }
                }
            }
            Op::Load {
                emitter,
                epoch,
                after,
                through,
                limit,
            } => reads.loads.push((
                LoadRequest {
                    emitter,
                    after,
                    limit,
                },
                epoch,
                through,
            )),
            Op::ReadDeadLetters { emitter } => reads.dead_letters.push(emitter),
            _ => {}
        }
    }
    for (emitter, count) in committed {
        // With the count, the newest sequence number: the holder on this
        // node knows of the events before `flush` could find it idle.
        let last_seq = outcome.newest(&emitter).unwrap_or(0);
        shared.tell(&emitter, Notice::Committed { count, last_seq });
    }
    for (emitter, epoch) in outcome.fenced_off {
        tracing::warn!(emitter, epoch, node = %shared.node(), "write refused: this node no longer holds the lease");
        shared.lost(&emitter, Some(epoch));
    }
    reads
}

/// Reads a committed batch asked for; done by the reader task.
#[derive(Default)]
pub(super) struct Reads {
    pub registered: Vec<Arc<str>>,
    pub loads: Vec<(LoadRequest, i64, u64)>,
    pub dead_letters: Vec<Arc<str>>,
}

impl Reads {
    /// The reads again, as operations for the next batch.
    fn into_ops(self) -> Vec<Op> {
        let registered = self.registered.into_iter().map(|emitter| Op::Register {
            emitter,
            member: None,
        });
        let loads = self
            .loads
            .into_iter()
            .map(|(request, epoch, through)| Op::Load {
                emitter: request.emitter,
                epoch,
                after: request.after,
                through,
                limit: request.limit,
            });
        let letters =
            (self.dead_letters.into_iter()).map(|emitter| Op::ReadDeadLetters { emitter });
        registered.chain(loads).chain(letters).collect()
    }
}

/// Does a batch's reads and tells the workers. A worker that registered
/// while this node holds the emitter's lease (it restarted) is granted it.
async fn perform(pool: &PgPool, shared: &Shared, reads: &Reads) -> Result<(), sqlx::Error> {
    for emitter in &reads.registered {
        let state = reads::state(pool, emitter).await?;
        let epoch = shared.members().get(emitter).and_then(|m| m.epoch);
        shared.tell(emitter, Notice::Registered(state));
        if let Some(epoch) = epoch {
            let state = reads::state(pool, emitter).await?;
            shared.tell(emitter, Notice::Granted { epoch, state });
        }
    }
    if !reads.loads.is_empty() {
        let requests: Vec<&LoadRequest> = reads.loads.iter().map(|(r, _, _)| r).collect();
        let mut found = reads::load(pool, &requests).await?;
        for (request, epoch, through) in &reads.loads {
            let Some(loaded) = found.remove(&request.emitter) else {
                continue;
            };
            let notice = Notice::Loaded {
                epoch: *epoch,
                complete: loaded.rows < request.limit,
                events: loaded.events,
                through: *through,
            };
            shared.tell(&request.emitter, notice);
        }
    }
    for emitter in &reads.dead_letters {
        let (letters, next_id) = reads::dead_letters(pool, emitter).await?;
        shared.tell(emitter, Notice::DeadLetters { letters, next_id });
    }
    Ok(())
}

/// A batch that did not commit: the operations to try again. Callers who
/// wait (durable appends, flushes) hear the error now; their appends are
/// dropped, so that `Err` means "not stored".
fn failed(shared: &Shared, error: StoreError, batch: Vec<Op>) -> (StoreError, Vec<Op>) {
    let mut retry = Vec::with_capacity(batch.len());
    let mut refused: HashMap<Arc<str>, Vec<Arc<crate::emitter::event::Event>>> = HashMap::new();
    for op in batch {
        match op {
            Op::Append {
                emitter,
                event,
                durable: Some(durable),
            } => {
                durable.failed(error.clone());
                refused.entry(emitter).or_default().push(event);
            }
            Op::Flush { reply } => {
                let _ = reply.send(Err(error.clone()));
            }
            Op::DeadLetter {
                emitter,
                fence,
                letter,
                capacity,
                durable: Some(durable),
            } => {
                durable.failed(error.clone());
                retry.push(Op::DeadLetter {
                    emitter,
                    fence,
                    letter,
                    capacity,
                    durable: None,
                });
            }
            other => retry.push(other),
        }
    }
    for (emitter, events) in refused {
        let error = error.clone();
        shared.tell(&emitter, Notice::NotStored { events, error });
    }
    (error, retry)
}
