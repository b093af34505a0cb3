//! What the IdP tests share: a real regtest node, a real IdP on loopback whose Birth
//! Certificate is anchored, a user, an HTTP client that follows no redirect (so each
//! redirect can be checked), the login form driven as a browser posts it, and the
//! `openidconnect` crate's HTTP client trait implemented over that client.

pub mod browser;
pub mod node_rp;
mod pages;

pub use pages::{
    approve_device, callback_server, decide_device, email_device, encode, hidden_fields,
};

use std::time::Duration;

use crate::https::TestTls;
use crate::openapi::assert_documented_answer;
use crate::{wait_until, TestNode};
use milagro_idp::api::OPENAPI_JSON;
use milagro_idp::config::Config;
use milagro_idp::{Idp, RunningIdp};
use milagro_wire::idp::{ProviderMetadata, TokenAnswer};
use serde_json::Value;

/// The test IdP's one user.
pub const USER: &str = "alice";
/// Their password.
pub const PASSWORD: &str = "correct horse battery";
/// Put in a test IdP's `extra` TOML (a comment), it keeps the default: passwords off.
pub const NO_PASSWORDS: &str = "# passwords: the default (off)\n";
/// How long an IdP test waits for anything.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A node, an anchored IdP and its user.
pub struct IdpWorld {
    /// The regtest node.
    pub node: TestNode,
    /// Where the IdP's state lives.
    pub dir: tempfile::TempDir,
    /// The running IdP.
    pub idp: RunningIdp,
    /// Its issuer URL.
    pub issuer: String,
    /// A client that follows no redirect.
    pub http: reqwest::blocking::Client,
}

/// A port nobody listens on now (the IdP binds it right after; its issuer URL must name
/// the port before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The configuration of a test IdP listening on `port`, its issuer there, with `extra`
/// TOML appended.
pub fn idp_config(node: &TestNode, state_dir: &std::path::Path, port: u16, extra: &str) -> Config {
    idp_config_at(
        node,
        state_dir,
        port,
        &format!("http://127.0.0.1:{port}"),
        extra,
    )
}

/// The configuration of a test IdP listening on `port` whose issuer is `public_url`
/// (another address, e.g. a proxy in front of it), with `extra` TOML appended.
pub fn idp_config_at(
    node: &TestNode,
    state_dir: &std::path::Path,
    port: u16,
    public_url: &str,
    extra: &str,
) -> Config {
    // The tests' clients register dynamically; the consent screen is the business of the
    // tests that ask for it with their own `[consent]`.
    let consent = if extra.contains("[consent]") {
        ""
    } else {
        "[consent]\nrequired = false\n"
    };
    // Most IdP tests sign alice in with her password, which an operator must switch on;
    // the tests of the switch itself bring their own `[passwords]` (none: off).
    let passwords = if extra.contains("[passwords]") || extra.contains(NO_PASSWORDS) {
        ""
    } else {
        "[passwords]\nenabled = true\n"
    };
    let text = format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = {public_url:?}
name = "Test IdP"
state_dir = {state_dir:?}
[node]
rpc_url = {rpc:?}
rpc_cookie = {cookie:?}
network = "regtest"
[sync]
poll_interval_ms = 50
max_backoff_ms = 400
{consent}{passwords}{extra}
"#,
        rpc = node.rpc_url(),
        cookie = node.cookie(),
    );
    Config::parse(&text).unwrap()
}

impl IdpWorld {
    /// Starts everything and waits until the IdP's Birth Certificate is anchored.
    pub fn start(extra: &str) -> Self {
        Self::start_on(extra, None)
    }

    /// The same over HTTPS: the IdP serves `tls`'s certificate, its issuer is
    /// `https://127.0.0.1:PORT`, and the world's client trusts `tls`'s CA only.
    pub fn start_https(extra: &str, tls: &TestTls) -> Self {
        Self::start_on(extra, Some(tls))
    }

    fn start_on(extra: &str, tls: Option<&TestTls>) -> Self {
        let node = TestNode::start();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let (public_url, extra, outbound) = match tls {
            Some(tls) => (
                format!("https://127.0.0.1:{port}"),
                format!("{extra}\n{}", tls.section()),
                tls.outbound(),
            ),
            None => (
                format!("http://127.0.0.1:{port}"),
                extra.to_owned(),
                milagro_http_client::Outbound::system().unwrap(),
            ),
        };
        let config = idp_config_at(&node, &dir.path().join("idp"), port, &public_url, &extra);
        let idp = Idp::start(config).unwrap();
        let issuer = idp.state().issuer().to_owned();
        idp.state()
            .users
            .add(USER, PASSWORD, milagro_service::unix_now())
            .unwrap();
        let http = outbound
            .builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let world = Self {
            node,
            dir,
            idp,
            issuer,
            http,
        };
        world.anchor();
        world
    }

