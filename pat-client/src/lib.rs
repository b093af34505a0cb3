//! The device side of Milagro Trust: a PAT (a phone, an app, an IoT device with a few
//! kilobytes of storage) enrols through a Trusted Bitcoin Server (TBS) without running a
//! node, and trusts nothing the TBS says that it cannot check itself.
//!
//! A device is provisioned with only the TBS's URL, the digest of the TBS's Birth
//! Certificate, its tenant and group, and its network ([`Provisioning`]). It then makes its
//! own key, instruction key and Birth Certificate (role `pat`) in a private state directory
//! ([`state`]), and runs the protocol of `docs/enrolment.md`, one type per state (each
//! transition consumes its state, so no step is skipped or repeated):
//!
//! 1. [`Provisioned::verify_tbs`]: fetches `/.well-known/milagro/birth-certificate`,
//!    checks the digest, role and status, and verifies the anchor by SPV against headers
//!    from `/v1/headers`, checked from the network's pinned checkpoint under the consensus
//!    rules and against the device's [`ChainSources`] → [`TbsVerified`];
//! 2. [`TbsVerified::request`]: sends the sealed `EnrolmentRequest` and checks the PSBT
//!    offered ([`AnchorOffer::check`](milagro_anchor::anchor_offer::AnchorOffer::check):
//!    its own key, its own digest, a bounded fee) → [`Offered`];
//! 3. [`Offered::sign_and_send`]: signs the anchoring transaction with the device key (the
//!    device's own signature goes on chain), stores it, sends it sealed → [`Waiting`].
//!    In a batch-mode group the TBS answers the request with "queued" instead: the TBS
//!    anchors the device's certificate digest under its next batch root, and the device
//!    goes straight to [`Waiting`] (`Requested::Queued`);
//! 4. [`Waiting::poll`] / [`Waiting::wait`]: fetches the sealed instructions until
//!    the anchor is confirmed, opens them, verifies every anchor in them by SPV (for a
//!    batch member: its membership proof, then the root's anchor, signed by the TBS key)
//!    and stores them → [`Enrolled`]; later, [`Enrolled::refresh`] picks up a new group
//!    revision.
//!
//! Once enrolled, the device gets its M-Pin key and uses it:
//!
//! 5. [`idp_login`]: its user logs in at the IdP the instructions name (device
//!    authorization grant, RFC 8628), after the IdP's discovery document is checked to
//!    name the anchored digest the instructions give; or at a third-party OpenID provider
//!    the D-TAs trust by web PKI ([`third_party_login`], ADR 0015): discovered over
//!    verified HTTPS, the same grant, the ID token bound to the device's key by its
//!    `nonce`, checked before it is kept;
//! 6. [`dtas`] and [`mpin_key`]: each D-TA of the instructions is asked over Milagro TLS
//!    for its client-secret share and today's time-permit share; every point is checked,
//!    the shares are summed, the PIN is taken out and only the token is stored;
//! 7. [`authenticate`]: M-Pin logins at an authentication server, with the PIN only.
//!
//! [`open`] reloads a state directory and resumes where it stopped ([`Stage`]): a device
//! that sent its anchor waits for instructions without asking again, and an enrolled one
//! only refreshes. [`enrol`] drives the whole protocol, reporting [`Event`]s.
//!
//! Every failure is one [`Error`] naming the step and, for an error answer, the TBS's JSON
//! `error` code and `error_description`.
//!
//! # What it does not do (yet)
//!
//! - No node: headers come from the TBS, checked under the consensus rules from the
//!   network's pinned checkpoint, with at least the work of any chain the device accepted
//!   before. Given [`ChainSources`], the device also checks that chain against Electrum
//!   servers and looks certificates up in more registries ([`sources`]); without them, a
//!   TBS can still withhold blocks or records (`docs/threat-model.md`).
//! - Its HTTP is [`milagro_http_client`]'s: `https://` verified against the system's
//!   roots or a CA bundle ([`ServiceClient::with_outbound`]), plain `http://` only to
//!   loopback unless allowed; every other client the device makes (IdP, D-TAs,
//!   registries, authentication server) follows its TBS client's policy.
//! - One IdP login serves every D-TA of the group: they must share one client id at the
//!   IdP ([`dtas::client_id_for`]); D-TAs with different client ids are refused.
//! - At a third-party provider it runs the device authorization grant only, and that
//!   binds the token only where the provider copies the request's nonce into the ID token
//!   (Keycloak does; `oidc-provider` and Entra ID do not, and their tokens are refused:
//!   [`third_party_login`]). The authorization-code flow with a loopback redirect, which
//!   every provider would serve a device with a browser, is not built.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use milagro_pat_client::{enrol, provision, Provisioning, ServiceClient, WaitOptions};
//!
//! # fn main() -> Result<(), milagro_pat_client::Error> {
//! let provisioning = Provisioning {
//!     tbs_url: "http://127.0.0.1:8080".into(),
//!     tbs_digest: "5d…".parse().map_err(|_| milagro_pat_client::Error::Unsupported("digest".into()))?,
//!     tenant: "acme".into(),
//!     group: "eu".into(),
//!     network: bitcoin::Network::Regtest,
//!     sources: Default::default(),
//! };
//! let stage = provision("/var/lib/pat".as_ref(), provisioning, Some("meter 7"))?;
//! let tbs = ServiceClient::new(&stage.device().provisioning().tbs_url)?;
//! let wait = WaitOptions { timeout: Duration::from_secs(600), interval: Duration::from_secs(5) };
//! let enrolled = enrol(stage, &tbs, &wait, |event| eprintln!("{event:?}"))?;
//! for dta in &enrolled.instructions().instructions.dtas {
//!     println!("D-TA {} ({})", dta.url, dta.birth_certificate);
//! }
//! # Ok(()) }
//! ```

