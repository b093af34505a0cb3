//! The shared test environment for end-to-end tests: a real regtest `bitcoind`.
//!
//! [`TestNode::start`] gets the node binary through [`milagro_regtest::bitcoind_exe`]
//! (installing it on first use: these tests never skip), starts a private node in a
//! temporary directory with the `bitcoind` crate, and mines spendable coins. The helpers
//! build real anchoring transactions with [`milagro_anchor`] and talk to the node only
//! through the registry's node adapter, like production code does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bitcoin::{Amount, BlockHash, FeeRate, Txid};
use milagro_anchor::anchor_tx::{build_anchor_tx, p2wpkh_script, FundingUtxo};
use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status, VERSION};
use milagro_anchor::keys::SecretKey;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_anchor::purpose_keys::PurposeKeys;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainSource;
use milagro_regtest::RegtestControls as _;

pub mod apache;
pub mod authserver_common;
pub mod dta_common;
pub mod enrolment_world;
pub mod forgery;
pub mod https;
pub mod idp_common;
pub mod logs;
pub mod lying_tbs;
pub mod npm;
pub mod on_path;
pub mod openapi;
pub mod smtp_sink;
pub mod tenant_world;
pub mod third_party_op;
pub mod tls_parties;
pub mod webdriver;
pub mod wire_schema;

/// A private regtest node with a funded wallet; killed when dropped.
pub struct TestNode {
    /// The process handle (owns the temporary data directory).
    pub bitcoind: bitcoind::BitcoinD,
    /// The node adapter, as production code uses it.
    pub rpc: BitcoindRpc,
    /// An address of the node's wallet that receives mined coins.
    pub miner: String,
}

impl TestNode {
    /// Starts a node and mines 101 blocks so the wallet can spend.
    pub fn start() -> Self {
        let exe = milagro_regtest::bitcoind_exe()
            .expect("a bitcoind for the tests (installed on first use)");
        let mut conf = bitcoind::Conf::default();
        conf.args.extend(milagro_regtest::NODE_ARGS);
        // Listening, so that a second node can follow it (`TestNode::start_peer`).
        conf.p2p = bitcoind::P2P::Yes;
        conf.args.push("-listenonion=0");
        let bitcoind = bitcoind::BitcoinD::with_conf(&exe, &conf).expect("bitcoind starts");
        let rpc = BitcoindRpc::with_cookie(bitcoind.rpc_url(), &bitcoind.params.cookie_file);
        let miner = rpc.wallet_new_address().unwrap();
        rpc.generate_to_address(101, &miner).unwrap();
        Self {
            bitcoind,
            rpc,
            miner,
        }
    }

    /// A second node connected to this one (it keeps reconnecting), started once it holds
    /// the same chain. Cutting it off ([`TestNode::set_network_active`]) partitions the two.
    pub fn start_peer(&self) -> Self {
        let exe = milagro_regtest::bitcoind_exe()
            .expect("a bitcoind for the tests (installed on first use)");
        let mut conf = bitcoind::Conf::default();
        conf.args.extend(milagro_regtest::NODE_ARGS);
        conf.p2p = self.bitcoind.p2p_connect(true).expect("a listening node");
        conf.args.push("-listenonion=0");
        let bitcoind = bitcoind::BitcoinD::with_conf(&exe, &conf).expect("bitcoind starts");
        let rpc = BitcoindRpc::with_cookie(bitcoind.rpc_url(), &bitcoind.params.cookie_file);
        let miner = rpc.wallet_new_address().unwrap();
        let peer = Self {
            bitcoind,
            rpc,
            miner,
        };
        peer.wait_for_tip_of(self);
        peer
    }

    /// Turns this node's peer-to-peer networking on or off (`setnetworkactive`).
    pub fn set_network_active(&self, active: bool) {
        let _: serde_json::Value = self
            .rpc
            .call("setnetworkactive", &[serde_json::json!(active)])
            .unwrap();
    }

    /// Waits until this node's tip is `other`'s.
    pub fn wait_for_tip_of(&self, other: &TestNode) {
        wait_until(
            "two nodes to hold the same tip",
            std::time::Duration::from_secs(60),
            || (self.rpc.tip().unwrap() == other.rpc.tip().unwrap()).then_some(()),
        );
    }

    /// The node's RPC URL.
    pub fn rpc_url(&self) -> String {
        self.bitcoind.rpc_url()
    }

    /// The node's cookie file.
    pub fn cookie(&self) -> std::path::PathBuf {
        self.bitcoind.params.cookie_file.clone()
    }

    /// Mines `count` blocks (mempool included).
    pub fn mine(&self, count: u32) -> Vec<BlockHash> {
        self.rpc.generate_to_address(count, &self.miner).unwrap()
    }

    /// Pays 20,000 sat from the wallet to `key`'s P2WPKH (unconfirmed).
    pub fn fund(&self, key: &SecretKey) -> FundingUtxo {
        let (outpoint, value) = self
            .rpc
            .wallet_pay_to(&p2wpkh_script(&key.public_key()), Amount::from_sat(20_000))
            .unwrap();
        FundingUtxo { outpoint, value }
    }

