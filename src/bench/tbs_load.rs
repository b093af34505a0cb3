//! Enrolments over HTTP at a given concurrency, and the I/O of one enrolment alone.
//!
//! A device here is the raw protocol of `docs/enrolment.md` (no `pat-client` state, no
//! SPV): its key, self-signed `pat` certificate and sealed [`EnrolmentRequest`] are made
//! before the clock starts; timed is `POST /v1/enrolments` → 200 with the offer →
//! [`AnchorOffer::check`] and sign → [`SignedAnchor`] sealed → `POST /v1/enrolments/signed`
//! → 202. Each worker thread has its own blocking HTTP client (keep-alive) and takes the
//! next device until none is left.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bitcoin::OutPoint;
use milagro_anchor::anchor_offer::AnchorOffer;
use milagro_anchor::anchor_tx::{p2wpkh_script, FundingUtxo};
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::envelope::InstructionKey;
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_registry::chain::ChainSource;
use rand_core::OsRng;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde_json::{json, Value};

use super::stats::{latency, rate, Latency};
use super::tbs_world::{party, unix_now, TbsWorld, GROUP, TENANT};

/// A device ready to enrol: its key and certificate, and its sealed request as JSON.
pub struct Device {
    key: SecretKey,
    bc: BirthCertificate,
    request_body: String,
}

/// One concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Worker threads, each with its own HTTP client.
    pub concurrency: usize,
    /// Enrolments completed.
    pub enrolments: usize,
    /// Confirmed coins in the TBS's wallet when the level started.
    pub wallet_coins: usize,
    /// From the first request to the last answer.
    pub wall_s: f64,
    /// `enrolments / wall_s`.
    pub enrolments_per_s: f64,
    /// Per-enrolment latency, first POST to the 202 of the second.
    pub latency: Latency,
}

/// Makes `count` devices whose requests, with a credential `maker` signed, are sealed to
/// `tbs` (setup, not timed).
pub fn devices(count: usize, tbs: &PublicKey, maker: &SecretKey) -> Result<Vec<Device>> {
    (0..count)
        .map(|i| {
            let (key, bc) = party(Role::Pat, &format!("bench device {i}"), "")?;
            let request = EnrolmentRequest::new(
                &mut OsRng,
                &key,
                bc.clone(),
                InstructionKey::generate(&mut OsRng),
                EnrolmentCredential::issue(maker, TENANT, GROUP, &key.public_key())?,
                tbs,
                unix_now(),
            )?;
            let request_body = json!({ "envelope": request.seal(&mut OsRng, tbs)? }).to_string();
            Ok(Device {
                key,
                bc,
                request_body,
            })
        })
        .collect()
}

/// Enrols one device; returns its latency.
fn enrol(
    client: &reqwest::blocking::Client,
    url: &str,
    tbs: &PublicKey,
    device: &Device,
) -> Result<Duration> {
    let start = Instant::now();
    let answer = post(
        client,
        &format!("{url}/v1/enrolments"),
        device.request_body.clone(),
        200,
    )?;
    ensure!(answer["status"] == "offered", "not offered: {answer}");
    let psbt = STANDARD.decode(answer["psbt"].as_str().context("no psbt in the offer")?)?;
    let offer = AnchorOffer::check(&psbt, &device.bc)?;
    let signed = SignedAnchor {
        device: device.key.public_key(),
        tx: offer.sign(&device.key)?,
    };
    let body = json!({ "envelope": signed.seal(&mut OsRng, tbs)? }).to_string();
    let answer = post(client, &format!("{url}/v1/enrolments/signed"), body, 202)?;
    ensure!(answer["status"] == "broadcast", "not broadcast: {answer}");
    Ok(start.elapsed())
}

fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    body: String,
    expected: u16,
) -> Result<Value> {
    let response = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let answer: Value = response.json().unwrap_or(Value::Null);
    ensure!(status == expected, "POST {url} answered {status}: {answer}");
    Ok(answer)
}

/// Enrolments between two blocks. The node's wallet refuses to fund a payment once the
/// mempool holds more than 500 unconfirmed transactions of its own (`sendtoaddress` fails
/// with "map::at": bitcoin/bitcoin#29711, the bump-fee calculation's 500-transaction
/// cutoff), and each enrolment leaves two (the payment, and the anchor paying change to
/// the wallet): the TBS cannot offer more than about 250 enrolments per block.
pub const ENROLMENTS_PER_BLOCK: usize = 200;

