//! `milagro bc`: create, anchor and verify Birth Certificates.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use bitcoin::FeeRate;
use clap::{Args, Subcommand};
use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status, VERSION};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::SecretKey;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_anchor::purpose_keys::PurposeKeys;
use milagro_registry::anchoring::prepare_anchor;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainSource;
use milagro_tbs::files;
use serde::Serialize;

use super::print_json;
use crate::node::{synced_registry, NodeArgs, DEFAULT_STEP_BLOCKS};
use crate::verify::verify_bc;

/// `milagro bc …`
#[derive(Debug, Subcommand)]
pub enum BcCommand {
    /// Creates a key (if absent) and a signed Birth Certificate.
    New(NewArgs),
    /// Anchors a Birth Certificate's digest on chain, signed by its own key.
    Anchor(AnchorArgs),
    /// Checks that a Birth Certificate is anchored by its own key; prints a JSON verdict.
    Verify(VerifyArgs),
}

/// `milagro bc new`
#[derive(Debug, Args)]
pub struct NewArgs {
    /// tbs, idp, dta, pat or authserver.
    #[arg(long)]
    pub role: Role,
    /// Human-readable name.
    #[arg(long)]
    pub name: String,
    /// URL where the party serves (repeatable).
    #[arg(long = "endpoint")]
    pub endpoints: Vec<String>,
    /// Secret key file (hex); created with mode 0600 if absent.
    #[arg(long)]
    pub key_file: PathBuf,
    /// Where to write the certificate.
    #[arg(long)]
    pub out: PathBuf,
    /// Digest of the certificate this one replaces.
    #[arg(long)]
    pub previous: Option<Digest>,
    /// active, compromised or retired.
    #[arg(long, default_value = "active", value_parser = parse_status)]
    pub status: Status,
    /// Creation time in Unix seconds (default: now).
    #[arg(long)]
    pub created: Option<u64>,
}

/// `milagro bc anchor`
#[derive(Debug, Args)]
pub struct AnchorArgs {
    /// The certificate to anchor.
    pub bc: PathBuf,
    /// The certificate's secret key file.
    #[arg(long)]
    pub key_file: PathBuf,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Fee rate in sat/vB.
    #[arg(long, default_value_t = 2)]
    pub fee_rate: u32,
}

/// `milagro bc verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The certificate to verify.
    pub bc: PathBuf,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Confirmations required.
    #[arg(long, default_value_t = 1)]
    pub min_depth: u32,
    /// The record index to use (synced first). Default: a per-chain index in the cache.
    #[arg(long)]
    pub db: Option<PathBuf>,
}

fn parse_status(text: &str) -> Result<Status, String> {
    serde_json::from_value(serde_json::Value::String(text.into()))
        .map_err(|_| format!("unknown status {text:?}"))
}

/// Runs a `bc` subcommand.
pub fn run(command: BcCommand) -> Result<()> {
    match command {
        BcCommand::New(args) => new(args),
        BcCommand::Anchor(args) => anchor(args),
        BcCommand::Verify(args) => verify(args),
    }
}

fn new(args: NewArgs) -> Result<()> {
    let key = load_or_create_key(&args.key_file)?;
    let created = match args.created {
        Some(created) => created,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    };
    let fields = BcFields {
        version: VERSION,
        role: args.role,
        name: args.name,
        endpoints: args.endpoints,
        created,
        public_key: key.public_key(),
        status: args.status,
        previous: args.previous,
        keys: PurposeKeys::derive(args.role, &key)?,
    };
    let bc = BirthCertificate::sign(fields, &key)?;
    files::write_atomically(&args.out, bc.to_pretty_json().as_bytes())?;
    eprintln!(
        "wrote {} ({} of {})",
        args.out.display(),
        bc.role(),
        bc.fields().name
    );
    print_json(&serde_json::json!({
        "digest": bc.digest(),
        "public_key": bc.public_key(),
        "path": args.out,
    }))
}

/// What `milagro bc anchor` prints.
#[derive(Debug, Serialize)]
pub struct AnchorReceipt {
    /// The anchoring transaction.
    pub txid: bitcoin::Txid,
    /// The anchored digest.
    pub digest: Digest,
    /// The fee paid, in satoshis.
    pub fee_sat: u64,
    /// The output that paid for it.
    pub funding: String,
    /// The signed transaction (with the value it spends, what recomputing the
    /// signature's nonce for Milagro TLS needs).
    #[serde(skip)]
    pub tx: bitcoin::Transaction,
    /// The value of the output it spends.
    #[serde(skip)]
    pub funding_value: bitcoin::Amount,
}

fn anchor(args: AnchorArgs) -> Result<()> {
    let bc = read_bc(&args.bc)?;
    let key = read_key(&args.key_file)?;
    let node = args.node.connect()?;
    let fee_rate =
        FeeRate::from_sat_per_vb(u64::from(args.fee_rate)).context("fee rate too large")?;
    let receipt = anchor_bc(&node, &bc, &key, fee_rate)?;
    eprintln!("broadcast {} anchoring {}", receipt.txid, receipt.digest);
    print_json(&receipt)
}

/// Funds the party's key from the node wallet if it has no coins, then anchors `bc`.
pub fn anchor_bc(
    node: &BitcoindRpc,
    bc: &BirthCertificate,
    key: &SecretKey,
    fee_rate: FeeRate,
) -> Result<AnchorReceipt> {
    ensure!(
        key.public_key() == *bc.public_key(),
        "the key file does not hold the certificate's key"
    );
    let payload = Payload::new(RecordKind::BirthCertificate, bc.digest());
    let prepared = prepare_anchor(node, key, &payload, fee_rate)?;
    let txid = node
        .broadcast(&prepared.anchor.tx)
        .context("the node refused the anchoring transaction")?;
    Ok(AnchorReceipt {
        txid,
        digest: bc.digest(),
        fee_sat: prepared.anchor.fee.to_sat(),
        funding: prepared.funding.outpoint.to_string(),
        tx: prepared.anchor.tx,
        funding_value: prepared.funding.value,
    })
}

fn verify(args: VerifyArgs) -> Result<()> {
    let bc = read_bc(&args.bc)?;
    let node = args.node.connect()?;
    let db = match args.db {
        Some(db) => db,
        None => milagro_regtest::default_cache_dir().join(format!("registry-{}", node.network()?)),
    };
    let follower = synced_registry(
        &node,
        &db,
        DEFAULT_STEP_BLOCKS,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )?;
    let verdict = verify_bc(&node, follower.store(), &bc, args.min_depth)?;
    print_json(&verdict)?;
    if !verdict.anchored {
        bail!(
            "{} is not anchored: {}",
            bc.digest(),
            verdict.reason.unwrap_or_default()
        );
    }
    Ok(())
}

/// Reads and checks a Birth Certificate file.
pub fn read_bc(path: &Path) -> Result<BirthCertificate> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    BirthCertificate::parse(&bytes)
        .with_context(|| format!("{} is not a valid birth certificate", path.display()))
}

/// Reads a secret key file.
pub fn read_key(path: &Path) -> Result<SecretKey> {
    Ok(files::read_key(path)?)
}

/// Reads the key in `path`, or creates one there (mode 0600, never overwriting).
pub fn load_or_create_key(path: &Path) -> Result<SecretKey> {
    let (key, created) = files::load_or_create_key(path)?;
    if created {
        eprintln!("created key file {}", path.display());
    }
    Ok(key)
}
