//! How a store's thread groups operations into one transaction (one fsync on
//! the journal, one round trip on PostgreSQL): the same two settings, with
//! the same bounds, for both stores.

use std::time::Duration;

/// Default time a batch of operations waits for more before it is committed.
pub(crate) const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(2);
/// Default largest batch: more operations are committed in the next one.
pub(crate) const DEFAULT_MAX_BATCH: usize = 4096;
/// Longest a batch may wait: beyond it a plain `emit` is not "on disk soon".
const MAX_COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// A store's batching: how long a batch gathers, and how many operations
/// it holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchOptions {
    pub commit_interval: Duration,
    pub max_batch: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            max_batch: DEFAULT_MAX_BATCH,
        }
    }
}

impl BatchOptions {
    /// At most 1 s.
    pub(crate) fn with_commit_interval(self, interval: Duration) -> Self {
        BatchOptions {
            commit_interval: interval.min(MAX_COMMIT_INTERVAL),
            ..self
        }
    }

    /// At least 1.
    pub(crate) fn with_max_batch(self, operations: usize) -> Self {
        BatchOptions {
            max_batch: operations.max(1),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_outside_are_brought_within_bounds() {
        let extreme = BatchOptions::default()
            .with_commit_interval(Duration::MAX)
            .with_max_batch(0);
        assert_eq!(extreme.commit_interval, MAX_COMMIT_INTERVAL);
        assert_eq!(extreme.max_batch, 1);
        let usual = BatchOptions::default()
            .with_commit_interval(Duration::ZERO)
            .with_max_batch(usize::MAX);
        assert_eq!(usual.commit_interval, Duration::ZERO);
        assert_eq!(usual.max_batch, usize::MAX);
    }
}
