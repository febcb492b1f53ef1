//! The connection every request travels on: TCP (through the SSRF guard's
//! resolver when one is set), TLS for https targets, and the filter that hides
//! interim (1xx) responses from awc.
//!
//! TLS is done here rather than by awc because the interim filter has to read
//! the plaintext: awc would put its TLS above whatever this connector returns.
//! awc therefore sees every connection as plain HTTP/1.1 (the request URI is
//! rewritten to `http://host:port`, the `Host` header keeps the original), and
//! ALPN offers `http/1.1` only.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_rt::net::{ActixStream, TcpStream};
use actix_tls::connect::rustls_0_23::reexports::AsyncTlsStream;
use actix_tls::connect::rustls_0_23::{TlsConnector, TlsConnectorService};
use actix_tls::connect::{
    ConnectError, ConnectInfo, Connection, Connector as TcpConnector, ConnectorService, Resolver,
};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, Ready};

use crate::delivery::interim::SkipInterim;
use crate::delivery::ssrf::{GuardedResolver, TargetPolicy};

/// A socket, plain or TLS.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<AsyncTlsStream<TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(tls) => tls.get_ref().0,
        }
    }
}

/// What awc reads and writes.
pub(crate) type Io = SkipInterim<Transport>;

/// Connects one emitter's requests.
#[derive(Clone)]
pub(crate) struct Connector {
    tcp: ConnectorService,
    tls: Option<TlsConnectorService>,
}

impl Connector {
    /// TCP through `policy`'s resolver if set; TLS with `tls` if set.
    pub(crate) fn new(
        policy: Option<&TargetPolicy>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let tcp = match policy {
            Some(policy) => TcpConnector::new(Resolver::custom(GuardedResolver(policy.clone()))),
            None => TcpConnector::default(),
        };
        Connector {
            tcp: tcp.service(),
            tls: tls.map(TlsConnector::service),
        }
    }
}

impl actix_service::Service<ConnectInfo<Uri>> for Connector {
    type Response = Connection<Uri, Io>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, ConnectError>>;

    actix_service::always_ready!();

    fn call(&self, request: ConnectInfo<Uri>) -> Self::Future {
        let (tcp, tls) = (self.tcp.clone(), self.tls.clone());
        Box::pin(async move {
            let connection = tcp.call(request).await?;
            let (transport, connection) = match tls {
                None => {
                    let (socket, connection) = connection.replace_io(());
                    (Transport::Plain(socket), connection)
                }
                Some(tls) => {
                    let secured = tls.call(connection).await.map_err(ConnectError::Io)?;
                    let (socket, connection) = secured.replace_io(());
                    (Transport::Tls(Box::new(socket)), connection)
                }
            };
            Ok(connection.replace_io(SkipInterim::new(transport)).1)
        })
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(tcp) => Pin::new(tcp).poll_write(cx, data),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// awc requires it of a connection; readiness is the socket's.
impl ActixStream for Io {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_read_ready(self.get_ref().tcp(), cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(self.get_ref().tcp(), cx)
    }
}
