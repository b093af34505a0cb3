//! What `init` does on disk: the directory, the state directory with the key and the
//! Birth Certificate, the D-TA's sealing key, the admin tokens, and the configuration
//! file last (its presence means `init` finished).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use milagro_service::files::{self, FileError};
use milagro_service::identity::{IdentityError, PartyIdentity};
use milagro_service::token::ApiToken;
use zeroize::Zeroizing;

use crate::role::{Chain, ServiceRole};
use crate::template::{self, DtaPeer, Settings, TemplateError, TlsFiles, TrustedIdp};

/// The state directory's name inside the directory `init` sets up.
pub const STATE_DIR: &str = "state";
/// The D-TA's master-share sealing key file's name (mode 0600).
pub const MASTER_KEY_FILE: &str = "dta-master.key";

/// What to set up. Everything but the role, the network and the directory has a default
/// (the public URL on regtest only).
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// The role.
    pub role: ServiceRole,
    /// The network.
    pub chain: Chain,
    /// The directory for the configuration (`ROLE.toml`) and the state (`state/`).
    pub dir: PathBuf,
    /// The name in the Birth Certificate (default: `Milagro ROLE`).
    pub name: Option<String>,
    /// The URL clients reach it at (required off regtest: it goes into the anchored
    /// certificate for good). Default on regtest: `http://` and the listen address.
    pub public_url: Option<String>,
    /// Where the HTTP(S) API listens (default: the role's loopback port).
    pub listen: Option<SocketAddr>,
    /// The node's JSON-RPC URL (default: `http://127.0.0.1:` and the network's port).
    pub rpc_url: Option<String>,
    /// The node's cookie file (default: the network's under `~/.bitcoin`).
    pub rpc_cookie: Option<PathBuf>,
    /// Milliseconds between two polls of the node (default: the template's 1000).
    pub poll_interval_ms: Option<u64>,
    /// `[tls]`: serve HTTPS with these.
    pub tls: Option<TlsFiles>,
    /// The D-TA's share API address (default: the listen port plus one, same host).
    pub share_listen: Option<SocketAddr>,
    /// The D-TA's share API as clients reach it (default: the bound address).
    pub share_public_addr: Option<String>,
    /// The D-TA's trusted IdPs.
    pub trusted_idps: Vec<TrustedIdp>,
    /// The auth servers the D-TA gives server shares to.
    pub authservers: Vec<milagro_anchor::digest::Digest>,
    /// The auth server's D-TAs (at least one).
    pub dtas: Vec<DtaPeer>,
}

impl InitRequest {
    /// A request with every default: `role` on `chain` in `dir`.
    pub fn new(role: ServiceRole, chain: Chain, dir: PathBuf) -> Self {
        Self {
            role,
            chain,
            dir,
            name: None,
            public_url: None,
            listen: None,
            rpc_url: None,
            rpc_cookie: None,
            poll_interval_ms: None,
            tls: None,
            share_listen: None,
            share_public_addr: None,
            trusted_idps: Vec::new(),
            authservers: Vec::new(),
            dtas: Vec::new(),
        }
    }
}

/// What `init` made. The tokens are shown once: only their hashes are in the file.
#[derive(Debug)]
pub struct Initialized {
    /// The configuration file.
    pub config_file: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The Birth Certificate's digest (what peers pin).
    pub digest: milagro_anchor::digest::Digest,
    /// The service's public key.
    pub public_key: milagro_anchor::keys::PublicKey,
    /// The P2WPKH address of that key: where its anchors are paid from (the node's
    /// wallet funds it at each anchoring).
    pub key_address: bitcoin::Address,
    /// The public URL written in the certificate.
    pub public_url: String,
    /// The operator's admin token (TBS, IdP, auth server).
    pub admin_token: Option<ApiToken>,
    /// The IdP's initial access token for client registration.
    pub registration_token: Option<ApiToken>,
    /// The D-TA's sealing key file.
    pub master_key_file: Option<PathBuf>,
}

