//! `oidc-provider` (npm, pinned) for `bench token`: installed into the machine cache on
//! first use ([`milagro_regtest::npm::install_pinned`], the folder the tests use) and run
//! by `token_op.mjs` under Node on loopback, with one confidential client (see the
//! script for what it configures).

use anyhow::{Context, Result};
use milagro_regtest::npm::{install_pinned, NodeProcess, NodeScript, OIDC_PROVIDER};

const SCRIPT: NodeScript<'static> = NodeScript {
    name: "token_op.mjs",
    text: include_bytes!("token_op.mjs"),
};

/// The Node process serving the provider; stopped when dropped.
pub struct OidcProvider {
    /// Its issuer (`http://127.0.0.1:PORT`).
    pub issuer: String,
    _node: NodeProcess,
}

impl OidcProvider {
    /// Installs (once) and starts the provider with the client `client_id`
    /// (`client_secret`, `redirect_uri`).
    pub fn start(client_id: &str, client_secret: &str, redirect_uri: &str) -> Result<Self> {
        let dir = install_pinned("npm-op", "oidc-provider", OIDC_PROVIDER, SCRIPT)?;
        // The secret goes in the environment: the command line is visible to everyone.
        // `NODE_ENV=production`, as a deployment runs it (Koa and oidc-provider skip their
        // development-time work).
        let (node, first) = NodeProcess::start(
            &dir,
            SCRIPT.name,
            &[client_id.as_ref(), redirect_uri.as_ref()],
            &[
                ("BENCH_CLIENT_SECRET", client_secret),
                ("NODE_ENV", "production"),
            ],
        )?;
        let issuer = first["issuer"]
            .as_str()
            .with_context(|| format!("no issuer in {first}"))?
            .to_owned();
        Ok(Self {
            issuer,
            _node: node,
        })
    }
}
