//! What holds a ready request back besides the retry policy: the rate
//! limit's tokens, and the circuit breaker, which after a run of failures
//! lets one request at a time go (a probe) until one succeeds. A held event
//! stays ready, in order; it is sent when a token is due or the request in
//! flight ends.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{Step, Worker};
use crate::emitter::rate_limit::TokenBucket;

/// Why a request cannot go now.
pub(super) enum Hold {
    /// The circuit is open and a probe is in flight: wait for its end.
    Probing,
    /// No token: one is due after this long.
    Rate(Duration),
}

impl Worker {
    /// Whether the circuit is open: the last `n` attempts failed.
    pub(crate) fn circuit_open(&self) -> bool {
        self.config
            .pacing
            .circuit_breaker
            .is_some_and(|n| self.streak.failures >= n)
    }

    /// Whether a request may go now; takes its token if it may.
    pub(super) fn hold(&mut self) -> Option<Hold> {
        if self.circuit_open() && self.count(|s| matches!(s, Step::InFlight)) > 0 {
            return Some(Hold::Probing);
        }
        let bucket = self.bucket.as_mut()?;
        bucket.take(Instant::now()).err().map(Hold::Rate)
    }

    /// Sends the held events once a token is due (one timer at a time).
    pub(super) fn wake_after(&mut self, wait: Duration, ctx: &mut Context<Self>) {
        if self.pacing_timer.is_some() {
            return;
        }
        let timer = ctx.run_later(wait, |worker, ctx| {
            worker.pacing_timer = None;
            worker.resume(ctx);
        });
        self.pacing_timer = Some(timer);
    }

    /// A fresh bucket when the limit is new or changed (a reconfiguration
    /// keeps the tokens of an unchanged limit).
    pub(super) fn set_rate_limit(&mut self) {
        let limit = self.config.pacing.rate_limit;
        if self.bucket.as_ref().map(TokenBucket::limit) != limit {
            self.bucket = limit.map(|limit| TokenBucket::new(limit, Instant::now()));
        }
    }

    /// Logs and exports the circuit's state when an attempt changed it.
    pub(super) fn circuit_changed(&self, was_open: bool) {
        let open = self.circuit_open();
        if open == was_open {
            return;
        }
        if open {
            tracing::warn!(parent: &self.span, url = %self.config.request.display_url, failures = self.streak.failures, "circuit open: one request at a time until one succeeds");
        } else {
            tracing::info!(parent: &self.span, url = %self.config.request.display_url, "circuit closed: a request succeeded");
        }
        crate::telemetry::circuit(self.reporter.emitter_id(), open);
    }
}
