//! The benchmark chain: a private regtest node holding `N` blocks with `M` Milagro records
//! and `T` ordinary payments.
//!
//! Two shapes ([`Shape`]): *record-dense* (by default 20,000 records in 1,000 blocks and
//! nothing else: the registry's extraction and store at their busiest) and *ordinary* (by
//! default 270,000 ordinary payments and one record in each of 1,200 blocks: a busy
//! chain where the registry must read past almost everything).
//!
//! Built as fast as the node allows, because setup is not what is measured:
//! 1. start `bitcoind` (as `milagro demo` does) and mine 101 blocks for one mature coinbase;
//! 2. the wallet pays one output to a *funder* key of ours; the funder splits it into one
//!    P2WPKH output per record (round-robin over `K` signer keys) in a few large chained
//!    transactions built by hand ([`super::txs`] says why), mined
//!    [`FUNDING_TXS_PER_BLOCK`] to a block;
//! 3. every record's anchoring transaction is built and signed with
//!    [`build_anchor_tx`] (mostly Birth Certificate digests, 1 in 100 an audit-log root,
//!    2 in 100 a batch root), plus one foreign `OP_RETURN` per block that the registry must
//!    skip, and the ordinary payments (one P2WPKH input, two outputs; signed on every
//!    core); one record anchors a real, signed Birth Certificate for the verify benchmark;
//! 4. records and payments are spread evenly over `N` blocks with `generateblock`, sent
//!    [`BLOCKS_PER_RPC_BATCH`] to a JSON-RPC batch (the node runs a batch in order, so each
//!    block builds on the one before). `generateblock` checks consensus, not mempool policy,
//!    which is also why funding transactions may chain deeper than the mempool would allow.

use milagro_regtest::RegtestControls as _;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use bitcoin::consensus::encode;
use bitcoin::{FeeRate, Network, Transaction, Txid};
use milagro_anchor::anchor_tx::{build_anchor_tx, p2wpkh_script, FundingUtxo};
use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status, VERSION};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_anchor::purpose_keys::PurposeKeys;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::{BlockId, ChainSource};
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use serde_json::{json, Value};

use super::txs::{foreign_op_return, fund, ordinary_payment};

/// Funding transactions per block (about 1.3 M of the 4 M weight units a block may hold).
pub const FUNDING_TXS_PER_BLOCK: usize = 10;
/// `generateblock` calls per JSON-RPC batch.
pub const BLOCKS_PER_RPC_BATCH: usize = 25;

/// The kind of chain to build, which sets the defaults of [`Params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Blocks full of records and nothing else (1,000 blocks, 20,000 records).
    RecordDense,
    /// Blocks of ordinary payments with one record each (1,200 blocks, 270,000 payments).
    Ordinary,
}

impl Shape {
    /// `(blocks, records, ordinary transactions)` by default.
    pub fn defaults(self) -> (u32, usize, usize) {
        match self {
            Self::RecordDense => (1_000, 20_000, 0),
            Self::Ordinary => (1_200, 1_200, 270_000),
        }
    }
}

/// The size of the chain to build.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Params {
    /// The shape the defaults came from.
    pub shape: Shape,
    /// Blocks holding records (`N`).
    pub blocks: u32,
    /// Milagro records (`M`).
    pub records: usize,
    /// Ordinary payments (`T`), spread over the same blocks.
    pub ordinary_txs: usize,
    /// Distinct signer keys (`K`).
    pub signers: usize,
}

/// The real Birth Certificate anchored on the chain, for the verify benchmark.
#[derive(Debug)]
pub struct SampleBc {
    /// The certificate.
    pub bc: BirthCertificate,
    /// Its JSON document as a relying party downloads it.
    pub json: Vec<u8>,
    /// The anchoring transaction.
    pub txid: Txid,
    /// How many records its key signed (what `by_signer` must return).
    pub signer_records: usize,
}

/// How long setup took and what it made (reported, not part of any result).
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// Starting the node.
    pub node_start_s: f64,
    /// Mining the first 101 blocks.
    pub mature_coinbase_s: f64,
    /// Building, signing and mining the funding transactions.
    pub funding_s: f64,
    /// Building and signing every anchoring and foreign transaction.
    pub sign_s: f64,
    /// Mining the record blocks (`generateblock`).
    pub mine_s: f64,
    /// All of setup.
    pub total_s: f64,
    /// Funding transactions.
    pub funding_txs: usize,
    /// Blocks that hold the funding transactions (including the wallet's payment).
    pub funding_blocks: u32,
    /// Foreign `OP_RETURN` transactions (not Milagro records).
    pub foreign_op_returns: usize,
}

