//! The IdP as a [`Service`]: what it opens (identity, signing keys, databases) and its
//! routes; the shared runtime runs its HTTP server and chain loop.

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::web;
use milagro_anchor::birth_certificate::Role;
use milagro_service::attempts::FailureLimiter;
use milagro_service::base::{OpenError, ServiceBase};
pub use milagro_service::base::{INDEX_DIR, SERVICE_DB_DIR};
use milagro_service::files;
use milagro_service::identity::PartyKind;
use milagro_service::party_config::PartyConfig;
use milagro_service::peer_directory::IndexDirectory;
use milagro_service::runtime::{
    self, ChainFollower, ChainHooks, ChainParts, Checkpoints, RunError, Running, Service, Signals,
};
use milagro_service::work_gate::WorkGate;
use milagro_verifier::server_secret::FetchParts;
use milagro_verifier::Verifier;
use milagro_wire::health::ReadinessCheck;

use crate::backchannel::Notifier;
use crate::clients::ClientStore;
use crate::config::Config;
use crate::device_grants::{
    DeviceGrants, DEVICE_ADDRESSES_TRACKED, DEVICE_FAILURES_PER_ADDRESS, DEVICE_FAILURE_WINDOW_SECS,
};
use crate::devices::Devices;
use crate::dpop::{SeenProofs, SEEN_CAPACITY};
use crate::enrolment_codes::{
    Enrolment, EnrolmentCodes, SENDS_PER_ADDRESS, SENDS_PER_EMAIL, SEND_WINDOW_SECS,
};
use crate::grants::Grants;
use crate::keys::{KeyError, KeyRing};
use crate::mail::Mailer;
use crate::passwords::Passwords;
use crate::sessions::{Consents, Sessions};
use crate::signin::MpinSignIn;
use crate::state::AppState;
use crate::sweep::{Sweep, ROWS_PER_PASS};
use crate::users::{SledUsers, UserStore};

/// File name of the IdP's secret key in the state directory.
pub const KEY_FILE: &str = "idp.key";
/// The IdP as a party: role `idp`, key in [`KEY_FILE`].
pub const KIND: PartyKind = PartyKind {
    role: Role::Idp,
    key_file: KEY_FILE,
};
/// How many password checks may wait for a free slot (beyond one running per slot)
/// before `POST /login` and `POST /device` answer 503 with `Retry-After`: with about
/// 50 ms per check and two slots, the last one queued waits under a second.
pub const PASSWORD_CHECKS_QUEUED: usize = 32;
/// Least seconds between two sweeps of expired rows ([`crate::sweep`]).
pub const SWEEP_INTERVAL_SECS: u64 = 5;

/// The IdP service. See the crate documentation.
#[derive(Debug)]
pub struct Idp;

