//! The TBS the enrolment benchmark loads: a private regtest node with a wallet of many
//! confirmed coins, an in-process TBS on loopback with its own anchor confirmed, tenant
//! `bench` and a direct-mode group `load` whose D-TA is anchored.
//!
//! Set up as `milagro demo` sets up its TBS (same configuration, same admin API calls),
//! except that the node's wallet holds `coins` confirmed outputs, and so does each fresh
//! wallet that replaces it ([`TbsWorld::fresh_wallet`]): the wallet pays the TBS's funding
//! pool refills (and the benchmark's own pool coins), each spending a confirmed coin; a
//! payment that found none would chain on unconfirmed change, which the mempool limits to
//! 25 ancestors. Devices are paid from the pool, never from the wallet.

use milagro_regtest::RegtestControls as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bitcoin::{Amount, FeeRate};
use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status, VERSION};
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::purpose_keys::PurposeKeys;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainSource;
use milagro_tbs::config::Config;
use milagro_tbs::tenants::model::ApiToken;
use milagro_tbs::{RunningTbs, Tbs};
use milagro_wire::service::{AnchorStatus, AnchoredBirthCertificate};
use milagro_wire::tbs::tenants::{
    CreatedTenant, EnrolmentMode, Group, GroupSpec, NewTenant, ServiceRef,
};
use rand_core::OsRng;
use serde_json::{json, Value};

use crate::demo::tbs::call;

/// The tenant the benchmark devices belong to.
pub const TENANT: &str = "bench";
/// Their device group (direct mode).
pub const GROUP: &str = "load";
/// Outputs per fan-out payment (`sendmany`).
const OUTPUTS_PER_FAN_OUT: usize = 500;
/// Coinbases mature before the fan-out (and the most fan-out rounds). Also keeps every
/// height above 121: the wallet may set a payment's lock time up to 100 blocks below the
/// tip (anti fee sniping), and Bitcoin Knots refuses to relay a transaction whose lock time
/// is 21 (`parasite-cat21`).
const MATURE_COINBASES: u32 = 30;
/// Value of each fan-out output: far above one enrolment payment.
/// Extra wallet coins when the TBS has a funding pool, whose refills the wallet pays.
const POOL_MARGIN_COINS: usize = 64;
const COIN: Amount = Amount::from_sat(100_000);
/// How long setup waits for the TBS to catch up.
const PATIENCE: Duration = Duration::from_secs(120);

/// A node and a TBS ready for enrolments. [`TbsWorld::stop`] stops both.
pub struct TbsWorld {
    /// The bench's own adapter to the node (not the TBS's).
    pub node: BitcoindRpc,
    /// A wallet address that receives mined coins.
    pub miner: String,
    /// The TBS's base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The TBS's envelope key (its certificate's `envelope` purpose key): what devices
    /// seal their envelopes to.
    pub tbs_key: PublicKey,
    /// The TBS's anchored key: the TBS seals offers and instructions as it.
    pub anchored_key: PublicKey,
    /// The device maker's enrolment key, listed on the group: it signs each bench
    /// device's credential.
    pub maker: SecretKey,
    /// The TBS's anchoring fee rate.
    pub fee_rate: FeeRate,
    /// Confirmed coins in the wallet after setup (at least `coins`).
    pub coins: usize,
    /// The node's one loaded wallet, which the TBS pays from.
    wallet: String,
    /// The setup wallet, which funds each fresh wallet.
    bank: String,
    wallets_made: usize,
    http: reqwest::blocking::Client,
    tbs: RunningTbs,
    bitcoind: bitcoind::BitcoinD,
}

