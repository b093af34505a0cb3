//! `milagro pat login`, `milagro pat shares` and `milagro pat authenticate`: the device's
//! M-Pin key, from the user's login at the IdP to a login with the PIN only.
//!
//! 1. `login`: the user approves the device at the IdP its instructions name (device
//!    authorization grant: the command prints a URL and a code and waits), or at the
//!    third-party provider `--provider` names ([`super::pat_provider`]); the ID token is
//!    stored (mode 0600) for the next step.
//! 2. `shares`: each D-TA of the instructions gives its client-secret share and today's
//!    time permit over Milagro TLS; the shares are checked and summed, the PIN is taken
//!    out, and only the token is stored (`mpin-key.json`); the ID token is then deleted.
//!    (A new `login` and `shares` make a new key, e.g. for another user.)
//! 3. `permit`: the next days, today's time permit from every D-TA of the key, the
//!    device's anchored key (over Milagro TLS) its only proof: no login, no PIN.
//! 4. `authenticate`: a zero-knowledge login at an authentication server with the PIN;
//!    prints the session token it signed.
//! 5. `approve`: a sign-in on the web at the device's IdP, by the access number its page
//!    shows (or the URL of its QR code): the same two passes, for that request; with
//!    `--ciba`, a relying party's backchannel request for the person instead
//!    ([`super::pat_ciba`]).
//!
//! `register` is `login` and `shares` in one, for a person without a password: the
//! device grant starts, the person proves their e-mail address on the IdP's device page
//! (a code the IdP e-mails them, or an activation code their operator gave them), and the
//! device, registered at the IdP by its login, goes on to collect its shares and store its
//! key. Registering a new device for the same address replaces the old one at the IdP.
//!
//! The PIN (4 digits) is read from the environment variable `MILAGRO_PIN` if set, else
//! from the first line of standard input: never from the command line, which other users
//! of the machine can see.

use std::io::BufRead as _;

use anyhow::{bail, Context, Result};
use clap::Args;
use milagro_mpin::Pin;
use milagro_pat_client::authenticate::authenticate;
use milagro_pat_client::dtas::{
    client_id_for, collect_permits, collect_shares, locate, DtaEndpoint,
};
use milagro_pat_client::idp_login::{DeviceLogin, IdToken, IdpLogin};
use milagro_pat_client::mpin_key::MpinKey;
use milagro_pat_client::signin::{approve, lookup, Approval};
use milagro_pat_client::{open, Enrolled, Stage};
use milagro_tls::Options;
use serde_json::json;
use zeroize::Zeroizing;

use super::pat_tls::SessionArgs;
use super::print_json;

/// The environment variable a PIN may come from.
pub const PIN_ENV: &str = "MILAGRO_PIN";

/// `milagro pat login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The device's state directory (an enrolled device).
    #[arg(long)]
    pub state: std::path::PathBuf,
    /// Log in at this third-party OpenID provider (its issuer URL, https://) instead of
    /// the IdP the instructions name: one the D-TAs trust by web PKI (ADR 0015). It is
    /// remembered: later logins go there until `--instructed-idp`.
    #[arg(long, value_name = "ISSUER")]
    pub provider: Option<String>,
    /// Log in at the IdP the instructions name, forgetting a remembered provider.
    #[arg(long, conflicts_with = "provider")]
    pub instructed_idp: bool,
}

/// `milagro pat shares`
#[derive(Debug, Args)]
pub struct SharesArgs {
    #[command(flatten)]
    pub session: SessionArgs,
}

/// `milagro pat register`
#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// The person's e-mail address: the one to give on the IdP's device page (only shown
    /// to them here; the IdP sends the code to it).
    #[arg(long)]
    pub email: String,
}

/// `milagro pat permit`
#[derive(Debug, Args)]
pub struct PermitArgs {
    #[command(flatten)]
    pub session: SessionArgs,
}

/// `milagro pat authenticate`
#[derive(Debug, Args)]
pub struct AuthenticateArgs {
    /// The device's state directory (holding an M-Pin key).
    #[arg(long)]
    pub state: std::path::PathBuf,
    /// The authentication server's base URL (https://, verified against `--ca-bundle` or
    /// the system's roots; plain http:// only to loopback unless allowed).
    #[arg(long)]
    pub authserver: String,
}

/// `milagro pat approve`
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The device's state directory (holding an M-Pin key).
    #[arg(long)]
    pub state: std::path::PathBuf,
    /// The access number the sign-in page shows (at the IdP the instructions name).
    #[arg(
        long,
        required_unless_present_any = ["url", "ciba"],
        conflicts_with_all = ["url", "ciba"]
    )]
    pub access_number: Option<String>,
    /// The URL the sign-in page's QR code carries; it must be the instructed IdP's.
    #[arg(long, conflicts_with = "ciba")]
    pub url: Option<String>,
    #[command(flatten)]
    pub ciba: super::pat_ciba::CibaArgs,
}

