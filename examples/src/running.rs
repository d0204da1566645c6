//! What both server binaries do around their own wiring: bind the listener, serve until Ctrl-C or
//! SIGTERM, then stop the background workers and the embedded emulator, in that order.

use http_serve::{HttpLimits, serve};

use crate::providers::ProviderConfigError;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wechat_sandbox::Sandbox;

/// An error as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a server could not start. Nothing is half-started: configuration is refused before
/// anything is opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The provider settings are refused (partial, empty, conflicting, missing in live mode).
    #[error(transparent)]
    Providers(#[from] ProviderConfigError),
    /// A server setting is refused; the message says what to set.
    #[error("{0}")]
    Refused(&'static str),
    /// `ADMIN_TOKEN` is too short.
    #[error(
        "ADMIN_TOKEN must be at least {min} characters (it has {has}); generate one with \
         `openssl rand -hex 32`"
    )]
    AdminTokenTooShort {
        /// The shortest accepted.
        min: usize,
        /// Its length.
        has: usize,
    },
    /// A backend could not be opened (the database, Redis, RabbitMQ, MQTT, the random source).
    #[error("{what}: {source}")]
    Backend {
        /// Which.
        what: &'static str,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The background work was started already.
    #[error("the workers were started already")]
    AlreadyStarted,
}

impl StartError {
    /// A failure of backend `what`, for `map_err`.
    pub fn backend<E: Into<BoxError>>(what: &'static str) -> impl FnOnce(E) -> StartError {
        move |e| StartError::Backend {
            what,
            source: e.into(),
        }
    }
}

/// Binds `addr`; the error names the address.
pub async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: addr.to_owned(),
            source,
        })
}

/// A server that is wired and whose workers run: what [`Running::serve`] stops after the signal.
#[derive(Debug)]
pub struct Running {
    /// The program's name, for the shutdown line.
    pub program: &'static str,
    /// Cancels the workers.
    pub stop: CancellationToken,
    /// The workers to wait for.
    pub workers: Vec<JoinHandle<()>>,
    /// The embedded emulator (demo mode), shut down last.
    pub emulator: Option<Sandbox>,
}

impl Running {
    /// Serves `app` on `listener` until a shutdown signal, then stops everything else.
    pub async fn serve(self, listener: TcpListener, app: axum::Router, limits: &HttpLimits) {
        serve(listener, app, limits, None, crate::shutdown_signal()).await;
        println!("{}: shutting down", self.program);
        self.stop.cancel();
        for w in self.workers {
            let _ = w.await;
        }
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}
