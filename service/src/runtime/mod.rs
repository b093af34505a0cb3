//! The one way a Milagro service starts, runs and stops.
//!
//! A service crate (the TBS, the IdP, a D-TA, the authentication server) is its
//! configuration, its routes and its chain hooks: it implements [`Service`] on the state
//! its handlers share, and [`start`] does the rest, the same for every service:
//!
//! 1. [`Service::open`] opens the state (identity, databases; [`crate::base::ServiceBase`]
//!    opens the parts every service has);
//! 2. the HTTP server binds the `listen` address of [`Service::party`]
//!    ([`crate::http::spawn`]: read deadlines, connection caps; HTTPS with `[tls]`) and
//!    serves [`Service::routes`] (among them [`crate::health`]'s `/healthz` and
//!    `/readyz`), each answer reported to [`Service::observe_request`];
//! 3. one [`ChainLoop`] thread follows the node: network check, index, own anchor,
//!    [`ChainHooks::on_tip`], audit checkpoints; what it sees is in [`ChainStatus`];
//! 4. [`Service::start_beside`] starts what else the service runs (the D-TA's share API,
//!    the authentication server's secret fetcher) as workers of the same [`Running`]
//!    handle, which stops all of it together.
//!
//! If any step fails, what already runs is stopped before the error is returned: nothing
//! keeps serving a service that failed to start.
//!
//! What it does not do: parse configuration files (each service's `config` module does,
//! with the shared sections of [`crate::config`]), or define routes or chain work.
//!
//! ```no_run
//! use actix_web::web;
//! use milagro_service::party_config::PartyConfig;
//! use milagro_service::runtime::{self, ChainParts, Service, Signals};
//!
//! #[derive(Clone)]
//! struct Echo { party: PartyConfig, chain: ChainParts }
//!
//! impl Service for Echo {
//!     const NAME: &'static str = "echo";
//!     type Config = Echo;
//!     type Error = runtime::RunError;
//!     type Prepared = ();
//!     type Hooks = ();
//!     fn open(config: Echo) -> Result<(Self, ()), Self::Error> { Ok((config, ())) }
//!     fn party(&self) -> &PartyConfig { &self.party }
//!     fn routes(routes: &mut web::ServiceConfig) {
//!         routes.route("/", web::get().to(|| async { "hello" }));
//!     }
//!     fn chain_parts(&self) -> &ChainParts { &self.chain }
//!     fn hooks(&self) {}
//! }
//!
//! fn serve(party: PartyConfig, chain: ChainParts) -> Result<(), runtime::RunError> {
//!     let running = runtime::start::<Echo>(Echo { party, chain }, Signals::LeaveToHost)?;
//!     println!("serving at {}", running.local_url());
//!     running.stop();
//!     Ok(())
//! }
//! ```

mod chain_loop;
mod chain_status;
mod running;

use std::sync::Arc;

use actix_web::dev::Service as _;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest};

pub use chain_loop::{
    ChainFollower, ChainHooks, ChainLoop, ChainParts, Checkpoints, PollError, STEP_BLOCKS,
};
pub use chain_status::{ChainSnapshot, ChainStatus};
pub use running::{Running, RELEASE_TIMEOUT};

use crate::http::{self, SpawnError};
use crate::party_config::PartyConfig;
use crate::sync::Shutdown;

