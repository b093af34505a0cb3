//! The IdP part of `milagro demo`, and the loopback IdP the benchmarks start: an IdP on the
//! demo's regtest node anchors its Birth Certificate and serves it beside its discovery
//! document. It keeps no password: people register their device by e-mail (the demo's
//! [`super::smtp::Mailbox`] receives the codes) and sign in with it ([`super::signin`]).
//! The benchmarks' IdPs keep passwords on ([`PASSWORDS_ON`]): they sign in with one.

use milagro_regtest::RegtestControls as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_idp::config::Config;
use milagro_idp::{Idp, RunningIdp};
use milagro_service::own_anchor::AnchorState;
use milagro_wire::idp::{DeviceAuthorization, ProviderMetadata, TokenAnswer};
use milagro_wire::service::AnchoredBirthCertificate;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// What the IdP part adds to the demo's summary.
#[derive(Debug, Serialize)]
pub struct IdpSummary {
    issuer: String,
    digest: String,
    anchor_txid: String,
}

const PATIENCE: Duration = Duration::from_secs(60);
/// The demo user.
pub(crate) const USER: &str = "demo";
/// Its password.
pub(crate) const PASSWORD: &str = "demo password";

/// The section of an IdP whose operator keeps password sign-in on (the benchmarks', which
/// sign in or approve devices with [`PASSWORD`]).
pub(crate) const PASSWORDS_ON: &str = "[passwords]\nenabled = true\n";

/// Starts an IdP named `name` on loopback (a free port, which is also its issuer URL),
/// its state in `dir`, anchoring through the node at `rpc_url`, passwords on.
pub(crate) fn start_idp(
    dir: &Path,
    rpc_url: &str,
    cookie: &Path,
    name: &str,
) -> Result<RunningIdp> {
    start_idp_on(dir, rpc_url, cookie, name, free_port()?, PASSWORDS_ON)
}

/// A free loopback port (an IdP's issuer URL names its port before it listens).
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// [`start_idp`] on `port` (its issuer `http://127.0.0.1:port`), with the TOML sections
/// `extra` appended (e.g. `[mpin]`; the same `dir` and port restart the same IdP).
pub(crate) fn start_idp_on(
    dir: &Path,
    rpc_url: &str,
    cookie: &Path,
    name: &str,
    port: u16,
    extra: &str,
) -> Result<RunningIdp> {
    let config = Config::parse(&format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
name = {name:?}
state_dir = {state:?}
[node]
rpc_url = {rpc_url:?}
rpc_cookie = {cookie:?}
network = "regtest"
[sync]
poll_interval_ms = 100
# The demo's operator registers its one client: no consent screen.
[consent]
required = false
{extra}
"#,
        state = dir.join("idp"),
    ))?;
    Ok(Idp::start(config)?)
}

