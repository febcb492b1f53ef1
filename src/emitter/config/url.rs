//! Target URLs: parsed by the `url` crate (WHATWG, as browsers and reqwest
//! parse them), joined to the emitter's base URL, and redacted for display.
//! Whatever `attach` accepts has a display form without credentials, because
//! the display form is derived from the parsed URL, not from the text.

use std::fmt;

use awc::http::Uri;
use url::Url;

use crate::delivery::TargetPolicy;
use crate::error::ConfigError;

/// A URL as the user wrote it; its `Debug` shows it redacted.
#[derive(Clone)]
pub(super) struct RawUrl(pub String);

impl fmt::Debug for RawUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted_url(&self.0))
    }
}

/// A URL as the crate shows it in logs, errors and `Debug`: a user name and
/// password replaced by `***`. Text that does not parse loses everything
/// between its scheme and its last `@`, where credentials would be.
///
/// ```
/// assert_eq!(
///     webhooks_emitter::redacted_url("https://user:pw@hooks.example/in"),
///     "https://***@hooks.example/in"
/// );
/// ```
pub fn redacted_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => display(&url),
        Err(_) => redact_unparsed(raw),
    }
}

/// A URL `attach` accepted: what awc is given, and what logs show.
#[derive(Debug)]
pub(super) struct Target {
    /// The URI awc requests: always `http://host:port/…`, because TLS is done
    /// below awc (see `delivery::connector`).
    pub uri: Uri,
    /// For https targets: TLS is on, and the `Host` header to send
    /// (the original authority, as awc would derive it from an https URI).
    pub https_host: Option<String>,
    pub display: String,
}

/// Parses `raw` (joined to `base` if it is a path) into an http(s) target.
pub(super) fn parse(raw: &str, base: Option<&str>) -> Result<Target, ConfigError> {
    let joined = join(raw, base)?;
    let invalid = |reason: String| ConfigError::InvalidUrl {
        url: redact_unparsed(&joined),
        reason,
    };
    // The URL parser drops tabs and newlines anywhere and spaces at the ends
    // (and escapes the rest): a config with a stray newline or space is a
    // mistake to report, not a URL to rewrite.
    if let Some(c) = joined.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!(
            "contains {:?}: whitespace and control characters are not allowed",
            c
        )));
    }
    let mut url = Url::parse(&joined).map_err(|e| invalid(e.to_string()))?;
    let display = display(&url);
    let invalid = |reason: String| ConfigError::InvalidUrl {
        url: display.clone(),
        reason,
    };
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(invalid(format!("scheme `{other}` is not http or https"))),
    }
    // WHATWG reads `http:///host` as `http://host`; a URL written without a
    // host is a mistake worth reporting, not a guess worth making.
    let after_scheme = joined.split_once("://").map_or("", |(_, rest)| rest);
    if url.host_str().is_none_or(str::is_empty) || after_scheme.starts_with('/') {
        return Err(invalid("no host".into()));
    }
    // Fragments are never sent, nor are credentials (awc ignores them).
    url.set_fragment(None);
    let https_host = (url.scheme() == "https").then(|| match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    });
    let wire = format!(
        "http://{}:{}{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(80),
        &url[url::Position::BeforePath..]
    );
    let uri = wire.parse::<Uri>().map_err(|e| invalid(e.to_string()))?;
    Ok(Target {
        uri,
        https_host,
        display,
    })
}

/// Joins a relative URL (`/api/hooks`) to the emitter's base URL, keeping the
/// base's path as a prefix: `http://h/v1` + `/hooks` = `http://h/v1/hooks`.
fn join(raw: &str, base: Option<&str>) -> Result<String, ConfigError> {
    if !raw.starts_with('/') {
        return Ok(raw.to_owned());
    }
    match base {
        Some(base) => Ok(format!("{}{raw}", base.trim_end_matches('/'))),
        None => Err(ConfigError::InvalidUrl {
            url: redact_unparsed(raw),
            reason: "a relative URL needs a base URL: WebhooksEmitter::builder().base_url(…)"
                .into(),
        }),
    }
}

/// The parsed URL with any user name and password replaced by `***`.
fn display(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Neither call can fail on a URL that has credentials (it has a host).
    let _ = shown.set_password(None);
    let _ = shown.set_username("***");
    shown.to_string()
}

