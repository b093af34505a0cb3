//! Connecting to a node and the registry from command-line arguments.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainSource;
use milagro_registry::follower::Follower;
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::RecordStore;

/// Where the node is.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node's JSON-RPC URL, e.g. http://127.0.0.1:18443.
    #[arg(long, env = "MILAGRO_RPC_URL")]
    pub rpc_url: String,
    /// The node's `.cookie` file.
    #[arg(long, env = "MILAGRO_RPC_COOKIE")]
    pub rpc_cookie: PathBuf,
}

impl NodeArgs {
    /// The node adapter.
    pub fn connect(&self) -> Result<BitcoindRpc> {
        let node = BitcoindRpc::with_cookie(&self.rpc_url, &self.rpc_cookie);
        node.tip()
            .with_context(|| format!("cannot reach the node at {}", self.rpc_url))?;
        Ok(node)
    }
}

/// Blocks per atomic index update, unless a command says otherwise.
pub const DEFAULT_STEP_BLOCKS: u32 = 500;

/// Opens the index in `db`, syncs it to the node's tip, and returns the follower.
pub fn synced_registry<C: ChainSource + Sync>(
    chain: C,
    db: &Path,
    step_blocks: u32,
    show_progress: bool,
) -> Result<Follower<C, RedbStore>> {
    let store = RedbStore::open(db)
        .with_context(|| format!("cannot open the index at {}", db.display()))?;
    let follower = Follower::new(chain, store, 0);
    let bar = show_progress.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} blocks",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let report = follower.sync(step_blocks, |step| {
        if let Some(bar) = &bar {
            bar.set_length(u64::from(step.chain_tip.height) + 1);
            bar.set_position(step.tip.map_or(0, |t| u64::from(t.height) + 1));
            bar.set_message(format!("{} records", step.records));
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprintln!(
        "index at height {} ({} records)",
        report.tip.map_or(0, |t| t.height),
        follower.store().record_count()?
    );
    Ok(follower)
}
