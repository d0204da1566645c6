#![doc = include_str!("../README.md")]
//! Serving an axum `Router` with the limits every server here shares (`pay-platform`,
//! `vending-server` and the `wechat-sandbox` emulator), in a crate of its own so that a
//! production server needs nothing of the emulator to serve:
//! a client has [`HttpLimits::header_read_timeout_secs`] to send a request's headers (a slow or
//! idle connection is closed, so nobody can hold connections open for free), a request has
//! [`HttpLimits::request_timeout_secs`] to be answered (408 after), every route has a body limit
//! (413 above), and at most [`HttpLimits::max_connections`] connections are served at once.
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never fires there; [`serve`] is the
//! accept loop with it, optional TLS (the sandbox stands in for WeChat's mutual-TLS gateway), the
//! peer's address as `ConnectInfo`, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use clap::Args;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The HTTP limits of a server; each flag is also an environment variable.
#[derive(Debug, Clone, Args)]
pub struct HttpLimits {
    /// Seconds a client has to send a request's headers, and the longest a keep-alive
    /// connection stays idle; the connection is closed after that.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 15)]
    pub header_read_timeout_secs: u64,
    /// Seconds a request may take from its headers to the answer (408 after that).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// The largest request body in bytes, on every route (413 above it); each server has its
    /// own default (vending-server 64 KiB, pay-platform 256 KiB, wechat-sandbox 1 MiB).
    #[arg(long, env = "MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout_secs: 15,
            request_timeout_secs: 30,
            max_body_bytes: None,
            max_connections: 4096,
        }
    }
}

impl HttpLimits {
    /// The header-read (and keep-alive idle) timeout, at least one second.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }

    /// The request timeout, at least one second.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    /// The body limit: the configured one, else `default`.
    pub fn max_body(&self, default: usize) -> usize {
        self.max_body_bytes.unwrap_or(default)
    }

    /// `router` with the request timeout and the body limit (`default_max_body` unless
    /// configured) on every route.
    pub fn apply<S: Clone + Send + Sync + 'static>(
        &self,
        router: Router<S>,
        default_max_body: usize,
    ) -> Router<S> {
        router
            .layer(RequestBodyLimitLayer::new(self.max_body(default_max_body)))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                self.request_timeout(),
            ))
    }
}

/// What a request learns about its TLS connection (present only on TLS listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsClient {
    /// Whether the client presented a certificate the server's verifier accepted.
    pub certificate: bool,
}

/// Serves `app` on `listener` (over TLS when `tls` is set) until `shutdown` resolves, then
/// lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let header_timeout = limits.header_read_timeout();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropped when shutdown starts: every connection task sees its sender close.
    let (stop_tx, stop_rx) = watch::channel(());
    // Each connection holds a receiver; `closed` resolves when all are gone.
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (app, tls, stop, done) = (app.clone(), tls.clone(), stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let _done = done;
            match tls {
                None => {
                    connection(TokioIo::new(stream), app, peer, None, header_timeout, stop).await
                }
                Some(acceptor) => {
                    // The handshake counts as reading the headers.
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let certificate = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty());
                    let client = TlsClient { certificate };
                    connection(
                        TokioIo::new(stream),
                        app,
                        peer,
                        Some(client),
                        header_timeout,
                        stop,
                    )
                    .await;
                }
            }
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
}

async fn connection<I>(
    io: TokioIo<I>,
    app: Router,
    peer: SocketAddr,
    tls: Option<TlsClient>,
    header_timeout: Duration,
    mut stop: watch::Receiver<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(t) = tls {
            req.extensions_mut().insert(t);
        }
        req
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(header_timeout))
        .keep_alive_timeout(header_timeout)
        .enable_connect_protocol();
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %peer, error = %e, "connection ended");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: the programs shut down gracefully on either.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
