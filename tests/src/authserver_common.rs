//! What the authentication-server tests share: its anchored identity, made before it
//! starts (each D-TA must list its digest in `[shares] authservers` first), and its
//! configuration on a test node, naming the D-TAs it fetches from, with whatever other
//! sections a test needs (`[login]`, `[admin]`, `[tls]` for HTTPS).

use std::path::{Path, PathBuf};

use milagro_anchor::digest::Digest;
use milagro_authserver::config::Config;
use milagro_service::identity::PartyIdentity;

use crate::TestNode;

/// An authentication server's identity, in its state directory, before it runs.
pub struct AuthServerIdentity {
    /// Its state directory (holds the key and certificate).
    pub state_dir: PathBuf,
    /// Its Birth Certificate digest.
    pub digest: Digest,
    name: String,
    public_url: String,
}

impl AuthServerIdentity {
    /// Makes the key and Birth Certificate of a server named `name` at `public_url` in
    /// `state_dir` (created, mode 0700).
    pub fn create(state_dir: &Path, name: &str, public_url: &str) -> Self {
        milagro_service::files::create_private_dir(state_dir).unwrap();
        let digest = PartyIdentity::load_or_create(
            milagro_authserver::KIND,
            state_dir,
            name,
            public_url,
            milagro_service::unix_now(),
        )
        .unwrap()
        .digest();
        Self {
            state_dir: state_dir.to_path_buf(),
            digest,
            name: name.to_owned(),
            public_url: public_url.to_owned(),
        }
    }

    /// The `[shares]` section of a D-TA that issues this server its share.
    pub fn listed(&self) -> String {
        format!("[shares]\nauthservers = [\"{}\"]\n", self.digest)
    }

    /// Its configuration: on loopback, on `node`, fetching from the D-TAs of the
    /// `[[dtas]]` tables `dtas` ([`crate::dta_common::authserver_peers`]), with the TOML
    /// sections `extra` appended.
    pub fn config(&self, node: &TestNode, dtas: &str, extra: &str) -> Config {
        let text = format!(
            r#"
listen = "127.0.0.1:0"
public_url = {public_url:?}
name = {name:?}
state_dir = {state_dir:?}
[node]
rpc_url = {rpc:?}
rpc_cookie = {cookie:?}
network = "regtest"
[sync]
poll_interval_ms = 50
max_backoff_ms = 400
{dtas}
{extra}"#,
            public_url = self.public_url,
            name = self.name,
            state_dir = self.state_dir,
            rpc = node.rpc_url(),
            cookie = node.cookie(),
        );
        Config::parse(&text).unwrap()
    }
}
