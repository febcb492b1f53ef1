//! What an emitter is attached to: an event name, or a pattern of names;
//! and the channels that narrow what reaches it.
//! `*` stands for every event; `order.*` for every event whose name starts
//! with `order.` (`order.created`, `order.line.added`; not `order` itself).
//! No other use of `*` is a pattern, and none is allowed: an emitted name
//! never holds `*`, so a subscription that looked like a pattern but matched
//! only itself would be a silent mistake.

use std::sync::Arc;

use crate::error::EventNameError;

use super::event::header_safe;

/// The subscription to every event.
const EVERY: &str = "*";
/// How a prefix pattern ends.
const ANY_AFTER: &str = ".*";

/// Checks a subscription: an event name (1 to 256 visible ASCII
/// characters, no `*`), `*`, or `prefix.*` with such a prefix.
pub(crate) fn validate_subscription(subscription: &str) -> Result<(), EventNameError> {
    let refused = |reason| EventNameError {
        name: subscription.escape_debug().to_string(),
        reason,
    };
    header_safe(subscription).map_err(refused)?;
    if !subscription.contains('*') || subscription == EVERY {
        return Ok(());
    }
    match subscription.strip_suffix(ANY_AFTER) {
        Some(prefix) if !prefix.is_empty() && !prefix.contains('*') => Ok(()),
        _ => Err(refused(
            "`*` may stand alone (every event) or end a name after a dot (`order.*`), nowhere else",
        )),
    }
}

/// Whether `subscription` is a pattern rather than one name.
pub(crate) fn is_pattern(subscription: &str) -> bool {
    subscription.contains('*')
}

/// Whether an emitter attached to `subscription` (an event name, `*`, or
/// `prefix.*`) gets the event named `name`.
///
/// ```
/// use webhooks_emitter::subscription_covers;
/// assert!(subscription_covers("order.*", "order.created"));
/// assert!(!subscription_covers("order.*", "order"));
/// assert!(subscription_covers("*", "user.deleted"));
/// assert!(subscription_covers("user.deleted", "user.deleted"));
/// ```
pub fn covers(subscription: &str, name: &str) -> bool {
    if subscription == EVERY {
        return true;
    }
    match subscription.strip_suffix('*') {
        // `order.` must be followed by at least one character.
        Some(prefix) => name.len() > prefix.len() && name.starts_with(prefix),
        None => subscription == name,
    }
}

/// Most channels on one emitter or one event.
pub const MAX_CHANNELS: usize = 10;
/// Longest channel name, in bytes.
const MAX_CHANNEL_LEN: usize = 128;

/// A set of channels: 0 to [`MAX_CHANNELS`] names of 1 to 128 letters,
/// digits, `.`, `-`, `_` or `:`, repeats dropped. On the refusal, the
/// channel (escaped) and what is wrong with it.
pub(crate) fn validate_channels<I, S>(
    channels: I,
) -> Result<Arc<[Arc<str>]>, (String, &'static str)>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut valid: Vec<Arc<str>> = Vec::new();
    for channel in channels {
        let channel = channel.as_ref();
        let refused = |reason| (channel.escape_debug().to_string(), reason);
        if channel.is_empty() || channel.len() > MAX_CHANNEL_LEN {
            return Err(refused("a channel has 1 to 128 bytes"));
        }
        if !label_safe(channel) {
            return Err(refused(
                "a channel has only letters, digits, `.`, `-`, `_` and `:`",
            ));
        }
        if !valid.iter().any(|v| &**v == channel) {
            if valid.len() == MAX_CHANNELS {
                return Err(refused("at most 10 channels"));
            }
            valid.push(Arc::from(channel));
        }
    }
    Ok(valid.into())
}