pub(super) fn enrolled(state: &std::path::Path) -> Result<Enrolled> {
    match open(state)? {
        Stage::Enrolled(enrolled) => Ok(enrolled),
        other => bail!(
            "{} is {}, not enrolled: run `milagro pat enrol` first",
            state.display(),
            other.name()
        ),
    }
}

/// The D-TAs of the stored instructions, located.
fn located_dtas(enrolled: &Enrolled) -> Result<Vec<DtaEndpoint>> {
    let dtas = &enrolled.instructions().instructions.dtas;
    if dtas.is_empty() {
        bail!("the device's instructions name no d-ta");
    }
    dtas.iter()
        .map(|dta| {
            locate(&crate::cli::outbound()?, dta)
                .with_context(|| format!("d-ta {} at {}", dta.birth_certificate, dta.url))
        })
        .collect()
}

/// Runs `milagro pat login`.
pub fn login(args: LoginArgs) -> Result<()> {
    let enrolled = enrolled(&args.state)?;
    let dtas = located_dtas(&enrolled)?;
    let provider = super::pat_provider::chosen(&args.state, args.provider, args.instructed_idp)?;
    let token = match &provider {
        Some(provider) => super::pat_provider::log_in(&enrolled, &dtas, provider)?,
        None => instructed_login(&enrolled, &dtas, |pending| {
            format!(
                "to approve this device, open {} and enter the code {}",
                pending.verification_uri(),
                pending.user_code()
            )
        })?,
    };
    token.save(&args.state)?;
    eprintln!(
        "logged in at {}; the id token is stored until `milagro pat shares`",
        token.issuer
    );
    print_json(&json!({
        "status": "logged_in",
        "issuer": token.issuer,
        "idp": token.idp,
        "binding": if token.nonce_salt().is_some() { "nonce" } else { "dpop" },
        "client_id": token.client_id,
        "expires_at": token.expires_at,
    }))
}

/// The device grant at the IdP the instructions of `enrolled` name, for the client id
/// the D-TAs `dtas` agree on there; `tell` says what the person is to do (printed on
/// standard error) while the device waits.
fn instructed_login(
    enrolled: &Enrolled,
    dtas: &[DtaEndpoint],
    tell: impl FnOnce(&DeviceLogin) -> String,
) -> Result<IdToken> {
    let idp = enrolled
        .instructions()
        .instructions
        .idp
        .clone()
        .context("the device's instructions name no idp")?;
    let client_id = client_id_for(dtas, &idp.url)?;
    let login = IdpLogin::discover(&crate::cli::outbound()?, &idp, &client_id)?;
    let pending = login.start()?;
    eprintln!("{}", tell(&pending));
    Ok(pending.wait(enrolled.device().key())?)
}

/// Runs `milagro pat shares`.
pub fn shares(args: SharesArgs) -> Result<()> {
    let state = &args.session.state;
    let enrolled = enrolled(state)?;
    let token = IdToken::load(state)?.context("no id token: run `milagro pat login` first")?;
    if token.expired(milagro_service::unix_now()) {
        bail!("the id token expired: run `milagro pat login` again");
    }
    let dtas = located_dtas(&enrolled)?;
    let key = store_key(&args.session, &enrolled, &dtas, &token)?;
    IdToken::forget(state)?;
    print_json(&json!({
        "status": "key_stored",
        "mpin_id": String::from_utf8_lossy(key.id.as_bytes()),
        "permit_day": key.permit.day().0,
        "dtas": key.dtas,
    }))
}

/// Collects every D-TA's client-secret share and time permit with `token` (over Milagro
/// TLS), sums them, takes the PIN out and stores the key (`mpin-key.json`).
fn store_key(
    session: &SessionArgs,
    enrolled: &Enrolled,
    dtas: &[DtaEndpoint],
    token: &IdToken,
) -> Result<MpinKey> {
    let (identity, directory) = super::pat_tls::device_parts(enrolled.device())?;
    let options = Options {
        min_depth: session.min_depth(enrolled.device()),
        ..Options::default()
    };
    let shares = super::pat_tls::runtime()?.block_on(collect_shares(
        &identity,
        dtas,
        directory,
        &options,
        &token.share_request(),
    ))?;
    for share in &shares {
        eprintln!(
            "d-ta {} issued its shares over milagro tls; points checked",
            share.dta
        );
    }
    let key = MpinKey::assemble(&shares, read_pin()?)?;
    key.save(&session.state)?;
    eprintln!("the shares are summed, the pin is out: only the token is stored");
    Ok(key)
}

/// Runs `milagro pat register`: the device grant at the instructed IdP, approved by the
/// person proving `--email` on its device page, then the shares and the PIN as `shares`
/// does. The ID token is never stored: it is used at once.
pub fn register(args: RegisterArgs) -> Result<()> {
    let enrolled = enrolled(&args.session.state)?;
    let dtas = located_dtas(&enrolled)?;
    let email = args.email.trim();
    let token = instructed_login(&enrolled, &dtas, |pending| {
        let page = pending
            .verification_uri_complete()
            .unwrap_or_else(|| pending.verification_uri());
        format!(
            "to register this device, open {page} (device code {}) and give the address \
             {email}; then enter the code the IdP e-mails to it, or the activation code \
             you were given",
            pending.user_code()
        )
    })?;
    let key = store_key(&args.session, &enrolled, &dtas, &token)?;
    print_json(&json!({
        "status": "registered",
        "issuer": token.issuer,
        "mpin_id": String::from_utf8_lossy(key.id.as_bytes()),
        "permit_day": key.permit.day().0,
        "dtas": key.dtas,
    }))
}

