//! `milagro pat`: the device side: enrol through a TBS, refresh instructions, talk to
//! other anchored parties over Milagro TLS ([`super::pat_tls`]), and get and use an M-Pin
//! key ([`super::pat_mpin`]).
//!
//! Both commands print one JSON document on stdout (the device, its anchor, the sequence
//! and the verified D-TAs and IdP) and progress on stderr; the exit status is 0 only when
//! the device holds verified instructions.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use milagro_anchor::digest::Digest;
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_pat_client::{
    enrol, install_credential, open, provision, ChainSources, Enrolled, Error, Event, Provisioning,
    Refreshed, RegistryPin, Stage, WaitOptions,
};
use serde_json::{json, Value};

use super::print_json;

/// `milagro pat …`
#[derive(Debug, Subcommand)]
pub enum PatCommand {
    /// Provisions a device in a state directory (key, instruction key, Birth Certificate)
    /// and enrols it through a TBS: checks the TBS by its digest and SPV, signs its own
    /// anchoring transaction, waits for confirmation and stores its verified instructions.
    /// Run again on the same directory, it resumes where it stopped.
    Enrol(EnrolArgs),
    /// Fetches the instructions of an enrolled device again and stores them if their
    /// sequence is higher (an operator changed the group); reports `unchanged` otherwise.
    Refresh(RefreshArgs),
    /// Opens a Milagro TLS session (ECDH or YAK over Bitcoin, no certificate authority)
    /// to the anchored party with Birth Certificate `--peer`, listening at `--addr`, and
    /// prints both anchors and the session id both sides agreed.
    Ping(super::pat_tls::PingArgs),
    /// Accepts Milagro TLS sessions from any anchored party and answers their pings;
    /// prints one JSON line per session.
    Listen(super::pat_tls::ListenArgs),
    /// Logs the device's user in at the IdP its instructions name, or at a third-party
    /// OpenID provider (`--provider`, remembered): prints a URL and a code for the user to
    /// approve on another screen, waits, and stores the ID token.
    Login(super::pat_mpin::LoginArgs),
    /// Collects the M-Pin key shares of every D-TA in the instructions (over Milagro
    /// TLS, proving the user with the stored ID token), sums them, takes the PIN out
    /// (`MILAGRO_PIN` or standard input) and stores only the token.
    Shares(super::pat_mpin::SharesArgs),
    /// Registers the device for a person without a password: starts the login at the
    /// instructed IdP, where the person gives `--email` and the code the IdP e-mails them
    /// (or an activation code); then collects the shares and takes the PIN as `shares`
    /// does. A new device registered for the same address replaces the old one.
    Register(super::pat_mpin::RegisterArgs),
    /// Renews the M-Pin key's time permit for today from every D-TA that gave it shares
    /// (over Milagro TLS, the device's anchored key its only proof; no login, no PIN).
    Permit(super::pat_mpin::PermitArgs),
    /// Logs in at an authentication server with M-Pin (the PIN from `MILAGRO_PIN` or
    /// standard input; zero knowledge: neither PIN nor key is sent) and prints the
    /// session token it signed.
    Authenticate(super::pat_mpin::AuthenticateArgs),
    /// Approves a sign-in on the web: the access number a sign-in page of the device's IdP
    /// shows (or the URL its QR code carries); shows which client asks, then runs the
    /// M-Pin passes for that request with the PIN (`MILAGRO_PIN` or standard input).
    /// With `--ciba`: a relying party's backchannel request (OpenID Connect CIBA) for the
    /// device's person, its binding message shown, approved the same way or denied.
    Approve(super::pat_mpin::ApproveArgs),
}