/// Registers a confidential client (RFC 7591); returns its id and secret.
pub(crate) fn register_client(
    http: &reqwest::blocking::Client,
    issuer: &str,
    metadata: &Value,
) -> Result<(String, String)> {
    let registered: Value = http
        .post(format!("{issuer}/register"))
        .header("content-type", "application/json")
        .body(metadata.to_string())
        .send()?
        .json()?;
    let field = |name: &str| {
        registered[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {name} in {registered}"))
    };
    Ok((field("client_id")?, field("client_secret")?))
}

/// The demo's IdP, restartable with more sections on the same address and state.
pub(crate) struct DemoIdp {
    /// The running IdP.
    pub running: RunningIdp,
    dir: PathBuf,
    rpc_url: String,
    cookie: PathBuf,
    port: u16,
    sections: String,
}

impl DemoIdp {
    /// Stops the IdP and starts it again with `more` sections (e.g. `[mpin]`): its
    /// issuer, key, certificate and clients stay.
    pub(crate) fn restart_with(self, more: &str) -> Result<Self> {
        self.running.stop();
        let sections = format!("{}{more}", self.sections);
        let running = start_idp_on(
            &self.dir,
            &self.rpc_url,
            &self.cookie,
            NAME,
            self.port,
            &sections,
        )?;
        Ok(Self {
            running,
            sections,
            ..self
        })
    }
}

const NAME: &str = "Milagro demo IdP";

/// Runs the IdP part on the demo's node: the IdP (in `dir`), which registers people by
/// e-mail through `mailbox`, anchors its Birth Certificate; it keeps running for the
/// M-Pin part.
pub(crate) fn run(
    chain: &super::mpin::Chain<'_>,
    dir: &Path,
    mailbox: &super::smtp::Mailbox,
) -> Result<(IdpSummary, DemoIdp)> {
    crate::demo::step("starting an IdP: its key, Birth Certificate and anchor, like every party; no password database");
    let sections = format!(
        "[enrolment]\nallowed_domains = [\"demo.milagro.test\"]\n{}",
        mailbox.idp_section()
    );
    let port = free_port()?;
    let idp = start_idp_on(dir, chain.rpc_url, chain.cookie, NAME, port, &sections)?;
    let issuer = idp.state().issuer().to_owned();
    let txid = crate::demo::wait_for(PATIENCE, "the IdP anchor to be broadcast", || {
        Ok(match idp.state().own_anchor.get() {
            AnchorState::Pending { txid } => Some(txid),
            _ => None,
        })
    })?;
    chain.node.generate_to_address(1, chain.miner)?;
    let http = crate::cli::http_builder()?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let served: AnchoredBirthCertificate =
        crate::demo::wait_for(PATIENCE, "the IdP birth certificate to be served", || {
            let response = http
                .get(format!("{issuer}/.well-known/milagro/birth-certificate"))
                .send()?;
            Ok(response
                .status()
                .is_success()
                .then(|| response.json())
                .transpose()?)
        })?;
    let discovery: ProviderMetadata = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()?
        .json()?;
    ensure!(
        discovery.milagro.milagro_birth_certificate_digest == served.digest
            && served.txid == txid.to_string(),
        "the discovery document and the anchored certificate disagree"
    );
    let digest = served.digest.to_string();
    eprintln!("    issuer {issuer}, birth certificate {digest} anchored by {txid}");
    let summary = IdpSummary {
        issuer,
        digest,
        anchor_txid: txid.to_string(),
    };
    let idp = DemoIdp {
        running: idp,
        dir: dir.to_owned(),
        rpc_url: chain.rpc_url.to_owned(),
        cookie: chain.cookie.to_owned(),
        port,
        sections,
    };
    Ok((summary, idp))
}

/// Logs `user` in with `password` on the login page of the authorization request `url`,
/// as a browser does (the page's CSRF cookie and hidden fields, then `POST /login`), and
/// returns the new login session's cookie (`name=value`): later authorization requests
/// with it get their code at once (the code of this one is left unused).
pub(crate) fn password_session(
    http: &reqwest::blocking::Client,
    issuer: &str,
    url: &str,
    user: &str,
    password: &str,
) -> Result<String> {
    let page = http.get(url).send()?;
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .context("the login page set no CSRF cookie")?
        .to_owned();
    let mut form = hidden_inputs(&page.text()?);
    form.push(("username".into(), user.into()));
    form.push(("password".into(), password.into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let landed = http
        .post(format!("{issuer}/login"))
        .header("cookie", cookie)
        .header("content-type", FORM)
        .body(encode(&form))
        .send()?;
    ensure!(
        landed.status().is_redirection(),
        "the password login answered {}",
        landed.status()
    );
    landed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok()?.split(';').next())
        .find(|c| c.starts_with(milagro_idp::api::SESSION_COOKIE))
        .map(str::to_owned)
        .context("the password login started no session")
}

/// Registers the D-TAs' one client at the IdP: public (no secret), device grant only
/// (RFC 8628); returns its id.
pub(crate) fn register_device_client(
    http: &reqwest::blocking::Client,
    issuer: &str,
) -> Result<String> {
    let registered: Value = http
        .post(format!("{issuer}/register"))
        .json(&json!({
            "client_name": "Milagro D-TAs",
            "grant_types": [DEVICE_GRANT],
            "token_endpoint_auth_method": "none",
        }))
        .send()?
        .json()?;
    registered["client_id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no client_id in {registered}"))
}

/// An ID token for `client_id` by the device grant, approved at once by the demo user,
/// bound (DPoP, RFC 9449) to `device`, the anchored key of the PAT that will present it.
pub(crate) fn device_id_token(
    http: &reqwest::blocking::Client,
    issuer: &str,
    client_id: &str,
    device: &milagro_anchor::keys::SecretKey,
) -> Result<String> {
    let form = |pairs: &[(&str, &str)]| encode(pairs);
    let started: DeviceAuthorization = http
        .post(format!("{issuer}/device_authorization"))
        .header("content-type", FORM)
        .body(form(&[("client_id", client_id), ("scope", "openid")]))
        .send()?
        .json()?;
    approve_device(http, issuer, &started.user_code)?;
    let token_endpoint = format!("{issuer}/token");
    let request = milagro_anchor::dpop::Request {
        method: "POST",
        uri: &token_endpoint,
        access_token: None,
    };
    let jti = hex::encode(&rand_bytes()[..16]);
    let proof = milagro_anchor::dpop::sign(device, &request, &jti, milagro_service::unix_now());
    let tokens: TokenAnswer = http
        .post(&token_endpoint)
        .header("content-type", FORM)
        .header(milagro_anchor::dpop::HEADER, proof)
        .body(form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", &started.device_code),
            ("client_id", client_id),
        ]))
        .send()?
        .json()?;
    Ok(tokens.id_token)
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the demo user does on the IdP's device verification page (passwords on): opens
/// it, types `user_code`, logs in with [`PASSWORD`] and allows the client.
pub(crate) fn approve_device(
    http: &reqwest::blocking::Client,
    issuer: &str,
    user_code: &str,
) -> Result<()> {
    let page = DevicePage::open(http, issuer)?;
    let shown = page.post(&[
        ("user_code", user_code),
        ("username", USER),
        ("password", PASSWORD),
    ])?;
    page.allow(&shown)
}

