//! The lease keeper: every tick (500 ms, or a quarter of a shorter expiry) it
//! records this node as live, renews the leases it holds, claims free or
//! expired ones up to its share, gives back what is above its share, and
//! tells each holder the newest sequence number (the backstop for a missed
//! notification).
//!
//! A node's share is the emitters attached on live nodes divided by the live
//! nodes, rounded up, so leases spread out as nodes join. A lease free for
//! longer than the expiry is claimed by any node that has the emitter
//! attached, whatever its share: an emitter never waits for a node that does
//! not attach it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::types::PgInterval;
use sqlx::{PgPool, Row};
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};

use super::reads::{self, unsigned};
use super::{ClusterNotice, Member, NodeState};

/// How often the keeper runs for a given expiry.
pub(super) fn tick_for(expiry: Duration) -> Duration {
    (expiry / 4).min(Duration::from_millis(500))
}

/// Runs until `stop`, then gives every lease back.
pub(super) async fn keep(pool: PgPool, shared: Arc<NodeState>, mut stop: oneshot::Receiver<()>) {
    let mut ticks = tokio::time::interval(tick_for(shared.options.lease_expiry));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {}
        }
        match tick(&pool, &shared).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(node = %shared.node(), "lease keeper reaches the database again");
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    tracing::error!(node = %shared.node(), %error, "lease keeper cannot reach the database; deliveries stop when the leases lapse");
                }
                failing = true;
            }
        }
    }
    if let Err(error) = give_back(&pool, &shared).await {
        tracing::warn!(node = %shared.node(), %error, "leases not given back; other nodes take them when they expire");
    }
}

pub(super) fn interval(duration: Duration) -> PgInterval {
    PgInterval {
        months: 0,
        days: 0,
        microseconds: i64::try_from(duration.as_micros()).unwrap_or(i64::MAX),
    }
}

async fn tick(pool: &PgPool, shared: &NodeState) -> Result<(), sqlx::Error> {
    let (registered, held) = {
        let members = shared.members();
        let registered: Vec<String> = members.keys().map(|id| id.to_string()).collect();
        let held: Vec<(String, i64)> = members
            .iter()
            .filter_map(|(id, m)| m.epoch.map(|e| (id.to_string(), e)))
            .collect();
        (registered, held)
    };
    if registered.is_empty() {
        return Ok(());
    }
    let expiry = shared.options.lease_expiry;
    let sent_at = Instant::now();
    // The lease is valid locally until a margin before it expires in the
    // database (whose clock set `expires_at` after `sent_at`).
    let valid_until = sent_at + expiry - expiry / 5;
    sqlx::query(
        "INSERT INTO webhooks_emitter_nodes (name, seen_at) VALUES ($1, now()) \
         ON CONFLICT (name) DO UPDATE SET seen_at = now()",
    )
    .bind(shared.node())
    .execute(pool)
    .await?;
    renew(pool, shared, &held, valid_until.into_std()).await?;
    spread(pool, shared, &registered, valid_until.into_std()).await?;
    poll(pool, shared).await
}

async fn renew(
    pool: &PgPool,
    shared: &NodeState,
    held: &[(String, i64)],
    valid_until: std::time::Instant,
) -> Result<(), sqlx::Error> {
    if held.is_empty() {
        return Ok(());
    }
    let (ids, epochs): (Vec<&str>, Vec<i64>) = held.iter().map(|(e, n)| (e.as_str(), *n)).unzip();
    let rows = sqlx::query(
        "UPDATE webhooks_emitter_leases AS l SET expires_at = now() + $3 \
         FROM unnest($1::text[], $2::int8[]) AS v(emitter, epoch) \
         WHERE l.emitter = v.emitter AND l.epoch = v.epoch AND l.owner = $4 \
         RETURNING l.emitter",
    )
    .bind(&ids)
    .bind(&epochs)
    .bind(interval(shared.options.lease_expiry))
    .bind(shared.node())
    .fetch_all(pool)
    .await?;
    let renewed: HashSet<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    for (emitter, epoch) in held {
        if !renewed.contains(emitter) {
            tracing::warn!(emitter, epoch, node = %shared.node(), "lease lost: another node took it");
            shared.lost(emitter, Some(*epoch));
            continue;
        }
        let members = shared.members();
        let Some(member) = members
            .get(emitter.as_str())
            .filter(|m| m.epoch == Some(*epoch))
        else {
            continue;
        };
        let lapsed = !member.deadline.valid();
        member.deadline.set(valid_until);
        if lapsed {
            member.worker.send(ClusterNotice::Renewed);
        }
    }
    Ok(())
}

