//! The `Origin` check of WebSocket handshakes. Browsers apply no CORS to
//! WebSocket and send their cookies with the handshake, so a page on any
//! site could otherwise open a connection in its visitor's name.

use actix_web::http::header::ORIGIN;
use actix_web::HttpRequest;

/// Whether `request` may open a WebSocket connection: always without an
/// allow-list; with one, when its `Origin` is listed or absent (clients
/// other than browsers send none).
pub(super) fn allowed(allow: Option<&[String]>, request: &HttpRequest) -> bool {
    let Some(allow) = allow else {
        return true;
    };
    let mut origins = request.headers().get_all(ORIGIN);
    match (origins.next(), origins.next()) {
        (None, _) => true,
        // Two Origin headers: no browser sends that.
        (Some(_), Some(_)) => false,
        (Some(origin), None) => origin
            .to_str()
            .is_ok_and(|origin| allow.iter().any(|a| a.eq_ignore_ascii_case(origin))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn listed_or_absent_origins_pass() {
        let allow = vec!["https://app.example".to_owned()];
        let with = |origin: &str| {
            TestRequest::default()
                .insert_header((ORIGIN, origin))
                .to_http_request()
        };
        assert!(allowed(None, &with("https://evil.example")));
        assert!(allowed(Some(&allow), &with("https://app.example")));
        assert!(allowed(Some(&allow), &with("HTTPS://APP.EXAMPLE")));
        assert!(allowed(
            Some(&allow),
            &TestRequest::default().to_http_request()
        ));
        for refused in [
            "https://evil.example",
            "null",
            "https://app.example:8443",
            "http://app.example",
        ] {
            assert!(!allowed(Some(&allow), &with(refused)), "{refused}");
        }
        let twice = TestRequest::default()
            .append_header((ORIGIN, "https://app.example"))
            .append_header((ORIGIN, "https://app.example"))
            .to_http_request();
        assert!(!allowed(Some(&allow), &twice));
    }
}
