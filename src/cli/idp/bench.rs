//! `milagro idp bench`: token-endpoint throughput next to the raw ES256 signing rate.
//!
//! Starts a private regtest node and an IdP on loopback (anchored, like in production),
//! registers a confidential client over HTTP, and mints authorization codes with PKCE
//! challenges directly in the IdP's store (minting is setup: the person's login, argon2
//! included, is not what is measured). Then, for each concurrency level, that many
//! threads each redeem their share of the codes at `POST /token` over real HTTP with
//! keep-alive: client authentication (Basic, SHA-256 compare), the code's single-use
//! transaction in sled, the PKCE S256 check, an access token and a refresh token stored,
//! and an ID token built and signed with ES256. Each exchange is timed (p50, p99) and the
//! level's wall-clock rate is reported. In the same run, one thread signs ID-token-sized
//! messages with the same ES256 code: the ratio of the two rates says how much of an
//! exchange the signature is. It also times what DPoP adds to a device's login (making
//! and checking a proof, a key's thumbprint) next to one ES256K verification
//! ([`dpop::dpop_costs`]), and what HTTPS costs a request next to plain HTTP, on a new
//! connection and kept alive ([`https::https_costs`]). With `--growth N`, what N sign-ins
//! leave in the database and what the sweep of expired rows takes back
//! ([`growth::growth`]).

use milagro_regtest::RegtestControls as _;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use clap::Args;
use milagro_idp::authentication::Authenticated;
use milagro_idp::grants::Authorization;
use milagro_idp::keys::Es256Key;
use serde_json::json;

use super::print_json;

mod dpop;
mod growth;
mod https;

const REDIRECT: &str = "https://rp.bench.milagro.test/cb";
/// A PKCE verifier and its S256 challenge (RFC 7636 Appendix B).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `milagro idp bench`
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Code exchanges per concurrency level.
    #[arg(long, default_value_t = 2_000)]
    pub exchanges: usize,
    /// Concurrency levels (client threads), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub concurrency: Vec<usize>,
    /// Seconds of raw ES256 signing.
    #[arg(long, default_value_t = 2.0)]
    pub sign_secs: f64,
    /// Sign-ins to grow the database by before measuring it and its sweep (0: skip).
    #[arg(long, default_value_t = 0)]
    pub growth: usize,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> Result<()> {
    ensure!(args.exchanges > 0, "--exchanges must be at least 1");
    let dir = tempfile::tempdir()?;
    eprintln!("starting a regtest node and an IdP on loopback ...");
    let exe = milagro_regtest::bitcoind_exe()?;
    let mut conf = bitcoind::Conf::default();
    conf.args.extend(milagro_regtest::NODE_ARGS);
    let node = bitcoind::BitcoinD::with_conf(&exe, &conf).context("cannot start bitcoind")?;
    let rpc = milagro_registry::bitcoind::BitcoindRpc::with_cookie(
        node.rpc_url(),
        &node.params.cookie_file,
    );
    let miner = rpc.wallet_new_address()?;
    rpc.generate_to_address(101, &miner)?;
    let idp = crate::demo::idp::start_idp(
        dir.path(),
        &node.rpc_url(),
        &node.params.cookie_file,
        "Milagro bench IdP",
    )?;
    let state = idp.state().clone();
    let user = state
        .users
        .add("bench", "bench password", milagro_service::unix_now())?;
    let http = crate::cli::http_builder()?
        .timeout(Duration::from_secs(30))
        .build()?;
    let metadata = json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"]});
    let (client_id, secret) =
        crate::demo::idp::register_client(&http, &idp.local_url(), &metadata)?;

    let mut levels = Vec::new();
    for &threads in &args.concurrency {
        let threads = threads.max(1);
        let now = milagro_service::unix_now();
        let codes: Vec<String> = (0..args.exchanges)
            .map(|_| {
                let who = Authenticated::by_password(&user.subject, now);
                let auth = Authorization::new(&client_id, &who, "openid profile", Some("n".into()));
                let code = state
                    .grants
                    .issue_code(auth, REDIRECT, Some(CHALLENGE.into()), now + 3600)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(code.to_string())
            })
            .collect::<Result<_>>()?;
        let chunks: Vec<Vec<String>> = codes
            .chunks(codes.len().div_ceil(threads))
            .map(<[String]>::to_vec)
            .collect();
        let url = format!("{}/token", idp.local_url());
        let start = Instant::now();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (url, id, secret) = (url.clone(), client_id.clone(), secret.clone());
                std::thread::spawn(move || exchange_all(&url, &id, &secret, &chunk))
            })
            .collect();
        let mut samples = Vec::new();
        for handle in handles {
            samples.extend(
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("a client thread panicked"))??,
            );
        }
        let seconds = start.elapsed().as_secs_f64();
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        levels.push(json!({
            "concurrency": threads,
            "exchanges": samples.len(),
            "exchanges_per_s": samples.len() as f64 / seconds,
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
        }));
    }
    let growth = if args.growth > 0 {
        let url = format!("{}/token", idp.local_url());
        let probe = args.exchanges.min(1000);
        let snapshots = growth::growth(
            &state,
            &url,
            (&client_id, &secret),
            &user.subject,
            args.growth,
            probe,
        )?;
        eprintln!(
            "\nIdP database after {} sign-ins (exchange rate: {probe} exchanges, concurrency 1)",
            args.growth
        );
        for s in &snapshots {
            eprintln!(
                "{:>36}: {:>10} bytes on disk, {:>7} code and token rows, {:>6.0} exchanges/s",
                s.after, s.size_on_disk, s.code_and_token_rows, s.exchanges_per_s
            );
        }
        Some(snapshots)
    } else {
        None
    };
    let https = https::https_costs(
        &idp,
        dir.path(),
        &node.rpc_url(),
        &node.params.cookie_file,
        4,
        args.sign_secs.min(3.0),
    )?;
    eprintln!(
        "GET /.well-known/openid-configuration, {} threads: new connection per request: \
         plain {:.0}/s, HTTPS {:.0}/s (full TLS handshake each); kept alive: plain {:.0}/s, \
         HTTPS {:.0}/s",
        https.threads,
        https.plain_new_connection_per_s,
        https.https_new_connection_per_s,
        https.plain_keep_alive_per_s,
        https.https_keep_alive_per_s
    );
    idp.stop();

    let signs_per_s = es256_rate(args.sign_secs);
    let best = levels
        .iter()
        .filter_map(|l| l["exchanges_per_s"].as_f64())
        .fold(0.0, f64::max);
    eprintln!(
        "\nIdP token endpoint (authorization_code + PKCE, ID token signed ES256), HTTP on loopback"
    );
    eprintln!(
        "{:>12} {:>14} {:>10} {:>10}",
        "concurrency", "exchanges/s", "p50 ms", "p99 ms"
    );
    for level in &levels {
        eprintln!(
            "{:>12} {:>14.0} {:>10.2} {:>10.2}",
            level["concurrency"],
            level["exchanges_per_s"].as_f64().unwrap_or_default(),
            level["p50_ms"].as_f64().unwrap_or_default(),
            level["p99_ms"].as_f64().unwrap_or_default()
        );
    }
    eprintln!("raw ES256 signatures/s (one thread): {signs_per_s:.0}");
    eprintln!(
        "best exchanges/s ÷ ES256 signs/s: {:.3}",
        best / signs_per_s
    );
    let dpop = dpop::dpop_costs(args.sign_secs.min(2.0));
    eprintln!(
        "DPoP (one thread): proof sign {:.1} µs, proof verify {:.1} µs, thumbprint {:.1} µs; \
         ES256K verify alone {:.1} µs",
        dpop.sign_us, dpop.verify_us, dpop.thumbprint_us, dpop.es256k_verify_us
    );
    print_json(&json!({
        "growth": growth,
        "https": https,
        "dpop": dpop,
        "levels": levels,
        "es256_signs_per_s": signs_per_s,
        "best_exchanges_per_s": best,
        "best_exchanges_per_es256_sign": best / signs_per_s,
        "cores": std::thread::available_parallelism().map_or(1, usize::from),
    }))
}