/// `milagro pat enrol`
#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The TBS's base URL (plain http:// in this build).
    #[arg(long)]
    pub tbs: String,
    /// The digest of the TBS's Birth Certificate (64 hex characters), from its operator.
    #[arg(long)]
    pub tbs_digest: Digest,
    /// The tenant the device belongs to (groups live inside tenants).
    #[arg(long)]
    pub tenant: String,
    /// The device group within the tenant.
    #[arg(long)]
    pub group: String,
    /// The device's state directory (created with mode 0700).
    #[arg(long)]
    pub state: PathBuf,
    /// The name in the device's Birth Certificate (default: `PAT` and its key prefix).
    #[arg(long)]
    pub name: Option<String>,
    /// The maker's enrolment credential for this device (`milagro tbs credential`),
    /// installed in the state directory before enrolling.
    #[arg(long, value_name = "FILE", conflicts_with = "claim_key")]
    pub credential: Option<PathBuf>,
    /// A fleet claim key (an enrolment key every device of a batch carries, AWS "fleet
    /// provisioning by claim"): the device signs its own credential with it.
    #[arg(long, value_name = "FILE")]
    pub claim_key: Option<PathBuf>,
    /// The Bitcoin network whose genesis block the header chain must start from.
    #[arg(long, default_value = "bitcoin")]
    pub network: bitcoin::Network,
    /// An Electrum server (`tcp://host:port`) whose best chain the TBS's must agree with;
    /// repeat for more. Every one must answer.
    #[arg(long = "electrum", value_name = "URL")]
    pub electrum: Vec<String>,
    /// Another registry (a TBS of another operator) to look certificates up in, pinned by
    /// its certificate digest: `DIGEST@URL`; repeat for more.
    #[arg(long = "registry", value_name = "DIGEST@URL")]
    pub registries: Vec<RegistryPin>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `milagro pat refresh`
#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// The device's state directory.
    #[arg(long)]
    pub state: PathBuf,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// How long to wait for instructions.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Longest wait for the anchor to confirm, in seconds (refresh: only for a device
    /// whose enrolment is still waiting).
    #[arg(long, default_value_t = 600)]
    pub wait_secs: u64,
    /// Time between two requests for instructions, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub poll_ms: u64,
}

impl WaitArgs {
    fn options(&self) -> WaitOptions {
        WaitOptions {
            timeout: Duration::from_secs(self.wait_secs),
            interval: Duration::from_millis(self.poll_ms.max(10)),
        }
    }
}

/// Runs a `pat` subcommand.
pub fn run(command: PatCommand) -> Result<()> {
    match command {
        PatCommand::Enrol(args) => enrol_command(args),
        PatCommand::Refresh(args) => refresh_command(args),
        PatCommand::Ping(args) => super::pat_tls::ping(args),
        PatCommand::Listen(args) => super::pat_tls::listen(args),
        PatCommand::Login(args) => super::pat_mpin::login(args),
        PatCommand::Shares(args) => super::pat_mpin::shares(args),
        PatCommand::Register(args) => super::pat_mpin::register(args),
        PatCommand::Permit(args) => super::pat_mpin::permit(args),
        PatCommand::Authenticate(args) => super::pat_mpin::authenticate_command(args),
        PatCommand::Approve(args) => super::pat_mpin::approve_command(args),
    }
}

fn enrol_command(args: EnrolArgs) -> Result<()> {
    let provisioning = Provisioning {
        tbs_url: args.tbs.trim_end_matches('/').to_owned(),
        tbs_digest: args.tbs_digest,
        tenant: args.tenant,
        group: args.group,
        network: args.network,
        sources: ChainSources {
            electrum: args.electrum,
            registries: args.registries,
        },
    };
    let tbs = crate::cli::service_client(&provisioning.tbs_url)?;
    let mut stage = provision(&args.state, provisioning, args.name.as_deref())
        .with_context(|| format!("cannot provision the device in {}", args.state.display()))?;
    let credential =
        match (&args.credential, &args.claim_key) {
            (Some(file), _) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                Some(EnrolmentCredential::from_json(&text).with_context(|| {
                    format!("{} is not an enrolment credential", file.display())
                })?)
            }
            (None, Some(file)) => {
                let claim = milagro_tbs::files::read_key(file)
                    .with_context(|| format!("cannot read the claim key {}", file.display()))?;
                let device = stage.device();
                let provisioning = device.provisioning();
                Some(EnrolmentCredential::issue(
                    &claim,
                    &provisioning.tenant,
                    &provisioning.group,
                    &device.public_key(),
                )?)
            }
            (None, None) => None,
        };
    if let Some(credential) = credential {
        stage = install_credential(&args.state, credential)?;
    }
    let already = matches!(stage, Stage::Enrolled(_));
    if already {
        eprintln!("already enrolled; `milagro pat refresh` fetches newer instructions");
    }
    let enrolled = enrol(stage, &tbs, &args.wait.options(), report).inspect_err(hint)?;
    eprintln!(
        "enrolled: instructions of sequence {} verified by SPV and stored in {}",
        enrolled.instructions().sequence,
        args.state.display()
    );
    let mut out = summary(&enrolled);
    out["status"] = json!(if already {
        "already_enrolled"
    } else {
        "enrolled"
    });
    print_json(&out)
}