/// Claims up to this node's share, or gives back what is above it.
async fn spread(
    pool: &PgPool,
    shared: &NodeState,
    registered: &[String],
    valid_until: std::time::Instant,
) -> Result<(), sqlx::Error> {
    let share = share(pool, shared).await?;
    let plan = Spread::plan(&shared.members(), registered, share);
    for emitter in &plan.excess {
        give_up(shared, emitter);
    }
    if plan.candidates.is_empty() {
        return Ok(());
    }
    let room = i64::try_from(share.saturating_sub(plan.held)).unwrap_or(0);
    for (emitter, epoch) in claim(pool, shared, &plan.candidates, room).await? {
        grant(pool, shared, &emitter, epoch, valid_until).await?;
    }
    Ok(())
}

/// This node's share of the leases: the emitters attached on live nodes
/// divided by the live nodes, rounded up.
async fn share(pool: &PgPool, shared: &NodeState) -> Result<usize, sqlx::Error> {
    let row = sqlx::query(
        "SELECT \
           (SELECT count(*) FROM webhooks_emitter_nodes WHERE seen_at > now() - $1), \
           (SELECT count(DISTINCT c.emitter) FROM webhooks_emitter_configs c \
              JOIN webhooks_emitter_nodes n ON n.name = c.node WHERE n.seen_at > now() - $1)",
    )
    .bind(interval(shared.options.lease_expiry))
    .fetch_one(pool)
    .await?;
    let live = row.try_get::<i64, _>(0)?.max(1);
    let total = row.try_get::<i64, _>(1)?.max(0);
    Ok(usize::try_from((total + live - 1) / live).unwrap_or(usize::MAX))
}

/// What this node does with its leases at one tick, given its share.
#[derive(Debug, PartialEq, Eq)]
struct Spread {
    /// Leases held now.
    held: usize,
    /// Attached here without the lease: to claim, room permitting.
    candidates: Vec<String>,
    /// Held above the share (less those already being given back): to give
    /// back, the first by id so that nodes agree.
    excess: Vec<Arc<str>>,
}

impl Spread {
    fn plan(members: &HashMap<Arc<str>, Member>, registered: &[String], share: usize) -> Self {
        let held = members.values().filter(|m| m.epoch.is_some()).count();
        let candidates = registered
            .iter()
            .filter(|id| members.get(id.as_str()).is_some_and(|m| m.epoch.is_none()))
            .cloned()
            .collect();
        let mut holding: Vec<&Arc<str>> = members
            .iter()
            .filter(|(_, m)| m.epoch.is_some() && !m.releasing)
            .map(|(id, _)| id)
            .collect();
        holding.sort();
        let releasing = members.values().filter(|m| m.releasing).count();
        let over = held.saturating_sub(share).saturating_sub(releasing);
        let excess = holding.into_iter().take(over).cloned().collect();
        Spread {
            held,
            candidates,
            excess,
        }
    }
}

/// Claims free (or expired) leases among `candidates` up to `room`; then any
/// lease free for longer than the expiry, whatever the share. The claimed
/// emitters and their new epochs.
async fn claim(
    pool: &PgPool,
    shared: &NodeState,
    candidates: &[String],
    room: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let mut claimed = Vec::new();
    for (condition, limit) in [
        ("(owner IS NULL OR expires_at < now())", room),
        ("expires_at < now() - $3", i64::MAX),
    ] {
        if limit == 0 {
            continue;
        }
        let claim = format!(
            "UPDATE webhooks_emitter_leases AS l \
             SET owner = $2, epoch = l.epoch + 1, expires_at = now() + $3 \
             FROM (SELECT emitter FROM webhooks_emitter_leases \
                   WHERE emitter = ANY($1) AND {condition} \
                   ORDER BY random() LIMIT $4 FOR UPDATE SKIP LOCKED) AS c \
             WHERE l.emitter = c.emitter RETURNING l.emitter, l.epoch"
        );
        let rows = sqlx::query(&claim)
            .bind(candidates)
            .bind(shared.node())
            .bind(interval(shared.options.lease_expiry))
            .bind(limit)
            .fetch_all(pool)
            .await?;
        for row in rows {
            claimed.push((row.try_get(0)?, row.try_get(1)?));
        }
    }
    Ok(claimed)
}

/// Asks the holder's worker to give the lease back once nothing is in flight.
fn give_up(shared: &NodeState, emitter: &Arc<str>) {
    let mut members = shared.members();
    if let Some(member) = members.get_mut(emitter) {
        member.releasing = true;
        member.worker.send(ClusterNotice::Release);
        tracing::info!(emitter = %emitter, node = %shared.node(), "giving a lease back to spread them across nodes");
    }
}