/// Why `init` refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The directory already holds a service: `init` never overwrites one.
    #[error("{} already exists: init never overwrites a service's state (use another --dir, or serve the one there)", path.display())]
    Exists {
        /// What exists.
        path: PathBuf,
    },
    /// A value must be given on this network or for this role.
    #[error("{0}")]
    Missing(String),
    /// The template could not be filled in.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The written configuration would not be accepted by `serve` (a bug of `init`).
    #[error("the configuration init made is refused by the {role}: {detail}")]
    Refused {
        /// The role.
        role: ServiceRole,
        /// The service's message.
        detail: String,
    },
    /// A file could not be written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The key or the certificate could not be made.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// The configuration file's path in `dir` for `role` (`dir/ROLE.toml`).
pub fn config_path(dir: &Path, role: ServiceRole) -> PathBuf {
    dir.join(format!("{role}.toml"))
}

/// Sets up a `request.role` service in `request.dir`: [`prepare`], then [`finish`].
/// `home` is where the default cookie path starts (the user's home directory), `now` the
/// certificate's creation time.
pub fn init(request: &InitRequest, home: &Path, now: u64) -> Result<Initialized, InitError> {
    check_peers(request)?;
    let prepared = prepare(request, now)?;
    finish(prepared, request, home)
}

/// Whether `request` names the peers its role cannot run without.
fn check_peers(request: &InitRequest) -> Result<(), InitError> {
    if request.role == ServiceRole::Authserver && request.dtas.is_empty() {
        return Err(InitError::Missing(
            "an authentication server sums the server shares of its d-tas: give each with --dta DIGEST@HOST:PORT".into(),
        ));
    }
    Ok(())
}

/// A service whose identity exists (its state directory, key and Birth Certificate) but
/// whose configuration is not written yet: a network whose parties name each other's
/// digests prepares them all first ([`prepare`]), then writes each configuration
/// ([`finish`]).
#[derive(Debug)]
pub struct Prepared {
    config_file: PathBuf,
    state_dir: PathBuf,
    listen: SocketAddr,
    public_url: String,
    name: String,
    /// The Birth Certificate's digest.
    pub digest: milagro_anchor::digest::Digest,
    /// The service's public key.
    pub public_key: milagro_anchor::keys::PublicKey,
}

impl Prepared {
    /// The public URL in its certificate.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }
}

/// Checks `request` and makes the directory, the state directory, the key and the Birth
/// Certificate; refuses a directory that holds a service already.
pub fn prepare(request: &InitRequest, now: u64) -> Result<Prepared, InitError> {
    prepare_in(request, now, false)
}

/// [`prepare`] for a directory whose state a [`prepare`] made but whose configuration
/// was never written (a network set up in steps, interrupted): the identity there is
/// loaded, not made again. A configuration already written is still refused.
pub fn resume(request: &InitRequest, now: u64) -> Result<Prepared, InitError> {
    prepare_in(request, now, true)
}

fn prepare_in(request: &InitRequest, now: u64, resuming: bool) -> Result<Prepared, InitError> {
    let role = request.role;
    let dir = absolute(&request.dir);
    let config_file = config_path(&dir, role);
    let state_dir = dir.join(STATE_DIR);
    let checked: &[&PathBuf] = if resuming {
        &[&config_file]
    } else {
        &[&config_file, &state_dir]
    };
    for path in checked {
        if path.exists() {
            return Err(InitError::Exists {
                path: (*path).clone(),
            });
        }
    }
    let listen = request.listen.unwrap_or_else(|| role.default_listen());
    let public_url = match (&request.public_url, request.chain.allows_default_url()) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, true) => format!("http://{listen}"),
        (None, false) => {
            return Err(InitError::Missing(format!(
            "--public-url is required on {}: it goes into the anchored birth certificate for good",
            request.chain
        )))
        }
    };
    let name = request
        .name
        .clone()
        .unwrap_or_else(|| format!("Milagro {}", role.title()));
    files::create_private_dir(&dir)?;
    files::create_private_dir(&state_dir)?;
    let identity = PartyIdentity::load_or_create(role.kind(), &state_dir, &name, &public_url, now)?;
    Ok(Prepared {
        config_file,
        state_dir,
        listen,
        public_url,
        name,
        digest: identity.digest(),
        public_key: identity.public_key(),
    })
}

