//! Reads: an emitter's state (when a worker registers or takes the lease),
//! its dead letters, and the holder's next events, many emitters per query;
//! and the reads a committed batch asked for, answered to the workers.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::{PgPool, Row};

use super::{ClusterNotice, ClusterOp, NodeState, State};
use crate::model::DeadLetter;
use crate::store::records::{self, StoredCounters, StoredEvent};

/// Sequence numbers and counters are `BIGINT`; ours are never negative.
pub(super) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(super) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The emitter's paused state, dead letters and counters.
pub(super) async fn state(pool: &PgPool, emitter: &str) -> Result<State, sqlx::Error> {
    let row = sqlx::query(
        "SELECT next_seq, paused, delivered, failed_attempts, dead_lettered \
         FROM webhooks_emitter_emitters WHERE emitter = $1",
    )
    .bind(emitter)
    .fetch_optional(pool)
    .await?;
    let (next_seq, paused, counters) = match row {
        Some(row) => (
            row.try_get::<i64, _>(0)?,
            row.try_get::<bool, _>(1)?,
            StoredCounters {
                delivered: unsigned(row.try_get(2)?),
                failed_attempts: unsigned(row.try_get(3)?),
                dead_lettered: unsigned(row.try_get(4)?),
            },
        ),
        None => (1, false, StoredCounters::default()),
    };
    let (dead_letters, next_dead_letter) = dead_letters(pool, emitter).await?;
    Ok(State {
        paused,
        dead_letters,
        next_dead_letter,
        last_seq: unsigned(next_seq).saturating_sub(1),
        counters,
    })
}

/// The emitter's dead letters, oldest first, and the next id.
pub(super) async fn dead_letters(
    pool: &PgPool,
    emitter: &str,
) -> Result<(Vec<DeadLetter>, u64), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, record FROM webhooks_emitter_dead_letters WHERE emitter = $1 ORDER BY id",
    )
    .bind(emitter)
    .fetch_all(pool)
    .await?;
    let mut letters = Vec::with_capacity(rows.len());
    let mut next_id = 1;
    for row in rows {
        let id = unsigned(row.try_get(0)?);
        let record: Vec<u8> = row.try_get(1)?;
        next_id = next_id.max(id.saturating_add(1));
        match records::decode_dead_letter(id, &record) {
            Some(letter) => letters.push(letter),
            None => tracing::error!(emitter, dead_letter = id, "damaged dead letter skipped"),
        }
    }
    Ok((letters, next_id))
}

/// One holder's request for its next events.
pub(super) struct LoadRequest {
    pub emitter: Arc<str>,
    pub after: u64,
    pub limit: usize,
}

/// What one load found: events in order, and how many rows (a damaged record
/// is skipped).
#[derive(Default)]
pub(super) struct Loaded {
    pub events: Vec<StoredEvent>,
    pub rows: usize,
}

/// Reads every request's next events in one query.
pub(super) async fn load(
    pool: &PgPool,
    requests: &[&LoadRequest],
) -> Result<HashMap<Arc<str>, Loaded>, sqlx::Error> {
    let emitters: Vec<&str> = requests.iter().map(|r| &*r.emitter).collect();
    let after: Vec<i64> = requests.iter().map(|r| signed(r.after)).collect();
    let limits: Vec<i64> = requests
        .iter()
        .map(|r| i64::try_from(r.limit).unwrap_or(i64::MAX))
        .collect();
    let rows = sqlx::query(
        "SELECT r.emitter, e.seq, e.attempts, e.record, e.retry_at_ms \
         FROM unnest($1::text[], $2::int8[], $3::int8[]) AS r(emitter, after, lim) \
         CROSS JOIN LATERAL ( \
             SELECT seq, attempts, record, retry_at_ms FROM webhooks_emitter_events \
             WHERE emitter = r.emitter AND seq > r.after ORDER BY seq LIMIT r.lim \
         ) AS e",
    )
    .bind(&emitters)
    .bind(&after)
    .bind(&limits)
    .fetch_all(pool)
    .await?;
    let mut found: HashMap<Arc<str>, Loaded> = requests
        .iter()
        .map(|r| (r.emitter.clone(), Loaded::default()))
        .collect();
    for row in rows {
        let emitter: String = row.try_get(0)?;
        let seq = unsigned(row.try_get(1)?);
        let attempts = u32::try_from(row.try_get::<i32, _>(2)?).unwrap_or(0);
        let record: Vec<u8> = row.try_get(3)?;
        let retry_at = records::from_millis(u64::try_from(row.try_get::<i64, _>(4)?).unwrap_or(0));
        let Some(loaded) = found.get_mut(emitter.as_str()) else {
            continue;
        };
        loaded.rows += 1;
        match records::decode_event(seq, &record) {
            Some(mut stored) => {
                stored.attempts = attempts;
                stored.retry_at = retry_at;
                loaded.events.push(stored);
            }
            None => tracing::error!(emitter, seq, "damaged stored event skipped"),
        }
    }
    Ok(found)
}

