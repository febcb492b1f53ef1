//! Journal helpers: a scratch directory, and opening a journal again once the
//! previous process's (or emitter's) writer has let it go.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use webhooks_emitter::{Journal, StoreError, WebhooksEmitter};

use super::DEADLINE;

/// A directory of its own under the system's temp dir, removed on drop.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "webhooks-emitter-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let path = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        ScratchDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
