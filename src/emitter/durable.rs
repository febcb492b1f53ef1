//! The handle's durable side: `emit_durable`, and the stored events of ids
//! that are not attached (orphans).

use serde::Serialize;
use tokio::sync::oneshot;

use crate::emitter::handle::{checked_channels, NO_CHANNELS};
use crate::emitter::registry::{DiscardOrphans, Emit, EmitTo, Orphans};
use crate::emitter::WebhooksEmitter;
use crate::error::StoreError;
use crate::error::{ControlError, EmitError};
use crate::model::RequestId;

impl WebhooksEmitter {
    /// Like [`emit`](Self::emit), but returns once the event is on disk at
    /// every emitter attached to it (with a durable store), or queued (in
    /// memory). An event whose `emit_durable` returned `Ok` is delivered at
    /// least once even if the process is killed at any instant afterwards, as
    /// long as it restarts on the same journal and attaches the same emitters.
    ///
    /// Fails with [`EmitError::Store`] if the journal cannot be written; the
    /// event is then still queued in memory and delivered, but not safe from a
    /// crash.
    pub async fn emit_durable<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
        request_id: Option<String>,
    ) -> Result<RequestId, EmitError> {
        self.emit_durable_in(NO_CHANNELS, event, payload, request_id)
            .await
    }

    /// [`emit_durable`](Self::emit_durable) to the emitters on one of
    /// `channels` only, as [`emit_in`](Self::emit_in) chooses them.
    pub async fn emit_durable_in<T: Serialize + ?Sized>(
        &self,
        channels: &[&str],
        event: &str,
        payload: &T,
        request_id: Option<String>,
    ) -> Result<RequestId, EmitError> {
        let (request_id, stored) = self.route_durable(channels, event, payload, request_id)?;
        on_disk(request_id, stored).await
    }

    /// [`emit_durable`](Self::emit_durable) for several events at once: they
    /// are routed in the order given before any is waited on, so they share
    /// the store's group commits, and this returns once every one is on disk
    /// (or queued, in memory). One result per event, in order: an event that
    /// is refused (a bad name, request id or payload) gets its error and the
    /// others go on.
    pub async fn emit_all_durable<'a, T, I>(&self, events: I) -> Vec<Result<RequestId, EmitError>>
    where
        T: Serialize + ?Sized + 'a,
        I: IntoIterator<Item = (&'a str, &'a T, Option<String>)>,
    {
        self.emit_all_durable_in(
            events
                .into_iter()
                .map(|(event, payload, request_id)| (NO_CHANNELS, event, payload, request_id)),
        )
        .await
    }

    /// [`emit_all_durable`](Self::emit_all_durable), each event with its
    /// channels (as [`emit_in`](Self::emit_in)).
    pub async fn emit_all_durable_in<'a, T, I>(
        &self,
        events: I,
    ) -> Vec<Result<RequestId, EmitError>>
    where
        T: Serialize + ?Sized + 'a,
        I: IntoIterator<Item = (&'a [&'a str], &'a str, &'a T, Option<String>)>,
    {
        let routed: Vec<_> = events
            .into_iter()
            .map(|(channels, event, payload, request_id)| {
                self.route_durable(channels, event, payload, request_id)
            })
            .collect();
        let mut results = Vec::with_capacity(routed.len());
        for routed in routed {
            results.push(match routed {
                Ok((request_id, stored)) => on_disk(request_id, stored).await,
                Err(error) => Err(error),
            });
        }
        results
    }

    /// Emits `events` to emitter `id` alone, whatever its names, channels and
    /// tenant: in the order given, after everything emitted before; returns
    /// once every one is on disk (or queued, in memory), with their request
    /// ids. For sending an emitter again what it was sent before (the
    /// server's `recover`). Each event is checked as by
    /// [`emit`](Self::emit); one that is refused refuses them all, and
    /// nothing is sent. [`EmitError::UnknownEmitter`] if `id` is not
    /// attached.
    pub async fn emit_all_durable_to<'a, T, I>(
        &self,
        id: &str,
        events: I,
    ) -> Result<Vec<RequestId>, EmitError>
    where
        T: Serialize + ?Sized + 'a,
        I: IntoIterator<Item = (&'a str, &'a T, Option<String>)>,
    {
        let events = events
            .into_iter()
            .map(|(event, payload, request_id)| self.new_event(event, payload, request_id))
            .collect::<Result<Vec<_>, _>>()?;
        let ids = events.iter().map(|e| e.request_id().clone()).collect();
        let (reply, stored) = oneshot::channel();
        let routed = self
            .inner
            .actors
            .registry
            .send(EmitTo {
                id: id.to_owned(),
                events,
                durable: reply,
            })
            .await
            .map_err(|_| EmitError::NotRunning)?;
        if let Err(ControlError::UnknownEmitter { id }) = routed {
            return Err(EmitError::UnknownEmitter { id });
        }
        on_disk(ids, stored).await
    }

    /// Checks an event and hands it to the registry; its request id, and
    /// what answers once it is stored.
    fn route_durable<T: Serialize + ?Sized>(
        &self,
        channels: &[&str],
        event: &str,
        payload: &T,
        request_id: Option<String>,
    ) -> Result<(RequestId, oneshot::Receiver<Result<(), StoreError>>), EmitError> {
        let channels = checked_channels(channels)?;
        let event = self.new_event(event, payload, request_id)?;
        let request_id = event.request_id().clone();
        let (reply, stored) = oneshot::channel();
        self.route(Emit {
            event,
            durable: Some(reply),
            channels,
            tenant: self.tenant.clone(),
        })?;
        Ok((request_id, stored))
    }

    /// Stored events (and dead letters) of emitter ids that are not attached,
    /// per id, sorted: what a previous run left for emitters this one has not
    /// attached (yet). Empty in memory mode.
    pub async fn orphans(&self) -> Vec<(String, usize)> {
        match self.inner.actors.registry.send(Orphans).await {
            Ok(Ok(found)) => found,
            Ok(Err(error)) => {
                tracing::error!(%error, "could not read the store's orphans");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Deletes the stored events and dead letters of emitter `id`, which must
    /// not be attached; returns how many were deleted (0 in memory mode).
    pub async fn discard_orphans(&self, id: &str) -> Result<usize, ControlError> {
        self.inner
            .actors
            .registry
            .send(DiscardOrphans(id.to_owned()))
            .await
            .map_err(|_| ControlError::NotRunning)?
    }
}

/// A store failure as a control error.
impl From<StoreError> for ControlError {
    fn from(error: StoreError) -> Self {
        ControlError::Store(error)
    }
}

/// `request_id` once `stored` says the event is on disk.
async fn on_disk<T>(
    request_ids: T,
    stored: oneshot::Receiver<Result<(), StoreError>>,
) -> Result<T, EmitError> {
    match stored.await {
        Ok(Ok(())) => Ok(request_ids),
        Ok(Err(error)) => Err(EmitError::Store(error)),
        Err(_) => Err(EmitError::NotRunning),
    }
}
