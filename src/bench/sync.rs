//! Registry sync throughput, next to what `bitcoind` alone needs to serve the same blocks.
//!
//! Every figure covers the whole chain (genesis to tip, as a fresh index syncs it).
//! - **rest walk**: every block's `/rest/block/<hash>.bin`, one after the other on one
//!   kept-alive connection, bytes read and dropped ([`RawRest`]; hashes looked up
//!   beforehand). The node's share: the floor for any indexer, and the baseline of the
//!   headline ratio `sync / rest walk`.
//! - **bitcoind alone**: per step of `step` blocks one batched `getblockhash`, then
//!   batched `getblock` (verbosity 0, hex) calls of [`GETBLOCK_BATCH`] blocks each, sent
//!   over a bare socket ([`RawRpc`]), the answers read and dropped unparsed: the floor for
//!   an indexer that reads blocks over JSON-RPC.
//! - **via client**: the same through the workspace's client (`BitcoindRpc::batch`), JSON
//!   parsed, hex kept as text: adds the HTTP client and JSON costs.
//! - **via client + decode**: through `ChainSource::blocks`, which also decodes the hex into
//!   `bitcoin::Block`s: what the follower worked with before it read REST.
//! - **scan**: [`BlockCandidates::scan`] over every block's serialized bytes (read
//!   beforehand): finding the record-shaped transactions without decoding the rest.
//! - **extract**: [`records_in`] over the scanned blocks, per run of blocks holding
//!   [`CANDIDATES_PER_LOOKUP`] candidates (or a step's end), as the follower runs it:
//!   one batched lookup of the funding transactions the candidates spend (those the last
//!   run used are kept), and comparing each spent output with the claimed key's P2WPKH
//!   script. No signature is checked again: the node validated them (ADR 0009); the
//!   verify section's "ECDSA verify" row is what each would cost.
//! - **store**: the resulting change sets applied to a fresh `RedbStore`, one per step
//!   (each one atomic batch plus a flush, as in a real sync).
//! - **sync**: `Follower::sync` into a fresh `RedbStore`, with the time the follower spent
//!   in `apply` counted ([`TimedStore`]), so the sync itself splits into store and the rest
//!   (fetch and scan, overlapped; extract; the follower's tip and fork-point checks). In a sync the store
//!   is slower than back to back, and noisier: it shares the CPU with the node and its own
//!   background threads, and each step ends with an `fsync`.
//!
//! - **registry sync (process)**: `milagro registry sync` as its own process
//!   ([`super::cli_sync`]), once: its time and its peak resident memory.
//!
//! The ratio `sync / rest walk` is the registry's overhead over the node. A warm-up pass
//! runs first, so every measurement reads blocks from the same warm page cache.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Result};
use milagro_registry::attribution::{records_in, Fundings};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::{BlockId, ChainSource};
use milagro_registry::follower::{Follower, CANDIDATES_PER_LOOKUP};
use milagro_registry::redb_store::RedbStore;
use milagro_registry::scan::BlockCandidates;
use milagro_registry::store::{ChangeSet, ConnectedBlock, RecordStore};
use serde::Serialize;

