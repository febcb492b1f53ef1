//! What a request that no route takes gets: 405 with `Allow` when its path
//! is a route's and only the method is wrong (RFC 9110), 404 otherwise; both
//! problem+json. The routes are read off the OpenAPI document, so this
//! cannot disagree with what is served.

use actix_web::http::header::ALLOW;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use utoipa::openapi::OpenApi;

use crate::problem::Problem;

/// Each documented path, as segments (`None` for a `{parameter}`), with the
/// methods it takes (`Allow` header value).
pub struct KnownPaths(Vec<(Vec<Option<String>>, String)>);

impl KnownPaths {
    pub fn of(api: &OpenApi) -> Self {
        let paths = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods: Vec<&str> = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, present)| present.then_some(name))
                .collect();
                (segments, methods.join(", "))
            })
            .collect();
        KnownPaths(paths)
    }

    /// The methods `path` takes, if it is a documented route's path.
    fn allowed(&self, path: &str) -> Option<&str> {
        let wanted: Vec<&str> = path.split('/').collect();
        self.0.iter().find_map(|(segments, allow)| {
            let same = segments.len() == wanted.len()
                && segments
                    .iter()
                    .zip(&wanted)
                    .all(|(s, w)| s.as_deref().map_or(!w.is_empty(), |s| s == *w));
            same.then_some(allow.as_str())
        })
    }
}

/// The default service: 405 for a known path, 404 for the rest.
pub async fn no_route(req: HttpRequest, known: Option<web::Data<KnownPaths>>) -> HttpResponse {
    let allow = known.as_ref().and_then(|k| k.allowed(req.path()));
    match allow {
        Some(allow) => {
            let problem = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed here; allowed: {allow}", req.method()),
            );
            let mut response = problem.error_response();
            if let Ok(value) = allow.parse() {
                response.headers_mut().insert(ALLOW, value);
            }
            response
        }
        None => Problem::not_found("no such route").error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment_per_parameter() {
        let known = KnownPaths(vec![
            (
                vec![
                    Some(String::new()),
                    Some("a".into()),
                    None,
                    Some("b".into()),
                ],
                "POST".into(),
            ),
            (
                vec![Some(String::new()), Some("health".into())],
                "GET".into(),
            ),
        ]);
        assert_eq!(known.allowed("/a/x/b"), Some("POST"));
        assert_eq!(known.allowed("/health"), Some("GET"));
        assert_eq!(known.allowed("/a//b"), None, "a parameter is never empty");
        assert_eq!(known.allowed("/a/x/y/b"), None);
        assert_eq!(known.allowed("/nope"), None);
    }
}
