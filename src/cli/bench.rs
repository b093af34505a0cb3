//! `milagro bench`: measured throughput next to its raw baseline.
//!
//! Benchmarks must run in release mode: `cargo run --release -- bench registry`. The
//! measurements live in `src/bench/` (see its module docs for what each figure means). Each
//! subcommand prints a table on stderr and one JSON object with every figure on stdout, the
//! unit in every key (`_s`, `_us`, `_per_s`, `_bytes`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::print_json;

use crate::bench as suite;

use suite::audit::{self, AuditReport};
use suite::bc_verify::{self, BcVerifyReport};
use suite::fixture::{self, Params, Setup, Shape};
use suite::kex::{self as kex_bench, KexParams, KexReport};
use suite::stats::{num, Table};
use suite::sync::{self, SyncReport};
use suite::tbs::{self as tbs_bench, TbsParams, TbsReport};

/// `milagro bench …` (run as `cargo run --release -- bench …`).
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Registry sync vs bitcoind serving the same blocks over REST, extraction, store, peak
    /// memory, BC verify latency, audit log.
    ///
    /// Starts a private regtest node, builds a chain of the --shape asked (record-dense or
    /// ordinary; --blocks, --records and --ordinary-txs override its sizes; records signed
    /// by --signers keys; setup is timed but not part of any result), then measures; the
    /// audit log figures of `bench auditlog` are included. Run it in release mode:
    /// `cargo run --release -- bench registry [--shape ordinary]`. About 30 s for the
    /// record-dense shape, a few minutes for the ordinary one (setup signs and mines its
    /// payments).
    Registry(RegistryArgs),
    /// Audit log append, root, inclusion and consistency proofs vs a bare SHA-256.
    ///
    /// No node needed. Run it in release mode: `cargo run --release -- bench auditlog`.
    Auditlog(AuditlogArgs),
    /// TBS enrolments/s and latency under load vs its node calls and raw cryptography;
    /// batch anchoring capacity.
    ///
    /// Starts a private regtest node and a TBS on loopback, enrols --enrolments devices at
    /// each --concurrency level over HTTP (raw device protocol), times --payments rounds
    /// of one enrolment's node calls alone, then the per-enrolment cryptography and a
    /// batch of --members digests. Run it in release mode:
    /// `cargo run --release -- bench tbs`. About a minute at the defaults.
    Tbs(TbsArgs),
    /// Milagro TLS handshakes/s (TLS 1.3 + YAK or ECDH over Bitcoin) vs plain rustls
    /// TLS 1.3 handshakes/s, in the same run, and the raw cryptography it adds.
    ///
    /// Starts a private regtest node and a TBS, anchors two parties, then runs
    /// --handshakes handshakes of each flavour at each --concurrency level over loopback.
    /// Run it in release mode: `cargo run --release -- bench kex`. About 30 s at the
    /// defaults.
    Kex(KexArgs),
    /// M-Pin share issuance, PIN extraction, client and server login passes vs raw G1/G2
    /// multiplications and pairings (BLS12-381, miracl_core), in the same run.
    ///
    /// No node needed. Run it in release mode: `cargo run --release -- bench mpin`.
    Mpin(MpinArgs),
    /// Header validation under the consensus rules per 2,016 headers vs the raw SHA-256d
    /// of the same headers. No node needed: `cargo run --release -- bench headers`.
    Headers(HeadersArgs),
    /// D-TA shares issued/s through the share API (over Milagro TLS) vs raw G1/G2
    /// multiplications, and M-Pin logins/s through an authentication server vs raw
    /// pairings, in the same run.
    ///
    /// Starts a private regtest node, an IdP, two D-TAs and an authentication server,
    /// anchors a PAT, then runs --requests requests of each kind (client shares: a
    /// quarter) at each --concurrency level. Run it in release mode:
    /// `cargo run --release -- bench mfa`. About a minute at the defaults.
    Mfa(MfaArgs),
    /// M-Pin sign-ins/s at the IdP end to end (authorize → the device's M-Pin passes →
    /// token) next to the raw pairing, the server's M-Pin check in pairings, and one
    /// argon2id password check with the IdP's parameters, in the same run.
    ///
    /// Starts a private regtest node, an IdP with `[mpin]`, two D-TAs, anchors a PAT and
    /// registers it as its user's device. Run it in release mode:
    /// `cargo run --release -- bench signin`.
    Signin(SigninArgs),
    /// One cross-check against a live ElectrumX (its tip, one header compared, one
    /// transaction's Merkle branch confirmed) vs the same hashing done locally.
    ///
    /// Starts a private regtest node and ElectrumX (installed on first use into the machine
    /// cache). Run it in release mode: `cargo run --release -- bench electrum`. About 20 s.
    Electrum(ElectrumArgs),
    /// Code exchanges/s at the IdP's token endpoint vs `oidc-provider` (npm) under the same
    /// load driver, at each --concurrency level (client_secret_basic, PKCE S256, ES256 ID
    /// tokens), next to one ES256 signature, client-secret check and token write.
    ///
    /// Starts a private regtest node, an IdP on loopback and `oidc-provider` under Node
    /// (installed on first use into the machine cache). Run it in release mode:
    /// `cargo run --release -- bench token`. About a minute at the defaults.
    Token(super::bench_token::TokenArgs),
}

