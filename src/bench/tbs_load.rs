//! Enrolments over HTTP at a given concurrency, and the I/O of one enrolment alone.
//!
//! A device here is the raw protocol of `docs/enrolment.md` (no `pat-client` state, no
//! SPV): its key, self-signed `pat` certificate and sealed [`EnrolmentRequest`] are made
//! before the clock starts; timed is `POST /v1/enrolments` → 200 with the sealed offer →
//! [`OfferTerms::open_checked`] and sign → [`SignedAnchor`] sealed →
//! `POST /v1/enrolments/signed` → 202. Each worker thread has its own blocking HTTP client
//! (keep-alive) and takes the next device until none is left.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bitcoin::OutPoint;
use milagro_anchor::anchor_offer::{AnchorOffer, OfferTerms};
use milagro_anchor::anchor_tx::{p2wpkh_script, single_anchor_funding, FundingUtxo};
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::envelope::{InstructionKey, SealedOffer};
use milagro_anchor::funding_pool::{
    build_device_payment, build_fan_out, fan_out_cost, MAX_FAN_OUT_COINS,
};
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_registry::chain::ChainSource;
use milagro_wire::tbs::enrolment::{EnrolmentProgress, EnrolmentStage, SealedBody};
use rand_core::OsRng;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;

use super::stats::{latency, rate, Latency};
use super::tbs_world::{party, unix_now, TbsWorld, GROUP, TENANT};

/// A device ready to enrol: its key and certificate, and its sealed request as JSON.
pub struct Device {
    key: SecretKey,
    bc: BirthCertificate,
    instruction_key: InstructionKey,
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
            let instruction_key = InstructionKey::generate(&mut OsRng);
            let request = EnrolmentRequest::new(
                &mut OsRng,
                &key,
                bc.clone(),
                instruction_key.clone(),
                EnrolmentCredential::issue(maker, TENANT, GROUP, &key.public_key())?,
                tbs,
                unix_now(),
            )?;
            let request_body = serde_json::to_string(&SealedBody {
                envelope: request.seal(&mut OsRng, tbs)?.to_base64(),
            })?;
            Ok(Device {
                key,
                bc,
                instruction_key,
                request_body,
            })
        })
        .collect()
}

/// Enrols one device with the TBS of envelope key `tbs` and anchored key `anchored`
/// (which sealed the offer); returns its latency.
fn enrol(
    client: &reqwest::blocking::Client,
    url: &str,
    (tbs, anchored): &(PublicKey, PublicKey),
    device: &Device,
) -> Result<Duration> {
    let start = Instant::now();
    let answer = post(
        client,
        &format!("{url}/v1/enrolments"),
        device.request_body.clone(),
        200,
    )?;
    let EnrolmentStage::Offered { offer } = answer.stage else {
        bail!("not offered: {:?}", answer.stage);
    };
    let sealed = SealedOffer::from_base64(&offer)?;
    let offer = OfferTerms::open_checked(
        &device.instruction_key,
        anchored,
        &device.bc,
        &sealed,
        unix_now(),
    )?;
    let signed = SignedAnchor {
        device: device.key.public_key(),
        tx: offer.sign(&device.key)?,
    };
    let body = serde_json::to_string(&SealedBody {
        envelope: signed.seal(&mut OsRng, tbs)?.to_base64(),
    })?;
    let answer = post(client, &format!("{url}/v1/enrolments/signed"), body, 202)?;
    ensure!(
        matches!(answer.stage, EnrolmentStage::Broadcast { .. }),
        "not broadcast: {:?}",
        answer.stage
    );
    Ok(start.elapsed())
}

