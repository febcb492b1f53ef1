//! The customer portal at `/portal`: one page, its script and its style,
//! embedded in the binary (no build step, no CDN), as the console is. It is
//! opened with a portal link (`#wpl_…` in the address: a fragment, never
//! sent to a server or a log) and calls the same API as everyone else with
//! it, as a key bound to one application. No admin token reaches the
//! browser. It may be shown in a frame by the origins
//! `--portal-frame-ancestors` names.

use actix_web::{web, HttpResponse};

const PAGE: &str = include_str!("portal/index.html");
const SCRIPT: &str = include_str!("portal/portal.js");
const STYLE: &str = include_str!("portal/portal.css");

/// Mounts the portal's files, framed only by `frame_ancestors` (checked by
/// the flag's parser: nothing in it can end the directive).
pub fn configure(cfg: &mut web::ServiceConfig, frame_ancestors: &str) {
    let policy = format!("default-src 'self'; frame-ancestors {frame_ancestors}");
    let files = [
        ("/portal", "text/html; charset=utf-8", PAGE),
        ("/portal.js", "text/javascript; charset=utf-8", SCRIPT),
        ("/portal.css", "text/css; charset=utf-8", STYLE),
    ];
    for (path, content_type, body) in files {
        let policy = policy.clone();
        cfg.route(
            path,
            web::get().to(move || {
                let policy = policy.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type(content_type)
                        .insert_header(("content-security-policy", policy))
                        .insert_header(("x-content-type-options", "nosniff"))
                        .insert_header(("referrer-policy", "no-referrer"))
                        .insert_header(("cache-control", "no-cache"))
                        .body(body)
                }
            }),
        );
    }
}
