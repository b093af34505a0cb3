//! `milagro registry sync` run as its own process: the time and peak memory an operator
//! sees.
//!
//! The in-process sync runs of [`super::sync`] share the benchmark's process with the
//! chain fixture and the decoded blocks of other phases, so their resident memory says
//! nothing about the sync's. A fresh process does: `registry sync` reports its peak
//! resident set (`VmHWM`) in its JSON, which is read here with the elapsed time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::fixture::BenchChain;

/// One `milagro registry sync` into a fresh index.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CliSync {
    /// Wall time, process start to exit.
    pub elapsed_s: f64,
    /// The process's peak resident set, if the platform reports it.
    pub peak_rss_bytes: Option<u64>,
}

/// Runs `milagro registry sync` (this very executable) against the bench chain.
pub fn measure(chain: &BenchChain, dir: &Path, step: u32) -> Result<CliSync> {
    let db = dir.join("cli-index");
    let exe = std::env::current_exe().context("cannot find the milagro executable")?;
    let start = Instant::now();
    let output = Command::new(exe)
        .args([
            "registry",
            "sync",
            "--rpc-url",
            chain.node.url(),
            "--rpc-cookie",
        ])
        .arg(&chain.cookie_file)
        .arg("--db")
        .arg(&db)
        .args(["--step", &step.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("cannot run milagro registry sync")?;
    let elapsed_s = start.elapsed().as_secs_f64();
    ensure!(
        output.status.success(),
        "milagro registry sync failed: {}",
        output.status
    );
    let answer: Value =
        serde_json::from_slice(&output.stdout).context("milagro registry sync printed no JSON")?;
    ensure!(
        answer["records"].as_u64() == Some(chain.records),
        "registry sync indexed {}, the chain holds {} records",
        answer["records"],
        chain.records
    );
    std::fs::remove_dir_all(&db)?;
    Ok(CliSync {
        elapsed_s,
        peak_rss_bytes: answer["peak_rss_bytes"].as_u64(),
    })
}
