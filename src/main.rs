//! `milagro`: one binary for every role of the Milagro Trust network.
//!
//! Each subcommand parses its arguments, calls the library crates, and prints JSON on
//! stdout where a machine may read it and human text on stderr. The exit status is 0 only
//! on success.

mod bench;
mod cli;
mod demo;
mod node;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Milagro Trust: a Bitcoin-anchored trust registry.
#[derive(Debug, Parser)]
#[command(name = "milagro", version, about, long_about = None)]
struct Cli {
    /// A PEM file of the CA certificates outbound HTTPS must lead to (a private CA);
    /// default: the system's roots.
    #[arg(long, global = true, value_name = "FILE", env = "MILAGRO_CA_BUNDLE")]
    ca_bundle: Option<std::path::PathBuf>,
    /// Allow plain http:// to hosts other than loopback (unsafe off a private network).
    #[arg(long, global = true)]
    allow_plain_http: bool,
    /// How services write their log lines to stderr: `text` or `json` (one object a line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "MILAGRO_LOG_FORMAT"
    )]
    log_format: cli::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Birth Certificates: create, anchor, verify.
    #[command(subcommand)]
    Bc(cli::bc::BcCommand),
    /// The record index: sync it from a node, query it.
    #[command(subcommand)]
    Registry(cli::registry::RegistryCommand),
    /// A local regtest node: install, start, stop.
    #[command(subcommand)]
    Regtest(cli::regtest::RegtestCommand),
    /// The Trusted Bitcoin Server: registry API next to a full node.
    #[command(subcommand)]
    Tbs(cli::tbs::TbsCommand),
    /// The IdP: an OpenID Connect provider with an anchored identity.
    #[command(subcommand)]
    Idp(cli::idp::IdpCommand),
    /// A D-TA: a master-secret share, M-Pin shares over Milagro TLS.
    #[command(subcommand)]
    Dta(cli::dta::DtaCommand),
    /// The M-Pin authentication server: logins against the D-TAs' summed server secret.
    #[command(subcommand)]
    Authserver(cli::authserver::AuthServerCommand),
    /// A device (PAT): enrol through a TBS, refresh its instructions.
    #[command(subcommand)]
    Pat(cli::pat::PatCommand),
    /// Sets up one service (tbs, idp, dta, authserver) for a network: a commented
    /// configuration `serve` accepts, its state directory and keys, admin tokens (shown
    /// once); never overwrites a service.
    Init(cli::init::InitArgs),
    /// A persistent local network (node, TBS, IdP, two D-TAs, auth server) under one
    /// directory: up, status, down, logs.
    #[command(subcommand)]
    Network(cli::network::NetworkCommand),
    /// Exits 0 only if GET URL answers 2xx within 5 s (a container HEALTHCHECK).
    Probe(cli::probe::ProbeArgs),
    /// Benchmarks that print throughput next to the raw cost they are bounded by.
    #[command(subcommand)]
    Bench(cli::bench::BenchCommand),
    /// Runs the whole network on a private regtest chain and shows every step.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::set_log_format(cli.log_format);
    let options =
        milagro_http_client::ClientOptions::new(cli.ca_bundle.as_deref(), cli.allow_plain_http);
    if let Err(error) = cli::set_outbound(&options) {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Bc(command) => cli::bc::run(command),
        Command::Registry(command) => cli::registry::run(command),
        Command::Regtest(command) => cli::regtest::run(command),
        Command::Tbs(command) => cli::tbs::run(command),
        Command::Idp(command) => cli::idp::run(command),
        Command::Dta(command) => cli::dta::run(command),
        Command::Authserver(command) => cli::authserver::run(command),
        Command::Pat(command) => cli::pat::run(command),
        Command::Init(args) => cli::init::run(args),
        Command::Network(command) => cli::network::run(command),
        Command::Probe(args) => cli::probe::run(args),
        Command::Bench(command) => cli::bench::run(command),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
