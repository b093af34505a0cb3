//! `idp bench`'s HTTPS figure: requests/s at the IdP over plain HTTP and over HTTPS, on a
//! new connection per request (a TCP connect, and for HTTPS a full TLS handshake: the
//! client keeps no session to resume) and on kept-alive connections, in the same run,
//! against two IdPs on one node that differ only by a `[tls]` section (a P-256
//! certificate of a throwaway CA). The request is `GET /.well-known/openid-configuration`,
//! the cheapest route, so the difference is the connection's cost.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use milagro_http_client::test_ca::TestCa;
use milagro_idp::config::Config;
use milagro_idp::{Idp, RunningIdp};
use serde::Serialize;

/// The four rates, requests/s with `threads` client threads.
#[derive(Debug, Serialize)]
pub struct HttpsCosts {
    pub threads: usize,
    pub plain_new_connection_per_s: f64,
    pub https_new_connection_per_s: f64,
    pub plain_keep_alive_per_s: f64,
    pub https_keep_alive_per_s: f64,
}

/// Starts an IdP with `[tls]` next to `plain` and measures both for `seconds` per figure.
pub fn https_costs(
    plain: &RunningIdp,
    dir: &Path,
    rpc_url: &str,
    cookie: &Path,
    threads: usize,
    seconds: f64,
) -> Result<HttpsCosts> {
    let ca = TestCa::new("bench CA");
    let leaf = ca.leaf(1);
    let tls_dir = dir.join("tls");
    std::fs::create_dir_all(&tls_dir)?;
    let (cert, key) = leaf.write(&tls_dir);
    let bundle = tls_dir.join("ca.pem");
    ca.write_bundle(&bundle);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = Config::parse(&format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = "https://127.0.0.1:{port}"
name = "Milagro bench IdP (HTTPS)"
state_dir = {state:?}
[node]
rpc_url = {rpc_url:?}
rpc_cookie = {cookie:?}
network = "regtest"
[tls]
cert = {cert:?}
key = {key:?}
"#,
        state = dir.join("idp-https"),
    ))?;
    let https = Idp::start(config)?;
    let trust = milagro_http_client::read_bundle(&bundle)?;
    let path = "/.well-known/openid-configuration";
    let (plain_url, https_url) = (
        format!("{}{path}", plain.local_url()),
        format!("{}{path}", https.local_url()),
    );
    Ok(HttpsCosts {
        threads,
        plain_new_connection_per_s: rate(&plain_url, &trust, true, threads, seconds)?,
        https_new_connection_per_s: rate(&https_url, &trust, true, threads, seconds)?,
        plain_keep_alive_per_s: rate(&plain_url, &trust, false, threads, seconds)?,
        https_keep_alive_per_s: rate(&https_url, &trust, false, threads, seconds)?,
    })
}

/// A client trusting `roots`; with `fresh`, every request opens a new connection and
/// makes a full handshake (no idle connection kept, no TLS session to resume).
fn client(roots: &rustls::RootCertStore, fresh: bool) -> Result<reqwest::blocking::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if fresh {
        config.resumption = rustls::client::Resumption::disabled();
    }
    // Only here: milagro_http_client's configuration resumes sessions, which is what
    // clients do but not the cost this figure is about. Loopback only.
    #[allow(clippy::disallowed_methods)]
    let builder = reqwest::blocking::Client::builder();
    let builder = builder
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(30));
    let builder = if fresh {
        builder.pool_max_idle_per_host(0)
    } else {
        builder
    };
    Ok(builder.build()?)
}

/// Requests/s at `url` with `threads` threads for `seconds`.
fn rate(
    url: &str,
    roots: &rustls::RootCertStore,
    fresh: bool,
    threads: usize,
    seconds: f64,
) -> Result<f64> {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let counts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<u64> {
                    let http = client(roots, fresh)?;
                    let mut done = 0u64;
                    while Instant::now() < until {
                        let status = http.get(url).send()?.status();
                        anyhow::ensure!(status.is_success(), "{url}: {status}");
                        done += 1;
                    }
                    Ok(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a client thread panicked"))?
            })
            .collect::<Result<Vec<u64>>>()
    })
    .context("measuring requests/s")?;
    Ok(counts.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64())
}
