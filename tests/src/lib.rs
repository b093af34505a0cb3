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
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainSource;

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
        conf.args.push("-fallbackfee=0.0001");
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
    };
    let bc = BirthCertificate::sign(fields, &key).unwrap();
    (key, bc)
}
