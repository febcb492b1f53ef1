//! How things are named: the rule every id in a path follows, and the
//! emitter's id of an application's endpoint.

/// The application of the routes without `/apps/{app}`.
pub const DEFAULT_APP: &str = "default";
/// Between an application and an endpoint id in the emitter's id: never in
/// an id, so `acme~crm` is endpoint `crm` of `acme` and nothing else.
const SEPARATOR: char = '~';
/// The emitter's id of endpoint `id` of application `app`: the id itself in
/// `default` (as before applications, so stored queues keep their names),
/// `app~id` elsewhere.
pub fn emitter_id(app: &str, id: &str) -> String {
    if app == DEFAULT_APP {
        id.to_owned()
    } else {
        format!("{app}{SEPARATOR}{id}")
    }
}

/// The endpoint id in an emitter id (what follows its application's).
pub fn endpoint_of(emitter_id: &str) -> &str {
    emitter_id
        .split_once(SEPARATOR)
        .map_or(emitter_id, |(_, id)| id)
}

/// Checks an id: it is a path segment and a metrics label.
pub fn check_id(kind: &str, id: &str) -> Result<(), String> {
    let valid = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        // `.` and `..` are path segments, not names: a URL with them is
        // rewritten by clients and proxies before it reaches the route.
        && id != "."
        && id != "..";
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} id `{}`: use 1 to 128 letters, digits, `-`, `_` or `.`, not `.` or `..`",
            id.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dot_segments_are_refused_other_dotted_ids_are_not() {
        assert!(check_id("endpoint", ".").is_err());
        assert!(check_id("endpoint", "..").is_err());
        assert!(check_id("endpoint", "...").is_ok());
        assert!(check_id("endpoint", ".hidden").is_ok());
        assert!(check_id("endpoint", "v1.2").is_ok());
    }

    #[test]
    fn the_default_application_keeps_bare_ids() {
        assert_eq!(emitter_id(DEFAULT_APP, "crm"), "crm");
        assert_eq!(emitter_id("acme", "crm"), "acme~crm");
        assert_eq!(endpoint_of("crm"), "crm");
        assert_eq!(endpoint_of("acme~crm"), "crm");
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn ids_are_accepted_exactly_when_they_are_short_safe_ascii(id in "\\PC{0,140}") {
            let safe = (1..=128).contains(&id.len())
                && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && id != "."
                && id != "..";
            prop_assert_eq!(check_id("endpoint", &id).is_ok(), safe);
        }

        /// Two (application, endpoint) pairs of valid ids never share an
        /// emitter id, and the endpoint id is read back from it.
        #[test]
        fn emitter_ids_are_one_to_one(
            a in "[A-Za-z0-9._-]{1,8}", b in "[A-Za-z0-9._-]{1,8}",
            x in "[A-Za-z0-9._-]{1,8}", y in "[A-Za-z0-9._-]{1,8}",
        ) {
            let key = emitter_id(&a, &x);
            prop_assert_eq!(endpoint_of(&key), x.as_str());
            if (a.as_str(), x.as_str()) != (b.as_str(), y.as_str()) {
                prop_assert_ne!(emitter_id(&a, &x), emitter_id(&b, &y));
            }
        }
    }
}
