//! Subcommands, one module each.

pub mod authserver;
pub mod bc;
pub mod bench;
pub mod bench_token;
pub mod dta;
pub mod idp;
pub mod init;
pub mod network;
pub mod pat;
pub mod pat_ciba;
pub mod pat_mpin;
mod pat_provider;
pub mod pat_tls;
pub mod probe;
pub mod registry;
pub mod regtest;
pub mod tbs;

/// The outbound HTTP policy of this run (`--ca-bundle`, `--allow-plain-http`).
static OUTBOUND: std::sync::OnceLock<milagro_http_client::Outbound> = std::sync::OnceLock::new();

/// Sets the outbound HTTP policy of this run (reads the CA bundle); once, from `main`.
pub fn set_outbound(options: &milagro_http_client::ClientOptions) -> anyhow::Result<()> {
    let outbound = milagro_http_client::Outbound::new(options)?;
    let _ = OUTBOUND.set(outbound);
    Ok(())
}

/// The outbound HTTP policy every client of this run follows (the system's roots if
/// `main` did not set one).
pub fn outbound() -> anyhow::Result<milagro_http_client::Outbound> {
    match OUTBOUND.get() {
        Some(outbound) => Ok(outbound.clone()),
        None => Ok(milagro_http_client::Outbound::system()?),
    }
}

/// A device-side client of the service at `url` under [`outbound`].
pub fn service_client(url: &str) -> anyhow::Result<milagro_pat_client::ServiceClient> {
    Ok(milagro_pat_client::ServiceClient::with_outbound(
        url,
        &outbound()?,
        milagro_pat_client::DEFAULT_REQUEST_TIMEOUT,
    )?)
}

/// A blocking HTTP client builder under [`outbound`] (TLS and redirect rules set).
pub fn http_builder() -> anyhow::Result<reqwest::blocking::ClientBuilder> {
    Ok(outbound()?.builder())
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Makes an admin token and prints it once, with the SHA-256 that goes in `config_file`
/// (`[admin] token_sha256`): the token never is stored.
pub fn print_new_admin_token(config_file: &str) -> anyhow::Result<()> {
    let token = milagro_service::token::ApiToken::generate(&mut rand_core::OsRng);
    eprintln!("keep the token secret; put only its token_sha256 in {config_file}");
    print_json(&serde_json::json!({
        "token": token.reveal(),
        "token_sha256": token.hash().to_string(),
    }))
}

/// How a service writes its log lines (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (coloured only on a terminal).
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, `span`), for a
    /// log collector.
    Json,
}

/// The log format of this run (`--log-format`), set once by `main`.
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Sets the log format services of this run write; once, from `main`.
pub fn set_log_format(format: LogFormat) {
    let _ = LOG_FORMAT.set(format);
}

/// Logs of a service (`tbs serve`, `idp serve`, `dta serve`) to stderr, at `RUST_LOG`'s
/// level (default `info`), as text or JSON lines (`--log-format`).
pub fn init_service_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match LOG_FORMAT.get().copied().unwrap_or_default() {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
}

/// `… serve`: starts the service `S` of the configuration file `path` (already loaded as
/// `config`), handling SIGTERM, SIGINT and SIGQUIT; prints where it listens and who it is
/// as one JSON object (with `extra`'s fields, e.g. the D-TA's share API address), then
/// blocks until a signal stops it.
pub fn serve<S: milagro_service::runtime::Service>(
    what: &str,
    path: &std::path::Path,
    config: S::Config,
    extra: impl FnOnce(&S) -> serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()>
where
    S::Error: std::error::Error + Send + Sync + 'static,
{
    use anyhow::Context as _;
    use milagro_service::runtime::{self, Signals};
    init_service_logging();
    let running = runtime::start::<S>(config, Signals::Handle)
        .with_context(|| format!("cannot start the {what} of {}", path.display()))?;
    let identity = running.identity();
    let mut printed = serde_json::json!({
        "listen": running.addr(),
        "url": running.local_url(),
        "digest": identity.digest(),
        "public_key": identity.public_key(),
        "keys": identity.bc().fields().keys,
    });
    if let Some(fields) = printed.as_object_mut() {
        fields.extend(extra(running.state()));
    }
    print_json(&printed)?;
    running.wait();
    Ok(())
}
