//! `bench mpin`: the M-Pin operations of a D-TA, a device and an authentication server,
//! next to the raw BLS12-381 operations that bound them (a G1 scalar multiplication, a
//! G2 scalar multiplication, one pairing), in the same run. No node needed.
//!
//! The HTTP rates (shares issued per second through a D-TA, logins per second through an
//! authentication server) come with those services; these are the floors they sit on.

use anyhow::Result;
use milagro_mpin::{
    ClientAwaitingChallenge, ClientSecret, Day, MasterShare, MpinId, Pin, ServerAwaitingProof,
    ServerSecret, TimePermit,
};
use rand_core::OsRng;
use serde::Serialize;

use super::stats::{latency, summarize, Latency, Table};

/// Every figure, each a latency distribution with its rate.
#[derive(Debug, Serialize)]
pub struct MpinReport {
    /// Raw: one G1 scalar multiplication (miracl_core `g1mul`).
    pub raw_g1_mul: Latency,
    /// Raw: one G2 scalar multiplication (`g2mul`).
    pub raw_g2_mul: Latency,
    /// Raw: one pairing with final exponentiation.
    pub raw_pairing: Latency,
    /// A D-TA issuing one client-secret share (hash to G1, one G1 multiplication).
    pub client_share: Latency,
    /// A D-TA issuing one time-permit share.
    pub time_permit_share: Latency,
    /// Two shares summed and the PIN extracted (device side).
    pub combine_and_extract: Latency,
    /// The client's two passes.
    pub client_login: Latency,
    /// The server's two passes: challenge and the pairing check.
    pub server_verify: Latency,
    /// Server verifications over one raw pairing.
    pub server_verify_over_pairing: f64,
    /// Client-share issuance over one raw G1 multiplication.
    pub client_share_over_g1_mul: f64,
}

/// The raw BLS12-381 operations M-Pin is built on.
pub struct Raw {
    /// One G1 scalar multiplication (miracl_core `g1mul`).
    pub g1_mul: Latency,
    /// One G2 scalar multiplication (`g2mul`).
    pub g2_mul: Latency,
    /// One pairing with final exponentiation.
    pub pairing: Latency,
}

/// Times the raw operations, `calls` each, with a random scalar.
pub fn raw(calls: usize) -> Result<Raw> {
    use miracl_core::bls12381::big::BIG;
    use miracl_core::bls12381::ecp::ECP;
    use miracl_core::bls12381::ecp2::ECP2;
    use miracl_core::bls12381::pair;

    let scalar = BIG::frombytes(&MasterShare::generate(&mut OsRng).to_bytes()[..]);
    let g1 = ECP::generator();
    let g2 = ECP2::generator();
    Ok(Raw {
        g1_mul: latency(calls, || {
            std::hint::black_box(pair::g1mul(&g1, &scalar));
            Ok(())
        })?,
        g2_mul: latency(calls, || {
            std::hint::black_box(pair::g2mul(&g2, &scalar));
            Ok(())
        })?,
        pairing: latency(calls, || {
            std::hint::black_box(pair::fexp(&pair::ate(&g2, &g1)));
            Ok(())
        })?,
    })
}

/// Measures with `calls` timed calls per figure.
pub fn measure(calls: usize, table: &mut Table) -> Result<MpinReport> {
    let rng = &mut OsRng;
    let dtas = [MasterShare::generate(rng), MasterShare::generate(rng)];
    let id = MpinId::new("https://idp.example|bench-user|02ab")?;
    let today = Day(20_000);
    let pin = Pin::new(2468)?;
    let Raw {
        g1_mul: raw_g1_mul,
        g2_mul: raw_g2_mul,
        pairing: raw_pairing,
    } = raw(calls)?;

    let client_share = latency(calls, || {
        std::hint::black_box(dtas[0].client_share(&id)?);
        Ok(())
    })?;
    let time_permit_share = latency(calls, || {
        std::hint::black_box(dtas[0].time_permit_share(&id, today)?);
        Ok(())
    })?;
    let shares = [dtas[0].client_share(&id)?, dtas[1].client_share(&id)?];
    let combine_and_extract = latency(calls, || {
        std::hint::black_box(ClientSecret::combine(&shares)?.extract_pin(&id, pin)?);
        Ok(())
    })?;
    let token = ClientSecret::combine(&shares)?.extract_pin(&id, pin)?;
    let permit = TimePermit::combine(&[
        dtas[0].time_permit_share(&id, today)?,
        dtas[1].time_permit_share(&id, today)?,
    ])?;
    let server = ServerSecret::combine(&[dtas[0].server_share(), dtas[1].server_share()])?;

    // Client and server timed apart: each side's passes over prepared messages.
    let mut client_time = Vec::with_capacity(calls);
    let mut server_time = Vec::with_capacity(calls);
    for _ in 0..calls.max(1) {
        let start = std::time::Instant::now();
        let (client, commitment) = ClientAwaitingChallenge::start(rng, &id, &token, pin, &permit)?;
        let client_first = start.elapsed();
        let start = std::time::Instant::now();
        let (pending, challenge) = ServerAwaitingProof::challenge(rng, commitment, today)?;
        let server_first = start.elapsed();
        let start = std::time::Instant::now();
        let proof = client.prove(&challenge)?;
        client_time.push(client_first + start.elapsed());
        let start = std::time::Instant::now();
        pending.verify(&proof, &server)?;
        server_time.push(server_first + start.elapsed());
    }
    let micros = |samples: Vec<std::time::Duration>| {
        summarize(samples.iter().map(|d| d.as_secs_f64() * 1e6).collect())
    };
    let client_login = micros(client_time);
    let server_verify = micros(server_time);

    let report = MpinReport {
        server_verify_over_pairing: server_verify.p50_us / raw_pairing.p50_us.max(1e-9),
        client_share_over_g1_mul: client_share.p50_us / raw_g1_mul.p50_us.max(1e-9),
        raw_g1_mul,
        raw_g2_mul,
        raw_pairing,
        client_share,
        time_permit_share,
        combine_and_extract,
        client_login,
        server_verify,
    };
    table.section("raw BLS12-381 (miracl_core)");
    table.latency("G1 scalar multiplication", &report.raw_g1_mul, "");
    table.latency("G2 scalar multiplication", &report.raw_g2_mul, "");
    table.latency("pairing (ate + final exp.)", &report.raw_pairing, "");
    table.section("M-Pin");
    table.latency(
        "D-TA: client-secret share",
        &report.client_share,
        format!("{:.2}× a G1 mul", report.client_share_over_g1_mul),
    );
    table.latency("D-TA: time-permit share", &report.time_permit_share, "");
    table.latency(
        "device: sum 2 shares, extract PIN",
        &report.combine_and_extract,
        "",
    );
    table.latency("client: both passes", &report.client_login, "");
    table.latency(
        "server: challenge + verify",
        &report.server_verify,
        format!("{:.2}× a pairing", report.server_verify_over_pairing),
    );
    Ok(report)
}
