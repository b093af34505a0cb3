//! `milagro registry`: build and query the record index.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use milagro_anchor::digest::Digest;
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::RecordStore;

use super::print_json;
use crate::node::{synced_registry, NodeArgs, DEFAULT_STEP_BLOCKS};

/// `milagro registry …`
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Follows the node to its tip (rolling back any reorg) and stores every record.
    Sync(SyncArgs),
    /// Prints the records of a digest as JSON.
    Show(ShowArgs),
}

/// `milagro registry sync`
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// The index directory.
    #[arg(long)]
    pub db: PathBuf,
    /// Blocks per atomic update of the index.
    #[arg(long, default_value_t = DEFAULT_STEP_BLOCKS)]
    pub step: u32,
}

/// `milagro registry show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The digest to look up (64 hex characters).
    pub digest: Digest,
    /// The index directory.
    #[arg(long)]
    pub db: PathBuf,
}

/// Runs a `registry` subcommand.
pub fn run(command: RegistryCommand) -> Result<()> {
    match command {
        RegistryCommand::Sync(args) => {
            let node = args.node.connect()?;
            let follower = synced_registry(
                &node,
                &args.db,
                args.step,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            let tip = follower.store().tip()?;
            print_json(&serde_json::json!({
                "height": tip.map(|t| t.height),
                "hash": tip.map(|t| t.hash),
                "records": follower.store().record_count()?,
                "peak_rss_bytes": peak_rss_bytes(),
            }))
        }
        RegistryCommand::Show(args) => {
            if !args.db.exists() {
                bail!(
                    "no index at {}: run `milagro registry sync` first",
                    args.db.display()
                );
            }
            let store = RedbStore::open(&args.db)?;
            let records = store.by_digest(&args.digest)?;
            print_json(&records)?;
            if records.is_empty() {
                bail!("no record of {}", args.digest);
            }
            Ok(())
        }
    }
}

/// This process's peak resident set (`VmHWM` in `/proc/self/status`), where Linux reports
/// it: printed after a sync so that its memory bound can be checked from outside.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
