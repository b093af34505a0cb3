//! `bench signin`: M-Pin sign-ins per second end to end at the IdP (authorize → M-Pin →
//! token), next to the raw pairing, the server's M-Pin check in pairings, and one
//! argon2id password check with the IdP's parameters, all in the same run.
//!
//! A private regtest node, an IdP, two D-TAs (and the authentication server
//! [`crate::demo::mpin::MfaWorld`] brings), anchored as in `milagro demo`; the IdP is then
//! restarted with `[mpin]` naming both D-TAs, which list it in their `authservers`. A
//! device (an anchored PAT) gets its M-Pin key from both D-TAs with an ID token of the
//! IdP and is registered as its user's device. One sign-in, timed as a whole, is what a
//! relying party, a browser and the device do, one after another on this machine:
//!
//! 1. the relying party's authorization request with PKCE: `GET /authorize` (the sign-in
//!    page: a new access number, a QR code);
//! 2. the device: `GET /v1/signin/request`, then both M-Pin passes
//!    (`/v1/signin/commit`, `/v1/signin/prove`) through the device library: the client's
//!    two passes and the server's one multi-pairing check;
//! 3. the browser's reload: `GET /authorize/wait` → 303 with the code;
//! 4. the relying party: `POST /token` (client_secret_basic, PKCE) → an ES256 ID token.
//!
//! One device signs in at a time (the verifier checks one proof of an identity at a time).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::keys::CompressedKey;
use milagro_idp::devices::Registration;
use milagro_mpin::Pin;
use milagro_pat_client::mpin_key::{request_shares, ClientShareRequest, MpinKey};
use milagro_pat_client::signin::{approve, lookup};
use milagro_regtest::RegtestControls as _;
use milagro_tls::{Options, PeerDirectory};
use milagro_wire::idp::TokenAnswer;
use serde::Serialize;
use serde_json::json;

use super::kex::anchored_with_key;
use super::mpin::MpinReport;
use super::stats::{latency, num, Latency, Table};
use crate::demo::idp::{
    code_request, encode, start_idp_on, CodeRequest, PASSWORD, PASSWORDS_ON, USER,
};
use crate::demo::mpin::{Chain, MfaWorld};
use crate::demo::signin::{code_after_approval, SigninPage};

const PIN: u16 = 4321;
const REDIRECT: &str = "https://rp.bench.milagro.test/cb";

/// Every figure.
#[derive(Debug, Serialize)]
pub struct SigninReport {
    /// One sign-in end to end (authorize → M-Pin → token).
    pub sign_in: Latency,
    /// The M-Pin part alone, as the device sees it (request, commit, prove).
    pub device_approval: Latency,
    /// One argon2id password check with the IdP's parameters (its user store).
    pub argon2id_check: Latency,
    /// The raw operations and the server's check, from `bench mpin` in the same run.
    pub mpin: MpinReport,
    /// Sign-ins per second over password checks per second.
    pub sign_ins_over_argon2id: f64,
    /// A whole sign-in's time in raw pairings.
    pub sign_in_in_pairings: f64,
}

