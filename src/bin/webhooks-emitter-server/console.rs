//! The web console at `/`: one page, its script and its style, embedded in
//! the binary (no build step, no CDN). It signs in with the admin token and
//! calls the same API as everyone else.

use actix_web::{web, HttpResponse};

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
/// What the console and the customer portal share.
const SHARED: &str = include_str!("console/ui.js");
const STYLE: &str = include_str!("console/console.css");
const ICON: &str = include_str!("console/favicon.svg");

/// Only this origin's own files: no inline script, no third party.
const POLICY: &str = "default-src 'self'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("content-security-policy", POLICY))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("cache-control", "no-cache"))
        .body(body)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let files = [
        ("/", "text/html; charset=utf-8", PAGE),
        ("/console.js", "text/javascript; charset=utf-8", SCRIPT),
        ("/ui.js", "text/javascript; charset=utf-8", SHARED),
        ("/console.css", "text/css; charset=utf-8", STYLE),
        ("/favicon.svg", "image/svg+xml", ICON),
    ];
    for (path, content_type, body) in files {
        cfg.route(
            path,
            web::get().to(move || async move { file(content_type, body) }),
        );
    }
}