/// This node holds `emitter`'s lease at `epoch`: its worker gets the state.
async fn grant(
    pool: &PgPool,
    shared: &NodeState,
    emitter: &str,
    epoch: i64,
    valid_until: std::time::Instant,
) -> Result<(), sqlx::Error> {
    {
        let mut members = shared.members();
        let Some(member) = members.get_mut(emitter) else {
            return Ok(()); // detached meanwhile: the next tick's renewal fails
        };
        member.epoch = Some(epoch);
        member.releasing = false;
        member.deadline.set(valid_until);
    }
    let drift = sqlx::query(
        "SELECT count(DISTINCT c.fingerprint) FROM webhooks_emitter_configs c \
         JOIN webhooks_emitter_nodes n ON n.name = c.node \
         WHERE c.emitter = $1 AND n.seen_at > now() - $2",
    )
    .bind(emitter)
    .bind(interval(shared.options.lease_expiry))
    .fetch_one(pool)
    .await?
    .try_get::<i64, _>(0)?;
    if drift > 1 {
        tracing::warn!(emitter, node = %shared.node(), configurations = drift, "nodes attach this emitter with different configurations; the lease holder's (this node's) is used");
    }
    let state = reads::state(pool, emitter).await?;
    tracing::info!(emitter, epoch, node = %shared.node(), queued_through = state.last_seq, "lease taken");
    shared.tell(emitter, ClusterNotice::Granted { epoch, state });
    Ok(())
}

/// Tells each holder the newest sequence number and the paused state.
async fn poll(pool: &PgPool, shared: &NodeState) -> Result<(), sqlx::Error> {
    let held: Vec<String> = shared
        .members()
        .iter()
        .filter(|(_, m)| m.epoch.is_some())
        .map(|(id, _)| id.to_string())
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT emitter, next_seq, paused FROM webhooks_emitter_emitters WHERE emitter = ANY($1)",
    )
    .bind(&held)
    .fetch_all(pool)
    .await?;
    let mut newest: HashMap<String, (u64, bool)> = HashMap::new();
    for row in rows {
        let seq = unsigned(row.try_get(1)?).saturating_sub(1);
        newest.insert(row.try_get(0)?, (seq, row.try_get(2)?));
    }
    for (emitter, (last_seq, paused)) in newest {
        shared.tell(
            &emitter,
            ClusterNotice::Newest {
                last_seq,
                paused: Some(paused),
            },
        );
    }
    Ok(())
}

/// At close: every lease back, and this node no longer counted as live.
async fn give_back(pool: &PgPool, shared: &NodeState) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhooks_emitter_leases SET owner = NULL, expires_at = now() WHERE owner = $1",
    )
    .bind(shared.node())
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM webhooks_emitter_nodes WHERE name = $1")
        .bind(shared.node())
        .execute(pool)
        .await?;
    for member in shared.members().values_mut() {
        member.epoch = None;
        member.deadline.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::thread::NoticeSink;

    fn member(epoch: Option<i64>, releasing: bool) -> Member {
        Member {
            worker: NoticeSink::new(|_| {}),
            token: 0,
            fingerprint: String::new(),
            epoch,
            releasing,
            deadline: Arc::default(),
        }
    }

    fn members(list: &[(&str, Option<i64>, bool)]) -> HashMap<Arc<str>, Member> {
        list.iter()
            .map(|(id, epoch, releasing)| (Arc::from(*id), member(*epoch, *releasing)))
            .collect()
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn a_node_within_its_share_claims_what_it_lacks_and_gives_nothing_back() {
        let members = members(&[
            ("a", Some(1), false),
            ("b", None, false),
            ("c", None, false),
        ]);
        let plan = Spread::plan(&members, &ids(&["a", "b", "c"]), 2);
        assert_eq!(plan.held, 1);
        let mut candidates = plan.candidates;
        candidates.sort();
        assert_eq!(candidates, ids(&["b", "c"]));
        assert!(plan.excess.is_empty());
    }

    #[test]
    fn a_node_above_its_share_gives_back_the_first_by_id_less_those_going() {
        let members = members(&[
            ("d", Some(1), false),
            ("b", Some(1), false),
            ("a", Some(1), true),
            ("c", Some(1), false),
        ]);
        // 4 held, share 1: 3 too many, one of them already going back.
        let plan = Spread::plan(&members, &ids(&["a", "b", "c", "d"]), 1);
        assert_eq!(plan.held, 4);
        assert!(plan.candidates.is_empty());
        let excess: Vec<&str> = plan.excess.iter().map(|id| &**id).collect();
        assert_eq!(excess, ["b", "c"]);
    }

    #[test]
    fn an_id_registered_but_no_longer_a_member_is_not_a_candidate() {
        let members = members(&[("a", None, false)]);
        let plan = Spread::plan(&members, &ids(&["a", "gone"]), 5);
        assert_eq!(plan.candidates, ids(&["a"]));
    }
}
