//! The one error type of the device side, and the protocol step each failure belongs to.

use core::fmt;
use std::path::PathBuf;

use milagro_anchor::anchor_offer::OfferError;
use milagro_anchor::birth_certificate::{BcError, Role, Status};
use milagro_anchor::digest::Digest;
use milagro_anchor::enrolment::EnrolmentError;
use milagro_anchor::enrolment_credential::CredentialError;
use milagro_anchor::instructions::InstructionsError;
use milagro_anchor::proof::{HeaderChainError, ProofError};
use milagro_anchor::purpose_keys::PurposeKeyError;

use crate::third_party_login::ProviderFault;

/// The step of the protocol (or of the state directory's life) that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Fetching the TBS's Birth Certificate and anchor proof.
    FetchTbsCertificate,
    /// Fetching block headers for SPV.
    FetchHeaders,
    /// Sending the sealed enrolment request and reading the offer.
    RequestEnrolment,
    /// Sending the sealed signed anchoring transaction.
    SendSignedAnchor,
    /// Fetching the sealed instructions.
    FetchInstructions,
    /// Looking up a peer's anchor for Milagro TLS.
    LookUpPeer,
    /// Logging the user in at the IdP.
    LogIn,
    /// Registering the device's key as the user's device at the IdP.
    RegisterDevice,
    /// Asking the D-TAs where their share APIs are.
    LocateDtas,
    /// Logging in at an authentication server with M-Pin.
    Authenticate,
    /// Approving a sign-in on the web at the IdP with M-Pin.
    SignIn,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FetchTbsCertificate => "fetching the tbs certificate",
            Self::FetchHeaders => "fetching headers",
            Self::RequestEnrolment => "requesting enrolment",
            Self::SendSignedAnchor => "sending the signed anchor",
            Self::FetchInstructions => "fetching instructions",
            Self::LookUpPeer => "looking up a peer's anchor",
            Self::LogIn => "logging in at the idp",
            Self::RegisterDevice => "registering the device at the idp",
            Self::LocateDtas => "locating the d-tas",
            Self::Authenticate => "authenticating with m-pin",
            Self::SignIn => "approving a sign-in with m-pin",
        })
    }
}

