//! `milagro network`: a persistent local network ([`milagro_network`]): up, status,
//! down, logs, an activation code for a person's device; the supervisor `up` starts (`supervise`, hidden); and what the containers
//! of `deploy/container/compose.yaml` run (node, configure, serve, ready).

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
    /// A one-time activation code from the IdP for a person's address (the local network
    /// sends no mail): typed with the address on the IdP's device page while
    /// `milagro pat register --email` waits. Prints `{"email", "activation_code",
    /// "expires_in"}`.
    ActivationCode(ActivationCodeArgs),
    /// Runs the supervisor in the foreground (what `up` starts in the background).
    #[command(hide = true)]
    Supervise(DirArgs),
    /// Runs the regtest node in the foreground, mining a block whenever a transaction
    /// waits, until SIGTERM (the node container of a compose network).
    Node(DirArgs),
    /// Plans and wires the network without running any party (each has its own
    /// container), waits until every party is ready, then prints `status`; again, it
    /// only checks (the one-shot step of a compose network).
    Configure(UpArgs),
    /// Waits until the party's configuration is written and the node answers, then runs
    /// `milagro ROLE serve` in this process's place (a party container).
    Serve(PartyArgs),
    /// Exits 0 if the party (or `node`) is ready, else 1 naming why (a health check).
    Ready(PartyArgs),
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

/// `milagro network activation-code`
#[derive(Debug, Args)]
pub struct ActivationCodeArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// The person's e-mail address.
    #[arg(long)]
    email: String,
}

/// `milagro network serve|ready PARTY`
#[derive(Debug, Args)]
pub struct PartyArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// The party (tbs, idp, dta1, dta2, authserver; `ready` also takes `node`).
    party: String,
    /// Longest wait for the party's configuration and the node (`serve`), in seconds.
    #[arg(long, default_value_t = 600)]
    wait_secs: u64,
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
        NetworkCommand::ActivationCode(args) => {
            let code = milagro_network::activation_code(&args.dir.network(), &args.email)?;
            eprintln!(
                "type it with {} on the IdP's device page within {} s; it works once",
                code.email, code.expires_in
            );
            print_json(&code)
        }
        NetworkCommand::Supervise(args) => {
            super::init_service_logging();
            Ok(milagro_network::supervise(&args.network(), &exe)?)
        }
        NetworkCommand::Node(args) => {
            super::init_service_logging();
            Ok(milagro_network::run_node(&args.network())?)
        }
        NetworkCommand::Configure(args) => {
            super::init_service_logging();
            let network = args.dir.network();
            let started = std::time::Instant::now();
            let status = milagro_network::configure(&network, Duration::from_secs(args.wait_secs))?;
            eprintln!(
                "every party ready after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            show(&status, args.json)
        }
        NetworkCommand::Serve(args) => serve(&exe, &args),
        NetworkCommand::Ready(args) => {
            Ok(milagro_network::ready(&args.dir.network(), &args.party)?)
        }
    }
}

/// `milagro network serve PARTY`: `milagro ROLE serve --config FILE` once the file is
/// there, in this process's place, so that the container engine's signals reach the
/// service itself.
fn serve(exe: &std::path::Path, args: &PartyArgs) -> Result<()> {
    use std::os::unix::process::CommandExt as _;
    let (role, config) = milagro_network::wait_for_party(
        &args.dir.network(),
        &args.party,
        Duration::from_secs(args.wait_secs),
    )?;
    let error = std::process::Command::new(exe)
        .args([role.as_str(), "serve", "--config"])
        .arg(&config)
        .exec();
    Err(error).with_context(|| format!("cannot run {} {role} serve", exe.display()))
}

fn show(status: &milagro_network::NetworkStatus, json: bool) -> Result<()> {
    if json {
        print_json(status)
    } else {
        print!("{}", status.table());
        Ok(())
    }
}
