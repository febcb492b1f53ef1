//! One awc client per emitter, created on the worker's own thread (awc clients
//! are `!Send`).

use actix_tls::connect::{Connector as TcpConnector, Resolver};

use crate::delivery::ssrf::GuardedResolver;
use crate::emitter::config::ValidatedConfig;

/// A client for one emitter. Redirects are not followed: a 3xx is a failure,
/// as in the Elixir original, and following one could leak the signed body.
pub(crate) fn build_client(config: &ValidatedConfig) -> awc::Client {
    let builder = awc::Client::builder()
        .disable_redirects()
        .no_default_headers()
        .timeout(config.request_timeout);
    let connector = awc::Connector::new();
    // With an SSRF guard, host names resolve through the guard, so the address
    // connected to is the address checked.
    match &config.target_policy {
        Some(policy) => {
            let resolver = Resolver::custom(GuardedResolver(policy.clone()));
            let connector = connector
                .connector(TcpConnector::new(resolver).service())
                .timeout(config.request_timeout)
                .rustls_0_23(config.tls.clone());
            builder.connector(connector).finish()
        }
        None => {
            let connector = connector
                .timeout(config.request_timeout)
                .rustls_0_23(config.tls.clone());
            builder.connector(connector).finish()
        }
    }
}
