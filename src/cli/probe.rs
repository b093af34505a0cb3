//! `milagro probe URL`: succeeds only if `GET URL` answers 2xx within 5 s (a container's
//! `HEALTHCHECK` against `/healthz`; the image has no other HTTP client).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Args;

/// `milagro probe`
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to GET (e.g. http://127.0.0.1:8080/healthz).
    pub url: String,
}

/// Runs `milagro probe`.
pub fn run(args: ProbeArgs) -> Result<()> {
    let client = super::http_builder()?
        .timeout(Duration::from_secs(5))
        .build()
        .context("cannot build an http client")?;
    let response = client
        .get(&args.url)
        .send()
        .with_context(|| format!("GET {}", args.url))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {} answered {status}", args.url);
    }
    Ok(())
}
