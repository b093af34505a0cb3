//! TBS enrolment throughput under load, next to the raw cryptography and node calls of
//! one enrolment, and batch anchoring capacity.
//!
//! - **Enrolment load** ([`super::tbs_load`]): a real TBS (in process, HTTP on loopback)
//!   on a private regtest node ([`super::tbs_world`]), enrolled into by raw-protocol
//!   devices at each concurrency level (worker threads, each with its own blocking HTTP
//!   client), `enrolments` devices per level. One enrolment's **latency** runs from the
//!   first POST to the 202 of the second (request → credential checked, a pool coin
//!   reserved, the offer sealed to the device → the device opens, checks and signs →
//!   signed anchor → payment and anchor submitted together); device keys, certificates and sealed requests are made
//!   before the clock starts. **Enrolments/s** is the devices of a level over its wall
//!   time; **saturation** is the level with the best rate. A level runs in rounds of at
//!   most [`ENROLMENTS_PER_BLOCK`](super::tbs_load::ENROLMENTS_PER_BLOCK), and a block is
//!   mined, off the clock, before each round (so every round starts with an empty mempool
//!   and the pool refilled, [`TbsWorld::fill_pool`]). Each level starts from a fresh
//!   wallet of the same coins ([`TbsWorld::fresh_wallet`]; the wallet only refills the
//!   pool), and a short untimed warm-up runs first. The devices run on the same two cores as the TBS and
//!   the node, so their own work (checking and signing the offer, sealing) is in the
//!   figures: it is what a client on this machine sees.
//! - **I/O per enrolment** ([`super::tbs_load::io_costs`]): the one node call an
//!   enrolment makes, called one at a time from this process between the warm-up and the
//!   first level: `submitpackage` of a pool coin's payment to the device and the
//!   device-signed anchor (the offer makes no node call: it reserves a pool coin in the
//!   TBS's own store); plus a 256-byte write and `fsync` in the TBS's state directory, the
//!   floor of each of its four sled flushes. Their **I/O sum** (p50s) is set against the
//!   wall time per enrolment too.
//! - **Cryptography** ([`super::tbs_crypto`]): single-threaded, after the node has
//!   stopped: the real opening calls and the bare primitives (ECDH with `k256`, AES-256-GCM
//!   decrypt of the same byte counts, ECDSA verify with libsecp256k1). Their **raw sum**
//!   (2 ECDH, 2 AES-GCM, 4 ECDSA verifies, 1 ECDSA sign) is set against the TBS's **wall time per
//!   enrolment at saturation** (one over the rate: what one enrolment costs the whole
//!   machine), and so is the **pure path** (every computation of the handlers, without
//!   storage, node or HTTP).
//! - **Batch capacity** ([`super::tbs_batch`]): no node. One batch root in one `OP_RETURN`
//!   anchors every member, so digests per anchor are bounded only by the TBS's memory and
//!   build time, both reported for `members` digests, with the membership proof's size and
//!   its make and verify times next to one SHA-256 of 64 bytes. The root's own anchor proof
//!   verify is `bench registry`'s BC verify figure.
//!
//! What dominates, measured (release build, this 2-core machine, with two other builds
//! running beside it, when this was written): neither the node nor the cryptography alone.
//! With enrolment credentials, pay-after-sign and sealed offers, a lone device enrols in
//! 9.0 ms p50 (13.8 ms p99, 106/s); at saturation (8 workers) about 136 enrolments/s,
//! 7.4 ms of the machine each. The one node call (`submitpackage` of payment and anchor)
//! is 0.83 ms p50 and the four flushes 0.6 ms: 1.4 ms of I/O (wall time 5.1× that); the
//! TBS's own computation is 0.73 ms (10×) and its raw cryptography 0.31 ms (2 ECDH, 4
//! ECDSA verifies, 1 ECDSA sign: 24×). The rest is HTTP, JSON and the devices' own work
//! on the same two cores. More workers barely help because node calls do not overlap: the
//! TBS sends every node call through one JSON-RPC connection (`BitcoindRpc` holds a lock
//! across each call). Within the cryptography, half of each envelope open is
//! `envelope::open` re-deriving the TBS's public key for its recipient check (a scalar
//! multiplication as costly as the ECDH itself).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::stats::{num, rate, Table};
use super::tbs_batch::{self, BatchReport};
use super::tbs_crypto::{self, CryptoReport};
use super::tbs_load::{self, IoCosts, Level};
use super::tbs_world::TbsWorld;

/// Untimed enrolments before the first level.
const WARM_UP: usize = 10;

