//! `oidc-provider` (npm, pinned) for `bench token`: installed into the machine cache on
//! first use ([`milagro_regtest::npm::install_pinned`], the folder the tests use) and run
//! by `token_op.mjs` under Node on loopback, with one confidential client (see the
//! script for what it configures).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use milagro_regtest::npm::{install_pinned, NodeScript, OIDC_PROVIDER};
use serde_json::Value;

const SCRIPT: NodeScript<'static> = NodeScript {
    name: "token_op.mjs",
    text: include_bytes!("token_op.mjs"),
};

/// The Node process serving the provider; stopped when dropped.
pub struct OidcProvider {
    /// Its issuer (`http://127.0.0.1:PORT`).
    pub issuer: String,
    node: Child,
    // Closing it tells the script to stop.
    stdin: Option<ChildStdin>,
}

impl OidcProvider {
    /// Installs (once) and starts the provider with the client `client_id`
    /// (`client_secret`, `redirect_uri`).
    pub fn start(client_id: &str, client_secret: &str, redirect_uri: &str) -> Result<Self> {
        let dir = install_pinned("npm-op", "oidc-provider", OIDC_PROVIDER, SCRIPT)?;
        let mut node = Command::new("node")
            .arg(dir.join(SCRIPT.name))
            .args([client_id, redirect_uri])
            .env("BENCH_CLIENT_SECRET", client_secret)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run node (it must be installed)")?;
        let stdin = node.stdin.take();
        let stdout = node.stdout.take().context("no stdout of node")?;
        let mut started = Self {
            issuer: String::new(),
            node,
            stdin,
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        // Keep reading (into stderr): a closed pipe would kill the provider at its next
        // notice.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout, &mut std::io::stderr());
        });
        let first: Value = serde_json::from_str(&line)
            .with_context(|| format!("token_op.mjs did not start: {line:?}"))?;
        started.issuer = first["issuer"]
            .as_str()
            .with_context(|| format!("no issuer in {line:?}"))?
            .to_owned();
        Ok(started)
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // The script exits on end of input; kill it only if it does not.
        for _ in 0..50 {
            if let Ok(Some(_)) = self.node.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.node.kill();
        let _ = self.node.wait();
    }
}