/// Runs `milagro pat permit`.
pub fn permit(args: PermitArgs) -> Result<()> {
    let state = &args.session.state;
    let enrolled = enrolled(state)?;
    let mut key = MpinKey::load(state)?
        .context("no m-pin key: run `milagro pat login` and `milagro pat shares` first")?;
    let dtas: Vec<_> = located_dtas(&enrolled)?
        .into_iter()
        .filter(|dta| key.dtas.contains(&dta.digest))
        .collect();
    let (identity, directory) = super::pat_tls::device_parts(enrolled.device())?;
    let options = Options {
        min_depth: args.session.min_depth(enrolled.device()),
        ..Options::default()
    };
    let permits = super::pat_tls::runtime()?
        .block_on(collect_permits(&identity, &dtas, directory, &options))?;
    key.renew_permit(&permits)?;
    key.save(state)?;
    eprintln!(
        "time permit of day {} from {} d-tas, summed and stored",
        key.permit.day().0,
        permits.len()
    );
    print_json(&json!({
        "status": "permit_renewed",
        "mpin_id": String::from_utf8_lossy(key.id.as_bytes()),
        "permit_day": key.permit.day().0,
        "dtas": key.dtas,
    }))
}

/// Runs `milagro pat authenticate`.
pub fn authenticate_command(args: AuthenticateArgs) -> Result<()> {
    let key = MpinKey::load(&args.state)?
        .context("no m-pin key: run `milagro pat login` and `milagro pat shares` first")?;
    let server = crate::cli::service_client(&args.authserver)?;
    let session = authenticate(&server, &key, read_pin()?)?;
    eprintln!("authenticated as {}", session.mpin_id);
    print_json(&json!({
        "status": "authenticated",
        "mpin_id": session.mpin_id,
        "expires_in": session.expires_in,
        "session_token": session.token,
    }))
}

/// The device's IdP (its base URL, from the instructions).
pub(super) fn instructed_idp(enrolled: &Enrolled) -> Result<String> {
    let idp = enrolled
        .instructions()
        .instructions
        .idp
        .clone()
        .context("the device's instructions name no idp")?;
    Ok(idp.url.trim_end_matches('/').to_owned())
}

/// Runs `milagro pat approve`.
pub fn approve_command(args: ApproveArgs) -> Result<()> {
    let enrolled = enrolled(&args.state)?;
    let key = MpinKey::load(&args.state)?
        .context("no m-pin key: run `milagro pat login` and `milagro pat shares` first")?;
    let idp_url = instructed_idp(&enrolled)?;
    if args.ciba.ciba {
        return super::pat_ciba::approve(&args.ciba, &enrolled, &key, &idp_url);
    }
    let approval = match (args.access_number, args.url) {
        (Some(access_number), None) => Approval {
            idp: idp_url.clone(),
            access_number,
        },
        (None, Some(url)) => Approval::from_url(&url).with_context(|| {
            format!("{url} is not a sign-in url (…/v1/signin/request?access_number=N)")
        })?,
        _ => bail!("give --access-number or --url"),
    };
    if approval.idp != idp_url {
        bail!(
            "the sign-in is at {}, not at the device's idp {idp_url}: not approved",
            approval.idp
        );
    }
    let server = crate::cli::service_client(&approval.idp)?;
    let request = lookup(&server, &approval.access_number)?;
    eprintln!(
        "{} ({}) asks to sign you in, scope \"{}\", code to {}; {} s left",
        request.client_name.as_deref().unwrap_or(&request.client_id),
        request.client_id,
        request.scope,
        request.redirect_uri,
        request.expires_in
    );
    let approved = approve(&server, &key, read_pin()?, &request.access_number)?;
    eprintln!(
        "approved: the sign-in page goes on to {}",
        approved.client_id
    );
    print_json(&json!({
        "status": approved.status,
        "client_id": approved.client_id,
        "subject": approved.subject,
        "access_number": request.access_number,
    }))
}

/// The PIN, from [`PIN_ENV`] or the first line of standard input.
pub(super) fn read_pin() -> Result<Pin> {
    let text = match std::env::var(PIN_ENV) {
        Ok(pin) => Zeroizing::new(pin),
        Err(_) => {
            eprintln!("pin:");
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the pin from standard input")?;
            line
        }
    };
    let value: u16 = text
        .trim()
        .parse()
        .ok()
        .filter(|_| text.trim().len() == 4)
        .context("a pin is 4 digits")?;
    Ok(Pin::new(value)?)
}
