//! Which application a route acts in, and which endpoint: read from the
//! path once the route has matched (`{app}` of `/api/v1/apps/{app}/…`, or
//! `default` on the routes without it), so that every endpoint and event
//! route serves both spellings with one handler.
//!
//! An application that does not exist is 404; so is one that an API key
//! bound to another application asks for, in the same words, so that the
//! key learns nothing about it.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde::Deserialize;

use crate::app::unknown_app;
use crate::auth::BoundTo;
use crate::endpoint::EndpointAt;
use crate::ids::DEFAULT_APP;
use crate::problem::Problem;
use crate::state::AppState;

/// The application a route acts in, checked: it exists, and the caller may
/// see it.
#[derive(Debug, Clone)]
pub struct InApp(pub String);

/// The endpoint a route acts on (whether it exists is the catalog's to
/// say), in an application checked as [`InApp`].
#[derive(Debug, Clone)]
pub struct AtEndpoint(pub EndpointAt);

/// The path's segments these two read; the others (`{n}`) are the route's.
#[derive(Deserialize)]
struct Segments {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

fn segments(req: &HttpRequest) -> Result<Segments, Problem> {
    // Decoded as `web::Path` decodes them.
    web::Path::<Segments>::extract(req)
        .into_inner()
        .map(web::Path::into_inner)
        .map_err(|e| Problem::bad_request(format!("invalid path: {e}")))
}

/// `app` if it exists and the caller may see it, else the 404.
fn visible(req: &HttpRequest, app: &str) -> Result<(), Problem> {
    if let Some(BoundTo(bound)) = req.extensions().get::<BoundTo>() {
        if bound != app {
            return Err(unknown_app(app));
        }
    }
    let exists = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.catalog.apps.contains(app));
    if exists {
        Ok(())
    } else {
        Err(unknown_app(app))
    }
}

/// The application of a request (`{app}`, or `default`), checked; and the
/// endpoint id in its path, if any.
fn app_and_id(req: &HttpRequest) -> Result<(String, Option<String>), Problem> {
    let Segments { app, id } = segments(req)?;
    let app = app.unwrap_or_else(|| DEFAULT_APP.to_owned());
    visible(req, &app)?;
    Ok((app, id))
}

impl FromRequest for InApp {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(app_and_id(req).map(|(app, _)| InApp(app)))
    }
}

impl FromRequest for AtEndpoint {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(app_and_id(req).and_then(|(app, id)| {
            let id = id.ok_or_else(|| Problem::bad_request("invalid path: no endpoint id"))?;
            Ok(AtEndpoint(EndpointAt::new(&app, &id)))
        }))
    }
}
