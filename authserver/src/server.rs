//! The authentication server as a [`Service`]: what it opens (identity, databases,
//! revocations), its routes, and the thread that fetches the server secret beside the
//! shared runtime's HTTP server and chain loop.

use std::sync::Arc;

use actix_web::web;
use milagro_anchor::birth_certificate::Role;
use milagro_service::base::{OpenError, ServiceBase};
use milagro_service::identity::PartyKind;
use milagro_service::party_config::PartyConfig;
use milagro_service::peer_directory::IndexDirectory;
use milagro_service::runtime::{self, ChainParts, RunError, Running, Service, Signals};
use milagro_verifier::server_secret::FetchParts;
use milagro_verifier::{OpenError as VerifierError, Verifier};
use milagro_wire::health::ReadinessCheck;

use crate::config::Config;
use crate::state::AppState;

/// File name of the server's secret key in the state directory.
pub const KEY_FILE: &str = "authserver.key";
/// The authentication server as a party: role `authserver`, key in [`KEY_FILE`].
pub const KIND: PartyKind = PartyKind {
    role: Role::AuthServer,
    key_file: KEY_FILE,
};

/// The authentication server. See the crate documentation.
#[derive(Debug)]
pub struct AuthServer;

/// Why an authentication server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory, the identity or a database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The revocation list or the guess counts could not be opened.
    #[error(transparent)]
    Verifier(#[from] VerifierError),
    /// The HTTP server or a thread could not start.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl AuthServer {
    /// Starts an authentication server for embedding (tests, the demo): serves until
    /// [`Running::stop`] or drop. Creates the identity if missing, binds the socket, and
    /// starts the chain loop, which anchors the Birth Certificate as soon as the node is
    /// reachable; the server secret is fetched once that anchor is confirmed, and logins
    /// are refused (503 `not_ready`) until then.
    pub fn start(config: Config) -> Result<RunningAuthServer, StartError> {
        runtime::start::<AppState>(config, Signals::LeaveToHost)
    }
}

/// A running authentication server. Dropping it stops it at once; [`Running::stop`] lets
/// requests finish.
pub type RunningAuthServer = Running<AppState>;

impl Service for AppState {
    const NAME: &'static str = "authserver";
    type Config = Config;
    type Error = StartError;
    type Prepared = ();
    type Hooks = ();

    fn open(config: Config) -> Result<(Self, ()), StartError> {
        let base = ServiceBase::open(KIND, &config.party)?;
        let verifier = Verifier::open(
            &base.db,
            &config.party.state_dir,
            &config.dtas,
            config.login.clone(),
        )?;
        let chain = base.chain;
        let state = AppState {
            directory: Arc::new(IndexDirectory::for_node(
                &config.party.node,
                chain.index.clone(),
            )),
            identity: chain.identity.clone(),
            own_anchor: chain.own_anchor.clone(),
            index: chain.index.clone(),
            audit: chain.audit.clone(),
            chain,
            db: base.db,
            verifier: Arc::new(verifier),
            config: Arc::new(config),
        };
        Ok((state, ()))
    }

    fn party(&self) -> &PartyConfig {
        &self.config.party
    }

    fn routes(routes: &mut web::ServiceConfig) {
        crate::api::configure(routes);
    }

    fn chain_parts(&self) -> &ChainParts {
        &self.chain
    }

    fn hooks(&self) {}

    /// Ready once every D-TA's server share is summed (logins are refused until then).
    fn peer_checks(&self) -> Vec<ReadinessCheck> {
        vec![self.verifier.readiness()]
    }

    fn start_beside(&self, (): (), running: &mut Running<Self>) -> Result<(), StartError> {
        let parts = FetchParts {
            identity: self.identity.clone(),
            own_anchor: self.own_anchor.clone(),
            state_dir: self.config.party.state_dir.clone(),
            sync: self.config.party.sync.clone(),
            directory: self.directory.clone(),
            min_peer_depth: self.config.min_peer_depth,
            dtas: self.config.dtas.clone(),
            slot: self.verifier.server_secret.clone(),
        };
        let shutdown = running.shutdown().clone();
        let fetcher = move || milagro_verifier::server_secret::run(&parts, &shutdown);
        running.spawn_worker("authserver-secret", fetcher)?;
        Ok(())
    }
}
