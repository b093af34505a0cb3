//! `milagro tbs`: run a Trusted Bitcoin Server.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use milagro_tbs::config::Config;
use milagro_tbs::Tbs;

use super::print_json;

/// `milagro tbs …`
#[derive(Debug, Subcommand)]
pub enum TbsCommand {
    /// Runs the TBS until SIGTERM (graceful) or SIGINT; logs go to stderr (RUST_LOG).
    Serve(ServeArgs),
    /// Makes an operator admin token: prints it once, with the SHA-256 for `[admin]
    /// token_sha256` in the configuration (the TBS never stores the token itself).
    AdminToken,
}

/// `milagro tbs serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (see tbs/tbs.example.toml).
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs a `tbs` subcommand.
pub fn run(command: TbsCommand) -> Result<()> {
    match command {
        TbsCommand::Serve(args) => serve(args),
        TbsCommand::AdminToken => super::print_new_admin_token("tbs.toml"),
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    super::init_service_logging();
    let config = Config::load(&args.config)?;
    let tbs = Tbs::start_handling_signals(config)
        .with_context(|| format!("cannot start the TBS of {}", args.config.display()))?;
    let identity = &tbs.state().identity;
    print_json(&serde_json::json!({
        "listen": tbs.addr(),
        "url": tbs.local_url(),
        "digest": identity.digest(),
        "public_key": identity.public_key(),
    }))?;
    tbs.wait();
    Ok(())
}