/// A person's browser on the IdP's device page (`/device`): the CSRF cookie and token the
/// page gave it, posted back with every form.
pub(crate) struct DevicePage<'a> {
    http: &'a reqwest::blocking::Client,
    issuer: &'a str,
    cookie: String,
    hidden: Vec<(String, String)>,
}

impl<'a> DevicePage<'a> {
    /// Opens the page.
    pub(crate) fn open(http: &'a reqwest::blocking::Client, issuer: &'a str) -> Result<Self> {
        let page = http.get(format!("{issuer}/device")).send()?;
        let cookie = page
            .headers()
            .get("set-cookie")
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.split(';').next())
            .context("the device page set no CSRF cookie")?
            .to_owned();
        let hidden = hidden_inputs(&page.text()?);
        Ok(Self {
            http,
            issuer,
            cookie,
            hidden,
        })
    }

    /// Posts `fields` with the page's hidden ones; the page answered (a success).
    pub(crate) fn post(&self, fields: &[(&str, &str)]) -> Result<String> {
        self.post_all(&self.hidden, fields)
    }

    /// Allows the client the consent page `shown` names (its hidden fields, and the
    /// person's decision).
    pub(crate) fn allow(&self, shown: &str) -> Result<()> {
        let hidden = hidden_inputs(shown);
        ensure!(
            hidden.iter().any(|(name, _)| name == "consent"),
            "the device page shows no client to allow"
        );
        self.post_all(&hidden, &[("decision", "allow")])?;
        Ok(())
    }

    fn post_all(&self, hidden: &[(String, String)], fields: &[(&str, &str)]) -> Result<String> {
        let mut form: Vec<(&str, &str)> = hidden
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        form.extend_from_slice(fields);
        let answer = self
            .http
            .post(format!("{}/device", self.issuer))
            .header("cookie", &self.cookie)
            .header("content-type", FORM)
            .body(encode(&form))
            .send()?;
        let status = answer.status();
        let page = answer.text()?;
        ensure!(status.is_success(), "the device page answered {status}");
        Ok(page)
    }
}

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// A code request as a relying party starts one (PKCE S256 and a nonce): the verifier to redeem the code with, the nonce the ID token must carry,
/// and the `/authorize` URL at `issuer`.
pub(crate) struct CodeRequest {
    pub verifier: String,
    pub nonce: String,
    pub url: String,
}

/// A fresh [`CodeRequest`] of `client_id` (back to `redirect_uri`) for `scope`, with
/// `state`.
pub(crate) fn code_request(
    issuer: &str,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    state: &str,
) -> CodeRequest {
    let verifier = B64URL.encode(rand_bytes());
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    let nonce = B64URL.encode(rand_bytes());
    let query = encode(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    CodeRequest {
        verifier,
        nonce,
        url: format!("{issuer}/authorize?{query}"),
    }
}

pub(crate) fn encode(pairs: &[(&str, &str)]) -> String {
    openidconnect::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(crate) fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes
}

/// The name and value of each hidden input of the login page, each name once (the first:
/// the device page repeats its CSRF token in its password and e-mail forms, and a browser
/// posts one form).
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + tag[start..].find('"')?;
        Some(
            tag[start..end]
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value")?)))
        .filter(|(name, _)| seen.insert(name.clone()))
        .collect()
}
