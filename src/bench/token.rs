//! `bench token`: the IdP's token endpoint side by side with `oidc-provider` (npm), in one
//! run, under one load driver ([`token_load`](super::token_load)): authorization-code
//! exchanges per second at several concurrency levels, each with client authentication
//! (`client_secret_basic`), PKCE S256 and an ES256 ID token; next to the raw costs that
//! bound one exchange at the IdP, measured in the same run.
//!
//! Setup, untimed: a private regtest node (the IdP anchors through it), the IdP on
//! loopback with a user and one confidential client registered (RFC 7591), and
//! `oidc-provider` under Node ([`token_op`](super::token_op)) with the same kind of client.
//! Each level runs in rounds of [`ROUND`] codes: each provider mints them through its
//! authorization endpoint, in a login session (the IdP's: one password login;
//! `oidc-provider`'s: one pass through its interaction), then redeems them; only the
//! `POST /token` redemptions are timed, and a level's rate is its exchanges over the sum of
//! its rounds' times. One
//! exchange per provider is checked first: its ID token must be signed ES256 at both, so
//! the comparison is of the same work.
//!
//! The raw costs: one ES256 signature by the IdP's signing key (the `p256` crate it
//! signs with), one client-secret check as the IdP makes it (the stored client's
//! [`milagro_idp::clients::Client::secret_matches`]), and one storage write as the IdP
//! makes it (a token row written durably by [`milagro_idp::grants::Grants::issue_token`]
//! into its own database).

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_idp::authentication::Authenticated;
use milagro_idp::grants::{Authorization, TokenKind};
use serde::Serialize;
use serde_json::json;

use super::levels::{tabulate_levels, Level};
use super::stats::{latency, num, Latency, Table};
use super::token_load::{exchanges, mint, probe_id_token, Jar, Provider};
use super::token_op::OidcProvider;
use crate::demo::idp::{
    code_request, free_port, password_session, start_idp_on, PASSWORD, PASSWORDS_ON, USER,
};

const REDIRECT: &str = "https://rp.bench.milagro.test/cb";
/// Codes minted and redeemed per round of a level. `oidc-provider`'s default storage is an
/// in-memory LRU of 1,000 entries (codes, tokens, its grant and session together): more
/// codes waiting at once would push out the first before they are redeemed.
const ROUND: usize = 300;

/// What `bench token` measures.
#[derive(Debug, Clone)]
pub struct TokenParams {
    /// Timed exchanges per provider and concurrency level.
    pub exchanges: usize,
    /// Concurrent clients.
    pub concurrency: Vec<usize>,
    /// Timed calls per raw figure.
    pub calls: usize,
}

/// One concurrency level's ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Concurrent clients.
    pub concurrency: usize,
    /// The IdP's exchanges/s over `oidc-provider`'s.
    pub ours_over_oidc_provider: f64,
}

/// Every figure.
#[derive(Debug, Serialize)]
pub struct TokenReport {
    /// The IdP's code exchanges at each level.
    pub ours: Vec<Level>,
    /// `oidc-provider`'s.
    pub oidc_provider: Vec<Level>,
    /// Ours over theirs, per level.
    pub ratios: Vec<Ratio>,
    /// The `alg` of each one's ID tokens (both ES256).
    pub id_token_alg: [String; 2],
    /// One ES256 signature of an ID token's signing input by the IdP's key.
    pub es256_sign: Latency,
    /// One client-secret check as the IdP makes it.
    pub client_secret_check: Latency,
    /// One durable token write as the IdP makes it.
    pub storage_write: Latency,
}