impl TbsWorld {
    /// Starts the node (data in `dir/node`), funds the wallet with `coins` confirmed
    /// outputs, starts the TBS (state in `dir/tbs`) and creates the tenant and group.
    pub fn start(dir: &Path, coins: usize, pool: usize) -> Result<Self> {
        let exe = milagro_regtest::bitcoind_exe()?;
        let mut conf = bitcoind::Conf::default();
        conf.args.extend(milagro_regtest::NODE_ARGS);
        conf.staticdir = Some(dir.join("node"));
        let bitcoind =
            bitcoind::BitcoinD::with_conf(&exe, &conf).context("cannot start bitcoind")?;
        let cookie = bitcoind.params.cookie_file.clone();
        let node = BitcoindRpc::with_cookie(bitcoind.rpc_url(), &cookie);
        let miner = node.wallet_new_address()?;
        // Enough mature coinbases that no setup payment needs an unconfirmed coin.
        node.generate_to_address(100 + MATURE_COINBASES, &miner)?;
        // A D-TA for the group, anchored in the same block as the first fan-out.
        let (dta_key, dta) = party(Role::Dta, "Bench D-TA", "https://dta.bench.milagro.test")?;
        crate::cli::bc::anchor_bc(&node, &dta, &dta_key, FeeRate::from_sat_per_vb_u32(2))?;
        // The TBS's pool refills spend wallet coins too (one of the mature coinbases,
        // usually, but whatever coin selection picks): keep a margin.
        let wanted = coins + if pool > 0 { POOL_MARGIN_COINS } else { 0 };
        for _ in 0..MATURE_COINBASES {
            let unspent: Vec<Value> = node.call("listunspent", &[json!(1)])?;
            if unspent.len() >= wanted {
                break;
            }
            fan_out(&node, wanted - unspent.len())?;
            node.generate_to_address(1, &miner)?;
        }

        let admin = ApiToken::generate(&mut OsRng);
        let config = Config::parse(&format!(
            r#"
listen = "127.0.0.1:0"
public_url = "https://tbs.bench.milagro.test"
name = "Milagro bench TBS"
state_dir = {state_dir:?}

[node]
rpc_url = {rpc_url:?}
rpc_cookie = {cookie:?}
network = "regtest"

[anchoring]
funding_pool = {pool}

# The bench's devices all come from this process's address and this one tenant.
[enrolment]
requests_per_minute_per_address = 4000000000
requests_per_minute_per_tenant = 4000000000
max_pending_offers_per_tenant = 1000000

[admin]
token_sha256 = "{token}"
"#,
            state_dir = dir.join("tbs"),
            rpc_url = bitcoind.rpc_url(),
            token = admin.hash()
        ))?;
        let fee_rate = config.party.fee_rate;
        let tbs = Tbs::start(config)?;
        let tbs_key = tbs.state().identity.envelope_key().public_key();
        let anchored_key = tbs.state().identity.public_key();
        let http = crate::cli::http_builder()?
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut world = Self {
            node,
            miner,
            url: tbs.local_url(),
            tbs_key,
            anchored_key,
            maker: SecretKey::generate(&mut OsRng),
            fee_rate,
            coins,
            wallet: String::new(),
            bank: String::new(),
            wallets_made: 0,
            http,
            tbs,
            bitcoind,
        };
        wait_for("the TBS anchor to be broadcast", || {
            Ok(matches!(world.status()?.anchor, AnchorStatus::Pending { .. }).then_some(()))
        })?;
        world.mine()?;
        wait_for("the TBS certificate to be served", || {
            let served = world.http.get(format!(
                "{}/.well-known/milagro/birth-certificate",
                world.url
            ));
            Ok(call::<AnchoredBirthCertificate>(served).ok())
        })?;
        let loaded: Vec<String> = world.node.call("listwallets", &[])?;
        world.wallet = loaded.first().context("the node has no wallet")?.clone();
        world.bank = world.wallet.clone();
        world.mine()?;
        world.coins = world.confirmed_coins()?;
        ensure!(
            world.coins >= coins,
            "the wallet holds {} confirmed coins, {coins} asked for",
            world.coins
        );

        let tenant = NewTenant {
            id: TENANT.into(),
            name: "Bench Devices".into(),
        };
        let created: CreatedTenant = call(
            world
                .http
                .post(format!("{}/v1/admin/tenants", world.url))
                .bearer_auth(admin.reveal())
                .json(&tenant),
        )?;
        let group = GroupSpec {
            name: "Load".into(),
            mode: EnrolmentMode::Direct,
            dtas: vec![ServiceRef {
                birth_certificate: dta.digest(),
                url: "https://dta.bench.milagro.test".into(),
            }],
            idp: None,
            enrolment_keys: vec![world.maker.public_key().to_string()],
        };
        let _: Group = call(
            world
                .http
                .put(format!("{}/v1/tenants/{TENANT}/groups/{GROUP}", world.url))
                .bearer_auth(&created.token)
                .json(&group),
        )?;
        Ok(world)
    }

    /// With a funding pool, mines until at least `needed` of its coins are free (the
    /// TBS refills it when under a quarter, and releases a fan-out once it confirms), so
    /// that a round is paid from the pool, as a TBS in steady state pays.
    pub fn fill_pool(&self, needed: usize) -> Result<()> {
        let size = self.status()?.funding_pool.size;
        let needed = u64::try_from(needed).unwrap_or(u64::MAX).min(size);
        wait_for("the funding pool to refill", || {
            if self.status()?.funding_pool.free >= needed {
                return Ok(Some(()));
            }
            self.mine()?;
            Ok(None)
        })
    }

