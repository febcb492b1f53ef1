//! What one batch of operations does, worked out without the database: which
//! emitters it registers, whose lease it checks, whose counters it locks
//! (the [`Plan`]), then, given what the transaction read, the rows each
//! statement writes (the [`Rows`]). Pure, so that it is tested on its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use serde::Serialize;

use super::reads::signed;
use super::{ClusterOp, Fence, NodeState};
use crate::model::DeadLetter;
use crate::store::records::{self, StoredCounters};

/// What the transaction must read and lock first.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Emitters registered by this batch, with their config digests.
    pub registers: Vec<(String, String)>,
    /// Emitters whose lease epoch a write depends on.
    pub fenced: HashSet<String>,
    /// Dead letters to move back to the queue.
    pub redeliver: Vec<(String, i64)>,
    /// Emitters whose counters change (appends, dead letters, deliveries,
    /// attempts): their rows are locked in one order on every node.
    pub counters: HashSet<String>,
    /// The last paused state set per emitter.
    pub paused: BTreeMap<String, bool>,
    /// Leases given back: by a worker, or by an emitter detached here.
    pub releases: Vec<(String, i64)>,
    /// Emitters detached here (their workers stopped): this node no longer
    /// uses them.
    pub unregistered: Vec<String>,
}

/// Registers members at once (their workers wait for nothing else) and
/// gathers what the batch's writes need.
pub(super) fn plan(shared: &NodeState, batch: &mut [ClusterOp]) -> Plan {
    let mut plan = Plan::default();
    for op in batch.iter_mut() {
        match op {
            ClusterOp::Register { emitter, member } => {
                let mut members = shared.members();
                // `None` once registered (a retried batch, or a read again).
                let Some(mut member) = member.take() else {
                    if let Some(known) = members.get(emitter) {
                        let fingerprint = known.fingerprint.clone();
                        plan.registers.push((emitter.to_string(), fingerprint));
                    }
                    continue;
                };
                if let Some(old) = members.get(emitter) {
                    // A restarted worker: the lease this node holds stays.
                    member.epoch = old.epoch;
                    member.deadline = old.deadline.clone();
                }
                let fingerprint = member.fingerprint.clone();
                plan.registers.push((emitter.to_string(), fingerprint));
                members.insert(emitter.clone(), member);
            }
            ClusterOp::Unregister { emitter, token } => {
                let members = shared.members();
                let member = members.get(emitter).filter(|m| m.token == *token);
                if member.is_some() {
                    plan.unregistered.push(emitter.to_string());
                }
                let held = member.and_then(|m| m.epoch);
                if let Some(epoch) = held {
                    plan.fenced.insert(emitter.to_string());
                    plan.releases.push((emitter.to_string(), epoch));
                }
            }
            other => plan.add(other),
        }
    }
    plan
}

impl Plan {
    fn add(&mut self, op: &ClusterOp) {
        match op {
            ClusterOp::Append { emitter, .. } => {
                self.counters.insert(emitter.to_string());
            }
            ClusterOp::Attempted { emitter, .. } | ClusterOp::Ack { emitter, .. } => {
                self.fenced.insert(emitter.to_string());
                self.counters.insert(emitter.to_string());
            }
            ClusterOp::DeadLetter { emitter, fence, .. } => {
                self.counters.insert(emitter.to_string());
                if fence.is_some() {
                    self.fenced.insert(emitter.to_string());
                }
            }
            ClusterOp::Redeliver { emitter, ids } => {
                self.counters.insert(emitter.to_string());
                self.redeliver
                    .extend(ids.iter().map(|id| (emitter.to_string(), signed(*id))));
            }
            ClusterOp::SetPaused { emitter, paused } => {
                self.paused.insert(emitter.to_string(), *paused);
            }
            ClusterOp::Release { emitter, epoch } => {
                self.fenced.insert(emitter.to_string());
                self.releases.push((emitter.to_string(), *epoch));
            }
            _ => {}
        }
    }
}

/// What the transaction read, under lock, before it writes.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// The lease epochs this node holds.
    pub epochs: HashMap<String, i64>,
    /// Dead letters being redelivered that were still there: their records.
    pub redelivered: HashMap<(String, i64), Vec<u8>>,
    /// Per emitter: the next sequence number and the next dead-letter id.
    pub counters: HashMap<String, (i64, i64)>,
}

