//! `milagro authserver`: run the M-Pin authentication server, make its admin token.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use milagro_authserver::config::Config;
use milagro_authserver::AuthServer;

use super::print_json;

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
    super::init_service_logging();
    let config = Config::load(&args.config)?;
    let server = AuthServer::start_handling_signals(config).with_context(|| {
        format!(
            "cannot start the authentication server of {}",
            args.config.display()
        )
    })?;
    let identity = &server.state().identity;
    print_json(&serde_json::json!({
        "listen": server.addr(),
        "url": server.local_url(),
        "digest": identity.digest(),
        "public_key": identity.public_key(),
        "keys": identity.bc().fields().keys,
    }))?;
    server.wait();
    Ok(())
}
