//! `milagro tbs`: run a Trusted Bitcoin Server, and the device maker's enrolment keys and
//! credentials (`docs/enrolment.md`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::keys::PublicKey;
use milagro_tbs::config::Config;
use milagro_tbs::files;
use milagro_tbs::state::AppState;

use super::print_json;

/// `milagro tbs …`
#[derive(Debug, Subcommand)]
pub enum TbsCommand {
    /// Runs the TBS until SIGTERM (graceful) or SIGINT; logs go to stderr (RUST_LOG).
    Serve(ServeArgs),
    /// Makes an operator admin token: prints it once, with the SHA-256 for `[admin]
    /// token_sha256` in the configuration (the TBS never stores the token itself).
    AdminToken,
    /// For a device maker: creates an enrolment key (if absent) and prints its public
    /// key, which the tenant lists in a group's `enrolment_keys`.
    EnrolmentKey(EnrolmentKeyArgs),
    /// For a device maker: signs an enrolment credential letting one device key enrol in
    /// one group, with an enrolment key; prints the credential (JSON) for the device.
    Credential(CredentialArgs),
}

/// `milagro tbs enrolment-key`
#[derive(Debug, Args)]
pub struct EnrolmentKeyArgs {
    /// The secret key file (hex); created with mode 0600 if absent.
    #[arg(long)]
    pub key_file: PathBuf,
}

/// `milagro tbs credential`
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// The enrolment key's secret key file.
    #[arg(long)]
    pub key_file: PathBuf,
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The group within the tenant.
    #[arg(long)]
    pub group: String,
    /// The device's public key (compressed, 66 hex characters).
    #[arg(long)]
    pub device: PublicKey,
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
        TbsCommand::EnrolmentKey(args) => {
            let (key, created) = files::load_or_create_key(&args.key_file)?;
            print_json(&serde_json::json!({
                "public_key": key.public_key(),
                "created": created,
                "key_file": args.key_file,
            }))
        }
        TbsCommand::Credential(args) => {
            let key = files::read_key(&args.key_file)
                .with_context(|| format!("cannot read {}", args.key_file.display()))?;
            let credential =
                EnrolmentCredential::issue(&key, &args.tenant, &args.group, &args.device)?;
            println!("{}", credential.to_json());
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    super::serve::<AppState>("TBS", &args.config, config, |_| Default::default())
}
