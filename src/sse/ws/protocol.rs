//! What a WebSocket client may send: `{"op":"join","topic":…,"last_id":…}`,
//! `{"op":"leave","topic":…}`, `{"op":"ping"}`.

use serde::Deserialize;

/// One client message.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum Request {
    /// Receive `topic`'s events; with `last_id`, the ones after it first.
    Join {
        topic: String,
        #[serde(default)]
        last_id: Option<u64>,
    },
    /// Stop receiving `topic`'s events.
    Leave { topic: String },
    /// Answered `{"op":"pong"}`.
    Ping {},
}

/// A client message, or why it is not one (for the `error` frame).
pub(super) fn parse(text: &str) -> Result<Request, String> {
    serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            format!("not JSON: {e}")
        } else {
            format!("not a request (`join`, `leave` or `ping`): {e}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_and_refusals() {
        assert_eq!(
            parse(r#"{"op":"join","topic":"tickets","last_id":41}"#),
            Ok(Request::Join {
                topic: "tickets".into(),
                last_id: Some(41)
            })
        );
        assert_eq!(
            parse(r#"{"op":"join","topic":"t"}"#),
            Ok(Request::Join {
                topic: "t".into(),
                last_id: None
            })
        );
        assert_eq!(parse(r#"{"op":"ping"}"#), Ok(Request::Ping {}));
        for (bad, why) in [
            ("not json", "not JSON"),
            (r#"{"op":"dance"}"#, "not a request"),
            (r#"{"op":"join"}"#, "not a request"),
            (r#"{"op":"join","topic":"t","last_id":-1}"#, "not a request"),
            (r#"{"op":"leave","topic":"t","extra":1}"#, "not a request"),
            (r#"{"op":"ping","extra":1}"#, "not a request"),
        ] {
            let error = parse(bad).err().unwrap_or_default();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn any_text_is_a_request_or_a_reason(text in ".{0,120}") {
            let _ = parse(&text);
        }
    }
}
