//! Registry sync throughput, next to what `bitcoind` alone needs to serve the same blocks.
//!
//! Every figure covers the whole chain (genesis to tip, as a fresh index syncs it), read in
//! chunks of `step` blocks, the follower's step size:
//! - **serve**: per chunk one batched `getblockhash` and one batched `getblock` (verbosity
//!   0, hex), the two round trips a follower step makes, with the hex kept as text. This is
//!   the node's share: the floor no indexer reading over JSON-RPC can go below.
//! - **serve + decode**: the same through `ChainSource::blocks`, which also decodes the hex
//!   into `bitcoin::Block`s: exactly what the follower gets to work with.
//! - **extract**: [`records_in`] over the decoded blocks: the CPU cost of finding records.
//! - **store**: the resulting change sets applied to a fresh `SledStore`, one per step
//!   (each one atomic batch plus a flush, as in a real sync).
//! - **sync**: `Follower::sync` into a fresh `SledStore`. Its overhead over the parts is
//!   the follower's own calls (tip and fork-point checks each step) and bookkeeping.
//!
//! The ratio `sync / serve` is the registry's overhead over the node. A warm-up pass runs
//! first, so every measurement reads blocks from the same warm page cache.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use bitcoin::{Block, BlockHash};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::{BlockId, ChainSource};
use milagro_registry::follower::{records_in, Follower};
use milagro_registry::sled_store::SledStore;
use milagro_registry::store::{ChangeSet, ConnectedBlock, RecordStore};
use serde::Serialize;
use serde_json::json;

use super::fixture::BenchChain;
use super::stats::{num, repeat, repeat_timed, runs_text, Runs, Table};

/// A phase over the whole chain, with its rates at the best and the median run.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// Timings.
    #[serde(flatten)]
    pub runs: Runs,
    /// Blocks per second (best run).
    pub blocks_per_s: f64,
    /// Blocks per second (median run).
    pub blocks_per_s_median: f64,
    /// Records per second (best run).
    pub records_per_s: f64,
    /// Records per second (median run).
    pub records_per_s_median: f64,
}

/// Everything this module measures.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// Blocks read (genesis to tip).
    pub blocks: u32,
    /// Milagro records on the chain (asserted equal to the index's count after every sync).
    pub records: u64,
    /// Transactions in those blocks, coinbases included.
    pub transactions: usize,
    /// Serialized size of those blocks.
    pub block_bytes: usize,
    /// Blocks per chunk (the follower's step).
    pub step_blocks: u32,
    /// `bitcoind` serving hex.
    pub bitcoind_serve: Phase,
    /// `bitcoind` serving, plus decoding into `bitcoin::Block`.
    pub bitcoind_serve_and_decode: Phase,
    /// Record extraction over decoded blocks.
    pub extract: Phase,
    /// Applying the change sets to sled.
    pub store_apply: Phase,
    /// The follower syncing a fresh index.
    pub registry_sync: Phase,
    /// `registry_sync.best_s / bitcoind_serve.best_s`.
    pub sync_over_serve_ratio: f64,
    /// `registry_sync.best_s / bitcoind_serve_and_decode.best_s`.
    pub sync_over_serve_and_decode_ratio: f64,
    /// Best serve+decode + extract + store, in seconds: what the parts add up to.
    pub parts_sum_s: f64,
    /// Served megabytes per second (best serve run).
    pub serve_mb_per_s: f64,
}

/// Runs every measurement; returns the figures and the follower of the last sync (whose
/// index the verify benchmark reads).
pub fn measure<'a>(
    chain: &'a BenchChain,
    dir: &Path,
    step: u32,
    runs: usize,
    table: &mut Table,
) -> Result<(SyncReport, Follower<&'a BitcoindRpc, SledStore>)> {
    let node = &chain.node;
    let step = step.max(1);
    let heights: Vec<u32> = (0..=chain.tip.height).collect();
    let chunks: Vec<&[u32]> = heights.chunks(step as usize).collect();
    let blocks = u32::try_from(heights.len())?;
    let records = chain.records;

    let block_bytes = serve(node, &chunks)?; // warm-up
    let (serve_runs, _) = repeat(runs, || serve(node, &chunks))?;
    let (decode_runs, decoded) = repeat(runs, || fetch_and_decode(node, &chunks))?;
    let transactions = decoded.iter().map(|(_, b)| b.txdata.len()).sum();

    let (extract_runs, connected) = repeat(runs, || {
        let connected: Vec<ConnectedBlock> = decoded
            .iter()
            .map(|(id, block)| ConnectedBlock {
                id: *id,
                records: records_in(black_box(block), *id),
            })
            .collect();
        Ok(connected)
    })?;
    let extracted: usize = connected.iter().map(|b| b.records.len()).sum();
    ensure!(
        u64::try_from(extracted)? == records,
        "extraction found {extracted} records, the chain holds {records}"
    );

    let change_sets: Vec<ChangeSet> = connected
        .chunks(step as usize)
        .map(|blocks| ChangeSet {
            disconnect_from: None,
            connect: blocks.to_vec(),
        })
        .collect();
    let mut run = 0;
    let (store_runs, ()) = repeat_timed(runs, || {
        run += 1;
        let path = dir.join(format!("store-apply-{run}"));
        let store = SledStore::open(&path)?;
        let start = Instant::now();
        for changes in &change_sets {
            store.apply(changes)?;
        }
        let elapsed = start.elapsed();
        check_count(&store, records)?;
        drop(store);
        std::fs::remove_dir_all(&path)?;
        Ok((elapsed, ()))
    })?;

    let mut paths = Vec::new();
    let (sync_runs, follower) = repeat_timed(runs, || {
        let path = dir.join(format!("index-{}", paths.len() + 1));
        let follower = Follower::new(node, SledStore::open(&path)?, 0);
        paths.push(path);
        let start = Instant::now();
        let report = follower.sync(step, |_| {})?;
        let elapsed = start.elapsed();
        ensure!(report.tip == Some(chain.tip), "sync stopped at {:?}", report.tip);
        check_count(follower.store(), records)?;
        Ok((elapsed, follower))
    })?;
    check_indexes(chain, follower.store())?;
    // Only the last run's index is still open (and kept for the verify benchmark).
    for path in paths.iter().rev().skip(1) {
        std::fs::remove_dir_all(path)?;
    }

    let phase = |runs: Runs| Phase {
        runs,
        blocks_per_s: runs.best_rate(f64::from(blocks)),
        blocks_per_s_median: runs.median_rate(f64::from(blocks)),
        records_per_s: runs.best_rate(records as f64),
        records_per_s_median: runs.median_rate(records as f64),
    };
    let report = SyncReport {
        blocks,
        records,
        transactions,
        block_bytes,
        step_blocks: step,
        bitcoind_serve: phase(serve_runs),
        bitcoind_serve_and_decode: phase(decode_runs),
        extract: phase(extract_runs),
        store_apply: phase(store_runs),
        registry_sync: phase(sync_runs),
        sync_over_serve_ratio: sync_runs.best_s / serve_runs.best_s,
        sync_over_serve_and_decode_ratio: sync_runs.best_s / decode_runs.best_s,
        parts_sum_s: decode_runs.best_s + extract_runs.best_s + store_runs.best_s,
        serve_mb_per_s: serve_runs.best_rate(block_bytes as f64 / 1e6),
    };
    report_table(&report, table);
    Ok((report, follower))
}