/// A running node with the benchmark chain. Dropping it stops the node.
pub struct BenchChain {
    /// The node adapter.
    pub node: BitcoindRpc,
    /// Its network (regtest).
    pub network: Network,
    /// The tip after setup.
    pub tip: BlockId,
    /// Records on the chain: what the index must hold.
    pub records: u64,
    /// The verify benchmark's certificate.
    pub sample: SampleBc,
    /// Setup figures.
    pub setup: Setup,
    /// The node's RPC socket (for the raw-HTTP baseline).
    pub rpc_socket: SocketAddrV4,
    /// The node's cookie file.
    pub cookie_file: PathBuf,
    bitcoind: bitcoind::BitcoinD,
}

impl BenchChain {
    /// Stops the node gracefully (its data directory stays consistent if kept).
    pub fn stop(mut self) -> Result<()> {
        self.bitcoind.stop().context("cannot stop bitcoind")?;
        Ok(())
    }
}

/// Starts a node with its data in `dir/node` and builds the chain.
pub fn build(params: &Params, dir: &Path) -> Result<BenchChain> {
    ensure!(params.blocks > 0, "--blocks must be at least 1");
    ensure!(params.signers > 0, "--signers must be at least 1");
    ensure!(params.records > 0, "--records must be at least 1");
    let start = Instant::now();
    let exe = milagro_regtest::bitcoind_exe()?;
    let mut conf = bitcoind::Conf::default();
    conf.args.extend(milagro_regtest::NODE_ARGS);
    conf.staticdir = Some(dir.join("node"));
    let bitcoind = bitcoind::BitcoinD::with_conf(&exe, &conf).context("cannot start bitcoind")?;
    let node = BitcoindRpc::with_cookie(bitcoind.rpc_url(), &bitcoind.params.cookie_file);
    let node_start_s = start.elapsed().as_secs_f64();

    let phase = Instant::now();
    let miner = node.wallet_new_address()?;
    node.generate_to_address(101, &miner)?;
    let mature_coinbase_s = phase.elapsed().as_secs_f64();

    let phase = Instant::now();
    let signers: Vec<SecretKey> = (0..params.signers)
        .map(|_| SecretKey::generate(&mut OsRng))
        .collect();
    let foreign = params.blocks as usize;
    let owners: Vec<PublicKey> = (0..params.records + foreign + params.ordinary_txs)
        .map(|i| signers[i % signers.len()].public_key())
        .collect();
    let (funding_txs, utxos) = fund(&node, &miner, &owners)?;
    let funding_blocks = u32::try_from(funding_txs.len().div_ceil(FUNDING_TXS_PER_BLOCK) + 1)?;
    for txs in funding_txs.chunks(FUNDING_TXS_PER_BLOCK) {
        node.generate_block(&miner, txs)?;
    }
    let funding_s = phase.elapsed().as_secs_f64();

    let phase = Instant::now();
    let sample_index = params.records / 2;
    let sample_key = &signers[sample_index % signers.len()];
    let sample_bc = sample_certificate(sample_key)?;
    let fee_rate = FeeRate::from_sat_per_vb_u32(1);
    let mut anchors = Vec::with_capacity(params.records);
    for (i, utxo) in utxos.iter().take(params.records).enumerate() {
        let payload = if i == sample_index {
            Payload::new(RecordKind::BirthCertificate, sample_bc.digest())
        } else {
            Payload::new(kind_of(i), random_digest())
        };
        let key = &signers[i % signers.len()];
        anchors.push(build_anchor_tx(key, utxo, &payload, fee_rate, None)?.tx);
    }
    let mut foreigners = Vec::with_capacity(foreign);
    for (i, utxo) in utxos.iter().enumerate().skip(params.records).take(foreign) {
        foreigners.push(foreign_op_return(&signers[i % signers.len()], utxo)?);
    }
    let ordinary = ordinary_payments(&signers, &utxos[params.records + foreign..])?;
    let sample_txid = anchors
        .get(sample_index)
        .map(Transaction::compute_txid)
        .context("no sample record")?;
    let sign_s = phase.elapsed().as_secs_f64();

    let phase = Instant::now();
    mine_spread(
        &node,
        &miner,
        &anchors,
        &foreigners,
        &ordinary,
        params.blocks,
    )?;
    let mine_s = phase.elapsed().as_secs_f64();

    let tip = node.tip()?;
    let expected_height = 101 + funding_blocks + params.blocks;
    ensure!(
        tip.height == expected_height,
        "the chain is {} blocks high, expected {expected_height}",
        tip.height
    );
    let signer_records = (0..params.records)
        .filter(|i| i % signers.len() == sample_index % signers.len())
        .count();
    Ok(BenchChain {
        network: node.network()?,
        node,
        tip,
        records: u64::try_from(params.records)?,
        sample: SampleBc {
            json: sample_bc.to_pretty_json().into_bytes(),
            bc: sample_bc,
            txid: sample_txid,
            signer_records,
        },
        setup: Setup {
            node_start_s,
            mature_coinbase_s,
            funding_s,
            sign_s,
            mine_s,
            total_s: start.elapsed().as_secs_f64(),
            funding_txs: funding_txs.len(),
            funding_blocks,
            foreign_op_returns: foreign,
        },
        rpc_socket: bitcoind.params.rpc_socket,
        cookie_file: bitcoind.params.cookie_file.clone(),
        bitcoind,
    })
}

