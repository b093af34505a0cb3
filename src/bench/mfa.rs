//! `bench mfa`: shares issued per second through a D-TA's share API, and M-Pin logins
//! per second through an authentication server's login API, each next to the raw
//! BLS12-381 operation that bounds it (a G1 or G2 multiplication, a pairing), in the same
//! run.
//!
//! A private regtest node, an IdP, two D-TAs and an authentication server, all anchored
//! as in `milagro demo` ([`crate::demo::mpin::MfaWorld`]); a PAT and a second
//! authentication-server identity anchored directly. One request is timed from the TCP
//! connect (kept alive: from the request) to the checked answer:
//!
//! - **session only**: a Milagro TLS session (YAK) and one request the D-TA answers 404:
//!   the channel's cost, which every share request pays;
//! - **server shares**: a session and `POST /v1/shares/server` (one G2 multiplication,
//!   one log append);
//! - **client shares**: a session and `POST /v1/shares/client` with an ID token (an
//!   ES256 verification against the IdP's checked keys, two hashes to G1 and two G1
//!   multiplications, two log appends);
//! - **kept alive**: server and client shares again, each client keeping one session
//!   open for all its requests ([`Connection`]), so no share pays a handshake;
//! - **logins**: `POST /v1/login/commit` and `POST /v1/login/prove` over plain HTTP,
//!   through the device library with one HTTP client (one pairing check on the server,
//!   the client's two passes on the same machine); one client only, as the server checks
//!   one proof of an identity at a time.
//!
//! Client and server share the machine's two cores. The client's directory is D-TA 1's
//! own index; both sides' index directories keep their answers while the chain's tip
//! stays the same, as in production, and the D-TA keeps the IdP's checked keys for a
//! minute, so these are steady-state rates.

use milagro_regtest::RegtestControls as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use bytes::Bytes;
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_mpin::Pin;
use milagro_pat_client::authenticate::authenticate;
use milagro_pat_client::mpin_key::{request_shares, ClientShareRequest, MpinKey};
use milagro_tls::http::Connection;
use milagro_tls::{LocalIdentity, Options, PeerDirectory};
use milagro_wire::shares::NoOptions;
use serde::Serialize;
use tokio::sync::Mutex;

use super::kex::{anchored, anchored_with_key};
use super::levels::{best, level, tabulate_levels, Level};
use super::mpin::{raw, Raw};
use super::stats::{Latency, Table};
use crate::demo::mpin::{Chain, MfaWorld};

/// What `bench mfa` runs.
#[derive(Debug, Clone, Serialize)]
pub struct MfaParams {
    /// Requests per kind and concurrency level (client shares: a quarter of it).
    pub requests: usize,
    /// Concurrent clients.
    pub concurrency: Vec<usize>,
}

/// Every figure.
#[derive(Debug, Serialize)]
pub struct MfaReport {
    /// Raw: one G1 scalar multiplication.
    pub raw_g1_mul: Latency,
    /// Raw: one G2 scalar multiplication.
    pub raw_g2_mul: Latency,
    /// Raw: one pairing.
    pub raw_pairing: Latency,
    /// A Milagro TLS session and a 404.
    pub session_only: Vec<Level>,
    /// Server-secret shares through the API.
    pub server_shares: Vec<Level>,
    /// Client-secret shares and time permits through the API.
    pub client_shares: Vec<Level>,
    /// Server-secret shares, each client keeping one session open for all its requests.
    pub server_shares_kept_alive: Vec<Level>,
    /// Client-secret shares and time permits, each client keeping one session open.
    pub client_shares_kept_alive: Vec<Level>,
    /// M-Pin logins through the API.
    pub logins: Vec<Level>,
    /// The best server-share rate over the raw G2 multiplication rate (one thread).
    pub server_shares_over_raw_g2: f64,
    /// The best client-share rate over the raw G1 multiplication rate (one thread).
    pub client_shares_over_raw_g1: f64,
    /// The same, sessions kept alive (no handshake per share).
    pub client_shares_kept_alive_over_raw_g1: f64,
    /// The best login rate over the raw pairing rate (one thread).
    pub logins_over_raw_pairing: f64,
}

const PIN: u16 = 2468;

