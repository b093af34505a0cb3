//! `milagro regtest`: a local regtest node for development and the demo.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::print_json;

/// `milagro regtest …`
#[derive(Debug, Subcommand)]
pub enum RegtestCommand {
    /// Downloads Bitcoin Knots into the project cache (once); prints the `bitcoind` path.
    Install,
    /// Starts a persistent regtest node with a funded wallet; prints its details as JSON.
    Up(DatadirArgs),
    /// Stops the node started by `up`.
    Down(DatadirArgs),
}

/// Where the node keeps its data.
#[derive(Debug, Args)]
pub struct DatadirArgs {
    /// The node's data directory (default: `regtest-node` in the project cache).
    #[arg(long)]
    pub datadir: Option<PathBuf>,
}

impl DatadirArgs {
    fn datadir(&self) -> PathBuf {
        self.datadir
            .clone()
            .unwrap_or_else(|| milagro_regtest::default_cache_dir().join("regtest-node"))
    }
}

/// Runs a `regtest` subcommand.
pub fn run(command: RegtestCommand) -> Result<()> {
    match command {
        RegtestCommand::Install => {
            let installed = milagro_regtest::install(&milagro_regtest::default_cache_dir())?;
            eprintln!("{} installed; use it as BITCOIND_EXE", installed.version);
            print_json(&serde_json::json!({
                "bitcoind": installed.bitcoind,
                "bitcoin_cli": installed.bitcoin_cli,
                "version": installed.version,
            }))
        }
        RegtestCommand::Up(args) => {
            let exe = milagro_regtest::bitcoind_exe()?;
            let datadir = args.datadir();
            std::fs::create_dir_all(&datadir)?;
            let node = milagro_regtest::up(&exe, &datadir)?;
            eprintln!(
                "regtest node running (pid {}); stop it with `milagro regtest down`",
                node.pid
            );
            print_json(&node)
        }
        RegtestCommand::Down(args) => {
            milagro_regtest::down(&args.datadir())?;
            eprintln!("regtest node stopped");
            Ok(())
        }
    }
}
