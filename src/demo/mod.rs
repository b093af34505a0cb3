//! `milagro demo`: the whole anchoring story on a private regtest chain.
//!
//! Installs the node if needed, starts it in a temporary directory, creates Birth
//! Certificates for a TBS, an IdP and two D-TAs, anchors them, indexes the chain, verifies
//! every anchor by SPV, then forces a two-block reorg that drops one anchor and shows the
//! registry dropping it and finding it again once it is re-mined.
//!
//! Then the services: a TBS enrols devices ([`tbs`]) and two of them agree a key over
//! Bitcoin ([`tls`]); an IdP with no password database anchors itself ([`idp`]); two D-TAs
//! and an authentication server give a badge an M-Pin key that logs in with its PIN only
//! ([`mpin`]), its person registering it by e-mail (the IdP's code arriving in the demo's
//! [`smtp`] mailbox); and a relying party signs that person in through the IdP's sign-in
//! page, the badge approving its access number with the PIN ([`signin`]).

pub(crate) mod idp;
pub(crate) mod mpin;
pub(crate) mod signin;
pub(crate) mod smtp;
pub(crate) mod tbs;
pub(crate) mod tls;

use anyhow::{ensure, Context, Result};
use bitcoin::{BlockHash, FeeRate};
use clap::Args;
use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status, VERSION};
use milagro_anchor::keys::SecretKey;
use milagro_anchor::purpose_keys::PurposeKeys;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainSource;
use milagro_registry::store::RecordStore;
use milagro_regtest::RegtestControls as _;
use serde::Serialize;

use crate::cli::bc::anchor_bc;
use crate::cli::print_json;
use crate::node::{synced_registry, DEFAULT_STEP_BLOCKS};
use crate::verify::{verify_bc, Verdict};

/// `milagro demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the node's data directory and the index after the demo, and print where.
    #[arg(long)]
    pub keep: bool,
}

struct Party {
    label: &'static str,
    key: SecretKey,
    bc: BirthCertificate,
}

/// What the demo prints on stdout.
#[derive(Debug, Serialize)]
struct Summary {
    node: String,
    parties: Vec<PartySummary>,
    reorg: ReorgSummary,
    tbs: crate::demo::tbs::TbsSummary,
    idp: crate::demo::idp::IdpSummary,
    mpin: crate::demo::mpin::MpinSummary,
    signin: crate::demo::signin::SigninSummary,
}

#[derive(Debug, Serialize)]
struct PartySummary {
    party: &'static str,
    role: Role,
    verdict: Verdict,
}

#[derive(Debug, Serialize)]
struct ReorgSummary {
    dropped_party: &'static str,
    invalidated_block: BlockHash,
    rolled_back_from: Option<u32>,
    anchored_after_reorg: bool,
    anchored_after_re_mining: bool,
    new_height: Option<u32>,
}

