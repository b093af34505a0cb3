//! The benchmarks behind `milagro bench`, one module per thing measured.
//!
//! Every figure is printed next to the raw cost that bounds it (the node serving blocks,
//! one ECDSA verify, one SHA-256), so a regression shows as a ratio moving, whatever the
//! machine. Timing is plain [`std::time::Instant`]; see [`stats`] for how runs are repeated
//! and summarised.
//!
//! - [`fixture`]: the regtest chain the registry benchmarks read (setup, timed apart;
//!   [`txs`] builds the transactions the wallet cannot);
//! - [`sync`]: registry sync vs `bitcoind` alone serving the same blocks over REST, with
//!   the extract and store parts ([`fetch`] replays the follower's reads, [`raw_http`] asks
//!   `bitcoind` alone, [`timed_store`] finds the store's share of a real sync, and
//!   [`cli_sync`] runs `milagro registry sync` as its own process for its peak memory);
//! - [`bc_verify`]: Birth Certificate verify latency vs a bare ECDSA verify;
//! - [`headers`]: consensus validation of 2,016 headers vs their raw SHA-256d;
//! - [`audit`]: audit log append and proof rates vs a bare SHA-256 (no node needed);
//! - [`tbs`]: TBS enrolments/s and latency under load vs the node calls and raw
//!   cryptography of one enrolment, and batch anchoring capacity ([`tbs_world`] sets up
//!   the node and TBS, [`tbs_load`] drives devices, [`tbs_crypto`] and [`tbs_batch`]);
//! - [`kex`]: Milagro TLS handshakes (YAK and ECDH over Bitcoin) vs plain rustls TLS 1.3
//!   ([`kex_plain`]) and the raw cryptography the Milagro handshake adds;
//! - [`levels`]: load at several concurrency levels, shared by [`kex`], [`mfa`] and
//!   [`token`];
//! - [`mfa`]: D-TA shares/s and authentication-server logins/s through their APIs vs raw
//!   G1/G2 multiplications and pairings;
//! - [`mpin`]: M-Pin share issuance, PIN extraction and login vs raw G1/G2
//!   multiplications and pairings (no node needed);
//! - [`token`]: code exchanges/s at the IdP's token endpoint vs `oidc-provider` (npm)
//!   under one load driver ([`token_load`]; [`token_op`] runs the provider), next to one
//!   ES256 signature, client-secret check and durable token write;
//! - [`electrum`]: one cross-check and transaction confirmation against a live ElectrumX vs
//!   the same hashing done locally.

pub mod audit;
pub mod bc_verify;
pub mod cli_sync;
pub mod electrum;
pub mod fetch;
pub mod fixture;
pub mod headers;
pub mod kex;
pub mod kex_plain;
pub mod levels;
pub mod mfa;
pub mod mpin;
pub mod raw_http;
pub mod signin;
pub mod stats;
pub mod sync;
pub mod tbs;
pub mod tbs_batch;
pub mod tbs_crypto;
pub mod tbs_load;
pub mod tbs_world;
pub mod timed_store;
pub mod token;
pub mod token_load;
pub mod token_op;
pub mod txs;

/// A regtest node started for one benchmark (its data in a temporary directory) with 101
/// blocks mined to `miner`, so one coinbase is spendable; stopped when dropped.
pub struct BenchNode {
    /// The node process.
    pub bitcoind: bitcoind::BitcoinD,
    /// Its RPC client.
    pub rpc: milagro_registry::bitcoind::BitcoindRpc,
    /// The wallet address the blocks were mined to.
    pub miner: String,
}

impl BenchNode {
    /// Starts the node and matures one coinbase.
    pub fn start() -> anyhow::Result<Self> {
        use anyhow::Context as _;
        use milagro_regtest::RegtestControls as _;
        let exe = milagro_regtest::bitcoind_exe()?;
        let mut conf = bitcoind::Conf::default();
        conf.args.extend(milagro_regtest::NODE_ARGS);
        conf.staticdir = None;
        let bitcoind =
            bitcoind::BitcoinD::with_conf(&exe, &conf).context("cannot start bitcoind")?;
        let rpc = milagro_registry::bitcoind::BitcoindRpc::with_cookie(
            bitcoind.rpc_url(),
            &bitcoind.params.cookie_file,
        );
        let miner = rpc.wallet_new_address()?;
        rpc.generate_to_address(101, &miner)?;
        Ok(Self {
            bitcoind,
            rpc,
            miner,
        })
    }
}