/// The record kind of record `i`: 1% audit-log roots, 2% batch roots, the rest BCs.
fn kind_of(i: usize) -> RecordKind {
    match i % 100 {
        1 => RecordKind::AuditLogRoot,
        3 | 53 => RecordKind::BatchRoot,
        _ => RecordKind::BirthCertificate,
    }
}

fn random_digest() -> Digest {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    Digest::from_bytes(bytes)
}

fn sample_certificate(key: &SecretKey) -> Result<BirthCertificate> {
    let fields = BcFields {
        version: VERSION,
        role: Role::Dta,
        name: "Milagro bench D-TA".into(),
        endpoints: vec!["https://dta.bench.milagro.test".into()],
        created: 1_700_000_000,
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
        keys: PurposeKeys::derive(Role::Dta, key)?,
    };
    Ok(BirthCertificate::sign(fields, key)?)
}

/// One ordinary payment per UTXO, signed on every core (the ordinary shape signs hundreds
/// of thousands).
fn ordinary_payments(signers: &[SecretKey], utxos: &[FundingUtxo]) -> Result<Vec<Transaction>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let payee = p2wpkh_script(&SecretKey::generate(&mut OsRng).public_key());
    let chunk = utxos.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = utxos
            .chunks(chunk)
            .enumerate()
            .map(|(c, utxos)| {
                let payee = &payee;
                scope.spawn(move || {
                    utxos
                        .iter()
                        .enumerate()
                        .map(|(i, utxo)| {
                            let key = &signers[(c * chunk + i) % signers.len()];
                            ordinary_payment(key, payee, utxo)
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut txs = Vec::with_capacity(utxos.len());
        for worker in workers {
            let signed = worker
                .join()
                .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
            txs.extend(signed);
        }
        Ok(txs)
    })
}

/// Mines `blocks` blocks, the anchors and ordinary payments spread evenly over them and
/// one foreign tx in each.
fn mine_spread(
    node: &BitcoindRpc,
    miner: &str,
    anchors: &[Transaction],
    foreigners: &[Transaction],
    ordinary: &[Transaction],
    blocks: u32,
) -> Result<()> {
    let blocks = blocks as usize;
    let mut params: Vec<Vec<Value>> = Vec::with_capacity(BLOCKS_PER_RPC_BATCH);
    for b in 0..blocks {
        let from = b * anchors.len() / blocks;
        let to = (b + 1) * anchors.len() / blocks;
        let (ofrom, oto) = (
            b * ordinary.len() / blocks,
            (b + 1) * ordinary.len() / blocks,
        );
        let raw: Vec<String> = anchors[from..to]
            .iter()
            .chain(foreigners.get(b))
            .chain(&ordinary[ofrom..oto])
            .map(encode::serialize_hex)
            .collect();
        params.push(vec![json!(miner), json!(raw)]);
        if params.len() == BLOCKS_PER_RPC_BATCH || b + 1 == blocks {
            for answer in node.batch::<Value>("generateblock", &params)? {
                answer.context("generateblock refused a benchmark block")?;
            }
            params.clear();
        }
    }
    Ok(())
}