/// Fetches every chunk as hex, as the node serves it; returns the bytes served.
fn serve(node: &BitcoindRpc, chunks: &[&[u32]]) -> Result<usize> {
    let mut bytes = 0;
    for heights in chunks {
        let hashes = hashes_at(node, heights)?;
        let params: Vec<_> = hashes.iter().map(|h| vec![json!(h), json!(0)]).collect();
        for hex in node.batch::<String>("getblock", &params)? {
            bytes += black_box(hex?).len() / 2;
        }
    }
    Ok(bytes)
}

/// Fetches and decodes every chunk as the follower does.
fn fetch_and_decode(node: &BitcoindRpc, chunks: &[&[u32]]) -> Result<Vec<(BlockId, Block)>> {
    let mut out = Vec::new();
    for heights in chunks {
        let hashes = hashes_at(node, heights)?;
        let blocks = node.blocks(&hashes)?;
        for ((height, hash), block) in heights.iter().zip(hashes).zip(blocks) {
            out.push((
                BlockId {
                    height: *height,
                    hash,
                },
                block,
            ));
        }
    }
    Ok(out)
}

fn hashes_at(node: &BitcoindRpc, heights: &[u32]) -> Result<Vec<BlockHash>> {
    node.block_hashes(heights)?
        .into_iter()
        .zip(heights)
        .map(|(hash, height)| hash.with_context(|| format!("no block at height {height}")))
        .collect()
}

fn check_count(store: &impl RecordStore, records: u64) -> Result<()> {
    let count = store.record_count()?;
    ensure!(
        count == records,
        "the index holds {count} records, the chain {records}"
    );
    Ok(())
}

/// Spot-checks the by-digest and by-signer indexes against what setup anchored.
fn check_indexes(chain: &BenchChain, store: &impl RecordStore) -> Result<()> {
    let sample = &chain.sample;
    let found = store.by_digest(&sample.bc.digest())?;
    ensure!(
        found.len() == 1 && found[0].txid == sample.txid,
        "the sample certificate is indexed as {found:?}, expected one record in {}",
        sample.txid
    );
    let signed = store.by_signer(sample.bc.public_key())?.len();
    ensure!(
        signed == sample.signer_records,
        "by_signer found {signed} records of the sample key, expected {}",
        sample.signer_records
    );
    Ok(())
}

fn report_table(r: &SyncReport, table: &mut Table) {
    table.section(&format!(
        "registry sync: {} blocks, {} records, {} txs, {} MB, {} blocks per step",
        r.blocks,
        r.records,
        r.transactions,
        num(r.block_bytes as f64 / 1e6),
        r.step_blocks
    ));
    let mut row = |label: &str, p: &Phase, note: String| {
        table.row(
            label,
            format!(
                "{}  {} blocks/s  {} records/s",
                runs_text(&p.runs),
                num(p.blocks_per_s),
                num(p.records_per_s)
            ),
            note,
        );
    };
    row(
        "bitcoind serve (hex)",
        &r.bitcoind_serve,
        format!("{} MB/s; the baseline", num(r.serve_mb_per_s)),
    );
    row(
        "bitcoind serve + decode",
        &r.bitcoind_serve_and_decode,
        "what the follower receives".into(),
    );
    row("extract records", &r.extract, "records_in, CPU only".into());
    row("store apply (sled)", &r.store_apply, "one batch per step".into());
    row(
        "registry sync",
        &r.registry_sync,
        format!(
            "{}x serve, {}x serve+decode; parts sum to {} s",
            num(r.sync_over_serve_ratio),
            num(r.sync_over_serve_and_decode_ratio),
            num(r.parts_sum_s)
        ),
    );
}