/// Reads a committed batch asked for, done once it is committed.
#[derive(Default)]
pub(super) struct Reads {
    pub registered: Vec<Arc<str>>,
    pub loads: Vec<(LoadRequest, i64, u64)>,
    pub dead_letters: Vec<Arc<str>>,
}

impl Reads {
    /// The reads again, as operations for the next batch.
    pub(super) fn into_ops(self) -> Vec<ClusterOp> {
        let registered = self
            .registered
            .into_iter()
            .map(|emitter| ClusterOp::Register {
                emitter,
                member: None,
            });
        let loads = self
            .loads
            .into_iter()
            .map(|(request, epoch, through)| ClusterOp::Load {
                emitter: request.emitter,
                epoch,
                after: request.after,
                through,
                limit: request.limit,
            });
        let letters =
            (self.dead_letters.into_iter()).map(|emitter| ClusterOp::ReadDeadLetters { emitter });
        registered.chain(loads).chain(letters).collect()
    }
}

/// Does a batch's reads and tells the workers. A worker that registered
/// while this node holds the emitter's lease (it restarted) is granted it.
pub(super) async fn perform(
    pool: &PgPool,
    shared: &NodeState,
    reads: &Reads,
) -> Result<(), sqlx::Error> {
    for emitter in &reads.registered {
        let registered = state(pool, emitter).await?;
        let epoch = shared.members().get(emitter).and_then(|m| m.epoch);
        shared.tell(emitter, ClusterNotice::Registered(registered));
        if let Some(epoch) = epoch {
            let granted = state(pool, emitter).await?;
            shared.tell(
                emitter,
                ClusterNotice::Granted {
                    epoch,
                    state: granted,
                },
            );
        }
    }
    if !reads.loads.is_empty() {
        let requests: Vec<&LoadRequest> = reads.loads.iter().map(|(r, _, _)| r).collect();
        let mut found = load(pool, &requests).await?;
        for (request, epoch, through) in &reads.loads {
            let Some(loaded) = found.remove(&request.emitter) else {
                continue;
            };
            let notice = ClusterNotice::Loaded {
                epoch: *epoch,
                complete: loaded.rows < request.limit,
                events: loaded.events,
                through: *through,
            };
            shared.tell(&request.emitter, notice);
        }
    }
    for emitter in &reads.dead_letters {
        let (letters, next_id) = dead_letters(pool, emitter).await?;
        shared.tell(emitter, ClusterNotice::DeadLetters { letters, next_id });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{signed, unsigned};

    proptest! {
        /// Sequence numbers cross between `u64` and `BIGINT` without
        /// wrapping: a negative value (never written) reads as 0, a value
        /// beyond `i64` is held at its maximum.
        #[test]
        fn sequence_numbers_never_wrap(value in any::<u64>(), column in any::<i64>()) {
            prop_assert_eq!(unsigned(signed(value)), value.min(i64::MAX as u64));
            prop_assert_eq!(unsigned(column), u64::try_from(column).unwrap_or(0));
        }
    }
}