/// The rows the batch writes, column by column (for `unnest`).
#[derive(Debug, Default)]
pub(super) struct Rows {
    /// New events: emitter, sequence number, record.
    pub events: (Vec<String>, Vec<i64>, Vec<Vec<u8>>),
    /// Attempt counts of started events: emitter, sequence number →
    /// attempts, and the next attempt's due time (unix milliseconds).
    pub attempts: BTreeMap<(String, i64), (i32, i64)>,
    /// New dead letters: emitter, id, record.
    pub letters: (Vec<String>, Vec<i64>, Vec<Vec<u8>>),
    /// Per emitter, dead letters with a smaller id are dropped (the bound).
    pub trims: BTreeMap<String, i64>,
    /// Events done (delivered, or dead-lettered): emitter, sequence number.
    pub deletes: (Vec<String>, Vec<i64>),
    /// Leases given back that this node still held.
    pub releases: Vec<(String, i64)>,
    /// The counters after the batch.
    pub counters: HashMap<String, (i64, i64)>,
    /// What the batch adds to each emitter's stored stats.
    pub tallies: BTreeMap<String, StoredCounters>,
    /// Fenced writes refused: the lease moved on.
    pub fenced_off: HashSet<(String, i64)>,
    pub wake: Wake,
    /// Emitters with new events, and with dead letters changed.
    woken: HashSet<String>,
    letters_changed: HashSet<String>,
}

/// What a committed batch tells every node (the notification's payload).
#[derive(Debug, Default, Serialize)]
pub(super) struct Wake {
    /// New events: emitter and newest sequence number.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub e: Vec<(String, u64)>,
    /// Dead letters changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub d: Vec<String>,
    /// Paused or resumed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub p: Vec<(String, bool)>,
}

impl Rows {
    /// The newest sequence number of an emitter this batch appended to.
    pub(super) fn newest(&self, emitter: &str) -> Option<u64> {
        self.wake
            .e
            .iter()
            .find(|(id, _)| id == emitter)
            .map(|(_, last)| *last)
    }

    fn tally(&mut self, emitter: &str) -> &mut StoredCounters {
        self.tallies.entry(emitter.to_owned()).or_default()
    }

    fn holds(&mut self, read: &Read, emitter: &str, epoch: i64) -> bool {
        let held = read.epochs.get(emitter) == Some(&epoch);
        if !held {
            self.fenced_off.insert((emitter.to_owned(), epoch));
        }
        held
    }

    fn append(&mut self, emitter: &str, event: &crate::model::Event) {
        let Some((seq, _)) = self.counters.get_mut(emitter) else {
            return;
        };
        self.events.0.push(emitter.to_owned());
        self.events.1.push(*seq);
        self.events.2.push(records::encode_event(event, 0));
        *seq += 1;
        self.woken.insert(emitter.to_owned());
    }

    /// A started event done (delivered, or dead-lettered) under `fence`.
    fn done(&mut self, read: &Read, emitter: &str, fence: Fence) -> bool {
        let held = self.holds(read, emitter, fence.epoch);
        if held {
            self.deletes.0.push(emitter.to_owned());
            self.deletes.1.push(signed(fence.seq));
        }
        held
    }

    fn attempted(
        &mut self,
        read: &Read,
        emitter: &str,
        fence: Fence,
        attempts: u32,
        retry_at: SystemTime,
    ) {
        if !self.holds(read, emitter, fence.epoch) {
            return;
        }
        self.tally(emitter).failed_attempts += 1;
        let count = i32::try_from(attempts).unwrap_or(i32::MAX);
        let due = i64::try_from(records::millis(Some(retry_at))).unwrap_or(i64::MAX);
        let key = (emitter.to_owned(), signed(fence.seq));
        // The latest attempt wins, with its own due time.
        let entry = self.attempts.entry(key).or_default();
        *entry = (*entry).max((count, due));
    }

    /// A dead letter; a started event's counts only under its lease.
    fn dead_letter(
        &mut self,
        read: &Read,
        emitter: &str,
        fence: Option<Fence>,
        letter: &DeadLetter,
        capacity: usize,
    ) {
        if fence.is_some_and(|fence| !self.done(read, emitter, fence)) {
            return;
        }
        let Some((_, id)) = self.counters.get_mut(emitter) else {
            return;
        };
        self.letters.0.push(emitter.to_owned());
        self.letters.1.push(*id);
        self.letters.2.push(records::encode_dead_letter(letter));
        *id += 1;
        let keep = i64::try_from(capacity).unwrap_or(i64::MAX);
        self.trims
            .insert(emitter.to_owned(), id.saturating_sub(keep));
        self.letters_changed.insert(emitter.to_owned());
        let tally = self.tally(emitter);
        tally.dead_lettered += 1;
        // Its last attempt failed too (a queue-full letter had none).
        if letter.attempts > 0 {
            tally.failed_attempts += 1;
        }
    }

    /// Dead letters back at the tail of their emitter's queue, in id order
    /// (those still there when read).
    fn redeliver(&mut self, read: &mut Read, emitter: &str, ids: &[u64]) {
        self.letters_changed.insert(emitter.to_owned());
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        for id in ids {
            let key = (emitter.to_owned(), signed(id));
            let letter = read
                .redelivered
                .remove(&key)
                .and_then(|record| records::decode_dead_letter(id, &record));
            if let Some(letter) = letter {
                self.append(emitter, &letter.event);
            }
        }
    }

