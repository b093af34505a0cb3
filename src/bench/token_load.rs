//! The one load driver of `bench token`, the same for every provider: codes minted
//! through the provider's authorization endpoint beforehand (untimed), then the timed
//! `POST /token` code exchanges over kept-alive HTTP/1.1 connections, one per client, each
//! client a thread of its own blocking on its socket (the lightest driver: one wake-up per
//! answer, so that its own cost weighs little on either provider's figure).
//!
//! A request is written whole with one `write_all` and its answer read by
//! `Content-Length` (both providers send one); the driver checks the status is 200 and
//! that the answer holds an ID token, and parses nothing else while the clock runs.

use std::collections::BTreeMap;
use std::io::{BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use openidconnect::url::form_urlencoded::byte_serialize;
use serde_json::Value;

use super::levels::Round;
use super::raw_http::read_head;
use crate::demo::idp::{code_request, encode, CodeRequest};

/// A provider under load: its endpoints (from its discovery document) and the one
/// confidential client (`client_secret_basic`) the bench registered there.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Its name in the table.
    pub name: &'static str,
    /// The issuer.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorize: String,
    /// `token_endpoint`.
    pub token: String,
    /// The client.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The client's redirect URI.
    pub redirect: String,
}

impl Provider {
    /// Reads the endpoints from `issuer`'s discovery document.
    pub fn discover(
        http: &reqwest::blocking::Client,
        name: &'static str,
        issuer: &str,
        client: (String, String),
        redirect: &str,
    ) -> Result<Self> {
        let metadata: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()?
            .error_for_status()?
            .json()?;
        let endpoint = |name: &str| {
            metadata[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("{issuer} advertises no {name}"))
        };
        Ok(Self {
            name,
            issuer: issuer.to_owned(),
            authorize: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            client_id: client.0,
            client_secret: client.1,
            redirect: redirect.to_owned(),
        })
    }
}

/// A code and the PKCE verifier its request's challenge was made from.
#[derive(Debug)]
pub struct Code {
    code: String,
    verifier: String,
}

/// Cookies as a browser keeps them for one site (each provider has its own jar).
#[derive(Debug, Default)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Keeps the cookie `name=value`.
    pub fn set(&mut self, pair: &str) {
        if let Some((name, value)) = pair.split_once('=') {
            self.0.insert(name.to_owned(), value.to_owned());
        }
    }

    fn take(&mut self, response: &reqwest::blocking::Response) {
        for header in response.headers().get_all("set-cookie") {
            if let Some(pair) = header.to_str().ok().and_then(|t| t.split(';').next()) {
                self.set(pair);
            }
        }
    }

    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join("; ")
    }
}

/// Mints `n` codes at `provider` as its browser with `jar` (a login session already in
/// it, or made on the way by the provider's interaction): each an authorization request
/// with PKCE S256 and a nonce, following the provider's redirects until one leaves for the
/// client's redirect URI with the code.
pub fn mint(
    http: &reqwest::blocking::Client,
    provider: &Provider,
    jar: &mut Jar,
    n: usize,
) -> Result<Vec<Code>> {
    let mut codes = Vec::with_capacity(n);
    for _ in 0..n {
        let CodeRequest { verifier, url, .. } = code_request(
            &provider.issuer,
            &provider.client_id,
            &provider.redirect,
            "openid",
            "bench",
        );
        // `code_request` builds the IdP's URL; the query is the same for any provider.
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let mut next = format!("{}?{query}", provider.authorize);
        let code = 'walk: {
            for _ in 0..8 {
                let response = http.get(&next).header("cookie", jar.header()).send()?;
                jar.take(&response);
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(str::to_owned);
                let Some(location) = location else {
                    bail!(
                        "{} answered the authorization request with {} and no redirect",
                        provider.name,
                        response.status()
                    );
                };
                if let Some(back) = location.strip_prefix(&provider.redirect) {
                    break 'walk back
                        .split(['?', '&'])
                        .find_map(|pair| pair.strip_prefix("code="))
                        .map(str::to_owned)
                        .with_context(|| format!("no code in {location}"))?;
                }
                next = if location.starts_with('/') {
                    format!("{}{location}", provider.issuer)
                } else {
                    location
                };
            }
            bail!("{} kept redirecting without a code", provider.name);
        };
        codes.push(Code { code, verifier });
    }
    Ok(codes)
}

