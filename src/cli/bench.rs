//! `milagro bench`: measured throughput next to its raw baseline.

use anyhow::Result;
use clap::Subcommand;

/// `milagro bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> Result<()> {
    match command {}
}
