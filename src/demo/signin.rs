//! The person's side of the demo (issue 15): they register their badge by proving their
//! e-mail address on the IdP's device page with the code the IdP mails them
//! ([`prove_email`]), and later sign in to a relying party through the IdP's sign-in page
//! by approving its access number with the badge and its PIN ([`rp_signs_in`]): no
//! password anywhere. The relying party redeems the code (PKCE) and verifies the ID token
//! against the IdP's JWKS with the `openidconnect` crate, and the demo prints its `amr`
//! and `acr`.

use anyhow::{ensure, Context, Result};
use milagro_mpin::Pin;
use milagro_pat_client::mpin_key::MpinKey;
use milagro_pat_client::signin::{approve, lookup};
use milagro_wire::idp::TokenAnswer;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce};
use serde::Serialize;
use serde_json::{json, Value};

use super::idp::{code_request, encode, register_client, CodeRequest, DevicePage, FORM};
use super::smtp::Mailbox;

/// Where the relying party says its code goes (nobody serves it: the demo reads the
/// redirect).
const REDIRECT: &str = "https://rp.demo.milagro.test/callback";

/// What the sign-in adds to the demo's summary.
#[derive(Debug, Serialize)]
pub struct SigninSummary {
    /// The relying party.
    client_id: String,
    /// The access number the sign-in page showed.
    access_number: String,
    /// The IdP's error code for the wrong PIN.
    wrong_pin: String,
    /// The verified ID token's claims (`amr`, `acr` among them).
    id_token_claims: Value,
}

/// The person proves `email` for the device authorization of `user_code` on the IdP's
/// device page: asks for a code, reads it in the mail `mailbox` received (the `seen`
/// messages to `email` before it are old), types it, and allows the client.
pub(crate) fn prove_email(
    http: &reqwest::blocking::Client,
    issuer: &str,
    mailbox: &Mailbox,
    (user_code, email): (&str, &str),
    seen: usize,
) -> Result<()> {
    let page = DevicePage::open(http, issuer)?;
    page.post(&[("user_code", user_code), ("email", email), ("code", "")])?;
    let mail = mailbox.wait_for(email, seen, super::mpin::PATIENCE)?;
    let code = mail
        .text
        .lines()
        .map(str::trim)
        .find(|line| line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()))
        .context("no 8-digit code in the IdP's mail")?
        .to_owned();
    eprintln!("    the IdP mailed {email} a one-time code; the person types it");
    let shown = page.post(&[("user_code", user_code), ("email", email), ("code", &code)])?;
    page.allow(&shown)
}

/// A relying party signs the person in through the IdP's sign-in page: the badge, whose
/// M-Pin key is `key`, approves the page's access number with `wrong_pin` (refused), then
/// with `pin`.
pub(crate) fn rp_signs_in(
    http: &reqwest::blocking::Client,
    issuer: &str,
    key: &MpinKey,
    (pin, wrong_pin): (u16, u16),
) -> Result<SigninSummary> {
    super::step("a relying party registers itself (RFC 7591) and sends the person's browser to the IdP (code flow + PKCE)");
    let (client_id, secret) = register_client(
        http,
        issuer,
        &json!({"redirect_uris": [REDIRECT], "client_name": "Demo RP"}),
    )?;
    let CodeRequest {
        verifier,
        nonce,
        url,
    } = code_request(issuer, &client_id, REDIRECT, "openid profile", "demo-state");
    let SigninPage {
        number,
        handle,
        html,
    } = SigninPage::open(http, &url)?;
    ensure!(
        !html.contains("name=\"password\""),
        "the sign-in page asks for a password"
    );
    eprintln!(
        "    the sign-in page shows access number {number} (and its QR code); no password field"
    );

    super::step("the person's badge approves the access number with its PIN (zero knowledge); a wrong PIN first");
    let server = crate::cli::service_client(issuer)?;
    let request = lookup(&server, &number)?;
    eprintln!(
        "    the badge shows: {} asks to sign you in (scope \"{}\")",
        request.client_name.as_deref().unwrap_or(&request.client_id),
        request.scope
    );
    let refused = super::mpin::refusal(approve(&server, key, Pin::new(wrong_pin)?, &number))?;
    eprintln!("    wrong PIN: {refused}; the page still waits");
    let approved = approve(&server, key, Pin::new(pin)?, &number)?;
    eprintln!("    approved for subject {}", approved.subject);
    let code = code_after_approval(http, issuer, &handle)?;

    super::step(
        "the relying party redeems the code and verifies the ID token against the IdP's JWKS",
    );
    let tokens: TokenAnswer = http
        .post(format!("{issuer}/token"))
        .basic_auth(&client_id, Some(&secret))
        .header("content-type", FORM)
        .body(encode(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ]))
        .send()?
        .json()?;
    let jwks: CoreJsonWebKeySet = http.get(format!("{issuer}/jwks")).send()?.json()?;
    let id_token: CoreIdToken = tokens.id_token.parse()?;
    let checker = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(client_id.clone()),
        ClientSecret::new(secret),
        IssuerUrl::new(issuer.to_owned())?,
        jwks,
    )
    .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = serde_json::to_value(id_token.claims(&checker, &Nonce::new(nonce))?)?;
    eprintln!(
        "    verified ID token: sub {}, amr {}, acr {}",
        claims["sub"], claims["amr"], claims["acr"]
    );
    Ok(SigninSummary {
        client_id,
        access_number: number,
        wrong_pin: refused,
        id_token_claims: claims,
    })
}

/// An IdP's sign-in page as a browser got it.
pub(crate) struct SigninPage {
    /// The access number it shows.
    pub number: String,
    /// The handle its reload (`/authorize/wait?signin=…`) names.
    pub handle: String,
    /// Its HTML.
    pub html: String,
}

impl SigninPage {
    /// Opens the authorization request `url`, which must answer with a sign-in page.
    pub(crate) fn open(http: &reqwest::blocking::Client, url: &str) -> Result<Self> {
        let page = http.get(url).send()?;
        ensure!(
            page.status() == 200,
            "the sign-in page answered {}",
            page.status()
        );
        let handle = page
            .headers()
            .get("refresh")
            .and_then(|r| r.to_str().ok())
            .and_then(|r| r.split("signin=").nth(1))
            .context("the sign-in page does not reload itself")?
            .to_owned();
        let html = page.text()?;
        let number = html
            .split("data-number=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .context("the sign-in page shows no access number")?
            .to_owned();
        Ok(Self {
            number,
            handle,
            html,
        })
    }
}

/// The code the sign-in page `handle` at `issuer` redirects with once its access number
/// was approved.
pub(crate) fn code_after_approval(
    http: &reqwest::blocking::Client,
    issuer: &str,
    handle: &str,
) -> Result<String> {
    let landed = http
        .get(format!("{issuer}/authorize/wait?signin={handle}"))
        .send()?;
    let location = landed
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .with_context(|| format!("the sign-in page did not go on ({})", landed.status()))?;
    Ok(location
        .split_once("code=")
        .and_then(|(_, rest)| rest.split('&').next())
        .context("no code in the redirect")?
        .to_owned())
}