    /// Whom the batch wakes: emitters with new events (and their newest
    /// sequence number), with changed dead letters, paused or resumed.
    fn wake(&mut self, plan: &Plan) -> Wake {
        let woken = std::mem::take(&mut self.woken);
        Wake {
            e: woken
                .into_iter()
                .filter_map(|id| {
                    let (next, _) = self.counters.get(&id)?;
                    Some((id, u64::try_from(next - 1).unwrap_or(0)))
                })
                .collect(),
            d: std::mem::take(&mut self.letters_changed)
                .into_iter()
                .collect(),
            p: plan.paused.clone().into_iter().collect(),
        }
    }
}

/// The rows `batch` writes, in the order its operations were sent.
pub(super) fn arrange(plan: &Plan, batch: &[ClusterOp], mut read: Read) -> Rows {
    let mut rows = Rows {
        counters: std::mem::take(&mut read.counters),
        ..Rows::default()
    };
    for op in batch {
        match op {
            ClusterOp::Append { emitter, event, .. } => rows.append(emitter, event),
            ClusterOp::Redeliver { emitter, ids } => rows.redeliver(&mut read, emitter, ids),
            ClusterOp::Attempted {
                emitter,
                fence,
                attempts,
                retry_at,
            } => rows.attempted(&read, emitter, *fence, *attempts, *retry_at),
            ClusterOp::DeadLetter {
                emitter,
                fence,
                letter,
                capacity,
                ..
            } => rows.dead_letter(&read, emitter, *fence, letter, *capacity),
            ClusterOp::Ack { emitter, fence } if rows.done(&read, emitter, *fence) => {
                rows.tally(emitter).delivered += 1;
            }
            _ => {}
        }
    }
    for (emitter, epoch) in &plan.releases {
        if rows.holds(&read, emitter, *epoch) {
            rows.releases.push((emitter.clone(), *epoch));
        }
    }
    rows.wake = rows.wake(plan);
    rows
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::model::{Event, RequestId};

    fn event(n: u32) -> Arc<Event> {
        Arc::new(Event::new(
            Arc::from("tick"),
            Bytes::from(format!("{{\"n\":{n}}}")),
            RequestId::generate(),
        ))
    }

    fn append(emitter: &str, n: u32) -> ClusterOp {
        ClusterOp::Append {
            emitter: Arc::from(emitter),
            event: event(n),
            durable: None,
        }
    }

    fn ack(emitter: &str, epoch: i64, seq: u64) -> ClusterOp {
        ClusterOp::Ack {
            emitter: Arc::from(emitter),
            fence: Fence { epoch, seq },
        }
    }

    fn read(epochs: &[(&str, i64)], counters: &[(&str, i64)]) -> Read {
        Read {
            epochs: epochs.iter().map(|(e, n)| (e.to_string(), *n)).collect(),
            counters: counters
                .iter()
                .map(|(e, next)| (e.to_string(), (*next, 1)))
                .collect(),
            ..Read::default()
        }
    }

    #[test]
    fn appends_take_consecutive_sequence_numbers_in_send_order() {
        let batch = vec![append("a", 0), append("b", 1), append("a", 2)];
        let rows = arrange(&Plan::default(), &batch, read(&[], &[("a", 7), ("b", 1)]));
        assert_eq!(rows.events.0, ["a", "b", "a"]);
        assert_eq!(rows.events.1, [7, 1, 8]);
        assert_eq!(rows.counters["a"].0, 9);
        assert_eq!(rows.newest("a"), Some(8));
        assert_eq!(rows.newest("b"), Some(1));
    }

    #[test]
    fn writes_under_another_epoch_are_fenced_off() {
        let batch = vec![ack("a", 3, 10), ack("a", 4, 11), ack("b", 1, 5)];
        let rows = arrange(&Plan::default(), &batch, read(&[("a", 4)], &[]));
        assert_eq!(rows.deletes.0, ["a"]);
        assert_eq!(rows.deletes.1, [11]);
        let fenced: HashSet<(String, i64)> = [("a".into(), 3), ("b".into(), 1)].into();
        assert_eq!(rows.fenced_off, fenced);
    }

    #[test]
    fn attempts_keep_the_highest_count_and_need_the_lease() {
        let at = |ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        let attempted = |epoch, attempts, due| ClusterOp::Attempted {
            emitter: Arc::from("a"),
            fence: Fence { epoch, seq: 2 },
            attempts,
            retry_at: at(due),
        };
        let batch = vec![
            attempted(1, 3, 3_000),
            attempted(1, 2, 2_000),
            attempted(0, 9, 9_000),
        ];
        let rows = arrange(&Plan::default(), &batch, read(&[("a", 1)], &[]));
        assert_eq!(
            rows.attempts.into_iter().collect::<Vec<_>>(),
            [(("a".into(), 2), (3, 3_000))]
        );
    }

    #[test]
    fn releases_count_only_for_a_lease_still_held() {
        let plan = Plan {
            releases: vec![("a".into(), 2), ("b".into(), 1)],
            ..Plan::default()
        };
        let rows = arrange(&plan, &[], read(&[("a", 2), ("b", 2)], &[]));
        assert_eq!(rows.releases, [("a".to_owned(), 2)]);
    }
}
