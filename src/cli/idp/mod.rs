//! `milagro idp`: run the OpenID Connect provider, manage its users, measure it.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use milagro_idp::config::Config;
use milagro_idp::state::AppState;
use milagro_idp::users::UserStore as _;
use zeroize::Zeroizing;

use super::print_json;

mod bench;

/// `milagro idp …`
#[derive(Debug, Subcommand)]
pub enum IdpCommand {
    /// Runs the IdP until SIGTERM (graceful) or SIGINT; logs go to stderr (RUST_LOG).
    Serve(ConfigArg),
    /// Users who log in.
    #[command(subcommand)]
    User(UserCommand),
    /// Makes an admin (or initial access) token: prints it once, with the SHA-256 for
    /// `[admin] token_sha256` or `[registration] initial_access_token_sha256`.
    AdminToken,
    /// Token endpoint throughput (code exchanges/s with ID-token signing) next to the raw
    /// ES256 signing rate, on a private regtest node. Run it in release mode:
    /// `cargo run --release -- idp bench`.
    Bench(bench::BenchArgs),
}

/// `--config FILE`
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file (see idp/idp.example.toml).
    #[arg(long)]
    pub config: PathBuf,
}

/// `milagro idp user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user (while the IdP is stopped: it holds its database open; a running IdP
    /// takes `POST /v1/admin/users` with the admin token). The password is read from
    /// --password-file, or else from stdin (one line).
    Add(UserAddArgs),
}

/// `milagro idp user add`
#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The configuration file.
    #[arg(long)]
    pub config: PathBuf,
    /// The username (1 to 64 of letters, digits and . - _ @).
    #[arg(long)]
    pub username: String,
    /// A file holding the password (its first line).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// Runs an `idp` subcommand.
pub fn run(command: IdpCommand) -> Result<()> {
    match command {
        IdpCommand::Serve(args) => serve(args),
        IdpCommand::User(UserCommand::Add(args)) => add_user(args),
        IdpCommand::AdminToken => super::print_new_admin_token("idp.toml"),
        IdpCommand::Bench(args) => bench::run(args),
    }
}

fn serve(args: ConfigArg) -> Result<()> {
    let config = Config::load(&args.config)?;
    super::serve::<AppState>("IdP", &args.config, config, |idp| {
        serde_json::Map::from_iter([("issuer".into(), serde_json::json!(idp.issuer()))])
    })
}

fn add_user(args: UserAddArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    if !config.passwords {
        bail!(
            "password sign-in is off in {} ([passwords] enabled = false): people register \
             with their e-mail address or an activation code (POST /v1/admin/activation-codes)",
            args.config.display()
        );
    }
    let mut text = Zeroizing::new(String::new());
    match &args.password_file {
        Some(path) => {
            *text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the password from stdin")?;
        }
    }
    let password = Zeroizing::new(text.lines().next().unwrap_or_default().to_owned());
    if password.is_empty() {
        bail!("no password given (stdin or --password-file)");
    }
    let users = milagro_idp::open_users(&config)
        .context("cannot open the IdP database (is the IdP running? stop it first)")?;
    let user = users.add(&args.username, &password, milagro_service::unix_now())?;
    eprintln!("user {} added", user.username);
    print_json(&serde_json::json!({ "username": user.username, "subject": user.subject }))
}