    /// Mines one block (the mempool included) and waits until the TBS has indexed it, so
    /// its chain loop is idle again before anything is timed.
    pub fn mine(&self) -> Result<()> {
        self.node.generate_to_address(1, &self.miner)?;
        let tip = self.node.tip()?.hash.to_string();
        wait_for("the TBS index to reach the tip", || {
            Ok((self.status()?.index_hash.as_ref() == Some(&tip)).then_some(()))
        })
    }

    /// Replaces the node's wallet by a fresh one holding `coins` confirmed coins, so that
    /// every level starts from the same wallet (its payments slow down as its transactions
    /// and unspent outputs pile up). The coins come from the setup wallet (loaded for the
    /// payment);
    /// then the old wallet is unloaded. The TBS calls the node's only loaded wallet, so it
    /// follows; it makes no wallet call while idle.
    pub fn fresh_wallet(&mut self) -> Result<()> {
        self.wallets_made += 1;
        let name = format!("bench-{}", self.wallets_made);
        let _: Value = self.node.call("createwallet", &[json!(name)])?;
        if self.wallet != self.bank {
            let _: Value = self.node.call("loadwallet", &[json!(self.bank)])?;
        }
        let bank = self.node.for_wallet(&self.bank);
        let addresses = self
            .node
            .for_wallet(&name)
            .batch::<String>("getnewaddress", &vec![Vec::new(); self.coins])?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        for chunk in addresses.chunks(OUTPUTS_PER_FAN_OUT) {
            let outputs = chunk
                .iter()
                .map(|address| (address.clone(), json!(COIN.to_btc())))
                .collect();
            let _txid: String = bank.call("sendmany", &[json!(""), Value::Object(outputs)])?;
        }
        for unload in [&self.wallet, &self.bank] {
            if self
                .node
                .call::<Vec<String>>("listwallets", &[])?
                .contains(unload)
            {
                let _: Value = self.node.call("unloadwallet", &[json!(unload)])?;
            }
        }
        self.wallet = name;
        self.mine()
    }

    /// Confirmed outputs of the node's wallet.
    pub fn confirmed_coins(&self) -> Result<usize> {
        let unspent: Vec<Value> = self.node.call("listunspent", &[json!(1)])?;
        Ok(unspent.len())
    }

    /// Stops the TBS (requests in flight finish), then the node.
    pub fn stop(self) -> Result<()> {
        let Self {
            tbs, mut bitcoind, ..
        } = self;
        tbs.stop();
        bitcoind.stop().context("cannot stop bitcoind")?;
        Ok(())
    }

    /// The TBS's `/v1/status`.
    fn status(&self) -> Result<milagro_wire::tbs::registry::Status> {
        call(self.http.get(format!("{}/v1/status", self.url)))
    }
}

/// Splits wallet coins into `coins` outputs of [`COIN`] to the wallet's own addresses
/// (confirmed by the caller's next block). A payment that finds no confirmed coin may
/// spend several of these unconfirmed outputs, so the caller counts and tops up.
fn fan_out(node: &BitcoindRpc, coins: usize) -> Result<()> {
    let mut left = coins;
    while left > 0 {
        let count = left.min(OUTPUTS_PER_FAN_OUT);
        let addresses = node.batch::<String>("getnewaddress", &vec![Vec::new(); count])?;
        let mut outputs = serde_json::Map::new();
        for address in addresses {
            outputs.insert(address?, json!(COIN.to_btc()));
        }
        let _txid: String = node.call("sendmany", &[json!(""), Value::Object(outputs)])?;
        left -= count;
    }
    Ok(())
}

/// A fresh key and its self-signed Birth Certificate.
pub fn party(role: Role, name: &str, endpoint: &str) -> Result<(SecretKey, BirthCertificate)> {
    let key = SecretKey::generate(&mut OsRng);
    let fields = BcFields {
        version: VERSION,
        role,
        name: name.into(),
        endpoints: if endpoint.is_empty() {
            Vec::new()
        } else {
            vec![endpoint.into()]
        },
        created: unix_now(),
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
        keys: PurposeKeys::derive(role, &key)?,
    };
    let bc = BirthCertificate::sign(fields, &key)?;
    Ok((key, bc))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        // A TBS still starting may refuse a poll: only the deadline counts.
        if let Ok(Some(value)) = check() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
