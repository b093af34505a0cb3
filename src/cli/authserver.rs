//! `milagro authserver`: run the M-Pin authentication server, make its admin token.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use milagro_authserver::config::Config;
use milagro_authserver::state::AppState;

/// `milagro authserver …`
#[derive(Debug, Subcommand)]
pub enum AuthServerCommand {
    /// Runs the authentication server until SIGTERM (graceful) or SIGINT; logs go to
    /// stderr (RUST_LOG). Logins open once every D-TA of `[[dtas]]` gave its share.
    Serve(ServeArgs),
    /// Makes an admin token: prints it once, with the SHA-256 for `[admin] token_sha256`.
    AdminToken,
}

/// `milagro authserver serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (see authserver/authserver.example.toml).
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs an `authserver` subcommand.
pub fn run(command: AuthServerCommand) -> Result<()> {
    match command {
        AuthServerCommand::Serve(args) => serve(args),
        AuthServerCommand::AdminToken => super::print_new_admin_token("authserver.toml"),
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let what = "authentication server";
    super::serve::<AppState>(what, &args.config, config, |_| Default::default())
}