/// Letters, digits, `.`, `-`, `_` and `:` only: what channels and tenants
/// are made of (safe in a URL path, a metrics label and a key).
fn label_safe(label: &str) -> bool {
    label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

/// Longest tenant name, in bytes.
const MAX_TENANT_LEN: usize = 128;

/// Checks a tenant name: 1 to 128 letters, digits, `.`, `-`, `_` or `:`. On
/// the refusal, the name (escaped) and what is wrong with it.
pub(crate) fn validate_tenant(tenant: &str) -> Result<Arc<str>, (String, &'static str)> {
    let refused = |reason| (tenant.escape_debug().to_string(), reason);
    if tenant.is_empty() || tenant.len() > MAX_TENANT_LEN {
        return Err(refused("a tenant has 1 to 128 bytes"));
    }
    if !label_safe(tenant) {
        return Err(refused(
            "a tenant has only letters, digits, `.`, `-`, `_` and `:`",
        ));
    }
    Ok(Arc::from(tenant))
}

/// Whether an emitter on `subscribed` channels gets an event sent to
/// `sent` (once its name reaches it): an event without channels reaches
/// every emitter its name reaches; one with channels only those that share
/// one of them.
///
/// ```
/// use webhooks_emitter::channels_admit;
/// assert!(channels_admit(&["eu"], &[] as &[&str]));
/// assert!(channels_admit(&["eu", "us"], &["us"]));
/// assert!(!channels_admit(&[] as &[&str], &["eu"]));
/// ```
pub fn channels_admit<A: AsRef<str>, B: AsRef<str>>(subscribed: &[A], sent: &[B]) -> bool {
    sent.is_empty()
        || sent
            .iter()
            .any(|c| subscribed.iter().any(|s| s.as_ref() == c.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patterns_and_names_that_are_refused() {
        for good in ["order.created", "*", "order.*", "a.b.*", "v1:order.*"] {
            assert!(validate_subscription(good).is_ok(), "{good}");
        }
        for bad in [
            "order*",
            "*.created",
            "a.*.b",
            "**",
            ".*",
            "*.*",
            "order.**",
            "",
            "a b.*",
        ] {
            assert!(validate_subscription(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn what_a_pattern_covers() {
        assert!(covers("*", "anything"));
        assert!(covers("order.*", "order.created"));
        assert!(covers("order.*", "order.line.added"));
        assert!(
            !covers("order.*", "order."),
            "something must follow the dot"
        );
        assert!(!covers("order.*", "order"));
        assert!(!covers("order.*", "orders.created"));
        assert!(!covers("order.*", "x.order.created"));
    }

    #[test]
    fn channels_are_checked_and_deduplicated() {
        let ok = validate_channels(["eu", "tenant:42", "eu"]).map_err(|e| e.1);
        assert_eq!(ok.map(|c| c.len()), Ok(2));
        for bad in ["", "a b", "é", "a/b", &"x".repeat(129)] {
            assert!(validate_channels([bad]).is_err(), "{bad:?}");
        }
        let eleven: Vec<String> = (0..11).map(|n| format!("c{n}")).collect();
        assert!(validate_channels(&eleven).is_err());
        let none: [&str; 0] = [];
        assert_eq!(validate_channels(none).map(|c| c.len()), Ok(0));
    }

    #[test]
    fn tenants_are_short_safe_labels() {
        for good in ["acme", "tenant:42", "a.b-c_d", &"t".repeat(128)] {
            assert_eq!(validate_tenant(good).map(|t| t.len()), Ok(good.len()));
        }
        for bad in ["", "a~b", "a/b", "a b", "é", &"t".repeat(129)] {
            assert!(validate_tenant(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_event_with_channels_reaches_only_emitters_that_share_one() {
        let eu: Vec<Arc<str>> = vec![Arc::from("eu")];
        let us: Vec<Arc<str>> = vec![Arc::from("us")];
        let none: &[Arc<str>] = &[];
        assert!(channels_admit(&eu, none));
        assert!(channels_admit(none, none));
        assert!(channels_admit(&eu, &eu));
        assert!(!channels_admit(&eu, &us));
        assert!(!channels_admit(none, &eu), "an emitter without channels");
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any text: accepted or refused, never a panic; what is accepted
        /// and holds `*` is `*` or ends in `.*` with no other `*`.
        #[test]
        fn any_text_is_a_subscription_or_refused(text in "[a-z.*]{0,12}|\\PC{0,20}") {
            if validate_subscription(&text).is_ok() && text.contains('*') {
                prop_assert!(text == "*" || (text.ends_with(".*") && text.matches('*').count() == 1 && text.len() > 2));
            }
        }

        /// A prefix pattern covers exactly the names that extend `prefix.`.
        #[test]
        fn a_prefix_pattern_covers_what_extends_it(prefix in "[a-z]{1,5}", rest in "[a-z.]{0,6}") {
            let name = format!("{prefix}.{rest}");
            let pattern = format!("{prefix}.*");
            prop_assert_eq!(covers(&pattern, &name), !rest.is_empty());
            prop_assert!(covers("*", &name));
        }
    }
}
