//! What both server binaries do around their own wiring: bind the listener, serve until Ctrl-C or
//! SIGTERM, then stop the background workers and the embedded emulator, in that order.

use http_serve::{HttpLimits, serve};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wechat_sandbox::Sandbox;

/// Binds `addr`; the error names the address.
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
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
