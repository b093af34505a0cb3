//! `milagro dta`: run a D-TA (Distributed Trust Authority).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use milagro_dta::config::Config;
use milagro_dta::Dta;

use super::print_json;

/// `milagro dta …`
#[derive(Debug, Subcommand)]
pub enum DtaCommand {
    /// Runs the D-TA until SIGTERM (graceful) or SIGINT; logs go to stderr (RUST_LOG).
    /// The master-share sealing key comes from the environment variable or file that
    /// `[master_key]` names.
    Serve(ServeArgs),
}

/// `milagro dta serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (see dta/dta.example.toml).
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs a `dta` subcommand.
pub fn run(command: DtaCommand) -> Result<()> {
    match command {
        DtaCommand::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    super::init_service_logging();
    let config = Config::load(&args.config)?;
    let dta = Dta::start_handling_signals(config)
        .with_context(|| format!("cannot start the D-TA of {}", args.config.display()))?;
    let identity = &dta.state().identity;
    print_json(&serde_json::json!({
        "listen": dta.addr(),
        "url": dta.local_url(),
        "tls_listen": dta.tls_addr(),
        "digest": identity.digest(),
        "public_key": identity.public_key(),
        "keys": identity.bc().fields().keys,
    }))?;
    dta.wait();
    Ok(())
}