/// Writes the configuration of the `prepared` service, with `request`'s peers and the
/// D-TA's sealing key; the tokens are made here and returned once.
pub fn finish(
    prepared: Prepared,
    request: &InitRequest,
    home: &Path,
) -> Result<Initialized, InitError> {
    let role = request.role;
    check_peers(request)?;
    let Prepared {
        config_file,
        state_dir,
        listen,
        public_url,
        name,
        digest,
        public_key,
    } = prepared;
    let dir = state_dir
        .parent()
        .map_or_else(|| state_dir.clone(), Path::to_path_buf);
    let admin_token = role
        .has_admin_api()
        .then(|| ApiToken::generate(&mut rand_core::OsRng));
    let registration_token =
        (role == ServiceRole::Idp).then(|| ApiToken::generate(&mut rand_core::OsRng));
    let master_key_file = (role == ServiceRole::Dta).then(|| dir.join(MASTER_KEY_FILE));
    let share_listen = (role == ServiceRole::Dta).then(|| {
        request
            .share_listen
            .unwrap_or_else(|| SocketAddr::new(listen.ip(), listen.port().wrapping_add(1)))
    });
    let settings = Settings {
        listen,
        public_url: public_url.clone(),
        name,
        state_dir: state_dir.clone(),
        rpc_url: request
            .rpc_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", request.chain.rpc_port())),
        rpc_cookie: request
            .rpc_cookie
            .clone()
            .unwrap_or_else(|| request.chain.default_cookie(home)),
        poll_interval_ms: request.poll_interval_ms,
        tls: request.tls.clone(),
        admin_token_sha256: admin_token.as_ref().map(|t| t.hash().to_string()),
        registration_token_sha256: registration_token.as_ref().map(|t| t.hash().to_string()),
        min_peer_depth: request.chain.min_peer_depth(),
        share_listen,
        share_public_addr: request.share_public_addr.clone(),
        master_key_file: master_key_file.clone(),
        trusted_idps: request.trusted_idps.clone(),
        authservers: request.authservers.clone(),
        dtas: request.dtas.clone(),
    };
    let text = template::render(role, request.chain, &settings)?;
    accepted(role, &text)?;
    if let Some(path) = &master_key_file {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, bytes.as_mut_slice());
        let hex = Zeroizing::new(hex::encode(bytes.as_slice()));
        if !files::write_new(path, hex.as_bytes(), 0o600)? {
            return Err(InitError::Exists { path: path.clone() });
        }
    }
    if !files::write_new(&config_file, text.as_bytes(), 0o600)? {
        return Err(InitError::Exists { path: config_file });
    }
    let key_address = bitcoin::Address::p2wpkh(&public_key.to_bitcoin(), request.chain.network());
    Ok(Initialized {
        config_file,
        state_dir,
        digest,
        public_key,
        key_address,
        public_url,
        admin_token,
        registration_token,
        master_key_file,
    })
}

/// Whether the service of `role` accepts `text` as its configuration, as `serve` reads it.
pub fn accepted(role: ServiceRole, text: &str) -> Result<(), InitError> {
    let refused = |detail: String| InitError::Refused { role, detail };
    match role {
        ServiceRole::Tbs => milagro_tbs::config::Config::parse(text)
            .map(drop)
            .map_err(|e| refused(e.to_string())),
        ServiceRole::Idp => milagro_idp::config::Config::parse(text)
            .map(drop)
            .map_err(|e| refused(e.to_string())),
        ServiceRole::Dta => milagro_dta::config::Config::parse(text)
            .map(drop)
            .map_err(|e| refused(e.to_string())),
        ServiceRole::Authserver => milagro_authserver::config::Config::parse(text)
            .map(drop)
            .map_err(|e| refused(e.to_string())),
    }
}

/// `path` made absolute against the working directory (the configuration must not
/// depend on where `serve` is started).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