pub mod authenticate;
pub mod ciba;
mod device_grant;
pub mod dtas;
mod enrolment;
mod error;
mod files;
mod http;
pub mod idp_login;
mod instructions;
pub mod mpin_key;
pub mod peering;
pub mod signin;
pub mod sources;
pub mod spv;
pub mod state;
pub mod third_party_login;

use std::path::Path;
use std::time::Duration;

use bitcoin::Txid;
use milagro_anchor::proof::VerifiedAnchor;

pub use enrolment::{Enrolled, Offered, Poll, Provisioned, Requested, TbsVerified, Waiting};
pub use error::{Error, Step};
pub use http::{ServiceClient, DEFAULT_REQUEST_TIMEOUT};
pub use instructions::{Pending, Refreshed};
pub use milagro_http_client::{ClientOptions, Outbound};
pub use state::{
    AnchorSummary, ChainSeen, ChainSources, Device, Provisioning, RegistryPin, StoredInstructions,
};

/// Where a device's state directory says it is.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stage {
    /// Provisioned; the TBS is (re)checked next.
    Provisioned(Provisioned),
    /// The anchor was signed and sent, or the device is queued for a batch: waiting for
    /// instructions.
    Waiting(Waiting),
    /// Instructions verified and stored.
    Enrolled(Enrolled),
}

impl Stage {
    fn of(device: state::Device) -> Self {
        let device = Box::new(device);
        let tbs_key = device.tbs.as_ref().map(|t| *t.bc.public_key());
        match (
            tbs_key,
            device.progress.is_some(),
            device.instructions.clone(),
        ) {
            (Some(tbs_key), true, Some(stored)) => Self::Enrolled(Enrolled {
                device,
                tbs_key,
                stored: Box::new(stored),
            }),
            (Some(tbs_key), true, None) => Self::Waiting(Waiting { device, tbs_key }),
            _ => Self::Provisioned(Provisioned { device }),
        }
    }

    /// The device.
    pub fn device(&self) -> &Device {
        match self {
            Self::Provisioned(s) => s.device(),
            Self::Waiting(s) => s.device(),
            Self::Enrolled(s) => s.device(),
        }
    }

    /// `provisioned`, `waiting` or `enrolled`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Provisioned(_) => "provisioned",
            Self::Waiting(_) => "waiting",
            Self::Enrolled(_) => "enrolled",
        }
    }
}

