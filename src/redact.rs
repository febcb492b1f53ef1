//! One type for every secret the crate holds (signing keys, tokens, passwords,
//! header values): its `Debug` never shows the value, so the structs holding
//! secrets can derive `Debug` and stay safe to log.

use std::fmt;

/// A value whose `Debug` output is `[redacted]`. Read it with
/// [`expose`](Self::expose), at the one place that needs it.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Redacted<T>(T);

impl<T> Redacted<T> {
    pub(crate) fn new(value: T) -> Self {
        Redacted(value)
    }

    /// The secret itself, for signing or sending.
    pub(crate) fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Redacted::new("hunter2".to_string());
        assert_eq!(format!("{secret:?} {secret:#?}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }
}