fn refresh_command(args: RefreshArgs) -> Result<()> {
    let stage = open(&args.state)?;
    let tbs = crate::cli::service_client(&stage.device().provisioning().tbs_url)?;
    let (mut enrolled, resumed) = match stage {
        Stage::Enrolled(enrolled) => (enrolled, false),
        Stage::Waiting(_) => (
            enrol(stage, &tbs, &args.wait.options(), report).inspect_err(hint)?,
            true,
        ),
        Stage::Provisioned(_) => bail!(
            "{} is not enrolled yet: run `milagro pat enrol` on it first",
            args.state.display()
        ),
        other => bail!("unexpected device stage {}", other.name()),
    };
    let refreshed = if resumed {
        None
    } else {
        Some(enrolled.refresh(&tbs)?)
    };
    let mut out = summary(&enrolled);
    out["status"] = match refreshed {
        None => json!("enrolled"),
        Some(Refreshed::Updated { previous, sequence }) => {
            eprintln!("new instructions: sequence {previous} → {sequence}, verified and stored");
            out["previous_sequence"] = json!(previous);
            json!("updated")
        }
        Some(Refreshed::Unchanged { sequence }) => {
            eprintln!("unchanged: the tbs serves sequence {sequence}, already stored");
            json!("unchanged")
        }
        Some(Refreshed::Pending(pending)) => {
            eprintln!(
                "the tbs has no instructions ready ({}); the stored ones stay",
                pending.status
            );
            json!("pending")
        }
        Some(other) => json!(format!("{other:?}")),
    };
    print_json(&out)
}

/// What to do after a timeout.
fn hint(error: &Error) {
    if matches!(error, Error::Timeout { .. }) {
        eprintln!("the anchor is not confirmed yet: `milagro pat refresh --state DIR` waits again");
    }
}

fn report(event: Event<'_>) {
    match event {
        Event::Resumed(stage) => eprintln!("device state: {stage}"),
        Event::TbsVerified(anchor) => eprintln!(
            "tbs certificate {} verified by SPV: anchor {} at height {}, depth {}",
            anchor.digest(),
            anchor.txid(),
            anchor.height(),
            anchor.depth()
        ),
        Event::Offered => eprintln!("anchoring offer checked (own key, own digest, bounded fee)"),
        Event::Broadcast(Some(txid)) => {
            eprintln!("anchor {txid} signed by the device and broadcast by the tbs")
        }
        Event::Broadcast(None) => eprintln!("anchor broadcast by the tbs"),
        Event::Pending(pending) => eprintln!(
            "waiting for confirmation: tbs says {}{}",
            pending.status,
            pending
                .depth
                .map(|d| format!(", depth {d}"))
                .unwrap_or_default()
        ),
        _ => {}
    }
}

/// The JSON printed on stdout.
fn summary(enrolled: &Enrolled) -> Value {
    let device = enrolled.device();
    let stored = enrolled.instructions();
    let got = &stored.instructions;
    let anchors = &stored.service_anchors;
    let service = |(i, s): (usize, &milagro_anchor::instructions::ServiceAnchor)| {
        let anchor = anchors.get(i);
        json!({
            "url": s.url,
            "birth_certificate": s.birth_certificate,
            "txid": anchor.map(|a| a.txid),
            "height": anchor.map(|a| a.height),
            "depth": anchor.map(|a| a.depth),
        })
    };
    let dtas: Vec<Value> = got.dtas.iter().enumerate().map(service).collect();
    let idp = got.idp.as_ref().map(|idp| service((got.dtas.len(), idp)));
    let provisioning = device.provisioning();
    json!({
        "status": "enrolled",
        "state_dir": device.dir(),
        "device": {
            "public_key": device.public_key(),
            "birth_certificate": device.birth_certificate().digest(),
            "name": device.birth_certificate().fields().name,
        },
        "tbs": {
            "url": provisioning.tbs_url,
            "digest": provisioning.tbs_digest,
        },
        "sources": provisioning.sources,
        "chain": device.chain_seen(),
        "tenant": got.tenant,
        "group": got.group,
        "sequence": stored.sequence,
        "anchor": stored.device_anchor,
        "dtas": dtas,
        "idp": idp,
    })
}