/// `POST url` with `body`, which must answer `expected` with the TBS's progress.
fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    body: String,
    expected: u16,
) -> Result<EnrolmentProgress> {
    let response = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().with_context(|| format!("POST {url}"))?;
    ensure!(status == expected, "POST {url} answered {status}: {text}");
    serde_json::from_str(&text).with_context(|| format!("POST {url} answered {text}"))
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
            let (url, tbs) = (world.url.clone(), (world.tbs_key, world.anchored_key));
            std::thread::spawn(move || -> Result<Vec<f64>> {
                let client = crate::cli::http_builder()?
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

/// The I/O one enrolment makes besides HTTP, each call timed alone.
#[derive(Debug, Clone, Serialize)]
pub struct IoCosts {
    /// `BitcoindRpc::submit_package` of a pool coin's payment to a fresh device key and
    /// the device-signed anchor spending it: the one node call of an enrolment (the
    /// signed-anchor handler's; the offer makes none).
    pub submit_package: Latency,
    /// Writing 256 bytes to a file and `fsync`ing it, in the TBS's state directory: the
    /// floor of one sled flush.
    pub fsync: Latency,
    /// Sled flushes per enrolment (offer and reservation, nonce, broadcast, audit log).
    pub flushes_per_enrolment: usize,
    /// The p50s of the node call and the flushes: the I/O of one enrolment.
    pub sum_us: f64,
}

/// Times `calls` packages as the TBS submits them (after `calls / 10` untimed ones; a
/// block mined, untimed, every [`ENROLMENTS_PER_BLOCK`]), each spending a confirmed coin
/// of a pool key of this function's own, then `calls` file syncs in `dir`.
pub fn io_costs(world: &TbsWorld, calls: usize, dir: &Path) -> Result<IoCosts> {
    let calls = calls.max(1);
    let rounds = calls + calls / 10;
    let pool = SecretKey::generate(&mut OsRng);
    let coins = pool_coins(world, &pool, rounds)?;
    let change = p2wpkh_script(&pool.public_key());
    let amount = single_anchor_funding(world.fee_rate).context("fee rate overflow")?;
    let mut samples = Vec::with_capacity(calls);
    for (round, coin) in coins.iter().enumerate() {
        if round > 0 && round.is_multiple_of(ENROLMENTS_PER_BLOCK) {
            world.mine()?;
        }
        let (key, bc) = party(Role::Pat, "bench payee", "")?;
        let payment = build_device_payment(&pool, coin, &key.public_key(), world.fee_rate)?;
        let funding = FundingUtxo {
            outpoint: OutPoint::new(payment.compute_txid(), 0),
            value: amount,
        };
        let anchor =
            AnchorOffer::build(&bc, &funding, change.clone(), world.fee_rate)?.sign(&key)?;
        let start = Instant::now();
        let accepted = world.node.submit_package(&[&payment, &anchor])?;
        let elapsed = start.elapsed();
        ensure!(accepted, "the node refused the package of round {round}");
        if round >= calls / 10 {
            samples.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    let submit_package = summarise(samples);
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
    let sum_us = submit_package.p50_us + flushes_per_enrolment as f64 * fsync.p50_us;
    Ok(IoCosts {
        submit_package,
        fsync,
        flushes_per_enrolment,
        sum_us,
    })
}

/// `count` confirmed coins of `pool`, each worth a pool coin: the wallet pays `pool` for
/// fan-outs (untimed), as the TBS refills its own pool.
fn pool_coins(world: &TbsWorld, pool: &SecretKey, count: usize) -> Result<Vec<FundingUtxo>> {
    let script = p2wpkh_script(&pool.public_key());
    let mut coins = Vec::with_capacity(count);
    while coins.len() < count {
        let batch = (count - coins.len()).min(MAX_FAN_OUT_COINS);
        let cost = fan_out_cost(batch, world.fee_rate).context("fee rate overflow")?;
        let (paid, vout) = world.node.wallet_pay(&script, cost)?;
        let input = FundingUtxo {
            outpoint: OutPoint::new(paid.compute_txid(), vout),
            value: cost,
        };
        let fan_out = build_fan_out(pool, &input, batch, world.fee_rate)?;
        world.node.broadcast(&fan_out)?;
        let txid = fan_out.compute_txid();
        coins.extend(
            fan_out
                .output
                .iter()
                .enumerate()
                .map(|(vout, out)| FundingUtxo {
                    outpoint: OutPoint::new(txid, vout as u32),
                    value: out.value,
                }),
        );
    }
    world.mine()?;
    Ok(coins)
}