    /// Mines until the Birth Certificate is served as anchored.
    pub fn anchor(&self) {
        wait_until("the IdP anchor to be broadcast", PATIENCE, || {
            let state = self.idp.state().own_anchor.get();
            (!matches!(state, milagro_service::own_anchor::AnchorState::None)).then_some(())
        });
        self.node.mine(1);
        wait_until("the IdP birth certificate to be served", PATIENCE, || {
            let (status, _) = self.get("/.well-known/milagro/birth-certificate");
            (status == 200).then_some(())
        });
    }

    /// `GET path`: status and JSON. Every answer here, of `post_form` and of `register`
    /// is checked against `idp/openapi.json` (status listed, JSON body of its schema): the
    /// real flows reach what schemathesis cannot (tokens, userinfo, device grants).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.issuer))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        assert_documented_answer(OPENAPI_JSON, ("get", path), status, &body);
        (status, body)
    }

    /// `POST path` with a form body and optional Basic credentials: status and JSON.
    pub fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.issuer))
            .header(FORM, "application/x-www-form-urlencoded")
            .body(encode(form.iter().copied()));
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        assert_documented_answer(OPENAPI_JSON, ("post", path), status, &json);
        (status, json)
    }

    /// `POST /register` with `metadata`: status and JSON.
    pub fn register(&self, metadata: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/register", self.issuer))
            .header("content-type", "application/json")
            .body(metadata.to_string())
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let json = response.json().unwrap();
        assert_documented_answer(OPENAPI_JSON, ("post", "/register"), status, &json);
        (status, json)
    }

    /// Opens `authorize_url` as a browser would and submits the login form; returns the
    /// redirect's `Location`, or the status and page when there is none.
    pub fn login(
        &self,
        authorize_url: &str,
        username: &str,
        password: &str,
    ) -> Result<String, (u16, String)> {
        let page = self.http.get(authorize_url).send().unwrap();
        let status = page.status().as_u16();
        if let Some(location) = page.headers().get("location") {
            return Ok(location.to_str().unwrap().to_owned());
        }
        let cookie = page
            .headers()
            .get("set-cookie")
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
        let html = page.text().unwrap();
        if status != 200 {
            return Err((status, html));
        }
        let mut form = hidden_fields(&html);
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        let pairs = form.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut request = self
            .http
            .post(format!("{}/login", self.issuer))
            .header(FORM, "application/x-www-form-urlencoded")
            .body(encode(pairs));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let answer = request.send().unwrap();
        match answer.headers().get("location") {
            Some(location) => Ok(location.to_str().unwrap().to_owned()),
            None => Err((answer.status().as_u16(), answer.text().unwrap())),
        }
    }

    /// An HTTP client for the `openidconnect` crate.
    pub fn oidc_http(
        &self,
    ) -> impl Fn(openidconnect::HttpRequest) -> Result<openidconnect::HttpResponse, reqwest::Error> + '_
    {
        move |request| {
            let (parts, body) = request.into_parts();
            let response = self
                .http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()?;
            let mut builder = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let bytes = response.bytes()?.to_vec();
            Ok(builder.body(bytes).unwrap())
        }
    }
}

const FORM: &str = "content-type";