/// `milagro bench electrum`
#[derive(Debug, Args)]
pub struct ElectrumArgs {
    /// Timed calls per figure.
    #[arg(long, default_value_t = 1_000)]
    pub calls: usize,
}

/// `milagro bench mfa`
#[derive(Debug, Args)]
pub struct MfaArgs {
    /// Requests per kind and concurrency level.
    #[arg(long, default_value_t = 400)]
    pub requests: usize,
    /// Concurrent clients (comma-separated levels).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub concurrency: Vec<usize>,
    /// Timed calls per raw figure.
    #[arg(long, default_value_t = 500)]
    pub calls: usize,
}

/// `milagro bench signin`
#[derive(Debug, Args)]
pub struct SigninArgs {
    /// Timed sign-ins.
    #[arg(long, default_value_t = 200)]
    pub signins: usize,
    /// Timed calls per raw figure (pairings, the server's check).
    #[arg(long, default_value_t = 200)]
    pub calls: usize,
    /// Timed argon2id password checks.
    #[arg(long, default_value_t = 20)]
    pub checks: usize,
}

/// `milagro bench headers`
#[derive(Debug, Args)]
pub struct HeadersArgs {
    /// Timed rounds of 2,016 headers.
    #[arg(long, default_value_t = 50)]
    pub calls: usize,
}

/// `milagro bench mpin`
#[derive(Debug, Args)]
pub struct MpinArgs {
    /// Timed calls per figure.
    #[arg(long, default_value_t = 500)]
    pub calls: usize,
}

/// `milagro bench kex`
#[derive(Debug, Args)]
pub struct KexArgs {
    /// Handshakes per flavour and concurrency level.
    #[arg(long, default_value_t = 1_000)]
    pub handshakes: usize,
    /// Concurrent clients (comma-separated levels).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub concurrency: Vec<usize>,
    #[command(flatten)]
    pub repeat: Repeat,
}

/// Repetitions, shared by every benchmark.
#[derive(Debug, Args)]
pub struct Repeat {
    /// Runs of each whole-workload measurement (best and median are reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Timed calls per latency figure.
    #[arg(long, default_value_t = 2_000)]
    pub calls: usize,
}

/// `milagro bench auditlog`
#[derive(Debug, Args)]
pub struct AuditlogArgs {
    /// Entries appended to the log (32 bytes each).
    #[arg(long, default_value_t = 100_000)]
    pub entries: u64,
    #[command(flatten)]
    pub repeat: Repeat,
}

/// `milagro bench registry`
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// The chain to build: record-dense (1,000 blocks, 20,000 records) or ordinary (1,200
    /// blocks, 270,000 ordinary payments, one record per block).
    #[arg(long, value_enum, default_value_t = Shape::RecordDense)]
    pub shape: Shape,
    /// Blocks holding records and payments (default: the shape's).
    #[arg(long)]
    pub blocks: Option<u32>,
    /// Milagro records, spread evenly over the blocks (default: the shape's).
    #[arg(long)]
    pub records: Option<usize>,
    /// Ordinary payments (one input, two outputs), spread evenly over the blocks
    /// (default: the shape's).
    #[arg(long)]
    pub ordinary_txs: Option<usize>,
    /// Distinct signer keys (records are signed round-robin; exercises the by-signer index).
    #[arg(long, default_value_t = 100)]
    pub signers: usize,
    /// Blocks per follower step: one `getblockhash` batch and one index write (the
    /// baseline reads the same way; `milagro registry sync` uses 500).
    #[arg(long, default_value_t = 500)]
    pub step: u32,
    /// Entries in the audit log benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub entries: u64,
    #[command(flatten)]
    pub repeat: Repeat,
    /// Keep the temporary directory (node data, last index) and print where it is.
    #[arg(long)]
    pub keep: bool,
}

