//! `milagro init ROLE`: one service's configuration, state and keys for one network
//! ([`milagro_init`]); prints what was made and what to do next.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use milagro_anchor::digest::Digest;
use milagro_init::{Chain, DtaPeer, InitRequest, ServiceRole, TlsFiles, TrustedIdp};

use super::print_json;

/// A role `init` sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// A Trusted Bitcoin Server.
    Tbs,
    /// An OpenID Connect provider.
    Idp,
    /// A Distributed Trust Authority.
    Dta,
    /// An M-Pin authentication server.
    Authserver,
}

impl From<RoleArg> for ServiceRole {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Tbs => Self::Tbs,
            RoleArg::Idp => Self::Idp,
            RoleArg::Dta => Self::Dta,
            RoleArg::Authserver => Self::Authserver,
        }
    }
}

/// A network `init` sets a service up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// A private chain.
    Regtest,
    /// The default signet.
    Signet,
    /// Testnet 4.
    Testnet4,
    /// Bitcoin.
    Bitcoin,
}

impl From<NetworkArg> for Chain {
    fn from(network: NetworkArg) -> Self {
        match network {
            NetworkArg::Regtest => Self::Regtest,
            NetworkArg::Signet => Self::Signet,
            NetworkArg::Testnet4 => Self::Testnet4,
            NetworkArg::Bitcoin => Self::Bitcoin,
        }
    }
}

/// `milagro init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The role: tbs, idp, dta or authserver.
    #[arg(value_enum)]
    pub role: RoleArg,
    /// The Bitcoin network it anchors on and follows.
    #[arg(long, value_enum, default_value = "regtest")]
    pub network: NetworkArg,
    /// The directory for its configuration (`ROLE.toml`) and state (`state/`); must not
    /// hold a service yet.
    #[arg(long)]
    pub dir: PathBuf,
    /// The name in its Birth Certificate (default: `Milagro` and the role).
    #[arg(long)]
    pub name: Option<String>,
    /// The URL clients reach it at (behind any reverse proxy); required off regtest, as
    /// it goes into the anchored certificate for good.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Where its HTTP(S) API listens (default: the role's port on loopback).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The node's JSON-RPC URL (default: the network's port on loopback).
    #[arg(long)]
    pub rpc_url: Option<String>,
    /// The node's cookie file (default: the network's under ~/.bitcoin).
    #[arg(long)]
    pub rpc_cookie: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// D-TA: where its share API (Milagro TLS) listens (default: the listen port + 1).
    #[arg(long)]
    pub share_listen: Option<SocketAddr>,
    /// D-TA: its share API's address as clients reach it (default: the bound address).
    #[arg(long)]
    pub share_public_addr: Option<String>,
    /// D-TA: an anchored IdP whose ID tokens it accepts, `ISSUER,DIGEST,CLIENT_ID`;
    /// repeat for more.
    #[arg(long = "trusted-idp", value_name = "ISSUER,DIGEST,CLIENT_ID", value_parser = parse_idp)]
    pub trusted_idps: Vec<TrustedIdp>,
    /// D-TA: the digest of an authentication server that gets its server share; repeat.
    #[arg(long = "authserver", value_name = "DIGEST")]
    pub authservers: Vec<Digest>,
    /// Authentication server or IdP: a D-TA whose server share it sums to verify M-Pin
    /// logins, `DIGEST@HOST:PORT` (its share API); repeat for each. For an IdP this
    /// writes `[mpin]` (M-Pin sign-in); without it the IdP has no `[mpin]`.
    #[arg(long = "dta", value_name = "DIGEST@HOST:PORT", value_parser = parse_dta)]
    pub dtas: Vec<DtaPeer>,
}

fn parse_idp(text: &str) -> Result<TrustedIdp, String> {
    let mut parts = text.splitn(3, ',');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(issuer), Some(digest), Some(client_id))
            if !issuer.is_empty() && !client_id.is_empty() =>
        {
            Ok(TrustedIdp {
                issuer: issuer.to_owned(),
                digest: digest.parse().map_err(|e| format!("{digest}: {e}"))?,
                client_id: client_id.to_owned(),
            })
        }
        _ => Err("expected ISSUER,DIGEST,CLIENT_ID".into()),
    }
}

fn parse_dta(text: &str) -> Result<DtaPeer, String> {
    let (digest, share_api) = text.split_once('@').ok_or("expected DIGEST@HOST:PORT")?;
    Ok(DtaPeer {
        digest: digest.parse().map_err(|e| format!("{digest}: {e}"))?,
        share_api: share_api.to_owned(),
    })
}

/// Runs `milagro init`.
pub fn run(args: InitArgs) -> Result<()> {
    let role = ServiceRole::from(args.role);
    let chain = Chain::from(args.network);
    let request = InitRequest {
        name: args.name,
        public_url: args.public_url,
        listen: args.listen,
        rpc_url: args.rpc_url,
        rpc_cookie: args.rpc_cookie,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
        share_listen: args.share_listen,
        share_public_addr: args.share_public_addr,
        trusted_idps: args.trusted_idps,
        authservers: args.authservers,
        dtas: args.dtas,
        ..InitRequest::new(role, chain, args.dir)
    };
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let made = milagro_init::init(&request, &home, now)?;
    let config = made.config_file.display().to_string();
    eprintln!(
        "{} set up for {chain} in {}",
        role.title(),
        made.config_file
            .parent()
            .map_or(config.clone(), |d| d.display().to_string())
    );
    if made.admin_token.is_some() || made.registration_token.is_some() {
        eprintln!(
            "the tokens below are shown once: keep them secret (only their SHA-256 is in {config})"
        );
    }
    eprintln!("next steps:");
    let mut steps = vec![format!(
        "review {config}; then start it: milagro {role} serve --config {config}"
    )];
    if chain != Chain::Regtest {
        steps.push(format!(
            "fund the wallet of the node at its rpc_url: it pays the anchors, through the service key's address {}",
            made.key_address
        ));
        steps.push(format!(
            "put {} behind a TLS reverse proxy at {} (or give --tls-cert/--tls-key), and list the proxy's address in [proxy] trusted so that per-address limits count each client",
            request.listen.unwrap_or_else(|| role.default_listen()),
            made.public_url
        ));
    }
    if role == ServiceRole::Idp && request.dtas.is_empty() {
        steps.push(
            "people sign in with M-Pin once [mpin] names your D-TAs (init again with --dta DIGEST@ADDR, or add [[mpin.dtas]]); until then, and with [passwords] off, nobody can sign in"
                .to_owned(),
        );
    }
    steps.push(format!(
        "run it as a service: deploy/systemd/milagro@.service (systemctl enable --now milagro@{role})"
    ));
    steps.push(format!(
        "give peers its digest {}: they pin it",
        made.digest
    ));
    for step in &steps {
        eprintln!("  - {step}");
    }
    print_json(&serde_json::json!({
        "role": role.name(),
        "network": chain.name(),
        "config": made.config_file,
        "state_dir": made.state_dir,
        "digest": made.digest,
        "public_key": made.public_key,
        "key_address": made.key_address.to_string(),
        "public_url": made.public_url,
        "admin_token": made.admin_token.as_ref().map(|t| t.reveal().to_owned()),
        "registration_token": made.registration_token.as_ref().map(|t| t.reveal().to_owned()),
        "master_key_file": made.master_key_file,
        "next_steps": steps,
    }))
}
