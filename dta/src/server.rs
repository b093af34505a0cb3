//! The D-TA as a [`Service`]: what it opens (identity, sealed share, databases, the share
//! API's socket), its routes, and the share API it runs beside the shared runtime's HTTP
//! server and chain loop.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use actix_web::web;
use milagro_anchor::birth_certificate::Role;
use milagro_service::base::{OpenError, ServiceBase};
pub use milagro_service::base::{INDEX_DIR, SERVICE_DB_DIR};
use milagro_service::identity::PartyKind;
use milagro_service::party_config::PartyConfig;
use milagro_service::peer_directory::IndexDirectory;
use milagro_service::runtime::{self, ChainParts, RunError, Running, Service, Signals};
use milagro_wire::health::ReadinessCheck;

use crate::config::Config;
use crate::master::{self, SealError, SealingKey};
use crate::relying_party::CheckedIdps;
use crate::state::AppState;

/// File name of the D-TA's secret key in the state directory.
pub const KEY_FILE: &str = "dta.key";
/// The D-TA as a party: role `dta`, key in [`KEY_FILE`].
pub const KIND: PartyKind = PartyKind {
    role: Role::Dta,
    key_file: KEY_FILE,
};

/// The D-TA service. See the crate documentation.
#[derive(Debug)]
pub struct Dta;

/// Why a D-TA could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory, the identity or a database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The master-secret share could not be opened or sealed (e.g. a wrong sealing key).
    #[error(transparent)]
    MasterShare(#[from] SealError),
    /// The share API's socket could not be bound.
    #[error("cannot listen on {addr} (tls_listen): {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The record of issued identities could not be opened.
    #[error(transparent)]
    Issued(#[from] crate::issued::IssuedError),
    /// The HTTP server or a thread could not start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The HTTP client of the trusted IdPs could not be made (`[outbound_http]`).
    #[error("[outbound_http]: {0}")]
    OutboundHttp(#[from] milagro_http_client::ClientError),
}

impl Dta {
    /// Starts a D-TA for embedding (tests, the demo): serves until [`Running::stop`] or
    /// drop. Creates the identity and the sealed share if missing, binds both sockets,
    /// and starts the chain loop, which anchors the Birth Certificate as soon as the node
    /// is reachable; the share API serves once that anchor is confirmed.
    pub fn start(config: Config) -> Result<RunningDta, StartError> {
        runtime::start::<AppState>(config, Signals::LeaveToHost)
    }
}

/// A running D-TA: the plain HTTP server, the chain loop and the share API. Dropping it
/// stops it at once; [`Running::stop`] lets requests finish.
pub type RunningDta = Running<AppState>;

impl Service for AppState {
    const NAME: &'static str = "dta";
    type Config = Config;
    type Error = StartError;
    /// The share API's socket, bound at open so its port is known (and taken) before the
    /// anchor confirms.
    type Prepared = std::net::TcpListener;
    type Hooks = ();

    fn open(config: Config) -> Result<(Self, Self::Prepared), StartError> {
        // The sealing key first: a D-TA that cannot open its share creates nothing.
        let sealing_key = SealingKey::load(&config.master_key)?;
        let base = ServiceBase::open(KIND, &config.party)?;
        let chain = base.chain;
        let (master, _) = master::load_or_create(
            &config.party.state_dir,
            &sealing_key,
            &chain.identity.digest(),
        )?;
        drop(sealing_key);
        let bind_error = |source| StartError::Bind {
            addr: config.tls_listen,
            source,
        };
        let share_socket = std::net::TcpListener::bind(config.tls_listen).map_err(bind_error)?;
        let share_listen = share_socket.local_addr().map_err(bind_error)?;
        let state = AppState {
            directory: Arc::new(IndexDirectory::for_node(
                &config.party.node,
                chain.index.clone(),
            )),
            identity: chain.identity.clone(),
            own_anchor: chain.own_anchor.clone(),
            index: chain.index.clone(),
            audit: chain.audit.clone(),
            issued: Arc::new(crate::issued::IssuedIdentities::open(&base.db)?),
            db: base.db,
            master: Arc::new(master),
            checked_idps: Arc::new(CheckedIdps::new(&config.outbound_http)?),
            share_listen,
            tls_addr: Arc::new(RwLock::new(None)),
            chain,
            config: Arc::new(config),
        };
        Ok((state, share_socket))
    }

    fn party(&self) -> &PartyConfig {
        &self.config.party
    }

    fn routes(routes: &mut web::ServiceConfig) {
        crate::api::configure_public(routes);
    }

    fn chain_parts(&self) -> &ChainParts {
        &self.chain
    }

    fn hooks(&self) {}

    /// Ready once the share API (Milagro TLS) serves.
    fn peer_checks(&self) -> Vec<ReadinessCheck> {
        vec![match self.share_api_addr() {
            Some(addr) => ReadinessCheck::new("share_api", true, format!("serving at {addr}")),
            None => ReadinessCheck::new("share_api", false, "not serving yet"),
        }]
    }

    fn start_beside(
        &self,
        share_socket: std::net::TcpListener,
        running: &mut Running<Self>,
    ) -> Result<(), StartError> {
        crate::share_api::start(self.clone(), share_socket, running)
    }
}
