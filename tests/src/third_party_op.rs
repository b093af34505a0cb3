//! OpenID providers from outside this project: `oidc-provider` from the npm registry
//! (pinned, installed into the machine cache, `~/.cache/milagro/npm-op`), run by
//! `tests/node/op.mjs` under Node over HTTPS with a certificate of the test CA, and a login at one of them the way a browser
//! makes it (the authorization-code flow with PKCE and a `nonce` of the caller's choice,
//! through the provider's own login and consent pages, cookies carried by hand). Needs
//! `node` and `npm` on the PATH; never skips.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use milagro_http_client::Outbound;
use openidconnect::PkceCodeChallenge;
use reqwest::blocking::{Client, Response};
use reqwest::Url;
use serde_json::Value;

use crate::https::TestTls;

/// The pinned version of `oidc-provider` (major 9).
pub const OIDC_PROVIDER: &str = "9.13.3";
/// The client every provider registers (public, native, PKCE).
pub const CLIENT_ID: &str = "milagro-pat";
/// Its redirect URI (nobody serves it: the login reads the redirect).
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// The account every provider knows.
pub const USER: &str = "alice";

/// Installs `oidc-provider` into the machine cache once and copies the script next to it
/// ([`crate::npm::install_pinned`]).
pub fn npm_op() -> PathBuf {
    crate::npm::install_pinned("npm-op", "oidc-provider", OIDC_PROVIDER, "op.mjs")
}

/// One Node process serving one provider per signing algorithm, over HTTPS with `tls`'s
/// leaf; they stop when this is dropped.
pub struct ThirdPartyOps {
    /// The issuers, in the order of the algorithms asked for.
    pub issuers: Vec<String>,
    node: Child,
    // Closing it tells the script to stop.
    stdin: Option<ChildStdin>,
}

impl ThirdPartyOps {
    /// Starts a provider for each of `algs` (`RS256`, `ES256`: what its client's ID
    /// tokens are signed with).
    pub fn start(tls: &TestTls, algs: &[&str]) -> Self {
        let dir = npm_op();
        let mut node = Command::new("node")
            .arg(dir.join("op.mjs"))
            .arg(tls.dir().join("cert.pem"))
            .arg(tls.dir().join("key.pem"))
            .args(algs)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let stdin = node.stdin.take();
        let mut line = String::new();
        let mut stdout = BufReader::new(node.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // The provider prints notices on stdout as it serves: keep reading it (into the
        // test's stderr), or its next write fails on a closed pipe and kills it.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::stderr());
        });
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("op.mjs did not start ({e}): {line:?}"));
        let issuers: Vec<String> = started["issuers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(issuers.len(), algs.len(), "{started}");
        Self {
            issuers,
            node,
            stdin,
        }
    }
}

impl Drop for ThirdPartyOps {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // The script exits on end of input; kill it only if it does not.
        for _ in 0..50 {
            if let Ok(Some(_)) = self.node.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.node.kill();
        let _ = self.node.wait();
    }
}

/// Cookies as a browser keeps them for one site (the test's providers are one each).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, response: &Response) {
        for header in response.headers().get_all("set-cookie") {
            let text = header.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let expired = text
                .to_ascii_lowercase()
                .contains("expires=thu, 01 jan 1970");
            if value.is_empty() || expired {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `pairs` form-encoded (as a query string or an `application/x-www-form-urlencoded`
/// body).
fn encode(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("x:/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

/// The `action` of the page's form, and the value of its `prompt` input.
fn form(page: &str) -> (String, String) {
    let attribute = |after: &str, name: &str| {
        let start = page
            .find(after)
            .unwrap_or_else(|| panic!("no {after} in {page}"));
        let rest = &page[start..];
        let value = &rest[rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2..];
        value[..value.find('"').unwrap()].to_owned()
    };
    (
        attribute("<form", "action"),
        attribute("name=\"prompt\"", "value"),
    )
}

/// Logs [`USER`] in at `issuer` as client [`CLIENT_ID`], with `nonce` in the authorization
/// request, over `outbound` (the test CA's roots): discovery, the authorization request with
/// PKCE (S256), the provider's login page, its consent page, the redirect with the code
/// (its `state` and `iss` checked), and the token request. Returns the ID token.
pub fn log_in(outbound: &Outbound, issuer: &str, nonce: &str) -> String {
    let http: Client = outbound
        .builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(discovery["issuer"], issuer);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = format!(
        "{:016x}",
        rand_core::RngCore::next_u64(&mut rand_core::OsRng)
    );
    let authorize = format!(
        "{}?{}",
        discovery["authorization_endpoint"].as_str().unwrap(),
        encode(&[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("redirect_uri", REDIRECT),
            ("nonce", nonce),
            ("state", &state),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
    );
    let mut jar = Jar::default();
    let base = Url::parse(issuer).unwrap();
    let mut response = http
        .get(&authorize)
        .header("cookie", jar.header())
        .send()
        .unwrap();
    let mut landed = None;
    // Authorization request, login page, login, resume, consent page, consent, resume.
    for _ in 0..12 {
        jar.take(&response);
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            if location.starts_with(REDIRECT) {
                landed = Some(Url::parse(&location).unwrap());
                break;
            }
            let next = base.join(&location).unwrap();
            response = http
                .get(next)
                .header("cookie", jar.header())
                .send()
                .unwrap();
            continue;
        }
        let page = response.text().unwrap();
        assert!(status.is_success(), "{status}: {page}");
        let (action, prompt) = form(&page);
        let body = match prompt.as_str() {
            // The provider's development login page takes any password for a known account.
            "login" => encode(&[("prompt", "login"), ("login", USER), ("password", "pw")]),
            "consent" => encode(&[("prompt", "consent")]),
            other => panic!("an unexpected page ({other}): {page}"),
        };
        response = http
            .post(base.join(&action).unwrap())
            .header("cookie", jar.header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap();
    }
    let landed = landed.expect("the provider redirected back with a code");
    let query: BTreeMap<String, String> = landed.query_pairs().into_owned().collect();
    assert_eq!(query.get("state"), Some(&state), "{landed}");
    assert_eq!(
        query.get("iss").map(String::as_str),
        Some(issuer),
        "{landed}"
    );
    let code = query.get("code").unwrap_or_else(|| panic!("{landed}"));
    let tokens: Value = http
        .post(discovery["token_endpoint"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT_ID),
            ("code_verifier", verifier.secret()),
        ]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id token: {tokens}"))
        .to_owned()
}
