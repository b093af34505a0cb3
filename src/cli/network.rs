//! `milagro network`: a persistent local network ([`milagro_network`]): up, status,
//! down, logs; and the supervisor `up` starts (`supervise`, hidden).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use milagro_network::NetworkDir;

use super::print_json;

/// `milagro network …`
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Sets the network up (first run) or starts it again, and waits until every party
    /// is anchored and ready; then prints `status`.
    Up(UpArgs),
    /// Each party's role, name, URL, digest, anchor depth, readiness and restarts.
    Status(StatusArgs),
    /// Stops every party and the node; `up` resumes with the same keys and state.
    Down(DirArgs),
    /// The last lines of a party's log (tbs, idp, dta1, dta2, authserver, supervisor).
    Logs(LogsArgs),
    /// Runs the supervisor in the foreground (what `up` starts in the background).
    #[command(hide = true)]
    Supervise(DirArgs),
}

/// The network's directory.
#[derive(Debug, Args)]
pub struct DirArgs {
    /// The directory of the network (default: `network` in the project cache).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl DirArgs {
    fn network(&self) -> NetworkDir {
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| milagro_regtest::default_cache_dir().join("network"));
        NetworkDir::new(&dir)
    }
}

/// `milagro network up`
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Longest wait for every party to be ready, in seconds.
    #[arg(long, default_value_t = 300)]
    wait_secs: u64,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

/// `milagro network status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Print `{"parties": [{"role", "name", "url", "digest", "depth", "ready", …}], …}`.
    #[arg(long)]
    json: bool,
}

/// `milagro network logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// The party (or `supervisor`).
    party: String,
    /// How many lines.
    #[arg(long, default_value_t = 50)]
    lines: usize,
}

/// Runs a `network` subcommand.
pub fn run(command: NetworkCommand) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    match command {
        NetworkCommand::Up(args) => {
            let network = args.dir.network();
            eprintln!("bringing the network in {} up", network.root().display());
            let started = std::time::Instant::now();
            let status = milagro_network::up(&network, &exe, Duration::from_secs(args.wait_secs))?;
            eprintln!(
                "every party ready after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            show(&status, args.json)
        }
        NetworkCommand::Status(args) => {
            show(&milagro_network::status(&args.dir.network())?, args.json)
        }
        NetworkCommand::Down(args) => {
            let network = args.network();
            milagro_network::down(&network, Duration::from_secs(90))?;
            eprintln!("the network in {} is down", network.root().display());
            Ok(())
        }
        NetworkCommand::Logs(args) => {
            println!(
                "{}",
                milagro_network::logs(&args.dir.network(), &args.party, args.lines)?
            );
            Ok(())
        }
        NetworkCommand::Supervise(args) => {
            super::init_service_logging();
            Ok(milagro_network::supervise(&args.network(), &exe)?)
        }
    }
}

fn show(status: &milagro_network::NetworkStatus, json: bool) -> Result<()> {
    if json {
        print_json(status)
    } else {
        print!("{}", status.table());
        Ok(())
    }
}