use super::cli_sync::{self, CliSync};
use super::fetch::{fetch_and_decode, hashes_at, raw_bodies, via_client, Plan, GETBLOCK_BATCH};
use super::fixture::{BenchChain, Shape};
use super::raw_http::{RawRest, RawRpc};
use super::stats::{num, repeat, repeat_timed, runs_text, Runs, Table};
use super::timed_store::TimedStore;

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
    /// The chain's shape.
    pub shape: Shape,
    /// Blocks read (genesis to tip).
    pub blocks: u32,
    /// Milagro records on the chain (asserted equal to the index's count after every sync).
    pub records: u64,
    /// Transactions in those blocks, coinbases included.
    pub transactions: usize,
    /// Serialized size of those blocks.
    pub block_bytes: usize,
    /// Blocks per follower step (one `getblockhash` batch, one store batch).
    pub step_blocks: u32,
    /// Blocks per `getblock` batch of the JSON-RPC baselines.
    pub fetch_batch_blocks: usize,
    /// `bitcoind` serving every block over REST, read over a bare socket (the baseline).
    pub rest_walk: Phase,
    /// `bitcoind` serving the blocks as JSON-RPC hex, read over a bare socket.
    pub bitcoind_alone: Phase,
    /// The same through the workspace's RPC client, hex kept as text.
    pub bitcoind_via_client: Phase,
    /// The same, plus decoding into `bitcoin::Block` (what the follower receives).
    pub bitcoind_via_client_decoded: Phase,
    /// Scanning the serialized blocks for record candidates (CPU only).
    pub scan: Phase,
    /// Proving the candidates' signers (funding lookups, BIP 143, ECDSA).
    pub extract: Phase,
    /// Applying the change sets to the index (redb).
    pub store_apply: Phase,
    /// The follower syncing a fresh index.
    pub registry_sync: Phase,
    /// `registry_sync.best_s / rest_walk.best_s`: the registry's overhead over the node.
    pub sync_over_rest_walk_ratio: f64,
    /// `registry_sync.median_s / rest_walk.median_s`.
    pub sync_over_rest_walk_median_ratio: f64,
    /// `registry_sync.best_s / bitcoind_alone.best_s`.
    pub sync_over_bitcoind_alone_ratio: f64,
    /// `milagro registry sync` as its own process: time and peak memory.
    pub process_sync: CliSync,
    /// `process_sync.elapsed_s / rest_walk.best_s` (includes process start-up).
    pub process_sync_over_rest_walk_ratio: f64,
    /// `registry_sync.best_s / bitcoind_via_client_decoded.best_s`.
    pub sync_over_client_decoded_ratio: f64,
    /// Best rest walk + scan + extract + store, in seconds: what the parts add up to
    /// when nothing overlaps.
    pub parts_sum_s: f64,
    /// Time the best sync run spent in the store's `apply`.
    pub sync_store_apply_s: f64,
    /// The rest of the best sync run: fetch, decode, extract, follower.
    pub sync_rest_s: f64,
    /// Time in `apply`, median over the sync runs.
    pub sync_store_apply_median_s: f64,
    /// HTTP response megabytes per second read from the node (best `bitcoind_alone` run;
    /// hex, so twice the block bytes).
    pub bitcoind_alone_mb_per_s: f64,
    /// Block megabytes per second served over REST (best `rest_walk` run).
    pub rest_walk_mb_per_s: f64,
}