    /// Funds `key`, signs an anchoring transaction for `payload` with it and broadcasts it.
    pub fn anchor(&self, key: &SecretKey, payload: Payload) -> Txid {
        let funding = self.fund(key);
        let tx = build_anchor_tx(
            key,
            &funding,
            &payload,
            FeeRate::from_sat_per_vb_u32(2),
            None,
        )
        .unwrap()
        .tx;
        self.rpc.broadcast(&tx).unwrap()
    }

    /// Anchors a Birth Certificate with its own key.
    pub fn anchor_bc(&self, key: &SecretKey, bc: &BirthCertificate) -> Txid {
        self.anchor(key, Payload::new(RecordKind::BirthCertificate, bc.digest()))
    }
}

/// A fresh key and a signed Birth Certificate for it.
pub fn party(role: Role, name: &str) -> (SecretKey, BirthCertificate) {
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let fields = BcFields {
        version: VERSION,
        role,
        name: name.into(),
        endpoints: vec![format!(
            "https://{}.milagro.test",
            name.to_lowercase().replace(' ', "-")
        )],
        created: 1_750_000_000,
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
        keys: PurposeKeys::derive(role, &key).unwrap(),
    };
    let bc = BirthCertificate::sign(fields, &key).unwrap();
    (key, bc)
}

impl TestNode {
    /// Starts a node whose data directory survives it (`datadir`), with extra `bitcoind`
    /// arguments; mines 101 blocks only on a fresh chain. Dropping it stops the node
    /// cleanly, and a later call on the same `datadir` brings the same chain back (on
    /// another RPC port, with a new cookie in the same file).
    pub fn start_persistent(datadir: &std::path::Path, args: &[&str]) -> Self {
        let exe = milagro_regtest::bitcoind_exe()
            .expect("a bitcoind for the tests (installed on first use)");
        let mut conf = bitcoind::Conf::default();
        conf.args.extend(milagro_regtest::NODE_ARGS);
        conf.args.extend(args);
        conf.staticdir = Some(datadir.to_path_buf());
        let bitcoind = bitcoind::BitcoinD::with_conf(&exe, &conf).expect("bitcoind starts");
        let rpc = BitcoindRpc::with_cookie(bitcoind.rpc_url(), &bitcoind.params.cookie_file);
        let miner = rpc.wallet_new_address().unwrap();
        if rpc.tip().unwrap().height < 101 {
            rpc.generate_to_address(101, &miner).unwrap();
        }
        Self {
            bitcoind,
            rpc,
            miner,
        }
    }

    /// The node's RPC socket address.
    pub fn rpc_socket(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::V4(self.bitcoind.params.rpc_socket)
    }
}

/// A TCP relay on 127.0.0.1 in front of a node's RPC port: [`TcpRelay::cut`] makes the
/// node unreachable under an unchanged URL (connections refused-and-closed, open ones
/// shut), and [`TcpRelay::forward_to`] brings it back, possibly as another process.
pub struct TcpRelay {
    addr: std::net::SocketAddr,
    shared: std::sync::Arc<RelayShared>,
}

#[derive(Default)]
struct RelayShared {
    target: std::sync::Mutex<Option<std::net::SocketAddr>>,
    open: std::sync::Mutex<Vec<std::net::TcpStream>>,
    stopped: std::sync::atomic::AtomicBool,
}

impl TcpRelay {
    /// Starts relaying to `target`.
    pub fn start(target: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = std::sync::Arc::new(RelayShared::default());
        *shared.target.lock().unwrap() = Some(target);
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let target = *accepting.target.lock().unwrap();
                let Some(server) = target.and_then(|t| std::net::TcpStream::connect(t).ok()) else {
                    continue; // dropped: the client sees the connection closed
                };
                let mut open = accepting.open.lock().unwrap();
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                open.extend([client, server]);
            }
        });
        Self { addr, shared }
    }

    /// `http://` and the relay's address: the URL to give instead of the node's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Refuses new connections and shuts the open ones.
    pub fn cut(&self) {
        *self.shared.target.lock().unwrap() = None;
        for stream in self.shared.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Relays new connections to `target`.
    pub fn forward_to(&self, target: std::net::SocketAddr) {
        *self.shared.target.lock().unwrap() = Some(target);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.cut();
        self.shared
            .stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// The configuration of a TBS for tests: listens on 127.0.0.1 port 0, polls every 50 ms
/// and backs off to at most 400 ms while the node fails.
pub fn tbs_config(rpc_url: &str, cookie: &std::path::Path, state_dir: &std::path::Path) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
public_url = "https://tbs.milagro.test"
name = "Test TBS"
state_dir = {state_dir:?}

[node]
rpc_url = {rpc_url:?}
rpc_cookie = {cookie:?}
network = "regtest"

[sync]
poll_interval_ms = 50
max_backoff_ms = 400
"#
    )
}

