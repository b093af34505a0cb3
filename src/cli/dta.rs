//! `milagro dta`: run a D-TA (Distributed Trust Authority).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use milagro_dta::config::Config;
use milagro_dta::state::AppState;

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
    let config = Config::load(&args.config)?;
    super::serve::<AppState>("D-TA", &args.config, config, |dta| {
        serde_json::Map::from_iter([("tls_listen".into(), serde_json::json!(dta.share_listen))])
    })
}
