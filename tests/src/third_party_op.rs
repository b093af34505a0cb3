//! OpenID providers from outside this project: `oidc-provider` from the npm registry
//! (pinned, installed into the machine cache, `~/.cache/milagro/npm-op`), run by
//! `tests/node/op.mjs` under Node over HTTPS with a certificate of the test CA, and what a
//! person's browser does there, through the provider's own login and consent pages
//! (cookies carried by hand): a login with the authorization-code flow (PKCE, a `nonce`
//! of the caller's choice: [`log_in`]), and the approval of a device's code at the
//! provider's verification page (the device authorization grant: [`approve_device`]).
//! Needs `node` and `npm` on the PATH; never skips.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use milagro_http_client::Outbound;
use milagro_regtest::npm::NodeProcess;
use openidconnect::PkceCodeChallenge;
use reqwest::blocking::{Client, Response};
use reqwest::Url;
use serde_json::Value;

use crate::https::TestTls;

/// The pinned version of `oidc-provider` (shared with `milagro bench token`).
pub use milagro_regtest::npm::OIDC_PROVIDER;
/// The client every provider registers (public, native, PKCE).
pub const CLIENT_ID: &str = "milagro-pat";
/// Its redirect URI (nobody serves it: the login reads the redirect).
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
/// The account every provider knows.
pub const USER: &str = "alice";

/// Installs `oidc-provider` into the machine cache once and copies the script beside it
/// ([`crate::npm::install_pinned`]).
pub fn npm_op() -> PathBuf {
    crate::npm::install_pinned("npm-op", "oidc-provider", OIDC_PROVIDER, "op.mjs")
}

/// One Node process serving one provider per spec, over HTTPS with `tls`'s leaf; they stop
/// when this is dropped.
pub struct ThirdPartyOps {
    /// The issuers, in the order of the specs asked for.
    pub issuers: Vec<String>,
    _node: NodeProcess,
}

impl ThirdPartyOps {
    /// Starts a provider for each of `specs`: the algorithm its client's ID tokens are
    /// signed with (`RS256`, `ES256`), for `oidc-provider` as it ships, whose device
    /// authorization grant drops the request's `nonce`; or [`keeping_nonce`] or
    /// [`replacing_nonce`] of one.
    pub fn start<S: AsRef<str>>(tls: &TestTls, specs: &[S]) -> Self {
        let dir = npm_op();
        let (cert, key) = (tls.dir().join("cert.pem"), tls.dir().join("key.pem"));
        let mut args: Vec<&OsStr> = vec![cert.as_os_str(), key.as_os_str()];
        args.extend(specs.iter().map(|s| OsStr::new(s.as_ref())));
        let (node, started) =
            NodeProcess::start(&dir, "op.mjs", &args, &[]).unwrap_or_else(|e| panic!("{e}"));
        let issuers: Vec<String> = started["issuers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(issuers.len(), specs.len(), "{started}");
        Self {
            issuers,
            _node: node,
        }
    }
}

/// A provider signing with `alg` whose device authorization grant copies the request's
/// `nonce` into the ID token, as Keycloak's does.
pub fn keeping_nonce(alg: &str) -> String {
    format!("{alg}+nonce")
}

/// A lying provider signing with `alg`: its device authorization grant puts `nonce` in
/// the ID token instead of the nonce the device sent.
pub fn replacing_nonce(alg: &str, nonce: &str) -> String {
    format!("{alg}+nonce={nonce}")
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

/// The value of the attribute `name` in the tag that starts `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let tag = &tag[..tag.find('>')?];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// What a person submits on a provider's `page`: the action of its first form and the
/// form's hidden fields, plus those of `typed` (name and value) that the form has as
/// visible inputs (the login's `login` and `password`, a device's `user_code`). `None`
/// if the page has no form.
fn submission(page: &str, typed: &[(&str, &str)]) -> Option<(String, Vec<(String, String)>)> {
    let form = &page[page.find("<form")?..];
    let form = &form[..form.find("</form>").unwrap_or(form.len())];
    let action = attribute(form, "action")?.to_owned();
    let mut fields = Vec::new();
    let mut visible = Vec::new();
    for input in form.split("<input").skip(1) {
        let Some(name) = attribute(input, "name") else {
            continue;
        };
        if attribute(input, "type") == Some("hidden") {
            let value = attribute(input, "value").unwrap_or_default();
            fields.push((name.to_owned(), value.to_owned()));
        } else {
            visible.push(name);
        }
    }
    for (name, value) in typed {
        if visible.contains(name) {
            fields.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    Some((action, fields))
}

/// A browser's client under `outbound`: it follows no redirect, so each can be read.
fn browser(outbound: &Outbound) -> Client {
    outbound
        .builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Where a person's walk through a provider's pages ended.
enum Walked {
    /// At a redirect off the provider, to this URL.
    Left(Url),
    /// At a page with no form, this one.
    Page(String),
}

/// What a person does from `response` on at the provider at `base`: follows redirects on
/// the provider, and submits each page's form, logging in as [`USER`] when asked
/// (the development login page takes any password for a known account), typing
/// `user_code` where a page asks for one, consenting; until a redirect leaves `base`
/// or a page has no form.
fn walk(http: &Client, base: &Url, mut response: Response, user_code: &str) -> Walked {
    let mut jar = Jar::default();
    // Device page, confirmation, login, resume, consent, resume and the like.
    for _ in 0..16 {
        jar.take(&response);
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            let next = base.join(&location).unwrap();
            if next.origin() != base.origin() {
                return Walked::Left(next);
            }
            response = http
                .get(next)
                .header("cookie", jar.header())
                .send()
                .unwrap();
            continue;
        }
        let page = response.text().unwrap();
        assert!(status.is_success(), "{status}: {page}");
        let typed = [
            ("login", USER),
            ("password", "pw"),
            ("user_code", user_code),
        ];
        let Some((action, fields)) = submission(&page, &typed) else {
            return Walked::Page(page);
        };
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        response = http
            .post(base.join(&action).unwrap())
            .header("cookie", jar.header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&pairs))
            .send()
            .unwrap();
    }
    panic!("the provider's pages did not end");
}

/// A person approves a device's code: opens `verification_uri` (over `outbound`), types
/// `user_code`, confirms it, logs in as [`USER`] and consents, until the provider says
/// the sign-in succeeded.
pub fn approve_device(outbound: &Outbound, verification_uri: &str, user_code: &str) {
    let http = browser(outbound);
    let base = Url::parse(verification_uri).unwrap();
    let first = http.get(verification_uri).send().unwrap();
    match walk(&http, &base, first, user_code) {
        Walked::Page(page) => assert!(page.contains("Sign-in Success"), "{page}"),
        Walked::Left(url) => panic!("the approval left the provider for {url}"),
    }
}

/// Logs [`USER`] in at `issuer` as client [`CLIENT_ID`], with `nonce` in the authorization
/// request, over `outbound` (the test CA's roots): discovery, the authorization request with
/// PKCE (S256), the provider's login page, its consent page, the redirect with the code
/// (its `state` and `iss` checked), and the token request. Returns the ID token.
pub fn log_in(outbound: &Outbound, issuer: &str, nonce: &str) -> String {
    let http = browser(outbound);
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
    let base = Url::parse(issuer).unwrap();
    let first = http.get(&authorize).send().unwrap();
    let Walked::Left(landed) = walk(&http, &base, first, "") else {
        panic!("the provider did not redirect back with a code")
    };
    assert!(landed.as_str().starts_with(REDIRECT), "{landed}");
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