/// Prints a step heading on stderr.
/// Polls `check` every 100 ms until it gives a value, for at most `patience`.
pub(crate) fn wait_for<T>(
    patience: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        if let Some(value) = check()? {
            return Ok(value);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting for {what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub(crate) fn step(text: &str) {
    eprintln!("\n==> {text}");
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> Result<()> {
    step("installing bitcoind (once per machine)");
    let exe = milagro_regtest::bitcoind_exe()?;
    eprintln!("    {}", exe.display());

    step("starting a private regtest node");
    let mut conf = bitcoind::Conf::default();
    conf.args.extend(milagro_regtest::NODE_ARGS);
    conf.staticdir = None;
    conf.p2p = bitcoind::P2P::Yes;
    conf.args.push("-listenonion=0");
    let bitcoind = bitcoind::BitcoinD::with_conf(&exe, &conf).context("cannot start bitcoind")?;
    let node = BitcoindRpc::with_cookie(bitcoind.rpc_url(), &bitcoind.params.cookie_file);
    let miner = node.wallet_new_address()?;
    node.generate_to_address(101, &miner)?;
    eprintln!(
        "    {} at height {}",
        bitcoind.rpc_url(),
        node.tip()?.height
    );
    let (_peer, electrum) = crate::demo::tbs::independent_header_source(&exe, &bitcoind)?;

    step("creating Birth Certificates for a TBS, an IdP and two D-TAs");
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let parties = [
        ("TBS", Role::Tbs, "https://tbs.milagro.test"),
        ("IdP", Role::Idp, "https://idp.milagro.test"),
        ("D-TA 1", Role::Dta, "https://dta1.milagro.test"),
        ("D-TA 2", Role::Dta, "https://dta2.milagro.test"),
    ]
    .into_iter()
    .map(|(label, role, endpoint)| party(label, role, endpoint, created))
    .collect::<Result<Vec<_>>>()?;
    for p in &parties {
        eprintln!(
            "    {:<7} {}  key {}",
            p.label,
            p.bc.digest(),
            p.bc.public_key()
        );
    }

    step("anchoring the first three and mining a block");
    let fee_rate = FeeRate::from_sat_per_vb_u32(2);
    let mut receipts = Vec::new();
    for p in &parties[..3] {
        let receipt = anchor_bc(&node, &p.bc, &p.key, fee_rate)?;
        eprintln!(
            "    {:<7} txid {} (fee {} sat)",
            p.label, receipt.txid, receipt.fee_sat
        );
        receipts.push(receipt);
    }
    // D-TA 1 speaks Milagro TLS later: the nonce of its anchoring signature, recomputed.
    let dta1 = &parties[2];
    let dta1_identity = milagro_tls::LocalIdentity::from_anchor_tx(
        dta1.key.clone(),
        dta1.bc.clone(),
        &receipts[2].tx,
        receipts[2].funding_value,
    )?;
    node.generate_to_address(1, &miner)?;

    step("anchoring D-TA 2 in the next block, with one block on top");
    let dta2 = &parties[3];
    let receipt = anchor_bc(&node, &dta2.bc, &dta2.key, fee_rate)?;
    let dta2_block = node.generate_to_address(1, &miner)?[0];
    node.generate_to_address(1, &miner)?;
    eprintln!("    D-TA 2  txid {} in block {dta2_block}", receipt.txid);

    step("indexing the chain and verifying every anchor by SPV");
    let db = tempfile::tempdir()?;
    let follower = synced_registry(&node, db.path(), DEFAULT_STEP_BLOCKS, false)?;
    let mut summaries = Vec::new();
    for p in &parties {
        let verdict = verify_bc(&node, follower.store(), &p.bc, 1)?;
        ensure!(
            verdict.anchored,
            "{} did not verify: {:?}",
            p.label,
            verdict.reason
        );
        eprintln!(
            "    {:<7} anchored at height {} depth {} signer {}",
            p.label,
            verdict.height.unwrap_or_default(),
            verdict.depth.unwrap_or_default(),
            verdict.signer.map(|s| s.to_string()).unwrap_or_default()
        );
        summaries.push(PartySummary {
            party: p.label,
            role: p.bc.role(),
            verdict,
        });
    }

    step("forcing a 2-block reorg that leaves D-TA 2's anchor out");
    node.invalidate_block(&dta2_block)?;
    for _ in 0..3 {
        node.generate_block(&miner, &[])?;
    }
    let report = follower.sync(DEFAULT_STEP_BLOCKS, |_| {})?;
    let after_reorg = verify_bc(&node, follower.store(), &dta2.bc, 1)?;
    ensure!(
        !after_reorg.anchored,
        "D-TA 2 still looks anchored after the reorg"
    );
    eprintln!(
        "    registry rolled back from height {:?}; D-TA 2: {}",
        report.rolled_back_from,
        after_reorg.reason.as_deref().unwrap_or("")
    );

    step("re-mining: the anchor waits in the mempool and confirms again");
    node.generate_to_address(1, &miner)?;
    follower.sync(DEFAULT_STEP_BLOCKS, |_| {})?;
    let re_mined = verify_bc(&node, follower.store(), &dta2.bc, 1)?;
    ensure!(
        re_mined.anchored,
        "D-TA 2 was not re-anchored: {:?}",
        re_mined.reason
    );
    eprintln!(
        "    D-TA 2 anchored again at height {}",
        re_mined.height.unwrap_or_default()
    );
    for p in &parties[..3] {
        ensure!(
            verify_bc(&node, follower.store(), &p.bc, 1)?.anchored,
            "{} lost its anchor",
            p.label
        );
    }
    eprintln!(
        "    {} records indexed; the other three anchors were untouched",
        follower.store().record_count()?
    );

    let dtas: Vec<&BirthCertificate> = parties[2..].iter().map(|p| &p.bc).collect();
    let chain = crate::demo::mpin::Chain {
        node: &node,
        rpc_url: &bitcoind.rpc_url(),
        cookie: &bitcoind.params.cookie_file,
        miner: &miner,
    };
    let (tbs, demo_tbs) = crate::demo::tbs::run(
        &chain,
        &dtas,
        &parties[1].bc,
        &dta1_identity,
        &electrum.url(),
    )?;

    let idp_dir = tempfile::tempdir()?;
    let mailbox = smtp::Mailbox::start()?;
    let (idp, demo_idp) = idp::run(&chain, idp_dir.path(), &mailbox)?;

    let (mpin, signin) = mpin::run(&chain, &demo_tbs, demo_idp, &mailbox)?;
    demo_tbs.tbs.stop();

    if args.keep {
        let kept = db.keep();
        eprintln!("\nindex kept at {}", kept.display());
    }
    step("done: every certificate is anchored (by its own key, or in a batch the TBS signed) and verified by SPV, by the registry and by each device");
    print_json(&Summary {
        node: bitcoind.rpc_url(),
        parties: summaries,
        reorg: ReorgSummary {
            dropped_party: dta2.label,
            invalidated_block: dta2_block,
            rolled_back_from: report.rolled_back_from,
            anchored_after_reorg: after_reorg.anchored,
            anchored_after_re_mining: re_mined.anchored,
            new_height: re_mined.height,
        },
        tbs,
        idp,
        mpin,
        signin,
    })
}

fn party(label: &'static str, role: Role, endpoint: &str, created: u64) -> Result<Party> {
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let fields = BcFields {
        version: VERSION,
        role,
        name: format!("Milagro demo {label}"),
        endpoints: vec![endpoint.to_owned()],
        created,
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
        keys: PurposeKeys::derive(role, &key)?,
    };
    let bc = BirthCertificate::sign(fields, &key)?;
    Ok(Party { label, key, bc })
}