/// What to measure.
#[derive(Debug, Clone, Serialize)]
pub struct TbsParams {
    /// Enrolments per concurrency level.
    pub enrolments: usize,
    /// The concurrency levels, in order.
    pub concurrency: Vec<usize>,
    /// Timed rounds of one enrolment's node calls.
    pub payments: usize,
    /// Members of the batch.
    pub members: usize,
    /// The TBS's funding pool size: coins per refill, and so the most offers waiting.
    pub pool: usize,
}

/// Everything `milagro bench tbs` measures.
#[derive(Debug, Clone, Serialize)]
pub struct TbsReport {
    /// Node start, wallet fan-out, TBS start and its anchor, tenant and group.
    pub setup_s: f64,
    /// Confirmed coins in the wallet after setup.
    pub wallet_coins: usize,
    /// One entry per concurrency level.
    pub levels: Vec<Level>,
    /// The level with the best rate.
    pub saturation_concurrency: usize,
    /// Its rate.
    pub saturation_enrolments_per_s: f64,
    /// One over that rate: the machine's time per enrolment at saturation, µs.
    pub saturation_wall_per_enrolment_us: f64,
    /// The I/O of one enrolment, each call alone.
    pub io: IoCosts,
    /// `saturation_wall_per_enrolment_us / io.sum_us`.
    pub wall_over_io_ratio: f64,
    /// The per-enrolment cryptography.
    pub crypto: CryptoReport,
    /// `saturation_wall_per_enrolment_us / crypto.raw_sum_us`.
    pub wall_over_raw_crypto_ratio: f64,
    /// `saturation_wall_per_enrolment_us / crypto.tbs_pure_path.p50_us`.
    pub wall_over_pure_path_ratio: f64,
    /// Batch anchoring capacity.
    pub batch: BatchReport,
}

/// Runs every measurement; node and TBS data live in `dir`.
pub fn measure(
    params: &TbsParams,
    runs: usize,
    calls: usize,
    dir: &Path,
    table: &mut Table,
) -> Result<TbsReport> {
    let start = Instant::now();
    // Every payment spends a confirmed coin, and its change is confirmed by the next block.
    let coins = tbs_load::ENROLMENTS_PER_BLOCK + 2 * WARM_UP;
    eprintln!("setup: a regtest node, a wallet of {coins} coins, a TBS with its anchor…");
    let mut world = TbsWorld::start(dir, coins, params.pool)?;
    let setup_s = start.elapsed().as_secs_f64();
    let wallet_coins = world.coins;
    eprintln!("setup took {} s", num(setup_s));

    tbs_load::run_level(
        &world,
        tbs_load::devices(WARM_UP, &world.tbs_key, &world.maker)?,
        1,
    )
    .context("warm-up")?;
    world.fresh_wallet()?;
    eprintln!(
        "timing {} rounds of an enrolment's node calls…",
        params.payments
    );
    let io = tbs_load::io_costs(&world, params.payments, dir)?;
    let mut levels = Vec::new();
    for &concurrency in &params.concurrency {
        world.fresh_wallet()?;
        let devices = tbs_load::devices(params.enrolments, &world.tbs_key, &world.maker)?;
        eprintln!(
            "enrolling {} devices at concurrency {concurrency}…",
            params.enrolments
        );
        levels.push(tbs_load::run_level(&world, devices, concurrency)?);
    }
    world.stop()?;

    eprintln!("timing the cryptography ({calls} calls each)…");
    let crypto = tbs_crypto::measure(calls)?;
    eprintln!("building a batch of {} members…", params.members);
    let batch = tbs_batch::measure(params.members, runs, calls)?;

    let saturation = levels
        .iter()
        .max_by(|a, b| a.enrolments_per_s.total_cmp(&b.enrolments_per_s))
        .context("no concurrency level")?;
    let wall_us = rate(1e6, saturation.enrolments_per_s);
    let report = TbsReport {
        setup_s,
        wallet_coins,
        saturation_concurrency: saturation.concurrency,
        saturation_enrolments_per_s: saturation.enrolments_per_s,
        saturation_wall_per_enrolment_us: wall_us,
        wall_over_io_ratio: rate(wall_us, io.sum_us),
        wall_over_raw_crypto_ratio: rate(wall_us, crypto.raw_sum_us),
        wall_over_pure_path_ratio: rate(wall_us, crypto.tbs_pure_path.p50_us),
        levels: levels.clone(),
        io,
        crypto,
        batch,
    };
    describe(&report, params, table);
    Ok(report)
}