/// Sets up the node and the services, then measures.
pub fn measure(
    params: &MfaParams,
    calls: usize,
    dir: &Path,
    table: &mut Table,
) -> Result<MfaReport> {
    let started = super::BenchNode::start()?;
    let (bitcoind, node, miner) = (&started.bitcoind, &started.rpc, &started.miner);
    let rpc_url = bitcoind.rpc_url();
    let chain = Chain {
        node,
        rpc_url: &rpc_url,
        cookie: &bitcoind.params.cookie_file,
        miner,
    };

    eprintln!("setting up: an IdP, two D-TAs, an authentication server, a PAT");
    let idp = crate::demo::idp::start_idp(dir, &rpc_url, chain.cookie, "Milagro bench IdP")?;
    let issuer = idp.state().issuer().to_owned();
    idp.state().users.add(
        crate::demo::idp::USER,
        crate::demo::idp::PASSWORD,
        milagro_service::unix_now(),
    )?;
    let http = crate::cli::http_builder()?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let client_id = crate::demo::idp::register_device_client(&http, &issuer)?;
    let (pat_key, pat) = anchored_with_key(node, Role::Pat, "bench pat")?;
    let pat = Arc::new(pat);
    let fetcher = Arc::new(anchored(node, Role::AuthServer, "bench share fetcher")?);
    let idp_digest = idp.state().identity.digest().to_string();
    let world = MfaWorld::start(
        &chain,
        dir,
        (&issuer, &idp_digest, &client_id),
        &[fetcher.birth_certificate().digest().to_string()],
    )?;
    node.generate_to_address(1, miner)?;
    let id_token = crate::demo::idp::device_id_token(&http, &issuer, &client_id, &pat_key)?;
    let dta = &world.dtas[0];
    let (dta_digest, dta_addr) = (
        dta.state().identity.digest(),
        dta.state().share_listen.to_string(),
    );
    let directory: Arc<dyn PeerDirectory> = dta.state().directory.clone();
    let options = Options {
        min_depth: 1,
        ..Options::default()
    };

    let Raw {
        g1_mul: raw_g1_mul,
        g2_mul: raw_g2_mul,
        pairing: raw_pairing,
    } = raw(calls)?;

    let runtime = crate::cli::pat_tls::runtime()?;
    let n = params.requests;
    let mut session_only = Vec::new();
    let mut server_shares = Vec::new();
    let mut client_shares = Vec::new();
    let mut server_shares_kept_alive = Vec::new();
    let mut client_shares_kept_alive = Vec::new();
    let mut logins = Vec::new();
    let mut shares = Vec::new();
    for other in &world.dtas {
        let digest = other.state().identity.digest();
        let addr = other.state().share_listen.to_string();
        shares.push(runtime.block_on(request_shares(
            &pat,
            digest,
            &addr,
            directory.clone(),
            &options,
            &ClientShareRequest {
                id_token: id_token.clone(),
                nonce_salt: None,
            },
        ))?);
    }
    let key = Arc::new(MpinKey::assemble(&shares, Pin::new(PIN)?)?);
    // One client, as a device keeps one: its connections are reused between logins.
    let auth_client = crate::cli::service_client(&world.authserver.local_url())?;
    // The bodies the device library sends, serialized once.
    let no_options = Bytes::from(serde_json::to_vec(&NoOptions {})?);
    let client_share = Bytes::from(serde_json::to_vec(&ClientShareRequest {
        id_token: id_token.clone(),
        nonce_salt: None,
    })?);
    for &concurrency in &params.concurrency {
        eprintln!("concurrency {concurrency}");
        let request = |path: &'static str, body: Bytes, who: Arc<LocalIdentity>| {
            let (directory, options, addr) = (directory.clone(), options.clone(), dta_addr.clone());
            async move { share_request(&who, dta_digest, &addr, directory, &options, path, body).await }
        };
        session_only.push(runtime.block_on(level("session", n, concurrency, || {
            request("/v1/nothing", no_options.clone(), fetcher.clone())
        }))?);
        server_shares.push(runtime.block_on(level("server share", n, concurrency, || {
            request("/v1/shares/server", no_options.clone(), fetcher.clone())
        }))?);
        client_shares.push(runtime.block_on(level(
            "client share",
            (n / 4).max(1),
            concurrency,
            || request("/v1/shares/client", client_share.clone(), pat.clone()),
        ))?);
        // One session per client, opened before the clock starts, reused for every
        // request that client makes (`level` deals requests round-robin, as below).
        let kept_alive = |who: &Arc<LocalIdentity>| -> Result<Vec<Arc<Mutex<Connection>>>> {
            runtime.block_on(async {
                let mut sessions = Vec::with_capacity(concurrency);
                for _ in 0..concurrency {
                    let connection =
                        connect(who, dta_digest, &dta_addr, directory.clone(), &options).await?;
                    sessions.push(Arc::new(Mutex::new(connection)));
                }
                Ok(sessions)
            })
        };
        let on_kept = |sessions: Vec<Arc<Mutex<Connection>>>, path: &'static str, body: Bytes| {
            let next = AtomicUsize::new(0);
            move || {
                let session =
                    sessions[next.fetch_add(1, Ordering::Relaxed) % sessions.len()].clone();
                let body = body.clone();
                async move { post(&mut *session.lock().await, path, body).await }
            }
        };
        let sessions = kept_alive(&fetcher)?;
        server_shares_kept_alive.push(runtime.block_on(level(
            "server share, kept alive",
            n,
            concurrency,
            on_kept(sessions, "/v1/shares/server", no_options.clone()),
        ))?);
        let sessions = kept_alive(&pat)?;
        client_shares_kept_alive.push(runtime.block_on(level(
            "client share, kept alive",
            (n / 4).max(1),
            concurrency,
            on_kept(sessions, "/v1/shares/client", client_share.clone()),
        ))?);
        // The device has one identity, and the server checks one proof of an identity at
        // a time (a second gets 429 `proof_in_flight`, so that guesses are counted
        // exactly): its logins are timed one after another only.
        if concurrency > 1 {
            continue;
        }
        logins.push(runtime.block_on(level("login", n, concurrency, || {
            let (key, client) = (key.clone(), auth_client.clone());
            async move {
                tokio::task::spawn_blocking(move || -> Result<()> {
                    authenticate(&client, &key, Pin::new(PIN)?)?;
                    Ok(())
                })
                .await?
            }
        }))?);
    }
    world.stop();
    idp.stop();

    let report = MfaReport {
        server_shares_over_raw_g2: best(&server_shares) / raw_g2_mul.ops_per_s,
        client_shares_over_raw_g1: best(&client_shares) / raw_g1_mul.ops_per_s,
        client_shares_kept_alive_over_raw_g1: best(&client_shares_kept_alive)
            / raw_g1_mul.ops_per_s,
        logins_over_raw_pairing: best(&logins) / raw_pairing.ops_per_s,
        raw_g1_mul,
        raw_g2_mul,
        raw_pairing,
        session_only,
        server_shares,
        client_shares,
        server_shares_kept_alive,
        client_shares_kept_alive,
        logins,
    };
    tabulate(&report, table);
    Ok(report)
}