/// Redeems every code in `codes`; returns each exchange's time in milliseconds.
pub(super) fn exchange_all(
    url: &str,
    id: &str,
    secret: &str,
    codes: &[String],
) -> Result<Vec<f64>> {
    let http = crate::cli::http_builder()?
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut samples = Vec::with_capacity(codes.len());
    for code in codes {
        let body = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
            REDIRECT.replace(':', "%3A").replace('/', "%2F")
        );
        let start = Instant::now();
        let response = http
            .post(url)
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()?;
        let status = response.status();
        let text = response.text()?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
        ensure!(status.is_success(), "exchange failed: {status} {text}");
    }
    Ok(samples)
}

/// ES256 signatures per second over a typical ID token's signing input, one thread.
fn es256_rate(seconds: f64) -> f64 {
    let key = Es256Key::generate(0);
    let header =
        B64URL.encode(br#"{"alg":"ES256","kid":"0123456789012345678901234567890123456789012"}"#);
    let claims = B64URL.encode(
        json!({"iss": "http://127.0.0.1:8081", "sub": "abcdefghijklmnopqrstuv", "aud": ["abcdefghijklmnopqrstuv"],
               "exp": 1_700_000_600u64, "iat": 1_700_000_000u64, "auth_time": 1_700_000_000u64, "nonce": "n",
               "at_hash": "abcdefghijklmnopqrstuv", "preferred_username": "bench"})
        .to_string(),
    );
    let input = format!("{header}.{claims}");
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..100 {
            std::hint::black_box(key.sign_jws(std::hint::black_box(input.as_bytes())));
        }
        count += 100;
    }
    count as f64 / start.elapsed().as_secs_f64()
}