/// The query parameters of a redirect `location`.
pub fn query(location: &str) -> std::collections::HashMap<String, String> {
    openidconnect::url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A redirect URI nobody serves: the tests read the code from the `Location` header.
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// An HTTP client that follows no redirect.
pub fn no_redirect_client() -> reqwest::blocking::Client {
    milagro_http_client::Outbound::system()
        .unwrap()
        .builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An IdP on `node` in `dir/name` with user alice; returns it, its issuer and alice's
/// `sub`.
pub fn start_idp_with_alice(
    node: &TestNode,
    dir: &std::path::Path,
    name: &str,
) -> (RunningIdp, String, String) {
    start_configured_idp_with_alice(idp_config(node, &dir.join(name), free_port(), ""))
}

/// An IdP of `config` with user alice; returns it, its issuer and alice's `sub`.
pub fn start_configured_idp_with_alice(config: Config) -> (RunningIdp, String, String) {
    let idp = Idp::start(config).unwrap();
    let user = idp
        .state()
        .users
        .add(USER, PASSWORD, milagro_service::unix_now());
    let issuer = idp.state().issuer().to_owned();
    (idp, issuer, user.unwrap().subject)
}

/// Waits until the IdP at `issuer` serves its anchored Birth Certificate.
pub fn wait_for_certificate(issuer: &str) {
    wait_for_certificate_over(&milagro_http_client::Outbound::system().unwrap(), issuer);
}

/// The same, asking under `outbound` (an IdP on HTTPS with a test CA).
pub fn wait_for_certificate_over(outbound: &milagro_http_client::Outbound, issuer: &str) {
    let client = outbound.client().unwrap();
    wait_until(
        "the IdP to serve its anchored certificate",
        PATIENCE,
        || {
            let url = format!("{issuer}/.well-known/milagro/birth-certificate");
            (client.get(url).send().unwrap().status() == 200).then_some(())
        },
    );
}

/// Registers a public client of the device grant at `issuer` (dynamic registration,
/// through `http`): its `client_id`, the one the D-TAs require and devices log in as.
pub fn register_device_client(http: &reqwest::blocking::Client, issuer: &str) -> String {
    let response = http
        .post(format!("{issuer}/register"))
        .json(&serde_json::json!({
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().unwrap();
    registered["client_id"].as_str().unwrap().to_owned()
}

/// Registers a confidential client redirecting to [`REDIRECT`] at `issuer` (dynamic
/// registration): its `client_id` and `client_secret`.
pub fn register_client(issuer: &str) -> (String, String) {
    let response = no_redirect_client()
        .post(format!("{issuer}/register"))
        .json(&serde_json::json!({ "redirect_uris": [REDIRECT] }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    let client: Value = response.json().unwrap();
    let field = |name: &str| client[name].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

/// Alice logs in at `issuer` for `client` (code flow with PKCE) on the device holding
/// `device` (its anchored key), which sends a DPoP proof at the token endpoint: the ID
/// token, bound to that key (`cnf.jkt`), as every D-TA requires.
pub fn alice_id_token(
    issuer: &str,
    client: &(String, String),
    device: &milagro_anchor::keys::SecretKey,
) -> String {
    let tokens = alice_tokens(issuer, client, Some(device));
    assert_eq!(tokens.token_type, "DPoP", "{tokens:?}");
    tokens.id_token
}

/// The same without a DPoP proof: a Bearer token, bound to no key.
pub fn alice_unbound_id_token(issuer: &str, client: &(String, String)) -> String {
    let tokens = alice_tokens(issuer, client, None);
    assert_eq!(tokens.token_type, "Bearer", "{tokens:?}");
    tokens.id_token
}

/// A DPoP proof by `device` for `POST {the IdP at url's token_endpoint}` (its issuer's
/// URL, which may be a proxy's rather than `url`), made now.
pub fn token_proof(url: &str, device: &milagro_anchor::keys::SecretKey) -> String {
    let discovery: ProviderMetadata = no_redirect_client()
        .get(format!("{url}/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let request = milagro_anchor::dpop::Request {
        method: "POST",
        uri: &discovery.token_endpoint,
        access_token: None,
    };
    let mut jti = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut jti);
    milagro_anchor::dpop::sign(
        device,
        &request,
        &hex::encode(jti),
        milagro_service::unix_now(),
    )
}

/// Alice's login at `issuer` for `client`: the token response, bound to `device` if given.
fn alice_tokens(
    issuer: &str,
    (client_id, secret): &(String, String),
    device: Option<&milagro_anchor::keys::SecretKey>,
) -> TokenAnswer {
    let http = no_redirect_client();
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    let authorize = format!(
        "{issuer}/authorize?{}",
        encode(
            [
                ("response_type", "code"),
                ("client_id", client_id.as_str()),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("state", "s"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]
            .into_iter()
        )
    );
    let page = http.get(authorize).send().unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let mut form = hidden_fields(&page.text().unwrap());
    form.push(("username".into(), USER.into()));
    form.push(("password".into(), PASSWORD.into()));
    let landed = http
        .post(format!("{issuer}/login"))
        .header("cookie", cookie)
        .header(FORM, "application/x-www-form-urlencoded")
        .body(encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .send()
        .unwrap();
    let code = query(landed.headers()["location"].to_str().unwrap())["code"].clone();
    let mut request = http.post(format!("{issuer}/token"));
    if let Some(device) = device {
        request = request.header("DPoP", token_proof(issuer, device));
    }
    request
        .basic_auth(client_id, Some(secret))
        .header(FORM, "application/x-www-form-urlencoded")
        .body(encode(
            [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.secret().as_str()),
            ]
            .into_iter(),
        ))
        .send()
        .unwrap()
        .json()
        .unwrap()
}
