//! The nouns every layer shares: an emitted [`Event`] and its [`RequestId`]
//! (with the event-name rules), what an emitter is attached to (a name or a
//! pattern of names), a [`DeadLetter`] and why it is one, and the
//! [`Failure`] of one attempt. The bottom of the crate: it imports only
//! `error`, so that stores, delivery, live updates and telemetry can all
//! use it without knowing the emitter.

pub(crate) mod dead_letter;
pub(crate) mod event;
pub(crate) mod failure;
pub(crate) mod subscription;

pub use dead_letter::{DeadLetter, DeadLetterReason};
pub(crate) use event::validate_event_name;
pub use event::{Event, RequestId, MAX_REQUEST_ID_LEN};
pub use failure::Failure;
pub use subscription::{channels_admit, covers as subscription_covers};
