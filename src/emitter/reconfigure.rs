//! The handle's `reconfigure`: new events and settings for an attached
//! emitter, its queue kept.

use crate::emitter::config::Config;
use crate::emitter::registry::Reconfigure;
use crate::emitter::WebhooksEmitter;
use crate::error::AttachError;

impl WebhooksEmitter {
    /// Gives the attached emitter `id` new event names and a new `config`,
    /// checked as [`attach_many`](Self::attach_many) checks them. What it holds
    /// stays: queued and started events (with their attempts), dead letters,
    /// paused state, stats. The next attempt uses the new settings; a request
    /// already on the wire finishes under the old ones. A lower dead letter
    /// bound evicts the oldest dead letters; a lower queue bound refuses new
    /// events until the queue is under it.
    ///
    /// Events emitted after this call returns are routed by the new names.
    /// Fails with [`AttachError::UnknownEmitter`] if `id` is not attached; on
    /// any error nothing changed.
    pub async fn reconfigure<I, S>(
        &self,
        id: impl Into<String>,
        events: I,
        config: Config,
    ) -> Result<(), AttachError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let attach = self.prepare(id.into(), events, config)?;
        self.inner
            .actors
            .registry
            .send(Reconfigure(attach))
            .await
            .map_err(|_| AttachError::NotRunning)?
    }
}
