//! Typed errors, one enum per concern. None of them ever carries a secret or a
//! header value: they name the setting that is wrong and why.

use std::time::Duration;

use thiserror::Error;

/// Why a [`Config`](crate::Config) was refused by `attach`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A channel of [`Config::channels`](crate::Config::channels) is empty,
    /// over 128 bytes, has a character other than letters, digits, `.`, `-`,
    /// `_` and `:`, or there are more than 10.
    #[error("invalid channel `{channel}`: {reason}")]
    InvalidChannel {
        /// The channel, with control characters escaped.
        channel: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tenant is empty, over 128 bytes, or has a character other than
    /// letters, digits, `.`, `-`, `_` and `:`.
    #[error("invalid tenant `{tenant}`: {reason}")]
    InvalidTenant {
        /// The tenant, with control characters escaped.
        tenant: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URL cannot be parsed, is not http/https, or has no host.
    #[error("invalid url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL with any credentials replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An additional header's name is not a valid HTTP header name.
    #[error("invalid header name `{name}`: {reason}")]
    InvalidHeaderName {
        /// The offending name (names are not secret).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An additional header's value contains CR, LF or another byte HTTP forbids.
    /// The value itself is not shown: it is often a credential.
    #[error("invalid value for header `{name}`: only visible ASCII, space and tab are allowed (value not shown)")]
    InvalidHeaderValue {
        /// The header whose value was refused.
        name: String,
    },
    /// An additional header would replace one the emitter sets itself.
    #[error("header `{name}` is set by the emitter and cannot be overridden")]
    ReservedHeader {
        /// The reserved header name.
        name: String,
    },
    /// The header identifier does not make valid header names.
    #[error("invalid header identifier `{identifier}`: use letters, digits and `-` only")]
    InvalidHeaderIdentifier {
        /// The identifier that was refused.
        identifier: String,
    },
    /// A duration or count that must be positive is zero.
    #[error("`{setting}` must be greater than zero")]
    Zero {
        /// The setting's name, as the builder method spells it.
        setting: &'static str,
    },
    /// A number is outside the range the setting allows.
    #[error("`{setting}` out of range: {detail}")]
    OutOfRange {
        /// The setting's name.
        setting: &'static str,
        /// The value and the bound it passes.
        detail: String,
    },
    /// The backoff limit is smaller than the first delay.
    #[error("backoff limit ({limit:?}) must not be smaller than its start ({start:?})")]
    BackoffLimitBelowStart {
        /// First delay.
        start: Duration,
        /// Largest delay.
        limit: Duration,
    },
    /// The secret is empty, which would sign every request with a guessable key.
    #[error("secret must not be empty")]
    EmptySecret,
    /// A Standard Webhooks secret is not `whsec_` followed by a base64 key of
    /// at least 16 bytes. The secret itself is not shown.
    #[error("invalid Standard Webhooks secret: {reason} (secret not shown)")]
    InvalidStandardSecret {
        /// What is wrong with it.
        reason: String,
    },
    /// A bearer token or basic-auth credential contains a byte HTTP forbids in a
    /// header (CR, LF, other control characters), or the user name has a `:`.
    #[error("invalid {what}: {reason} (value not shown)")]
    InvalidCredentials {
        /// `bearer token` or `basic auth`.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An SSRF guard's allowed subnet is not CIDR notation.
    #[error("invalid subnet `{subnet}` in the SSRF guard: expected CIDR, e.g. 10.0.0.0/8")]
    InvalidSubnet {
        /// The subnet as given.
        subnet: String,
    },
    /// The SSRF guard refuses the URL's IP address.
    #[error("target `{url}` refused by the SSRF guard: {reason}")]
    BlockedTarget {
        /// The URL with any credentials replaced by `***`.
        url: String,
        /// The category of the refused address.
        reason: &'static str,
    },
    /// `Config::from_env` found a required variable unset or not Unicode.
    #[error("environment variable `{var}` is not set")]
    MissingEnv {
        /// The variable's name.
        var: &'static str,
    },
    /// The TLS client configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// Why `attach`, `attach_many` or `reconfigure` refused an emitter.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachError {
    /// An emitter with this id is already attached; detach it first.
    #[error("an emitter with id `{id}` is already attached")]
    AlreadyExists {
        /// The duplicate id.
        id: String,
    },
    /// The emitter id is empty.
    #[error("emitter id must not be empty")]
    EmptyId,
    /// `reconfigure` was given an id that is not attached.
    #[error("no emitter with id `{id}` is attached")]
    UnknownEmitter {
        /// The id that was asked for.
        id: String,
    },
    /// `attach_many` was given no event names.
    #[error("emitter `{id}` must be attached to at least one event")]
    NoEvents {
        /// The emitter's id.
        id: String,
    },
    /// An event name is empty or not visible ASCII.
    #[error(transparent)]
    InvalidEventName(#[from] EventNameError),
    /// The configuration is invalid.
    #[error("emitter `{id}`: {source}")]
    InvalidConfig {
        /// The emitter's id.
        id: String,
        /// What is wrong.
        source: ConfigError,
    },
    /// `shutdown` was called; no emitter can be attached any more.
    #[error("the emitter is shut down")]
    ShutDown,
    /// The actor system behind the handle has stopped.
    #[error("the emitter's actor system is not running")]
    NotRunning,
}

/// An event name that cannot travel in a header.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid event name `{name}`: {reason}")]
pub struct EventNameError {
    /// The name, with control characters escaped.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Why `emit` refused an event. A refused event was sent nowhere.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmitError {
    /// The event name is empty or not visible ASCII.
    #[error(transparent)]
    InvalidEventName(#[from] EventNameError),
    /// The caller's request id is empty, too long, or not visible ASCII.
    #[error("invalid request id: {reason}")]
    InvalidRequestId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A channel is empty, over 128 bytes, has a character other than
    /// letters, digits, `.`, `-`, `_` and `:`, or there are more than 10.
    #[error("invalid channel `{channel}`: {reason}")]
    InvalidChannel {
        /// The channel, with control characters escaped.
        channel: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tenant is empty, over 128 bytes, or has a character other than
    /// letters, digits, `.`, `-`, `_` and `:`.
    #[error("invalid tenant `{tenant}`: {reason}")]
    InvalidTenant {
        /// The tenant, with control characters escaped.
        tenant: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `emit_all_durable_to` was given an emitter id that is not attached.
    #[error("no emitter with id `{id}` is attached")]
    UnknownEmitter {
        /// The id that was asked for.
        id: String,
    },
    /// An SSE topic name is empty, too long, `*`, or has CR, LF, NUL or `/`.
    #[error("invalid SSE topic `{topic}`: {reason}")]
    InvalidTopic {
        /// The topic, with control characters escaped.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The payload could not be serialized to JSON.
    #[error("payload could not be serialized to JSON: {0}")]
    Serialize(String),
    /// The serialized payload is larger than the configured limit.
    #[error("payload is {size} bytes, above the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Size of the serialized payload.
        size: usize,
        /// The limit set by `WebhooksEmitterBuilder::max_payload_bytes`.
        limit: usize,
    },
    /// `shutdown` was called; new events are refused.
    #[error("the emitter is shutting down; event refused")]
    ShuttingDown,
    /// The durable store cannot be written: `emit_durable` could not put the
    /// event on disk (it is still queued in memory), or `emit` refuses new
    /// events until the store recovers.
    #[cfg(feature = "emitter")]
    #[error("the store cannot be written: {0}")]
    Store(StoreError),
    /// The actor system behind the handle has stopped.
    #[error("the emitter's actor system is not running")]
    NotRunning,
}

/// Why a control call (`pause`, `restart`, `detach`, dead-letter calls) failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlError {
    /// No emitter with this id is attached.
    #[error("no emitter with id `{id}` is attached")]
    UnknownEmitter {
        /// The id that was asked for.
        id: String,
    },
    /// The emitter has no dead letter with this id.
    #[error("emitter `{id}` has no dead letter {dead_letter}")]
    UnknownDeadLetter {
        /// The emitter's id.
        id: String,
        /// The dead letter id that was asked for.
        dead_letter: u64,
    },
    /// The emitter's queue has no room for the dead letters asked for;
    /// nothing was changed.
    #[error("emitter `{id}` has a full queue; dead letters kept")]
    QueueFull {
        /// The emitter's id.
        id: String,
    },
    /// `discard_orphans` was given an id that is attached: detach it instead.
    #[error("emitter `{id}` is attached; detach it to remove its stored events")]
    Attached {
        /// The emitter's id.
        id: String,
    },
    /// The durable store could not answer.
    #[cfg(feature = "emitter")]
    #[error("the store failed: {0}")]
    Store(StoreError),
    /// The emitter's actor crashed while answering (a bug; see the logs). It
    /// is restarted: the call can be made again.
    #[error("emitter `{id}` crashed while answering; it is being restarted")]
    Crashed {
        /// The emitter's id.
        id: String,
    },
    /// The actor system behind the handle has stopped.
    #[error("the emitter's actor system is not running")]
    NotRunning,
}

/// A store failure, with a message that says what to do about it. It carries
/// text rather than the underlying error so that it can be cloned to every
/// caller waiting on the same commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process (or another `Journal` in this one) has the file open.
    #[error("journal `{path}` is already open by another process or handle; one process owns a journal at a time")]
    Locked {
        /// The journal's path.
        path: String,
    },
    /// The file is not a journal (not a redb database, or another program's).
    #[error("`{path}` is not a webhooks-emitter journal: {detail}")]
    NotAJournal {
        /// The path given.
        path: String,
        /// What was found instead.
        detail: String,
    },
    /// The file is a journal but damaged (truncated, bad checksums).
    #[error("journal `{path}` is corrupt: {detail}; restore it from a backup or move it aside")]
    Corrupt {
        /// The journal's path.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The process may not read or write the file or its directory.
    #[error("permission denied on `{path}`: {detail}")]
    PermissionDenied {
        /// The path concerned.
        path: String,
        /// The system's message.
        detail: String,
    },
    /// The disk (or quota) is full.
    #[error("disk full while writing the journal: {detail}")]
    DiskFull {
        /// The system's message.
        detail: String,
    },
    /// Another input/output error.
    #[error("journal I/O error: {detail}")]
    Io {
        /// The system's message.
        detail: String,
    },
    /// The journal's writer has stopped (the journal was closed).
    #[error("the journal is closed")]
    Closed,
    /// The database connection URL is not valid (the URL is not repeated:
    /// it may hold a password).
    #[error("invalid database URL: {detail}")]
    InvalidDatabaseUrl {
        /// What is wrong with it.
        detail: String,
    },
    /// The database cannot be reached (refused, unreachable, timed out, TLS
    /// failed, or it went away); the store retries and reconnects by itself.
    #[error("database unavailable: {detail}")]
    Unavailable {
        /// The driver's message.
        detail: String,
    },
    /// The database refused the user or password.
    #[error("database authentication failed: {detail}")]
    Authentication {
        /// The server's message.
        detail: String,
    },
    /// The store's schema could not be created or upgraded.
    #[error("database migration failed: {detail}")]
    Migration {
        /// The migrator's message.
        detail: String,
    },
    /// A store setting is not valid.
    #[error("invalid store setting: {detail}")]
    InvalidSetting {
        /// Which, and why.
        detail: String,
    },
    /// Another live node uses this node name (it was seen within the lease
    /// expiry): two processes with one name would both think they hold its
    /// leases. Pick another name, or wait for the other process to stop.
    #[error("node name `{name}` is in use by a live node; each node needs a name of its own")]
    NodeNameInUse {
        /// The name asked for.
        name: String,
    },
    /// Another database error (a query failed).
    #[error("database error: {detail}")]
    Database {
        /// The server's message.
        detail: String,
    },
}
