//! The web console at `/`: one page, its script and its style, embedded in
//! the binary (no build step, no CDN). It signs in with the admin token and
//! calls the same API as everyone else.

use actix_web::{web, HttpResponse};

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

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
    cfg.route(
        "/",
        web::get().to(|| async { file("text/html; charset=utf-8", PAGE) }),
    )
    .route(
        "/console.js",
        web::get().to(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
    )
    .route(
        "/console.css",
        web::get().to(|| async { file("text/css; charset=utf-8", STYLE) }),
    );
}