/// A URL that did not parse, for an error message: where its credentials would
/// be cannot be known, so everything between the scheme and the last `@` goes.
fn redact_unparsed(raw: &str) -> String {
    let shown = match raw.rfind('@') {
        None => raw.to_owned(),
        Some(at) => {
            let start = raw.find("://").map_or(0, |i| i + 3);
            let start = start.min(at);
            format!("{}***{}", &raw[..start], &raw[at..])
        }
    };
    shown.escape_debug().to_string()
}

/// Refuses a URL whose host is an IP literal the guard refuses, or a
/// `localhost` name (RFC 6761: always loopback, whatever DNS says). Other
/// host names are checked when they are resolved, on every connection.
pub(super) fn check_literal_target(
    policy: &TargetPolicy,
    target: &Target,
) -> Result<(), ConfigError> {
    let host = target.uri.host().unwrap_or_default();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let name = literal.trim_end_matches('.').to_ascii_lowercase();
    let ip = if name == "localhost" || name.ends_with(".localhost") {
        Some(std::net::IpAddr::from([127, 0, 0, 1]))
    } else {
        literal.parse::<std::net::IpAddr>().ok()
    };
    match ip.and_then(|ip| policy.refuses(ip)) {
        Some(reason) => Err(ConfigError::BlockedTarget {
            url: target.display.clone(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(raw: &str) -> String {
        match parse(raw, None) {
            Ok(target) => target.display,
            Err(ConfigError::InvalidUrl { url, .. }) => url,
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn credentials_never_show() {
        assert_eq!(shown("https://u:p@host/x@y"), "https://***@host/x@y");
        assert_eq!(shown("https://host/path"), "https://host/path");
        assert_eq!(shown("https://user@host/"), "https://***@host/");
        // A password with an unencoded `/`: WHATWG ends the host at the `/`,
        // so the port `pa` is invalid; the error hides the password anyway.
        assert!(parse("http://bob:pa/ss@host/hooks", None).is_err());
        assert_eq!(
            shown("http://bob:pa/ss@host/hooks"),
            "http://***@host/hooks"
        );
        assert_eq!(shown("not a url"), "not a url");
        assert_eq!(
            format!("{:?}", RawUrl("http://u:secret@h/".into())),
            "http://***@h/"
        );
    }

    #[test]
    fn what_is_refused() {
        for bad in [
            "ftp://host/",
            "not a url",
            "http:///nohost",
            "http://host:port/",
            "http://[::1/",
            "/relative",
            // Stray whitespace is refused, not rewritten by the parser.
            "http://host/a\nb",
            "http://host/a\r\nx-injected: 1",
            "http://host/with space",
            " http://host/",
            "http://host/\t",
            "http://host/\u{0}",
        ] {
            assert!(
                matches!(parse(bad, None), Err(ConfigError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        let joined = parse("/hooks", Some("http://h:8080/v1/")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(joined.uri.to_string(), "http://h:8080/v1/hooks");
        assert_eq!(joined.https_host, None);
        let idn =
            parse("https://u:p@bücher.example/a?b=c#frag", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            idn.uri.to_string(),
            "http://xn--bcher-kva.example:443/a?b=c"
        );
        assert_eq!(idn.https_host.as_deref(), Some("xn--bcher-kva.example"));
        let v6 = parse("https://[::1]:8443/", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v6.uri.to_string(), "http://[::1]:8443/");
        assert_eq!(v6.https_host.as_deref(), Some("[::1]:8443"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config())]

        /// Any text: parsed or refused, never a panic; what is shown of it
        /// never holds a password.
        #[test]
        fn any_text_is_parsed_or_refused(raw in ".{0,80}") {
            let _ = parse(&raw, None);
            let _ = parse(&raw, Some("http://base.example/v1"));
        }

        /// URLs with credentials made of any characters: when accepted, the
        /// display form and the URI awc gets carry neither user nor password.
        #[test]
        fn credentials_never_reach_the_display(
            user in "[a-zA-Z0-9]{1,8}",
            password in "[ -~]{1,16}",
            path in "(/[a-z]{0,6}){0,3}",
        ) {
            let marker = format!("zq{password}qz");
            // Upper case: no part of the host or the path can spell it.
            let user = format!("UU{user}UU");
            let raw = format!("http://{user}:{marker}@example.com{path}");
            let shown = match parse(&raw, None) {
                Ok(target) => {
                    prop_assert!(!target.uri.to_string().contains(&marker));
                    target.display
                }
                Err(ConfigError::InvalidUrl { url, .. }) => url,
                Err(other) => return Err(TestCaseError::fail(other.to_string())),
            };
            prop_assert!(!shown.contains(&marker), "{shown}");
            prop_assert!(!shown.contains(&user), "{shown}");
        }
    }
}