/// A Milagro service: implemented by the state its HTTP handlers share (they extract it
/// as `web::Data<Self>`), so it is cheap to clone (shared pointers).
pub trait Service: Clone + Send + Sync + 'static {
    /// The service's short name: thread names (`tbs-http`, `tbs-chain`) and log lines.
    const NAME: &'static str;
    /// Its checked configuration.
    type Config;
    /// Why it could not start.
    type Error: From<RunError>;
    /// What [`Service::open`] prepares for [`Service::start_beside`] (a bound socket, say).
    type Prepared: Send;
    /// Its work in the chain loop.
    type Hooks: ChainHooks;

    /// Opens (creating what is missing) the state `config` describes.
    fn open(config: Self::Config) -> Result<(Self, Self::Prepared), Self::Error>;

    /// The keys every service has: where the HTTP server listens (`listen`), and the
    /// certificate chain and key it serves HTTPS with (`[tls]`; without, plain HTTP with
    /// a warning unless it listens on loopback).
    fn party(&self) -> &PartyConfig;

    /// Adds the HTTP routes (the state is already the app's data).
    fn routes(routes: &mut web::ServiceConfig);

    /// What the chain loop works on (and `/readyz` reads).
    fn chain_parts(&self) -> &ChainParts;

    /// The service's hooks into the chain loop.
    fn hooks(&self) -> Self::Hooks;

    /// The checks `/readyz` makes beyond the chain's (node, index, own anchor): whether
    /// the peers the service needs answer ([`crate::health`]). From memory only: a probe
    /// must not make the service call anyone.
    fn peer_checks(&self) -> Vec<milagro_wire::health::ReadinessCheck> {
        Vec::new()
    }

    /// Called with each answered request and its status (for metrics). The request gives
    /// its method and route pattern (`match_pattern`), looked up only by a service that
    /// wants them.
    fn observe_request(&self, _request: &HttpRequest, _status: StatusCode) {}

    /// Starts what the service runs besides its HTTP server and chain loop, as workers of
    /// `running` (which stops them with everything else).
    fn start_beside(
        &self,
        _prepared: Self::Prepared,
        _running: &mut Running<Self>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Who handles the process's termination signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// The host does (tests, the demo, benchmarks embedding the service): only
    /// [`Running::stop`] or dropping the handle stops it.
    LeaveToHost,
    /// The service does (`milagro … serve`): SIGTERM stops it gracefully, SIGINT or
    /// SIGQUIT at once, and [`Running::wait`] returns then.
    Handle,
}

/// Why the runtime could not start a service whose state opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The HTTP server could not start (the address is taken, say).
    #[error(transparent)]
    Http(#[from] SpawnError),
    /// A background thread could not start.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the service `config` describes and runs it: HTTP server, chain loop, and what
/// it starts beside them. Returns once the socket is bound.
pub fn start<S: Service>(config: S::Config, signals: Signals) -> Result<Running<S>, S::Error> {
    let (service, prepared) = S::open(config)?;
    let listen = service.party().listen;
    let tls = service.party().tls.clone();
    let (parts, hooks) = (service.chain_parts().clone(), service.hooks());
    let identity = parts.identity.clone();
    let shared = Arc::new(service);
    let for_http = web::Data::from(shared.clone());
    let factory = move || {
        let observer = for_http.clone();
        App::new()
            .app_data(for_http.clone())
            .configure(S::routes)
            .wrap_fn(move |request, routes| {
                let observer = observer.clone();
                let answer = routes.call(request);
                async move {
                    let answer = answer.await?;
                    observer.observe_request(answer.request(), answer.status());
                    Ok(answer)
                }
            })
    };
    let thread = format!("{}-http", S::NAME);
    let handle_signals = signals == Signals::Handle;
    let spawned = http::spawn(listen, &thread, handle_signals, tls.as_ref(), factory)
        .map_err(RunError::from)?;
    let digest = identity.digest();
    tracing::info!(service = S::NAME, addr = %spawned.addr, %digest, "listening");
    let shutdown = Arc::new(Shutdown::default());
    // From here on, dropping `running` (on any error below) stops what runs.
    let mut running = Running::new(shared, identity, spawned, shutdown.clone());
    let chain = ChainLoop::new(parts, hooks, shutdown);
    running.spawn_worker(&format!("{}-chain", S::NAME), move || chain.run())?;
    let service = running.state().clone();
    service.start_beside(prepared, &mut running)?;
    Ok(running)
}