/// Why the device could not go on. Classified as: the network or the TBS ([`Self::Http`],
/// [`Self::Server`], [`Self::Unexpected`], [`Self::Timeout`]); a TBS that must not be
/// trusted ([`Self::TbsDigest`] through [`Self::StaleInstructions`]); or this device's
/// own state ([`Self::Io`] through [`Self::Unsupported`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A service URL the device's HTTP policy refuses (plain `http://` off loopback, no
    /// system roots for `https://`, not an HTTP URL), or a CA bundle that does not load.
    #[error("{0}")]
    Transport(#[from] milagro_http_client::ClientError),
    /// The server (a TBS, an IdP, an authentication server) could not be reached, or the
    /// connection broke.
    #[error("{step}: cannot reach {url}: {source}")]
    Http {
        /// The step.
        step: Step,
        /// The URL asked.
        url: String,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server answered with an error status (its JSON `error` code and
    /// `error_description`, when the body has them).
    #[error("{step}: {url} answered {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Server {
        /// The step.
        step: Step,
        /// The URL asked (which server answered).
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's stable error code (`bad_request`, `not_found`, …).
        code: Option<String>,
        /// The server's message, or the start of the body.
        message: String,
        /// The `Retry-After` header, in seconds, when the server sent one (a rate limit,
        /// or no pool coin free for an offer).
        retry_after_secs: Option<u64>,
    },
    /// The server answered something that is not the protocol's answer.
    #[error("{step}: unexpected answer: {reason}")]
    Unexpected {
        /// The step.
        step: Step,
        /// What is wrong with it.
        reason: String,
    },
    /// Instructions were not ready in time.
    #[error("{step}: not ready after {waited_secs} s (the tbs says {last_status}); the device keeps its state and can wait again")]
    Timeout {
        /// The step.
        step: Step,
        /// How long the device waited.
        waited_secs: u64,
        /// The last progress the TBS reported.
        last_status: String,
    },
    /// The TBS's certificate is not the one this device was provisioned with.
    #[error(
        "the tbs serves certificate {served}, but this device was provisioned with {provisioned}"
    )]
    TbsDigest {
        /// The provisioned digest.
        provisioned: Digest,
        /// The digest of the certificate served.
        served: Digest,
    },
    /// The certificate served is not a TBS's, or it is not active.
    #[error(
        "the tbs certificate is a {role} certificate with status {status:?}, not an active tbs one"
    )]
    TbsCertificate {
        /// Its role.
        role: Role,
        /// Its status.
        status: Status,
    },
    /// The TBS's certificate lists no envelope key (a version 1 certificate): the device
    /// refuses to seal to the anchored key instead (ADR 0013).
    #[error("the tbs certificate lists no key to seal to: {0}")]
    TbsEnvelopeKey(#[source] PurposeKeyError),
    /// A Birth Certificate (the TBS's, or the device's own in its state) is invalid.
    #[error("invalid birth certificate: {0}")]
    BirthCertificate(#[from] BcError),
    /// The TBS's anchor does not verify by SPV.
    #[error("the tbs anchor does not verify: {0}")]
    TbsAnchor(#[source] ProofError),
    /// The headers served do not form a valid chain from the network's genesis.
    #[error("fetching headers: {0}")]
    Headers(String),
    /// A header failed its proof-of-work or linkage check.
    #[error("fetching headers: {0}")]
    HeaderChain(#[from] HeaderChainError),
    /// An independent header source holds another best chain than the TBS (the message
    /// names both sources, and the fork's height or which one is behind).
    #[error("the chain sources disagree: {0}")]
    ChainDisagreement(Box<milagro_electrum::Disagreement>),
    /// A source the device was given besides its TBS (an Electrum server, another
    /// registry) could not be asked or failed its checks: every source must answer.
    #[error("cannot check the tbs against {label}: {reason}")]
    SourceUnavailable {
        /// The source (its URL).
        label: String,
        /// Why.
        reason: String,
    },
    /// The anchoring offer was refused: it does not open under the device's instruction
    /// key, or its payload, key, fee, funding outpoint or change is not what it must be,
    /// or it lapsed.
    #[error("requesting enrolment: the offer is refused: {0}")]
    Offer(#[from] OfferError),
    /// A message could not be sealed.
    #[error("sealing a message to the tbs: {0}")]
    Sealing(#[from] EnrolmentError),
    /// The device holds no enrolment credential: its maker signs one for its key.
    #[error("{} holds no enrolment credential: the device maker signs one for this device's key (`milagro tbs credential`), and `milagro pat enrol --credential FILE` installs it", .0.display())]
    NoCredential(PathBuf),
    /// An enrolment credential is invalid or not for this device, tenant or group.
    #[error("enrolment credential: {0}")]
    Credential(#[from] CredentialError),
    /// The TBS's offer lapsed before the device's signature reached it; the device asks
    /// again (its signature of the lapsed offer is discarded).
    #[error("the tbs offer lapsed before the device's signature reached it")]
    OfferExpired,
    /// Instructions do not open or do not verify.
    #[error("fetching instructions: {0}")]
    Instructions(#[from] InstructionsError),
    /// Instructions opened and verified but are not for this device's enrolment.
    #[error("fetching instructions: they are not for this device: {0}")]
    ForeignInstructions(String),
    /// Instructions are older than the ones stored: a replay or a rollback.
    #[error("fetching instructions: sequence {offered} is below the stored {stored}; refused")]
    StaleInstructions {
        /// The sequence offered.
        offered: u64,
        /// The sequence stored.
        stored: u64,
    },
    /// The state directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A state file is damaged, or the files disagree with each other.
    #[error("damaged device state {}: {reason}", path.display())]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds no provisioned device.
    #[error("{} holds no provisioned device (run `milagro pat enrol` first)", .0.display())]
    NotProvisioned(PathBuf),
    /// The directory was provisioned with other settings.
    #[error("{} was provisioned with another {field} ({stored}); use a new state directory", path.display())]
    ProvisionedOtherwise {
        /// The directory.
        path: PathBuf,
        /// The setting that differs.
        field: &'static str,
        /// Its stored value.
        stored: String,
    },
    /// A secret file is readable by others than its owner.
    #[error("{} is readable by group or others (mode {mode:o}); refusing to use it", path.display())]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A D-TA's answer is malformed, its points are invalid, or the answers do not fit
    /// together (different identities or days, a D-TA twice).
    #[error("m-pin shares: {0}")]
    MpinShares(String),
    /// The user's login at the IdP did not complete (denied, expired, refused).
    #[error("logging in at the idp: {0}")]
    LoginFailed(String),
    /// The IdP's device authorization answer names a verification page off its own
    /// origin: the user would type the code and their password into someone else's page.
    #[error("logging in at the idp: the verification page {uri} is not on the idp's origin {issuer}; refused")]
    VerificationUriOffOrigin {
        /// The page named.
        uri: String,
        /// The IdP's issuer.
        issuer: String,
    },
    /// A third-party OpenID provider (ADR 0015) answered what the device must not use,
    /// or is not one it can log in at. `url` is the URL asked (or the one at fault).
    #[error("logging in at {url}: {fault}")]
    Provider {
        /// The URL.
        url: String,
        /// What is wrong.
        fault: ProviderFault,
    },
    /// The device is not ready for this step (no instructions, no login, no key yet).
    #[error("not ready: {0}")]
    NotReady(String),
    /// A setting this build does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn unexpected(step: Step, reason: impl fmt::Display) -> Self {
        Self::Unexpected {
            step,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl fmt::Display) -> Self {
        Self::CorruptState {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