/// Provisions a device in `dir` (created 0700 if needed): a new key, instruction key and
/// Birth Certificate named `name` (default `PAT <key prefix>`), unless the directory
/// already holds a device, which is resumed as [`open`] does. Its settings may change
/// until it has verified a TBS (a mistyped digest is corrected by provisioning again);
/// after that, other settings are refused ([`Error::ProvisionedOtherwise`]).
pub fn provision(
    dir: &Path,
    provisioning: Provisioning,
    name: Option<&str>,
) -> Result<Stage, Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    state::Device::provision(dir, provisioning, name, now).map(Stage::of)
}

/// Installs the maker's enrolment `credential` in the device in `dir` (it must be for the
/// device's key, tenant and group: [`Error::Credential`] otherwise); the device sends it
/// with its enrolment request.
pub fn install_credential(
    dir: &Path,
    credential: milagro_anchor::enrolment_credential::EnrolmentCredential,
) -> Result<Stage, Error> {
    let mut device = state::Device::load(dir)?;
    device.install_credential(credential)?;
    Ok(Stage::of(device))
}

/// How many times [`enrol`] asks again after its offer lapsed before its signature
/// reached the TBS.
pub const LAPSED_OFFER_RETRIES: u32 = 3;

/// Loads the device in `dir` and says where it stopped.
pub fn open(dir: &Path) -> Result<Stage, Error> {
    state::Device::load(dir).map(Stage::of)
}

/// How long [`enrol`] waits for instructions, and how often it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up after this long ([`Error::Timeout`]; the state stays at [`Waiting`]).
    pub timeout: Duration,
    /// Time between two requests.
    pub interval: Duration,
}

impl Default for WaitOptions {
    /// Ten minutes (a mainnet block), every five seconds.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            interval: Duration::from_secs(5),
        }
    }
}

/// What [`enrol`] has done so far, for progress reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The state directory was loaded at this stage.
    Resumed(&'static str),
    /// The TBS's certificate and anchor verified.
    TbsVerified(&'a VerifiedAnchor),
    /// The offer was checked.
    Offered,
    /// The signed anchor is with the TBS.
    Broadcast(Option<Txid>),
    /// The device is queued for the TBS's next batch (batch mode: nothing to sign).
    Queued,
    /// Instructions are not ready yet.
    Pending(&'a Pending),
}

/// Runs the protocol from `stage` to [`Enrolled`] (an enrolled device returns at once,
/// without a request). An offer that lapses before the device's signature reaches the TBS
/// is forgotten and a new one asked for, up to [`LAPSED_OFFER_RETRIES`] times; a TBS
/// answering `429` or `503` with `Retry-After` is asked again after the wait, within
/// `wait.timeout`.
pub fn enrol(
    stage: Stage,
    tbs: &ServiceClient,
    wait: &WaitOptions,
    mut report: impl FnMut(Event<'_>),
) -> Result<Enrolled, Error> {
    let dir = stage.device().dir().to_path_buf();
    let mut stage = stage;
    let mut retries = 0;
    loop {
        match enrol_once(stage, tbs, wait, &mut report) {
            Err(Error::OfferExpired) if retries < LAPSED_OFFER_RETRIES => {
                retries += 1;
                stage = open(&dir)?;
            }
            done => return done,
        }
    }
}

fn enrol_once(
    stage: Stage,
    tbs: &ServiceClient,
    wait: &WaitOptions,
    report: &mut impl FnMut(Event<'_>),
) -> Result<Enrolled, Error> {
    report(Event::Resumed(stage.name()));
    let waiting = match stage {
        Stage::Enrolled(enrolled) => return Ok(enrolled),
        Stage::Waiting(waiting) => waiting,
        Stage::Provisioned(provisioned) => {
            let verified = provisioned.verify_tbs(tbs)?;
            report(Event::TbsVerified(verified.tbs_anchor()));
            match verified.request_patiently(tbs, wait.timeout)? {
                Requested::Offered(offered) => {
                    report(Event::Offered);
                    offered.sign_and_send(tbs)?
                }
                Requested::AlreadyBroadcast(waiting) | Requested::Queued(waiting) => waiting,
            }
        }
    };
    report(if waiting.device().is_batched() {
        Event::Queued
    } else {
        Event::Broadcast(waiting.txid())
    });
    waiting.wait(tbs, wait.timeout, wait.interval, |pending| {
        report(Event::Pending(pending));
    })
}