/// Runs the benchmark in `dir`.
pub fn measure(params: &TokenParams, dir: &Path, table: &mut Table) -> Result<TokenReport> {
    let started = super::BenchNode::start()?;
    let rpc_url = started.bitcoind.rpc_url();
    let cookie = &started.bitcoind.params.cookie_file;
    eprintln!(
        "setting up: an IdP and oidc-provider {}",
        milagro_regtest::npm::OIDC_PROVIDER
    );
    // Codes are minted in a session of a password login (only the exchanges are timed).
    let idp = start_idp_on(
        dir,
        &rpc_url,
        cookie,
        "Milagro bench IdP",
        free_port()?,
        PASSWORDS_ON,
    )?;
    let issuer = idp.state().issuer().to_owned();
    idp.state()
        .users
        .add(USER, PASSWORD, milagro_service::unix_now())?;
    let http = crate::cli::http_builder()?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let client = crate::demo::idp::register_client(
        &http,
        &issuer,
        &json!({"redirect_uris": [REDIRECT], "client_name": "Bench RP",
                "token_endpoint_auth_method": "client_secret_basic"}),
    )?;
    let ours = Provider::discover(&http, "milagro IdP", &issuer, client, REDIRECT)?;
    let mut our_jar = Jar::default();
    let first = code_request(&issuer, &ours.client_id, REDIRECT, "openid", "bench");
    let session = password_session(&http, &issuer, &first.url, USER, PASSWORD)?;
    our_jar.set(&session);

    let secret = B64URL.encode(crate::demo::idp::rand_bytes());
    let node = OidcProvider::start("bench-rp", &secret, REDIRECT)?;
    let theirs = Provider::discover(
        &http,
        "oidc-provider",
        &node.issuer,
        ("bench-rp".to_owned(), secret),
        REDIRECT,
    )?;
    let mut their_jar = Jar::default();

    let mut id_tokens = Vec::new();
    for (provider, jar) in [(&ours, &mut our_jar), (&theirs, &mut their_jar)] {
        let code = mint(&http, provider, jar, 1)?;
        let id_token = probe_id_token(provider, &code[0])?;
        id_tokens.push(id_token);
    }
    let algs = id_tokens
        .iter()
        .map(|t| alg_of(t))
        .collect::<Result<Vec<_>>>()?;
    ensure!(
        algs.iter().all(|a| a == "ES256"),
        "the ID tokens are not both ES256: {algs:?}"
    );

    let (mut our_levels, mut their_levels) = (Vec::new(), Vec::new());
    for &concurrency in &params.concurrency {
        eprintln!("concurrency {concurrency}");
        for (provider, jar, levels) in [
            (&ours, &mut our_jar, &mut our_levels),
            (&theirs, &mut their_jar, &mut their_levels),
        ] {
            let mut rounds = Vec::new();
            let mut left = params.exchanges;
            while left > 0 {
                let n = left.min(ROUND);
                left -= n;
                let codes = mint(&http, provider, jar, n)?;
                rounds.push(exchanges(provider, &codes, concurrency)?);
            }
            levels.push(Level::of_rounds(concurrency, rounds));
        }
    }
    drop(node);

    let now = milagro_service::unix_now();
    let state = idp.state();
    let key = state.keys.signer(now).context("no signing key")?;
    let signing_input = id_tokens[0]
        .rsplit_once('.')
        .map(|(input, _)| input.to_owned())
        .context("the ID token is not a JWS")?;
    let es256_sign = latency(params.calls, || {
        std::hint::black_box(key.sign_jws(signing_input.as_bytes())).context("signing")?;
        Ok(())
    })?;
    let stored = state
        .clients
        .get(&ours.client_id)?
        .context("the client is not stored")?;
    let client_secret_check = latency(params.calls, || {
        ensure!(stored.secret_matches(&ours.client_secret), "the secret");
        Ok(())
    })?;
    let who = Authenticated::by_password("bench", now);
    let auth = Authorization::new(&ours.client_id, &who, "openid", None);
    let storage_write = latency(params.calls, || {
        state
            .grants
            .issue_token(TokenKind::Access, &auth, now + 60)?;
        Ok(())
    })?;
    idp.stop();

    let ratios = our_levels
        .iter()
        .zip(&their_levels)
        .map(|(o, t)| Ratio {
            concurrency: o.concurrency,
            ours_over_oidc_provider: o.per_s / t.per_s.max(1e-9),
        })
        .collect();
    let report = TokenReport {
        ours: our_levels,
        oidc_provider: their_levels,
        ratios,
        id_token_alg: [algs[0].clone(), algs[1].clone()],
        es256_sign,
        client_secret_check,
        storage_write,
    };
    tabulate(&report, table);
    Ok(report)
}

/// The `alg` of a compact JWS's header.
fn alg_of(jws: &str) -> Result<String> {
    let header = jws.split('.').next().unwrap_or_default();
    let header: serde_json::Value = serde_json::from_slice(&B64URL.decode(header)?)?;
    Ok(header["alg"].as_str().unwrap_or_default().to_owned())
}

fn tabulate(report: &TokenReport, table: &mut Table) {
    table.section("code exchanges (client_secret_basic, PKCE S256, ES256 ID token)");
    tabulate_levels(
        table,
        &[
            ("milagro IdP", &report.ours),
            ("oidc-provider", &report.oidc_provider),
        ],
    );
    for ratio in &report.ratios {
        table.row(
            &format!("ours / oidc-provider, c{}", ratio.concurrency),
            format!("{}×", num(ratio.ours_over_oidc_provider)),
            "",
        );
    }
    table.section("raw costs of one exchange at the IdP, same run");
    table.latency("ES256 signature (the IdP's key)", &report.es256_sign, "");
    table.latency("client secret check", &report.client_secret_check, "");
    table.latency(
        "durable token write (sled)",
        &report.storage_write,
        "insert + flush (one per exchange)",
    );
}
