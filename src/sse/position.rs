//! Ids of multi-topic streams: the stream's position in every topic, written
//! `tickets:42,comments:7`, so that a browser's automatic `Last-Event-ID`
//! resumes all of them. Topic names are percent-encoded where they would
//! break the format (`,`, `:`, `%`).

use std::collections::HashMap;

/// Writes `topic:position` pairs.
pub(crate) fn format<'a>(positions: impl Iterator<Item = (&'a str, u64)>) -> String {
    let mut out = String::new();
    for (topic, position) in positions {
        if !out.is_empty() {
            out.push(',');
        }
        for c in topic.chars() {
            match c {
                ',' => out.push_str("%2C"),
                ':' => out.push_str("%3A"),
                '%' => out.push_str("%25"),
                other => out.push(other),
            }
        }
        out.push(':');
        out.push_str(&position.to_string());
    }
    out
}

/// Reads `topic:position` pairs; `None` if malformed.
pub(crate) fn parse(text: &str) -> Option<HashMap<String, u64>> {
    let mut positions = HashMap::new();
    for pair in text.split(',') {
        let (topic, position) = pair.rsplit_once(':')?;
        let topic = decode(topic)?;
        if topic.is_empty() {
            return None;
        }
        positions.insert(topic, position.parse().ok()?);
    }
    Some(positions)
}

fn decode(encoded: &str) -> Option<String> {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at + 1..at + 3)?;
        out.push(match escape {
            "2C" | "2c" => ',',
            "3A" | "3a" => ':',
            "25" => '%',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_refuses_nonsense() {
        let text = format([("tickets", 42), ("a:b,c%", 7)].into_iter());
        assert_eq!(text, "tickets:42,a%3Ab%2Cc%25:7");
        let parsed = parse(&text).unwrap_or_default();
        assert_eq!(parsed.get("tickets"), Some(&42));
        assert_eq!(parsed.get("a:b,c%"), Some(&7));
        for bad in [
            "",
            "tickets",
            "tickets:",
            "tickets:x",
            ":5",
            "a%zz:1",
            "a:-1",
            "a:1,,b:2",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn what_format_writes_parse_reads(
            topics in proptest::collection::hash_map("[a-z0-9:,%. é]{1,12}", any::<u64>(), 1..5),
        ) {
            let text = format(topics.iter().map(|(t, p)| (t.as_str(), *p)));
            prop_assert_eq!(parse(&text), Some(topics));
        }
    }
}
