//! [`Running`]: the handle of a started service, the same for every service.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;

use super::{RunError, Service};
use crate::http::Spawned;
use crate::identity::PartyIdentity;
use crate::sync::Shutdown;

/// How long stopping waits for the HTTP server's worker threads to give back the state
/// they were lent.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running service: its address, its state, and what stops it.
///
/// Dropping it stops the service at once (requests in flight are cut); [`Running::stop`]
/// lets them finish. Either way, once it returns every thread the service started has
/// ended and the HTTP server has given back the state it was lent, so the state directory
/// can be opened again (unless the caller still holds parts of [`Running::state`]).
pub struct Running<S: Service> {
    service: Option<Arc<S>>,
    identity: Arc<PartyIdentity>,
    /// The state as the HTTP server's workers hold it: actix drops a worker's copy a
    /// little after the server future ends, and a database's file lock goes with the
    /// last copy, so stopping waits until none is left.
    lent: Weak<S>,
    addr: SocketAddr,
    https: bool,
    server: Option<ServerHandle>,
    server_thread: Option<JoinHandle<()>>,
    shutdown: Arc<Shutdown>,
    workers: Vec<JoinHandle<()>>,
    on_halt: Vec<Box<dyn FnOnce() + Send>>,
}

impl<S: Service> Running<S> {
    pub(super) fn new(
        service: Arc<S>,
        identity: Arc<PartyIdentity>,
        spawned: Spawned,
        shutdown: Arc<Shutdown>,
    ) -> Self {
        Self {
            identity,
            lent: Arc::downgrade(&service),
            service: Some(service),
            addr: spawned.addr,
            https: spawned.https,
            server: Some(spawned.handle),
            server_thread: Some(spawned.thread),
            shutdown,
            workers: Vec::new(),
            on_halt: Vec::new(),
        }
    }

    /// The HTTP server's bound address (the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` (or `https://` with `[tls]`) and the bound address: where to send
    /// requests on this machine.
    pub fn local_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The state the handlers share.
    pub fn state(&self) -> &S {
        match &self.service {
            Some(service) => service,
            // Only `halt` takes it, and nothing can use the handle after halting.
            None => unreachable!("the state is taken only when the handle is consumed"),
        }
    }

    /// The service's anchored identity (its key and Birth Certificate).
    pub fn identity(&self) -> &PartyIdentity {
        &self.identity
    }

    /// The flag every worker obeys.
    pub fn shutdown(&self) -> &Arc<Shutdown> {
        &self.shutdown
    }

    /// Starts the worker thread `name`, which must return once [`Running::shutdown`] is
    /// set (or once what [`Running::on_halt`] registered has run).
    pub fn spawn_worker(
        &mut self,
        name: &str,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<(), RunError> {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(work)
            .map_err(|source| RunError::Thread {
                what: name.into(),
                source,
            })?;
        self.workers.push(thread);
        Ok(())
    }

    /// Runs `stop` when the service stops, after the shutdown flag is set and before the
    /// workers are joined (to wake a worker that does not watch the flag).
    pub fn on_halt(&mut self, stop: impl FnOnce() + Send + 'static) {
        self.on_halt.push(Box::new(stop));
    }

    /// Stops serving after the requests in flight (at most
    /// [`crate::http::SHUTDOWN_TIMEOUT_SECS`]; idle keep-alive connections count until
    /// they expire), then stops the chain loop and every worker.
    pub fn stop(mut self) {
        self.halt(true);
    }

    /// Blocks until the server stops by itself (a signal, with [`super::Signals::Handle`]),
    /// then stops everything else.
    pub fn wait(mut self) {
        if let Some(thread) = self.server_thread.take() {
            let _ = thread.join();
        }
        self.halt(true);
    }

    fn halt(&mut self, graceful: bool) {
        self.shutdown.stop();
        for stop in self.on_halt.drain(..) {
            stop();
        }
        if let Some(server) = self.server.take() {
            // The stop command is sent when `stop` is called; its future only reports
            // completion, which joining the thread below waits for anyway.
            drop(server.stop(graceful));
        }
        if let Some(thread) = self.server_thread.take() {
            let _ = thread.join();
        }
        for thread in self.workers.drain(..) {
            let _ = thread.join();
        }
        self.service = None;
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        while self.lent.strong_count() > 0 {
            if Instant::now() > deadline {
                tracing::warn!(
                    service = S::NAME,
                    "the HTTP server still holds the state after stopping"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl<S: Service> Drop for Running<S> {
    fn drop(&mut self) {
        if self.service.is_some() {
            self.halt(false);
        }
    }
}

impl<S: Service> std::fmt::Debug for Running<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("service", &S::NAME)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