fn ms(us: f64) -> String {
    num(us / 1e3)
}

fn describe(r: &TbsReport, params: &TbsParams, table: &mut Table) {
    table.section(&format!(
        "enrolment over HTTP on loopback ({} per level; first POST to the 202 of the second)",
        params.enrolments
    ));
    for level in &r.levels {
        let note = if level.concurrency == r.saturation_concurrency {
            "saturation"
        } else {
            ""
        };
        table.row(
            &format!("concurrency {}", level.concurrency),
            format!(
                "{}/s  p50 {} ms  p99 {} ms",
                num(level.enrolments_per_s),
                ms(level.latency.p50_us),
                ms(level.latency.p99_us)
            ),
            note,
        );
    }
    table.row(
        "wall time per enrolment",
        format!("{} µs", num(r.saturation_wall_per_enrolment_us)),
        "1 / enrolments/s at saturation",
    );

    table.section("an enrolment's I/O, each call alone");
    let io = &r.io;
    table.latency(
        "submitpackage (payment + anchor)",
        &io.submit_package,
        "signed: the one node call",
    );
    table.latency(
        "write + fsync 256 bytes",
        &io.fsync,
        format!("×{} sled flushes", io.flushes_per_enrolment),
    );
    table.row("I/O sum", format!("{} µs", num(io.sum_us)), "p50s");
    table.row(
        "wall time / I/O sum",
        format!("{}×", num(r.wall_over_io_ratio)),
        "",
    );

    table.section("TBS cryptography per enrolment (one thread)");
    let c = &r.crypto;
    table.latency("EnrolmentRequest::open", &c.request_open, "");
    table.latency("SignedAnchor::open", &c.signed_anchor_open, "");
    let bytes = |b: usize| format!("{b} bytes");
    table.latency(
        "envelope open (request)",
        &c.envelope_open_request,
        bytes(c.request_plaintext_bytes),
    );
    table.latency(
        "envelope open (signed anchor)",
        &c.envelope_open_signed_anchor,
        bytes(c.signed_anchor_plaintext_bytes),
    );
    table.latency("ECDH (k256)", &c.ecdh, "×2");
    table.latency(
        "public key from secret (k256)",
        &c.public_key_derivation,
        "inside each envelope open",
    );
    table.latency(
        "AES-256-GCM decrypt (request)",
        &c.aes_gcm_decrypt_request,
        bytes(c.request_plaintext_bytes),
    );
    table.latency(
        "AES-256-GCM decrypt (signed anchor)",
        &c.aes_gcm_decrypt_signed_anchor,
        bytes(c.signed_anchor_plaintext_bytes),
    );
    table.latency(
        "ECDSA verify (libsecp256k1)",
        &c.ecdsa_verify,
        format!("×{}", c.ecdsa_verifies_per_enrolment),
    );
    table.latency(
        "ECDSA sign (libsecp256k1)",
        &c.ecdsa_sign,
        "×1: the payment",
    );
    table.row(
        "raw sum",
        format!("{} µs", num(c.raw_sum_us)),
        "p50s: 2 ECDH + 2 AES-GCM + 4 ECDSA verify + 1 sign",
    );
    table.latency(
        "TBS pure path",
        &c.tbs_pure_path,
        "handlers' computation, no I/O",
    );
    table.row(
        "wall time / raw sum",
        format!("{}×", num(r.wall_over_raw_crypto_ratio)),
        "",
    );
    table.row(
        "wall time / pure path",
        format!("{}×", num(r.wall_over_pure_path_ratio)),
        "",
    );

    let b = &r.batch;
    table.section(&format!(
        "batch anchoring ({} members, one root per anchor)",
        b.members
    ));
    table.row(
        "Batch::build",
        format!(
            "best {} s  median {} s",
            num(b.build.best_s),
            num(b.build.median_s)
        ),
        format!("{}/s", num(b.build_members_per_s)),
    );
    table.row(
        "memory",
        format!("{} bytes/member", num(b.memory_bytes_per_member)),
        "resident, after build",
    );
    table.row(
        "membership proof",
        format!("{} bytes", b.proof_bytes),
        format!(
            "{} hashes; {} bytes as JSON",
            b.proof_path_hashes, b.proof_json_bytes
        ),
    );
    table.latency("proof_for", &b.proof_for, "");
    table.latency("proof verify", &b.proof_verify, "");
    table.row(
        "SHA-256 of 64 bytes",
        format!("{} µs", num(b.sha256_64_bytes_us)),
        format!("verify = {}× SHA-256", num(b.verify_over_sha256_ratio)),
    );
}