/// One request over a fresh Milagro TLS session to the D-TA: `POST path` with `body`;
/// a 404 for an unknown path, a 200 otherwise.
async fn share_request(
    who: &LocalIdentity,
    dta: Digest,
    addr: &str,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
    path: &'static str,
    body: Bytes,
) -> Result<()> {
    let mut connection = connect(who, dta, addr, directory, options).await?;
    post(&mut connection, path, body).await
}

/// A Milagro TLS session to the D-TA at `addr`, ready for HTTP requests.
async fn connect(
    who: &LocalIdentity,
    dta: Digest,
    addr: &str,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Connection> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let session = milagro_tls::connect(tcp, who, dta, directory, options).await?;
    Ok(Connection::open(session).await?)
}

/// `POST path` with `body` on `connection`; a 404 for an unknown path, a 200 otherwise.
async fn post(connection: &mut Connection, path: &'static str, body: Bytes) -> Result<()> {
    let request = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "dta")
        .header("content-type", "application/json")
        .body(body)?;
    let response = connection.send(request).await?;
    let expected = if path == "/v1/nothing" { 404 } else { 200 };
    ensure!(
        response.status().as_u16() == expected,
        "{path} answered {}: {}",
        response.status(),
        String::from_utf8_lossy(response.body())
    );
    Ok(())
}

fn tabulate(report: &MfaReport, table: &mut Table) {
    table.section("raw BLS12-381 (miracl_core), one thread");
    table.latency("G1 scalar multiplication", &report.raw_g1_mul, "");
    table.latency("G2 scalar multiplication", &report.raw_g2_mul, "");
    table.latency("pairing (ate + final exp.)", &report.raw_pairing, "");
    table.section("through the APIs over loopback (connect → checked answer)");
    tabulate_levels(
        table,
        &[
            ("milagro TLS session + 404", &report.session_only),
            ("server share (s·Q)", &report.server_shares),
            ("client share + permit", &report.client_shares),
            (
                "server share, session kept alive",
                &report.server_shares_kept_alive,
            ),
            (
                "client share, session kept alive",
                &report.client_shares_kept_alive,
            ),
            ("M-Pin login (2 passes)", &report.logins),
        ],
    );
    table.row(
        "server shares / raw G2 muls",
        format!("{:.3}×", report.server_shares_over_raw_g2),
        "best level vs one thread",
    );
    table.row(
        "client shares / raw G1 muls",
        format!("{:.3}×", report.client_shares_over_raw_g1),
        "best level vs one thread",
    );
    table.row(
        "client shares kept alive / raw G1 muls",
        format!("{:.3}×", report.client_shares_kept_alive_over_raw_g1),
        "best level vs one thread",
    );
    table.row(
        "logins / raw pairings",
        format!("{:.3}×", report.logins_over_raw_pairing),
        "best level vs one thread",
    );
}