/// `milagro bench tbs`
#[derive(Debug, Args)]
pub struct TbsArgs {
    /// Enrolments per concurrency level.
    #[arg(long, default_value_t = 400)]
    pub enrolments: usize,
    /// Concurrency levels (worker threads, each with its own HTTP client).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub concurrency: Vec<usize>,
    /// Rounds of one enrolment's node call timed alone (`submitpackage` of the pool's
    /// payment and the device's anchor).
    #[arg(long, default_value_t = 200)]
    pub payments: usize,
    /// Members of the batch (digests under one anchored root).
    #[arg(long, default_value_t = 1_000_000)]
    pub members: usize,
    /// The TBS's funding pool (`anchoring.funding_pool`): coins per refill (1 to 1000),
    /// and so the most offers that wait for a signature at once.
    #[arg(long, default_value_t = 1_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000))]
    pub pool: usize,
    #[command(flatten)]
    pub repeat: Repeat,
    /// Keep the temporary directory (node data, TBS state) and print where it is.
    #[arg(long)]
    pub keep: bool,
}

/// What `milagro bench registry` prints on stdout.
#[derive(Debug, Serialize)]
struct RegistryReport {
    profile: &'static str,
    params: Params,
    runs: usize,
    calls: usize,
    setup: Setup,
    sync: SyncReport,
    bc_verify: BcVerifyReport,
    audit_log: AuditReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_dir: Option<PathBuf>,
}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Registry(args) => registry(args),
        BenchCommand::Auditlog(args) => auditlog(args),
        BenchCommand::Tbs(args) => tbs(args),
        BenchCommand::Kex(args) => kex(args),
        BenchCommand::Mpin(args) => mpin(args),
        BenchCommand::Headers(args) => headers(args),
        BenchCommand::Mfa(args) => mfa(args),
        BenchCommand::Signin(args) => signin(args),
        BenchCommand::Electrum(args) => electrum(args),
        BenchCommand::Token(args) => super::bench_token::run(args, profile()),
    }
}

#[derive(Debug, Serialize)]
struct ElectrumBenchReport {
    profile: &'static str,
    calls: usize,
    electrum: suite::electrum::ElectrumReport,
}

fn electrum(args: ElectrumArgs) -> Result<()> {
    let profile = profile();
    let mut table = Table::default();
    let electrum = suite::electrum::measure(args.calls, &mut table)?;
    table.print();
    print_json(&ElectrumBenchReport {
        profile,
        calls: args.calls,
        electrum,
    })
}

#[derive(Debug, Serialize)]
struct MfaBenchReport {
    profile: &'static str,
    params: suite::mfa::MfaParams,
    calls: usize,
    mfa: suite::mfa::MfaReport,
}

#[derive(Debug, Serialize)]
struct SigninBenchReport {
    profile: &'static str,
    signins: usize,
    calls: usize,
    checks: usize,
    signin: suite::signin::SigninReport,
}