/// Runs the benchmark: `signins` timed sign-ins, `calls` per raw figure and `checks`
/// password checks, in `dir`.
pub fn measure(
    signins: usize,
    calls: usize,
    checks: usize,
    dir: &Path,
    table: &mut Table,
) -> Result<SigninReport> {
    let started = super::BenchNode::start()?;
    let (bitcoind, node, miner) = (&started.bitcoind, &started.rpc, &started.miner);
    let rpc_url = bitcoind.rpc_url();
    let chain = Chain {
        node,
        rpc_url: &rpc_url,
        cookie: &bitcoind.params.cookie_file,
        miner,
    };

    eprintln!("setting up: an IdP, two D-TAs, a PAT; the IdP restarted with [mpin]");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let name = "Milagro bench IdP";
    let idp = start_idp_on(dir, &rpc_url, chain.cookie, name, port, PASSWORDS_ON)?;
    let issuer = idp.state().issuer().to_owned();
    let subject = idp
        .state()
        .users
        .add(USER, PASSWORD, milagro_service::unix_now())?
        .subject;
    let http = crate::cli::http_builder()?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let client_id = crate::demo::idp::register_device_client(&http, &issuer)?;
    let (pat_key, pat) = anchored_with_key(node, Role::Pat, "bench signin pat")?;
    let idp_digest = idp.state().identity.digest().to_string();
    let world = MfaWorld::start(
        &chain,
        dir,
        (&issuer, &idp_digest, &client_id),
        std::slice::from_ref(&idp_digest),
    )?;
    idp.stop();
    let peers = world.mpin_dtas();
    // Lockouts are not what is measured: the limits as high as the configuration allows.
    let mpin = format!(
        "{PASSWORDS_ON}[mpin]\nmin_peer_depth = 1\nmax_signins = 1000000\n{peers}\
         [mpin.login]\nmax_failures = 100\nmax_pending_per_identity = 100\n"
    );
    let idp = start_idp_on(dir, &rpc_url, chain.cookie, name, port, &mpin)?;
    node.generate_to_address(1, miner)?;
    let signin = idp.state().mpin.clone().context("the IdP has no [mpin]")?;
    crate::demo::wait_for(Duration::from_secs(120), "the IdP's server secret", || {
        Ok(signin.verifier.server_secret.secret().map(|_| ()))
    })?;

    // The device's key, from both D-TAs, and its registration at the IdP.
    let id_token = crate::demo::idp::device_id_token(&http, &issuer, &client_id, &pat_key)?;
    let directory: Arc<dyn PeerDirectory> = world.dtas[0].state().directory.clone();
    let options = Options {
        min_depth: 1,
        ..Options::default()
    };
    let runtime = crate::cli::pat_tls::runtime()?;
    let mut shares = Vec::new();
    for dta in &world.dtas {
        shares.push(runtime.block_on(request_shares(
            &pat,
            dta.state().identity.digest(),
            &dta.state().share_listen.to_string(),
            directory.clone(),
            &options,
            &ClientShareRequest {
                id_token: id_token.clone(),
                nonce_salt: None,
            },
        ))?);
    }
    let key = MpinKey::assemble(&shares, Pin::new(PIN)?)?;
    let public = pat_key.public_key();
    idp.state().registered_devices.register(&Registration {
        subject: subject.clone(),
        device_key: CompressedKey::from(&public),
        mpin_id: String::from_utf8(key.id.as_bytes().to_vec())?,
        registered: milagro_service::unix_now(),
    })?;
    let (rp_id, rp_secret) = crate::demo::idp::register_client(
        &http,
        &issuer,
        &json!({"redirect_uris": [REDIRECT], "client_name": "Bench RP"}),
    )?;
    let device = crate::cli::service_client(&issuer)?;

    let mut approvals = Vec::with_capacity(signins);
    let mut one_sign_in = || -> Result<()> {
        let CodeRequest { verifier, url, .. } =
            code_request(&issuer, &rp_id, REDIRECT, "openid", "bench");
        let SigninPage { number, handle, .. } = SigninPage::open(&http, &url)?;
        let started = std::time::Instant::now();
        lookup(&device, &number)?;
        approve(&device, &key, Pin::new(PIN)?, &number)?;
        approvals.push(started.elapsed().as_secs_f64() * 1e6);
        let code = code_after_approval(&http, &issuer, &handle)?;
        let tokens: TokenAnswer = http
            .post(format!("{issuer}/token"))
            .basic_auth(&rp_id, Some(&rp_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ]))
            .send()?
            .json()?;
        ensure!(!tokens.id_token.is_empty(), "no id token");
        Ok(())
    };
    let sign_in = latency(signins, &mut one_sign_in)?;
    // `latency` warms up with a tenth of the calls first: those approvals are not timed.
    let warm_up = approvals.len().saturating_sub(signins.max(1));
    let device_approval = super::stats::summarize(approvals.split_off(warm_up));
    let users = idp.state().users.clone();
    let argon2id_check = latency(checks, || {
        ensure!(
            users.authenticate(USER, PASSWORD)?.is_some(),
            "the password check failed"
        );
        Ok(())
    })?;
    idp.stop();
    world.stop();

    let mut mpin_table = Table::default();
    let mpin = super::mpin::measure(calls, &mut mpin_table)?;
    let report = SigninReport {
        sign_ins_over_argon2id: sign_in.ops_per_s / argon2id_check.ops_per_s.max(1e-9),
        sign_in_in_pairings: sign_in.mean_us / mpin.raw_pairing.mean_us.max(1e-9),
        sign_in,
        device_approval,
        argon2id_check,
        mpin,
    };
    table.section("M-Pin sign-in at the IdP, end to end");
    table.latency(
        "sign-in (authorize → M-Pin → token)",
        &report.sign_in,
        format!("{} sign-ins/s", num(report.sign_in.ops_per_s)),
    );
    table.latency(
        "  of which the device's approval",
        &report.device_approval,
        "request + both passes",
    );
    table.latency(
        "argon2id check (the IdP's parameters)",
        &report.argon2id_check,
        format!(
            "sign-ins/s over password checks/s: {}",
            num(report.sign_ins_over_argon2id)
        ),
    );
    table.latency("pairing (ate + final exp.)", &report.mpin.raw_pairing, "");
    table.latency(
        "server M-Pin check (one multi-pairing)",
        &report.mpin.server_verify,
        format!("{:.2} pairings", report.mpin.server_verify_over_pairing),
    );
    table.row(
        "a whole sign-in",
        format!("{:.1} pairings", report.sign_in_in_pairings),
        "",
    );
    Ok(report)
}
