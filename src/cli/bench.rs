//! `milagro bench`: measured throughput next to its raw baseline.
//!
//! Benchmarks must run in release mode: `cargo run --release -- bench registry`. The
//! measurements live in `src/bench/` (see its module docs for what each figure means). Each
//! subcommand prints a table on stderr and one JSON object with every figure on stdout, the
//! unit in every key (`_s`, `_us`, `_per_s`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::print_json;

#[path = "../bench/mod.rs"]
mod suite;

use suite::bc_verify::{self, BcVerifyReport};
use suite::fixture::{self, Params, Setup};
use suite::stats::{num, Table};
use suite::sync::{self, SyncReport};

/// `milagro bench …` (run as `cargo run --release -- bench …`).
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Registry sync vs bitcoind alone, record extraction, store, and BC verify latency.
    ///
    /// Starts a private regtest node, builds a chain of --blocks blocks holding --records
    /// Milagro records signed by --signers keys (setup is timed but not part of any result),
    /// then measures. Run it in release mode: `cargo run --release -- bench registry`.
    /// Takes about 2-3 minutes at the default size.
    Registry(RegistryArgs),
}

/// `milagro bench registry`
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Blocks holding records.
    #[arg(long, default_value_t = 1_000)]
    pub blocks: u32,
    /// Milagro records, spread evenly over the blocks.
    #[arg(long, default_value_t = 20_000)]
    pub records: usize,
    /// Distinct signer keys (records are signed round-robin; exercises the by-signer index).
    #[arg(long, default_value_t = 100)]
    pub signers: usize,
    /// Blocks per follower step (and per batched fetch of the baseline).
    #[arg(long, default_value_t = 500)]
    pub step: u32,
    /// Runs of each whole-chain measurement (best and median are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Timed calls per latency figure.
    #[arg(long, default_value_t = 2_000)]
    pub calls: usize,
    /// Keep the temporary directory (node data, last index) and print where it is.
    #[arg(long)]
    pub keep: bool,
}

/// What `milagro bench registry` prints on stdout.
#[derive(Debug, Serialize)]
struct RegistryReport {
    profile: &'static str,
    params: Params,
    runs: usize,
    calls: usize,
    setup: Setup,
    sync: SyncReport,
    bc_verify: BcVerifyReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_dir: Option<PathBuf>,
}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Registry(args) => registry(args),
    }
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run `cargo run --release -- bench …` for real figures");
        "debug"
    } else {
        "release"
    }
}

fn registry(args: RegistryArgs) -> Result<()> {
    let profile = profile();
    let params = Params {
        blocks: args.blocks,
        records: args.records,
        signers: args.signers,
    };
    let dir = tempfile::Builder::new()
        .prefix("milagro-bench-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    eprintln!(
        "setup: a regtest chain of {} blocks with {} records from {} keys…",
        params.blocks, params.records, params.signers
    );
    let chain = fixture::build(&params, dir.path())?;
    let s = &chain.setup;
    eprintln!(
        "setup took {} s (node {} s, funding {} s in {} txs, signing {} s, mining {} s)",
        num(s.total_s),
        num(s.node_start_s),
        num(s.funding_s),
        s.funding_txs,
        num(s.sign_s),
        num(s.mine_s)
    );

    let mut table = Table::default();
    eprintln!("measuring registry sync ({} runs each)…", args.runs);
    let (sync, follower) = sync::measure(&chain, dir.path(), args.step, args.runs, &mut table)?;
    eprintln!("measuring BC verify ({} calls each)…", args.calls);
    let bc_verify = bc_verify::measure(&chain, follower.store(), args.calls, &mut table)?;
    drop(follower);
    let setup = chain.setup.clone();
    chain.stop()?;
    table.print();

    let kept_dir = args.keep.then(|| dir.keep());
    if let Some(kept) = &kept_dir {
        eprintln!("\nkept {} (node data in node/, index in index-*)", kept.display());
    }
    print_json(&RegistryReport {
        profile,
        params,
        runs: args.runs,
        calls: args.calls,
        setup,
        sync,
        bc_verify,
        kept_dir,
    })
}