/// Why an IdP could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The state directory, the identity or a database could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The signing keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A database could not be opened.
    #[error("cannot open the database in {}: {detail}", path.display())]
    Db {
        /// The directory.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The M-Pin verifier's guess counts or revocation list could not be opened.
    #[error(transparent)]
    Verifier(#[from] milagro_verifier::OpenError),
    /// The HTTP server or a thread could not start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// `[smtp]` could not be set up (its credentials file, TLS).
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
}

/// Opens the IdP's service database (for `milagro idp user add` while it is stopped).
pub fn open_users(config: &Config) -> Result<SledUsers, StartError> {
    files::create_private_dir(&config.party.state_dir).map_err(OpenError::from)?;
    let path = config.party.state_dir.join(SERVICE_DB_DIR);
    let db =
        milagro_service::sled_db::open_waiting_for_lock(&path).map_err(|e| StartError::Db {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    let passwords = Arc::new(Passwords::new(crate::passwords::default_slots()));
    SledUsers::open(&db, passwords).map_err(|e| StartError::Db {
        path,
        detail: e.to_string(),
    })
}

impl Idp {
    /// Starts an IdP for embedding (tests, the demo): serves until [`Running::stop`] or
    /// drop. Creates the identity and signing keys if missing, binds, and starts the
    /// chain loop, which anchors the Birth Certificate as soon as the node is reachable.
    pub fn start(config: Config) -> Result<RunningIdp, StartError> {
        runtime::start::<AppState>(config, Signals::LeaveToHost)
    }
}

/// A running IdP. Dropping it stops it at once; [`Running::stop`] lets requests finish.
pub type RunningIdp = Running<AppState>;

impl Service for AppState {
    const NAME: &'static str = "idp";
    type Config = Config;
    type Error = StartError;
    type Prepared = ();
    type Hooks = Sweeper;

    fn open(config: Config) -> Result<(Self, ()), StartError> {
        let base = ServiceBase::open(KIND, &config.party)?;
        let retain = config.tokens.id_token.max(config.tokens.access);
        // A revoked grant is remembered while any of its codes or tokens may live.
        let t = config.tokens;
        let keep_revoked = t.refresh.max(t.access).max(t.code).as_secs();
        let keys = KeyRing::open(
            &config.party.state_dir,
            config.keys,
            retain,
            milagro_service::unix_now(),
        )?;
        let db_dir = config.party.state_dir.join(SERVICE_DB_DIR);
        let fail = |e: &dyn std::fmt::Display| StartError::Db {
            path: db_dir.clone(),
            detail: e.to_string(),
        };
        // One memory slot per password check the gate lets run: the gate answers 503
        // before a check would wait for memory.
        let slots = crate::passwords::default_slots();
        let passwords = Arc::new(Passwords::new(slots));
        let db = base.db;
        let users: Arc<dyn UserStore> =
            Arc::new(SledUsers::open(&db, passwords).map_err(|e| fail(&e))?);
        let chain = base.chain;
        let mpin = match &config.mpin {
            Some(mpin) => {
                let verifier =
                    Verifier::open(&db, &config.party.state_dir, &mpin.dtas, mpin.login.clone())?;
                Some(Arc::new(MpinSignIn::new(mpin.clone(), verifier)))
            }
            None => None,
        };
        let state = AppState {
            directory: Arc::new(IndexDirectory::for_node(
                &config.party.node,
                chain.index.clone(),
            )),
            mpin,
            clients: ClientStore::open(&db).map_err(|e| fail(&e))?,
            grants: Grants::open(&db, keep_revoked).map_err(|e| fail(&e))?,
            sessions: Sessions::open(&db).map_err(|e| fail(&e))?,
            consents: Consents::open(&db).map_err(|e| fail(&e))?,
            sweep: Arc::new(Sweep::open(&db, keep_revoked).map_err(|e| fail(&e))?),
            notifier: Arc::new(Notifier::new().map_err(|e| fail(&e))?),
            devices: DeviceGrants::open(&db).map_err(|e| fail(&e))?,
            registered_devices: Devices::open(&db).map_err(|e| fail(&e))?,
            device_attempts: Arc::new(FailureLimiter::new(
                DEVICE_FAILURES_PER_ADDRESS,
                DEVICE_FAILURE_WINDOW_SECS,
                DEVICE_ADDRESSES_TRACKED,
            )),
            seen_proofs: Arc::new(SeenProofs::new(SEEN_CAPACITY)),
            enrolment: Arc::new(Enrolment {
                codes: EnrolmentCodes::open(&db).map_err(|e| fail(&e))?,
                mailer: config.smtp.as_ref().map(Mailer::new).transpose()?,
                sends_per_address: FailureLimiter::new(
                    SENDS_PER_ADDRESS,
                    SEND_WINDOW_SECS,
                    DEVICE_ADDRESSES_TRACKED,
                ),
                sends_per_email: FailureLimiter::new(
                    SENDS_PER_EMAIL,
                    SEND_WINDOW_SECS,
                    DEVICE_ADDRESSES_TRACKED,
                ),
            }),
            audit: chain.audit.clone(),
            users,
            password_checks: Arc::new(WorkGate::new(
                "password checks",
                slots,
                PASSWORD_CHECKS_QUEUED,
            )),
            keys: Arc::new(keys),
            identity: chain.identity.clone(),
            own_anchor: chain.own_anchor.clone(),
            index: chain.index.clone(),
            chain,
            db,
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

    fn hooks(&self) -> Sweeper {
        Sweeper {
            sweep: self.sweep.clone(),
            mpin: self.mpin.clone(),
            last: 0,
        }
    }

    /// With `[mpin]`, ready once every D-TA's server share is summed (M-Pin sign-ins are
    /// refused until then).
    fn peer_checks(&self) -> Vec<ReadinessCheck> {
        self.mpin
            .iter()
            .map(|mpin| mpin.verifier.readiness())
            .collect()
    }

    /// With `[mpin]`, the thread that fetches the D-TAs' server shares.
    fn start_beside(&self, (): (), running: &mut Running<Self>) -> Result<(), StartError> {
        let Some(mpin) = &self.mpin else {
            return Ok(());
        };
        let parts = FetchParts {
            identity: self.identity.clone(),
            own_anchor: self.own_anchor.clone(),
            state_dir: self.config.party.state_dir.clone(),
            sync: self.config.party.sync.clone(),
            directory: self.directory.clone(),
            min_peer_depth: mpin.config.min_peer_depth,
            dtas: mpin.config.dtas.clone(),
            slot: mpin.verifier.server_secret.clone(),
        };
        let shutdown = running.shutdown().clone();
        running.spawn_worker("idp-server-secret", move || {
            milagro_verifier::server_secret::run(&parts, &shutdown)
        })?;
        Ok(())
    }
}

/// The IdP's chain-loop hook: at the node's tip, at most every [`SWEEP_INTERVAL_SECS`],
/// one bounded pass of [`Sweep`] over the expired rows, and the expired backchannel
/// authentication requests dropped from memory ([`crate::ciba`]).
#[derive(Debug)]
pub struct Sweeper {
    sweep: Arc<Sweep>,
    mpin: Option<Arc<MpinSignIn>>,
    last: u64,
}

impl ChainHooks for Sweeper {
    fn on_tip(&mut self, _follower: &ChainFollower) -> Checkpoints {
        let now = milagro_service::unix_now();
        if now >= self.last.saturating_add(SWEEP_INTERVAL_SECS) {
            self.last = now;
            match self.sweep.pass(now, ROWS_PER_PASS) {
                Ok(swept) if swept.removed > 0 => {
                    tracing::debug!(removed = swept.removed, "expired rows deleted");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "sweeping expired rows failed"),
            }
            if let Some(mpin) = &self.mpin {
                let dropped = mpin.ciba.table().sweep(now);
                if dropped > 0 {
                    tracing::debug!(
                        dropped,
                        "expired backchannel authentication requests dropped"
                    );
                }
            }
        }
        Checkpoints::Anchor
    }
}
