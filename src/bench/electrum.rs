//! `bench electrum`: one cross-check against a live ElectrumX, next to the same work done
//! locally.
//!
//! A verifier one block behind a regtest ElectrumX (within `max_lag`) asks it for its tip,
//! compares the server's header at its own tip (`CrossCheck`: tip + one header), and confirms
//! a known transaction's Merkle branch against its own header: three loopback round trips,
//! decoded and checked. The local figure is the hashing that check does once the answers are
//! in memory (the SHA-256d of the two headers compared and the fold of the Merkle branch), so
//! the ratio is what asking a server costs over trusting what one holds.
//!
//! The check is timed on a fresh connection each time (connect and `server.version`
//! included), as a device checking now and then would run it, and a few times on one
//! long-lived connection: ElectrumX 1.19+ pads its `tcp://` answers against traffic analysis
//! and, once a session has been sent its first KiB, holds each small answer up to 1 s
//! unless the session was idle for a second, so back-to-back checks on one connection
//! measure that delay, not the work.

use milagro_regtest::RegtestControls as _;
use std::hint::black_box;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bitcoin::block::Header;
use bitcoin::{Amount, Network};
use milagro_anchor::proof::{HeaderChain, Headers};
use milagro_electrum::confirm::{check_branch, merkle_root};
use milagro_electrum::{CrossCheck, ElectrumSource, LocalChain, Outcome, RemoteHeaders};
use milagro_registry::chain::ChainSource;
use milagro_registry::proofs::headers_from;
use milagro_regtest::ElectrumServer;
use serde::Serialize;

use super::stats::{latency, num, Latency, Table};

/// Wallet payments in the block holding the confirmed transaction (a branch of 5 hashes).
const PAYMENTS: usize = 24;
/// Checks timed on one long-lived connection (each takes about 2 s: see the module docs).
const REUSED_CHECKS: usize = 5;

/// Every figure.
#[derive(Debug, Serialize)]
pub struct ElectrumReport {
    /// Hashes in the confirmed transaction's Merkle branch.
    pub branch_hashes: usize,
    /// Live, on a fresh connection: connect, `cross_check` (tip + one header) and
    /// `confirm_tx`, decoded and checked.
    pub check: Latency,
    /// The same check on one long-lived connection, past its first KiB ([`REUSED_CHECKS`]
    /// calls): ElectrumX's answer padding delay.
    pub check_reused_connection: Latency,
    /// Live: connect (TCP + `server.version`) alone.
    pub connect: Latency,
    /// Local: the pure `CrossCheck::check` and `check_branch` over the fetched answers.
    pub pure_check: Latency,
    /// Raw: SHA-256d of the two headers compared and the Merkle branch's fold.
    pub raw_hashing: Latency,
    /// `check` over `raw_hashing`, at the median.
    pub check_over_raw: f64,
}

/// Starts a node and ElectrumX, then measures with `calls` timed calls per figure.
pub fn measure(calls: usize, table: &mut Table) -> Result<ElectrumReport> {
    let started = super::BenchNode::start()?;
    let (bitcoind, node, miner) = (&started.bitcoind, &started.rpc, &started.miner);
    let payee = node.wallet_new_script()?;
    let mut txids = Vec::with_capacity(PAYMENTS);
    for _ in 0..PAYMENTS {
        txids.push(
            node.wallet_pay(&payee, Amount::from_sat(10_000))?
                .0
                .compute_txid(),
        );
    }
    node.generate_to_address(1, miner)?;
    let height = node.tip()?.height;
    let txid = txids[PAYMENTS / 2];

    // The verifier holds the chain up to here; the server sees one block more.
    let headers: Headers = headers_from(&node, Network::Regtest, 0)?;
    node.generate_to_address(1, miner)?;
    eprintln!("starting ElectrumX (installed on first use)…");
    let server = ElectrumServer::start(
        &bitcoind.rpc_url(),
        &bitcoind.params.cookie_file,
        Network::Regtest,
    )?;
    let url = server.url();
    let timeout = Duration::from_secs(30);
    let source = ElectrumSource::connect(&url, timeout)?;
    let label = format!("node {}", bitcoind.rpc_url());
    let local = LocalChain {
        label: &label,
        tip: headers.tip_height(),
        hash_at: |h| headers.header_at(h).map(Header::block_hash),
    };
    let header = *headers.header_at(height).context("the payments' block")?;
    let policy = CrossCheck::new();

    let check_on = |source: &ElectrumSource| -> Result<()> {
        black_box(source.cross_check(&policy, &local)?);
        black_box(source.confirm_tx(txid, height, &header)?);
        Ok(())
    };
    check_on(&source)?;
    eprintln!("timing {calls} checks on fresh connections, {REUSED_CHECKS} on one connection…");
    let check = latency(calls, || check_on(&ElectrumSource::connect(&url, timeout)?))?;
    let connect = latency(calls, || {
        black_box(ElectrumSource::connect(&url, timeout)?);
        Ok(())
    })?;
    check_on(&source)?; // past the session's first KiB of answers
    let check_reused_connection = latency(REUSED_CHECKS, || check_on(&source))?;

    // The answers, fetched once, for the local figures.
    let (remote_tip, _) = source.tip()?;
    let compared = source.header(local.tip)?;
    let branch = source.merkle_branch(txid, height)?;
    ensure!(
        remote_tip == local.tip + 1,
        "the server is not one block ahead"
    );
    let remote = RemoteHeaders {
        label: source.url(),
        tip: remote_tip,
        start: local.tip,
        headers: &[compared],
    };
    let pure_check = latency(calls, || {
        let Outcome::Agree(agreement) = policy.check(&local, black_box(&remote)) else {
            anyhow::bail!("the fetched headers do not agree");
        };
        black_box(agreement);
        black_box(check_branch(txid, height, &header, black_box(&branch))?);
        Ok(())
    })?;
    let local_header = *headers.header_at(local.tip).context("the local tip")?;
    let raw_hashing = latency(calls, || {
        black_box(black_box(&local_header).block_hash());
        black_box(black_box(&compared).block_hash());
        black_box(merkle_root(txid, branch.pos, black_box(&branch.branch)));
        Ok(())
    })?;

    let report = ElectrumReport {
        branch_hashes: branch.branch.len(),
        check_over_raw: check.p50_us / raw_hashing.p50_us.max(1e-9),
        check,
        check_reused_connection,
        connect,
        pure_check,
        raw_hashing,
    };
    table.section("Electrum cross-check (ElectrumX 1.20 on regtest, loopback)");
    table.latency(
        "cross-check + confirm tx, new connection",
        &report.check,
        format!(
            "connect + 3 round trips; {}× the raw hashing",
            num(report.check_over_raw)
        ),
    );
    table.latency(
        "  of which connect",
        &report.connect,
        "TCP + server.version",
    );
    table.latency(
        "the same on one long-lived connection",
        &report.check_reused_connection,
        "ElectrumX holds small answers up to 1 s",
    );
    table.latency(
        "same check on fetched answers",
        &report.pure_check,
        "CrossCheck::check + check_branch",
    );
    table.latency(
        "raw: SHA-256d of 2 headers + branch",
        &report.raw_hashing,
        format!("{} branch hashes", report.branch_hashes),
    );
    drop(server);
    Ok(report)
}