/// Enrols `devices` with `concurrency` workers, in rounds of [`ENROLMENTS_PER_BLOCK`] with
/// a block mined (untimed) between rounds; each round's clock starts once every worker has
/// its client.
pub fn run_level(world: &TbsWorld, devices: Vec<Device>, concurrency: usize) -> Result<Level> {
    let concurrency = concurrency.max(1);
    let wallet_coins = world.confirmed_coins()?;
    let mut left = devices;
    let mut samples = Vec::with_capacity(left.len());
    let mut wall_s = 0.0;
    while !left.is_empty() {
        if !samples.is_empty() {
            world.mine()?;
        }
        world.fill_pool(left.len().min(ENROLMENTS_PER_BLOCK))?;
        let rest = left.split_off(left.len().min(ENROLMENTS_PER_BLOCK));
        let (round_s, round) = run_round(world, left, concurrency)
            .with_context(|| format!("at concurrency {concurrency}"))?;
        wall_s += round_s;
        samples.extend(round);
        left = rest;
    }
    Ok(Level {
        concurrency,
        enrolments: samples.len(),
        wallet_coins,
        wall_s,
        enrolments_per_s: rate(samples.len() as f64, wall_s),
        latency: summarise(samples),
    })
}

/// One round: its wall time (s) and each enrolment's latency (µs).
fn run_round(
    world: &TbsWorld,
    devices: Vec<Device>,
    concurrency: usize,
) -> Result<(f64, Vec<f64>)> {
    let devices = Arc::new(devices);
    let next = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(Barrier::new(concurrency + 1));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (devices, next, ready) = (devices.clone(), next.clone(), ready.clone());
            let (url, tbs) = (world.url.clone(), world.tbs_key);
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build();
                ready.wait();
                let client = client?;
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(device) = devices.get(i) else {
                        return Ok(samples);
                    };
                    samples.push(enrol(&client, &url, &tbs, device)?.as_secs_f64() * 1e6);
                }
            })
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    let mut samples = Vec::with_capacity(devices.len());
    for worker in workers {
        let done = worker
            .join()
            .map_err(|_| anyhow!("an enrolment worker panicked"))?;
        samples.extend(done?);
    }
    Ok((start.elapsed().as_secs_f64(), samples))
}

/// The distribution of already-timed samples (µs), as [`latency`] reports it.
fn summarise(mut samples: Vec<f64>) -> Latency {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let index = ((samples.len().saturating_sub(1)) as f64 * q).round() as usize;
        samples.get(index).copied().unwrap_or_default()
    };
    let mean_us = if samples.is_empty() {
        0.0
    } else {
        samples.iter().sum::<f64>() / samples.len() as f64
    };
    Latency {
        calls: samples.len(),
        min_us: at(0.0),
        p50_us: at(0.5),
        p90_us: at(0.9),
        p99_us: at(0.99),
        mean_us,
        ops_per_s: rate(1.0, mean_us / 1e6),
    }
}

/// The I/O one enrolment makes besides HTTP, each call timed alone, in the TBS's order.
#[derive(Debug, Clone, Serialize)]
pub struct IoCosts {
    /// Transactions in the wallet when the timing started.
    pub wallet_txs: u64,
    /// Unspent outputs in the wallet then.
    pub wallet_unspent: usize,
    /// `BitcoindRpc::wallet_pay` of the TBS's payment amount to a fresh device key
    /// (`getblockchaininfo`, `sendtoaddress`, `gettransaction`): the offer's payment.
    pub wallet_pay: Latency,
    /// `BitcoindRpc::wallet_new_script` (`getnewaddress`, `getblockchaininfo`): the
    /// offer's change address.
    pub new_address: Latency,
    /// `sendrawtransaction` of the payment, already in the mempool: the signed-anchor
    /// handler sends it again before the anchor.
    pub resend_payment: Latency,
    /// `sendrawtransaction` of the device-signed anchoring transaction.
    pub broadcast_anchor: Latency,
    /// Writing 256 bytes to a file and `fsync`ing it, in the TBS's state directory: the
    /// floor of one sled flush.
    pub fsync: Latency,
    /// Sled flushes per enrolment (nonce, offer, broadcast, audit log).
    pub flushes_per_enrolment: usize,
    /// The p50s of the four node calls plus the flushes: the I/O of one enrolment.
    pub sum_us: f64,
}