/// A blocking JSON client of one TBS.
pub struct Api {
    base: String,
    client: reqwest::blocking::Client,
    document: Option<&'static str>,
}

impl Api {
    /// A client of the TBS at `base` (e.g. `http://127.0.0.1:PORT`).
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_outbound(base, &milagro_http_client::Outbound::system().unwrap())
    }

    /// A client of the TBS at `base` under `outbound` (e.g. trusting a test CA).
    pub fn with_outbound(
        base: impl Into<String>,
        outbound: &milagro_http_client::Outbound,
    ) -> Self {
        let client = outbound
            .builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            base: base.into(),
            client,
            document: None,
        }
    }

    /// A client of a service at `base` whose JSON answers ([`Api::get`], [`Api::call`])
    /// are checked against its OpenAPI `document`
    /// ([`openapi::assert_documented_answer`]).
    pub fn documented(base: impl Into<String>, document: &'static str) -> Self {
        Self::new(base).with_document(document)
    }

    /// This client, checking every answer against `document` as [`Api::documented`] does.
    pub fn with_document(self, document: &'static str) -> Self {
        Self {
            document: Some(document),
            ..self
        }
    }

    fn check(&self, method: &str, path: &str, status: u16, body: &serde_json::Value) {
        if let Some(document) = self.document {
            openapi::assert_documented_answer(document, (method, path), status, body);
        }
    }

    /// Sends `method path_and_query`; returns the status, content type and body text.
    pub fn send(&self, method: &str, path_and_query: &str) -> (u16, String, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .client
            .request(method, format!("{}{path_and_query}", self.base))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_type, response.text().unwrap())
    }

    /// `GET path_and_query`, whose body must be JSON.
    pub fn get(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = self.send("GET", path_and_query);
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path_and_query}: {status}, not JSON ({e}): {body}"));
        self.check("GET", path_and_query, status, &json);
        (status, json)
    }

    /// `GET path_and_query`, which must answer 200 with JSON.
    pub fn ok(&self, path_and_query: &str) -> serde_json::Value {
        let (status, json) = self.get(path_and_query);
        assert_eq!(status, 200, "GET {path_and_query}: {json}");
        json
    }

    /// `GET path_and_query`, which must answer 200 with the `milagro_wire` body `T`.
    pub fn read<T: serde::de::DeserializeOwned>(&self, path_and_query: &str) -> T {
        wire_body(&format!("GET {path_and_query}"), self.ok(path_and_query))
    }

    /// `method path` with an optional bearer token and the `milagro_wire` body `body`,
    /// which must answer `expected` with the `milagro_wire` body `T`.
    pub fn exchange<T: serde::de::DeserializeOwned>(
        &self,
        (method, path): (&str, &str),
        token: Option<&str>,
        body: &impl serde::Serialize,
        expected: u16,
    ) -> T {
        let body = serde_json::to_value(body).unwrap();
        let (status, json) = self.call(method, path, token, Some(body));
        assert_eq!(status, expected, "{method} {path}: {json}");
        wire_body(&format!("{method} {path}"), json)
    }
}

/// `json`, the answer to `what`, read as the `milagro_wire` type `T`.
pub fn wire_body<T: serde::de::DeserializeOwned>(what: &str, json: serde_json::Value) -> T {
    T::deserialize(&json)
        .unwrap_or_else(|e| panic!("{what}: not a {}: {e}: {json}", std::any::type_name::<T>()))
}

/// Polls `check` every 20 ms until it returns `Some`, failing the test after `timeout`.
pub fn wait_until<T>(
    what: &str,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The chain a PAT would build from a TBS: every header from `/v1/headers`, starting at
/// the regtest genesis header, which the client knows itself (it trusts nothing else the
/// TBS says: each further header must link to it and carry its proof of work).
pub fn spv_headers(api: &Api) -> milagro_anchor::proof::Headers {
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
    let mut headers = Vec::new();
    loop {
        let page: milagro_wire::tbs::registry::Headers =
            api.read(&format!("/v1/headers?from={}&count=2000", headers.len()));
        let page: Vec<bitcoin::block::Header> = page
            .headers
            .iter()
            .map(|h| bitcoin::consensus::encode::deserialize_hex(h).unwrap())
            .collect();
        let last_page = page.len() < 2000;
        headers.extend(page);
        if last_page {
            break;
        }
    }
    assert_eq!(
        headers.first(),
        Some(&genesis),
        "the TBS serves another chain"
    );
    milagro_anchor::proof::Headers::from_headers(bitcoin::Network::Regtest, 0, headers).unwrap()
}

impl Api {
    /// Sends `method path` with an optional bearer token and JSON body; returns the status
    /// and the JSON answer (`null` for an empty body).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{path}: {status}, not JSON ({e}): {text}"))
        };
        self.check(method.as_str(), path, status, &json);
        (status, json)
    }
}