/// Runs every measurement; returns the figures and the follower of the last sync (whose
/// index the verify benchmark reads).
pub fn measure<'a>(
    chain: &'a BenchChain,
    shape: Shape,
    dir: &Path,
    step: u32,
    runs: usize,
    table: &mut Table,
) -> Result<(SyncReport, Follower<&'a BitcoindRpc, TimedStore<RedbStore>>)> {
    let node = &chain.node;
    let step = step.max(1);
    let heights: Vec<u32> = (0..=chain.tip.height).collect();
    let plan = Plan {
        steps: heights.chunks(step as usize).collect(),
        fetch: GETBLOCK_BATCH,
    };
    let blocks = u32::try_from(heights.len())?;
    let records = chain.records;

    let block_bytes = via_client(node, &plan)?; // warm-up
    let all_hashes = plan
        .steps
        .iter()
        .map(|heights| hashes_at(node, heights))
        .collect::<Result<Vec<_>>>()?
        .concat();
    let rest = RawRest::new(chain.rpc_socket);
    rest.walk(&all_hashes)?; // warm-up
    let (rest_runs, rest_bytes) = repeat(runs, || rest.walk(&all_hashes))?;
    ensure!(
        rest_bytes == block_bytes,
        "REST served {rest_bytes} bytes, getblock {block_bytes}"
    );
    let raw = RawRpc::new(chain.rpc_socket, &chain.cookie_file)?;
    let bodies = raw_bodies(node, &plan)?;
    let (raw_runs, raw_bytes) = repeat(runs, || {
        bodies
            .iter()
            .map(|body| raw.post(body))
            .sum::<Result<usize>>()
    })?;
    let (client_runs, _) = repeat(runs, || via_client(node, &plan))?;
    let (decode_runs, decoded) = repeat(runs, || fetch_and_decode(node, &plan))?;
    let transactions = decoded.iter().map(|(_, b)| b.txdata.len()).sum();

    drop(decoded);
    let raw_blocks: Vec<(BlockId, Vec<u8>)> = all_hashes
        .iter()
        .zip(0..)
        .map(|(hash, height)| {
            Ok((
                BlockId {
                    height,
                    hash: *hash,
                },
                node.raw_block(hash)?,
            ))
        })
        .collect::<Result<_>>()?;
    let (scan_runs, scanned) = repeat(runs, || {
        raw_blocks
            .iter()
            .map(|(id, raw)| Ok((*id, BlockCandidates::scan(black_box(raw))?)))
            .collect::<Result<Vec<_>>>()
    })?;
    drop(raw_blocks);
    let (extract_runs, connected) = repeat(runs, || {
        let mut connected: Vec<ConnectedBlock> = Vec::with_capacity(scanned.len());
        let mut fundings = Fundings::new();
        for step in scanned.chunks(step as usize) {
            let mut from = 0;
            let mut pending = 0;
            for (i, (_, block)) in step.iter().enumerate() {
                pending += block.candidates.len();
                if pending >= CANDIDATES_PER_LOOKUP || i + 1 == step.len() {
                    connected.extend(records_in(node, black_box(&step[from..=i]), &mut fundings)?);
                    (from, pending) = (i + 1, 0);
                }
            }
        }
        Ok(connected)
    })?;
    drop(scanned);
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
        let store = RedbStore::open(&path)?;
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
    let mut split = Vec::new(); // (sync, of which apply) per run
    let (sync_runs, follower) = repeat_timed(runs, || {
        let path = dir.join(format!("index-{}", paths.len() + 1));
        let follower = Follower::new(node, TimedStore::new(RedbStore::open(&path)?), 0);
        paths.push(path);
        let start = Instant::now();
        let report = follower.sync(step, |_| {})?;
        let elapsed = start.elapsed();
        ensure!(
            report.tip == Some(chain.tip),
            "sync stopped at {:?}",
            report.tip
        );
        check_count(follower.store(), records)?;
        split.push((elapsed, follower.store().apply_time()));
        Ok((elapsed, follower))
    })?;
    split.sort();
    let (best_sync, best_apply) = split.first().copied().unwrap_or_default();
    let mut applies: Vec<_> = split.iter().map(|(_, apply)| *apply).collect();
    applies.sort();
    let median_apply = applies.get(applies.len() / 2).copied().unwrap_or_default();
    check_indexes(chain, follower.store())?;
    let process_sync = cli_sync::measure(chain, dir, step)?;
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
        shape,
        blocks,
        records,
        transactions,
        block_bytes,
        step_blocks: step,
        fetch_batch_blocks: GETBLOCK_BATCH,
        rest_walk: phase(rest_runs),
        bitcoind_alone: phase(raw_runs),
        bitcoind_via_client: phase(client_runs),
        bitcoind_via_client_decoded: phase(decode_runs),
        scan: phase(scan_runs),
        extract: phase(extract_runs),
        store_apply: phase(store_runs),
        registry_sync: phase(sync_runs),
        sync_over_rest_walk_ratio: sync_runs.best_s / rest_runs.best_s,
        sync_over_rest_walk_median_ratio: sync_runs.median_s / rest_runs.median_s,
        sync_over_bitcoind_alone_ratio: sync_runs.best_s / raw_runs.best_s,
        process_sync_over_rest_walk_ratio: process_sync.elapsed_s / rest_runs.best_s,
        process_sync,
        sync_over_client_decoded_ratio: sync_runs.best_s / decode_runs.best_s,
        parts_sum_s: rest_runs.best_s + scan_runs.best_s + extract_runs.best_s + store_runs.best_s,
        sync_store_apply_s: best_apply.as_secs_f64(),
        sync_rest_s: best_sync.saturating_sub(best_apply).as_secs_f64(),
        sync_store_apply_median_s: median_apply.as_secs_f64(),
        bitcoind_alone_mb_per_s: raw_runs.best_rate(raw_bytes as f64 / 1e6),
        rest_walk_mb_per_s: rest_runs.best_rate(rest_bytes as f64 / 1e6),
    };
    report_table(&report, table);
    Ok((report, follower))
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
    let signed = store.by_signer(&sample.bc.public_key().compressed())?.len();
    ensure!(
        signed == sample.signer_records,
        "by_signer found {signed} records of the sample key, expected {}",
        sample.signer_records
    );
    Ok(())
}