/// Times `calls` rounds of the enrolment's node calls (after `calls / 10` untimed
/// rounds; a block mined, untimed, every [`ENROLMENTS_PER_BLOCK`]), then `calls` file
/// syncs in `dir`.
pub fn io_costs(world: &TbsWorld, calls: usize, dir: &Path) -> Result<IoCosts> {
    let calls = calls.max(1);
    let (wallet_txs, wallet_unspent) = world.wallet_size()?;
    let mut samples: [Vec<f64>; 4] = Default::default();
    for round in 0..calls + calls / 10 {
        if round > 0 && round.is_multiple_of(ENROLMENTS_PER_BLOCK) {
            world.mine()?;
        }
        let (key, bc) = party(Role::Pat, "bench payee", "")?;
        let t0 = Instant::now();
        let (payment, vout) = world
            .node
            .wallet_pay(&p2wpkh_script(&key.public_key()), world.payment)?;
        let t1 = Instant::now();
        let change = world.node.wallet_new_script()?;
        let t2 = Instant::now();
        // As the TBS sends it: a refusal of a payment the mempool holds counts as sent.
        if let Err(error) = world.node.broadcast(&payment) {
            ensure!(world.node.in_mempool(&payment.compute_txid())?, error);
        }
        let t3 = Instant::now();
        let funding = FundingUtxo {
            outpoint: OutPoint::new(payment.compute_txid(), vout),
            value: world.payment,
        };
        let anchor = AnchorOffer::build(&bc, &funding, change, world.fee_rate)?.sign(&key)?;
        let t4 = Instant::now();
        world.node.broadcast(&anchor)?;
        let t5 = Instant::now();
        let us = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1e6;
        let times = [us(t0, t1), us(t1, t2), us(t2, t3), us(t4, t5)];
        if round >= calls / 10 {
            for (sample, time) in samples.iter_mut().zip(times) {
                sample.push(time);
            }
        }
    }
    let [wallet_pay, new_address, resend_payment, broadcast_anchor] = samples.map(summarise);
    let path = dir.join("fsync-probe");
    let block = [0x5au8; 256];
    let fsync = latency(calls, || {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.write_all(&block)?;
        file.sync_data()?;
        Ok(())
    })?;
    std::fs::remove_file(&path)?;
    let flushes_per_enrolment = 4;
    let sum_us = wallet_pay.p50_us
        + new_address.p50_us
        + resend_payment.p50_us
        + broadcast_anchor.p50_us
        + flushes_per_enrolment as f64 * fsync.p50_us;
    Ok(IoCosts {
        wallet_txs,
        wallet_unspent,
        wallet_pay,
        new_address,
        resend_payment,
        broadcast_anchor,
        fsync,
        flushes_per_enrolment,
        sum_us,
    })
}

/// The wallet payment alone on a wallet of a given size.
#[derive(Debug, Clone, Serialize)]
pub struct WalletPay {
    /// Transactions in the wallet.
    pub wallet_txs: u64,
    /// Unspent outputs in the wallet.
    pub wallet_unspent: usize,
    /// `BitcoindRpc::wallet_pay`, as in [`IoCosts::wallet_pay`].
    pub wallet_pay: Latency,
}

/// Times `calls` wallet payments (at most [`ENROLMENTS_PER_BLOCK`], warm-up included) on
/// the wallet as it is.
pub fn wallet_pay(world: &TbsWorld, calls: usize) -> Result<WalletPay> {
    let (wallet_txs, wallet_unspent) = world.wallet_size()?;
    let calls = calls.clamp(1, ENROLMENTS_PER_BLOCK * 10 / 11);
    let wallet_pay = latency(calls, || {
        let script = p2wpkh_script(&SecretKey::generate(&mut OsRng).public_key());
        world.node.wallet_pay(&script, world.payment)?;
        Ok(())
    })?;
    Ok(WalletPay {
        wallet_txs,
        wallet_unspent,
        wallet_pay,
    })
}
