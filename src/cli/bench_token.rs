//! `milagro bench token`: the IdP's token endpoint side by side with `oidc-provider` (npm)
//! under one load driver (see [`crate::bench::token`]).

use anyhow::{ensure, Context, Result};
use clap::Args;
use serde::Serialize;

use super::print_json;
use crate::bench::stats::Table;
use crate::bench::token::{measure, TokenParams, TokenReport};

/// `milagro bench token`
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Timed code exchanges per provider and concurrency level (in rounds of 300).
    #[arg(long, default_value_t = 1_500)]
    pub exchanges: usize,
    /// Concurrent clients (comma-separated levels).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub concurrency: Vec<usize>,
    /// Timed calls per raw figure.
    #[arg(long, default_value_t = 2_000)]
    pub calls: usize,
}

#[derive(Debug, Serialize)]
struct TokenBenchReport {
    profile: &'static str,
    exchanges: usize,
    calls: usize,
    token: TokenReport,
}

/// Runs `bench token`.
pub fn run(args: TokenArgs, profile: &'static str) -> Result<()> {
    ensure!(
        args.exchanges > 0 && args.calls > 0,
        "--exchanges and --calls must be at least 1"
    );
    ensure!(
        !args.concurrency.is_empty() && args.concurrency.iter().all(|&c| c > 0),
        "every --concurrency level must be at least 1"
    );
    let dir = tempfile::Builder::new()
        .prefix("milagro-bench-token-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let params = TokenParams {
        exchanges: args.exchanges,
        concurrency: args.concurrency,
        calls: args.calls,
    };
    let mut table = Table::default();
    let token = measure(&params, dir.path(), &mut table)?;
    table.print();
    print_json(&TokenBenchReport {
        profile,
        exchanges: params.exchanges,
        calls: params.calls,
        token,
    })
}