fn report_table(r: &SyncReport, table: &mut Table) {
    table.section(&format!(
        "registry sync, {} chain: {} blocks, {} records, {} txs, {} MB; steps of {} blocks, \
         rpc batches of {}, funding lookups per {} candidates",
        match r.shape {
            Shape::RecordDense => "record-dense",
            Shape::Ordinary => "ordinary",
        },
        r.blocks,
        r.records,
        r.transactions,
        num(r.block_bytes as f64 / 1e6),
        r.step_blocks,
        r.fetch_batch_blocks,
        CANDIDATES_PER_LOOKUP
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
        "rest walk",
        &r.rest_walk,
        format!(
            "{} MB/s of blocks (.bin); the baseline",
            num(r.rest_walk_mb_per_s)
        ),
    );
    row(
        "bitcoind alone (rpc)",
        &r.bitcoind_alone,
        format!("{} MB/s of hex", num(r.bitcoind_alone_mb_per_s)),
    );
    row(
        "  via client (JSON)",
        &r.bitcoind_via_client,
        "jsonrpc + bitreq".into(),
    );
    row(
        "  via client + decode",
        &r.bitcoind_via_client_decoded,
        "what the follower receives".into(),
    );
    row(
        "scan blocks",
        &r.scan,
        "BlockCandidates::scan of the .bin, CPU only".into(),
    );
    row(
        "extract records",
        &r.extract,
        "records_in: funding lookups, spent-output checks".into(),
    );
    row(
        "store apply (redb)",
        &r.store_apply,
        "same change sets, back to back".into(),
    );
    row(
        "registry sync",
        &r.registry_sync,
        format!(
            "{}x rest walk (median {}x), {}x bitcoind alone (rpc)",
            num(r.sync_over_rest_walk_ratio),
            num(r.sync_over_rest_walk_median_ratio),
            num(r.sync_over_bitcoind_alone_ratio),
        ),
    );
    table.row(
        "  time in store apply",
        format!(
            "best run {} s  median {} s",
            num(r.sync_store_apply_s),
            num(r.sync_store_apply_median_s)
        ),
        format!(
            "on the writer thread, overlapped with reading; sync minus it {} s",
            num(r.sync_rest_s)
        ),
    );
    table.row(
        "registry sync (process)",
        format!(
            "{} s  peak {} MB",
            num(r.process_sync.elapsed_s),
            r.process_sync
                .peak_rss_bytes
                .map_or_else(|| "?".into(), |b| num(b as f64 / 1e6))
        ),
        format!(
            "`milagro registry sync`, a fresh index: {}x rest walk",
            num(r.process_sync_over_rest_walk_ratio)
        ),
    );
}
