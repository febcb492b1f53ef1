//! Journal helpers: opening a journal again once the previous process's (or
//! emitter's) writer has let it go.

use std::path::{Path, PathBuf};
use std::time::Duration;

use webhooks_emitter::{Journal, StoreError, WebhooksEmitter};

use super::DEADLINE;

/// Opens the journal at `path`, waiting while a previous owner still holds
/// it (its writer thread lets go once every handle is dropped).
pub fn reopen(path: &Path) -> Journal {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        match Journal::open(path) {
            Ok(journal) => return journal,
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10)); // polling the file lock
            }
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
    }
}

/// An emitter on its own thread, on the journal at `path`.
pub fn durable_emitter(path: &Path) -> WebhooksEmitter {
    WebhooksEmitter::builder()
        .store(reopen(path))
        .start_in_background()
}
