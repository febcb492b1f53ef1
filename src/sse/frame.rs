//! Server-Sent Events wire format: frames that every spec-compliant parser
//! reads back unchanged.

use bytes::Bytes;

/// A field value that would break framing.
pub(crate) fn breaks_framing(value: &str) -> bool {
    value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0'))
}

/// `id: <id>\nevent: <event>\ndata: <line>\n…\n`: one `data:` line per line of
/// `data`, lines split at CRLF, CR or LF, as the spec's parser joins them back
/// with LF. Without an id the client's last id stays where it is. The event
/// name is checked by the callers.
pub(crate) fn encode(id: Option<&str>, event: &str, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + event.len() + 32);
    if let Some(id) = id {
        frame.extend_from_slice(b"id: ");
        frame.extend_from_slice(id.as_bytes());
        frame.push(b'\n');
    }
    frame.extend_from_slice(b"event: ");
    frame.extend_from_slice(event.as_bytes());
    frame.push(b'\n');
    push_data(&mut frame, data);
    frame.push(b'\n');
    Bytes::from(frame)
}

fn push_data(frame: &mut Vec<u8>, data: &[u8]) {
    let mut rest = data;
    loop {
        let end = rest
            .iter()
            .position(|b| matches!(b, b'\r' | b'\n'))
            .unwrap_or(rest.len());
        frame.extend_from_slice(b"data: ");
        frame.extend_from_slice(&rest[..end]);
        frame.push(b'\n');
        if end == rest.len() {
            return;
        }
        let skip = if rest[end..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
}

/// `retry: <ms>\n\n`: the client's reconnection delay.
pub(crate) fn retry(millis: u128) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

/// A comment line, ignored by parsers; keeps proxies and the connection alive.
pub(crate) const HEARTBEAT: &[u8] = b": keep-alive\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_line_ending() {
        let frame = encode(Some("7"), "msg", b"a\r\nb\rc\nd");
        assert_eq!(
            &frame[..],
            b"id: 7\nevent: msg\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(
            &encode(Some("1"), "e", b"")[..],
            b"id: 1\nevent: e\ndata: \n\n"
        );
        assert_eq!(
            &encode(Some("1"), "e", b"x\n")[..],
            b"id: 1\nevent: e\ndata: x\ndata: \n\n"
        );
    }
}