fn signin(args: SigninArgs) -> Result<()> {
    let profile = profile();
    anyhow::ensure!(
        args.signins > 0 && args.calls > 0 && args.checks > 0,
        "--signins, --calls and --checks must be at least 1"
    );
    let dir = tempfile::Builder::new()
        .prefix("milagro-bench-signin-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let mut table = Table::default();
    let signin = suite::signin::measure(
        args.signins,
        args.calls,
        args.checks,
        dir.path(),
        &mut table,
    )?;
    table.print();
    print_json(&SigninBenchReport {
        profile,
        signins: args.signins,
        calls: args.calls,
        checks: args.checks,
        signin,
    })
}

fn mfa(args: MfaArgs) -> Result<()> {
    let profile = profile();
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    anyhow::ensure!(
        args.concurrency.iter().all(|&c| c > 0),
        "every --concurrency level must be at least 1"
    );
    let params = suite::mfa::MfaParams {
        requests: args.requests,
        concurrency: args.concurrency,
    };
    let dir = tempfile::Builder::new()
        .prefix("milagro-bench-mfa-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let mut table = Table::default();
    let mfa = suite::mfa::measure(&params, args.calls, dir.path(), &mut table)?;
    table.print();
    print_json(&MfaBenchReport {
        profile,
        params,
        calls: args.calls,
        mfa,
    })
}

#[derive(Debug, Serialize)]
struct MpinBenchReport {
    profile: &'static str,
    calls: usize,
    mpin: suite::mpin::MpinReport,
}

fn mpin(args: MpinArgs) -> Result<()> {
    let profile = profile();
    let mut table = Table::default();
    let mpin = suite::mpin::measure(args.calls, &mut table)?;
    table.print();
    print_json(&MpinBenchReport {
        profile,
        calls: args.calls,
        mpin,
    })
}

fn headers(args: HeadersArgs) -> Result<()> {
    let mut table = Table::default();
    let report = suite::headers::measure(args.calls, &mut table)?;
    table.print();
    print_json(&report)
}

#[derive(Debug, Serialize)]
struct KexBenchReport {
    profile: &'static str,
    params: KexParams,
    calls: usize,
    kex: KexReport,
}

fn kex(args: KexArgs) -> Result<()> {
    let profile = profile();
    anyhow::ensure!(args.handshakes > 0, "--handshakes must be at least 1");
    anyhow::ensure!(
        args.concurrency.iter().all(|&c| c > 0),
        "every --concurrency level must be at least 1"
    );
    let params = KexParams {
        handshakes: args.handshakes,
        concurrency: args.concurrency,
    };
    let dir = tempfile::Builder::new()
        .prefix("milagro-bench-kex-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let mut table = Table::default();
    let calls = args.repeat.calls;
    let kex = kex_bench::measure(&params, calls, dir.path(), &mut table)?;
    table.print();
    print_json(&KexBenchReport {
        profile,
        params,
        calls,
        kex,
    })
}

/// What `milagro bench tbs` prints on stdout.
#[derive(Debug, Serialize)]
struct TbsBenchReport {
    profile: &'static str,
    params: TbsParams,
    runs: usize,
    calls: usize,
    tbs: TbsReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_dir: Option<PathBuf>,
}

fn tbs(args: TbsArgs) -> Result<()> {
    let profile = profile();
    let Repeat { runs, calls } = args.repeat;
    anyhow::ensure!(args.enrolments > 0, "--enrolments must be at least 1");
    anyhow::ensure!(
        args.concurrency.iter().all(|&c| c > 0),
        "every --concurrency level must be at least 1"
    );
    let params = TbsParams {
        enrolments: args.enrolments,
        concurrency: args.concurrency,
        payments: args.payments,
        members: args.members,
        pool: args.pool,
    };
    let dir = tempfile::Builder::new()
        .prefix("milagro-bench-tbs-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let mut table = Table::default();
    let tbs = tbs_bench::measure(&params, runs, calls, dir.path(), &mut table)?;
    table.print();
    let kept_dir = args.keep.then(|| dir.keep());
    if let Some(kept) = &kept_dir {
        eprintln!(
            "\nkept {} (node data in node/, TBS state in tbs/)",
            kept.display()
        );
    }
    print_json(&TbsBenchReport {
        profile,
        params,
        runs,
        calls,
        tbs,
        kept_dir,
    })
}

/// What `milagro bench auditlog` prints on stdout.
#[derive(Debug, Serialize)]
struct AuditlogReport {
    profile: &'static str,
    runs: usize,
    calls: usize,
    audit_log: AuditReport,
}

fn auditlog(args: AuditlogArgs) -> Result<()> {
    let profile = profile();
    let Repeat { runs, calls } = args.repeat;
    let mut table = Table::default();
    let audit_log = audit::measure(args.entries, runs, calls, &mut table)?;
    table.print();
    print_json(&AuditlogReport {
        profile,
        runs,
        calls,
        audit_log,
    })
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run `cargo run --release -- bench …` for real figures");
        "debug"
    } else {
        "release"
    }
}

fn registry(args: RegistryArgs) -> Result<()> {
    let profile = profile();
    let Repeat { runs, calls } = args.repeat;
    let (blocks, records, ordinary_txs) = args.shape.defaults();
    let params = Params {
        shape: args.shape,
        blocks: args.blocks.unwrap_or(blocks),
        records: args.records.unwrap_or(records),
        ordinary_txs: args.ordinary_txs.unwrap_or(ordinary_txs),
        signers: args.signers,
    };
    let dir = tempfile::Builder::new()
        .prefix("milagro-bench-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    eprintln!(
        "setup: a regtest chain of {} blocks with {} records from {} keys and {} ordinary \
         payments…",
        params.blocks, params.records, params.signers, params.ordinary_txs
    );
    let chain = fixture::build(&params, dir.path())?;
    let s = &chain.setup;
    eprintln!(
        "setup took {} s (node {} s, funding {} s in {} txs, signing {} s, mining {} s)",
        num(s.total_s),
        num(s.node_start_s),
        num(s.funding_s),
        s.funding_txs,
        num(s.sign_s),
        num(s.mine_s)
    );

    let mut table = Table::default();
    eprintln!("measuring registry sync ({runs} runs each)…");
    let (sync, follower) = sync::measure(
        &chain,
        params.shape,
        dir.path(),
        args.step,
        runs,
        &mut table,
    )?;
    eprintln!("measuring BC verify ({calls} calls each)…");
    let bc_verify = bc_verify::measure(&chain, follower.store(), calls, &mut table)?;
    drop(follower);
    let setup = chain.setup.clone();
    chain.stop()?;
    eprintln!("measuring the audit log ({} entries)…", args.entries);
    let audit_log = audit::measure(args.entries, runs, calls, &mut table)?;
    table.print();

    let kept_dir = args.keep.then(|| dir.keep());
    if let Some(kept) = &kept_dir {
        eprintln!(
            "\nkept {} (node data in node/, index in index-*)",
            kept.display()
        );
    }
    print_json(&RegistryReport {
        profile,
        params,
        runs,
        calls,
        setup,
        sync,
        bc_verify,
        audit_log,
        kept_dir,
    })
}