/// The whole HTTP request redeeming `code` at `provider`'s token endpoint.
fn exchange_request(provider: &Provider, code: &Code) -> Result<Vec<u8>> {
    let path_start = provider
        .token
        .find("://")
        .and_then(|at| provider.token[at + 3..].find('/').map(|p| at + 3 + p))
        .context("the token endpoint has no path")?;
    let (origin, path) = provider.token.split_at(path_start);
    let host = origin.split_once("://").map_or(origin, |(_, h)| h);
    let body = encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code.code),
        ("redirect_uri", &provider.redirect),
        ("code_verifier", &code.verifier),
    ]);
    // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
    let form = |text: &str| byte_serialize(text.as_bytes()).collect::<String>();
    let credentials = format!(
        "{}:{}",
        form(&provider.client_id),
        form(&provider.client_secret)
    );
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        STANDARD.encode(credentials),
        body.len()
    );
    Ok([head.into_bytes(), body.into_bytes()].concat())
}

/// One kept-alive connection to a token endpoint.
struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Connection {
    fn open(provider: &Provider) -> Result<Self> {
        let authority = provider
            .token
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .context("the token endpoint has no host")?;
        let stream = TcpStream::connect(authority)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Self {
            stream: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// Sends `request`, reads the answer; its body if the status is 200.
    fn exchange(&mut self, request: &[u8]) -> Result<&[u8]> {
        self.stream.get_mut().write_all(request)?;
        let (status, length) = read_head(&mut self.stream, &mut self.line)?;
        let length = length.context("a token answer without Content-Length")?;
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body)?;
        ensure!(
            status.starts_with("HTTP/1.1 200"),
            "{status}: {}",
            String::from_utf8_lossy(&self.body)
        );
        Ok(&self.body)
    }
}

/// Redeems `code` untimed; returns the ID token of the answer.
pub fn probe_id_token(provider: &Provider, code: &Code) -> Result<String> {
    let request = exchange_request(provider, code)?;
    let mut connection = Connection::open(provider)?;
    let answer: Value = serde_json::from_slice(connection.exchange(&request)?)?;
    answer["id_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{} answered without an ID token", provider.name))
}

/// Redeems `codes` at `provider` with `concurrency` clients: threads, each with its own
/// kept-alive connection (opened before the clock starts), each redeeming its share one
/// after another (code `i` by client `i % concurrency`); every exchange is timed.
pub fn exchanges(provider: &Provider, codes: &[Code], concurrency: usize) -> Result<Round> {
    let mut shares: Vec<(Connection, Vec<Vec<u8>>)> = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        shares.push((Connection::open(provider)?, Vec::new()));
    }
    for (i, code) in codes.iter().enumerate() {
        shares[i % concurrency]
            .1
            .push(exchange_request(provider, code)?);
    }
    let started = Instant::now();
    let samples = std::thread::scope(|scope| {
        let clients: Vec<_> = shares
            .into_iter()
            .map(|(mut connection, requests)| {
                scope.spawn(move || -> Result<Vec<f64>> {
                    let mut samples = Vec::with_capacity(requests.len());
                    for request in &requests {
                        let start = Instant::now();
                        let answer = connection.exchange(request)?;
                        samples.push(start.elapsed().as_secs_f64() * 1e6);
                        ensure!(
                            answer.windows(10).any(|w| w == b"\"id_token\""),
                            "an answer without an ID token"
                        );
                    }
                    Ok(samples)
                })
            })
            .collect();
        let mut samples = Vec::with_capacity(codes.len());
        for client in clients {
            let share = client
                .join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
            samples.extend(share);
        }
        Ok::<_, anyhow::Error>(samples)
    })
    .context("a code exchange")?;
    Ok(Round::new(samples, started.elapsed().as_secs_f64()))
}
