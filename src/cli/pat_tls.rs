//! `milagro pat ping` and `milagro pat listen`: Milagro TLS sessions between a device and
//! any other anchored party, each side's anchor looked up through the device's TBS and
//! checked by SPV.
//!
//! The application exchange is one line each way: the client sends `ping`, the server
//! answers `pong <session id>`; the client checks that id against its own, so the output
//! shows that both sides hold the same key-agreement session.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use milagro_anchor::digest::Digest;
use milagro_anchor::kex::{Established, Protocol};
use milagro_pat_client::open;
use milagro_pat_client::peering::TbsDirectory;
use milagro_tls::{AdmittedPeer, LocalIdentity, Options, PeerDirectory};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};

use super::print_json;

/// Longest line either side reads.
const MAX_LINE: u64 = 128;

/// A key-agreement protocol on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KexArg {
    /// YAK over Bitcoin (forward secret).
    Yak,
    /// ECDH over Bitcoin (static keys, no forward secrecy).
    Ecdh,
}

impl From<KexArg> for Protocol {
    fn from(arg: KexArg) -> Self {
        match arg {
            KexArg::Yak => Protocol::YakV1,
            KexArg::Ecdh => Protocol::EcdhV1,
        }
    }
}

/// What both commands share.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// The device's state directory (an enrolled device, direct mode).
    #[arg(long)]
    pub state: PathBuf,
    /// Confirmations the peer's anchor needs (default: final, 6, on a public network; 1
    /// on regtest, where the operator is the only miner, as `milagro init` sets services).
    #[arg(long)]
    pub min_depth: Option<u32>,
}

impl SessionArgs {
    /// `--min-depth`, or the default of `device`'s network.
    pub fn min_depth(&self, device: &milagro_pat_client::Device) -> u32 {
        self.min_depth.unwrap_or_else(|| {
            milagro_init::Chain::of(device.provisioning().network).map_or(
                milagro_anchor::proof::FINAL_DEPTH,
                milagro_init::Chain::min_peer_depth,
            )
        })
    }
}

/// `milagro pat ping`
#[derive(Debug, Args)]
pub struct PingArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// The digest of the peer's Birth Certificate: the only party accepted.
    #[arg(long)]
    pub peer: Digest,
    /// Where the peer listens (`host:port`).
    #[arg(long)]
    pub addr: String,
    /// The key agreement to run.
    #[arg(long, value_enum, default_value_t = KexArg::Yak)]
    pub protocol: KexArg,
}

/// `milagro pat listen`
#[derive(Debug, Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Where to listen (`host:port`; port 0 picks one, printed on stderr).
    #[arg(long)]
    pub listen: SocketAddr,
    /// The key agreements accepted (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "yak")]
    pub accept: Vec<KexArg>,
    /// Stop after this many established sessions (default: serve until killed).
    #[arg(long)]
    pub count: Option<u64>,
}

/// The identity and TBS-backed directory of the device in `args.state`, and the depth
/// it asks of peers.
fn device_side(args: &SessionArgs) -> Result<(LocalIdentity, Arc<dyn PeerDirectory>, u32)> {
    let stage = open(&args.state)?;
    let (identity, directory) = device_parts(stage.device())?;
    Ok((identity, directory, args.min_depth(stage.device())))
}

/// `device`'s Milagro TLS identity and a directory backed by its TBS.
pub fn device_parts(
    device: &milagro_pat_client::Device,
) -> Result<(LocalIdentity, Arc<dyn PeerDirectory>)> {
    let identity = device.tls_identity()?;
    let directory: Arc<dyn PeerDirectory> = Arc::new(TbsDirectory::for_device(
        device,
        &crate::cli::outbound()?,
        Duration::ZERO,
    )?);
    Ok((identity, directory))
}

/// Runs `milagro pat ping`.
pub fn ping(args: PingArgs) -> Result<()> {
    let (identity, directory, min_depth) = device_side(&args.session)?;
    let options = Options {
        min_depth,
        protocol: args.protocol.into(),
        ..Options::default()
    };
    let out = runtime()?.block_on(ping_session(
        &identity, args.peer, &args.addr, directory, &options,
    ))?;
    eprintln!(
        "session {} with {} ({}), both sides agree",
        out["session_id"].as_str().unwrap_or_default(),
        out["peer"]["name"].as_str().unwrap_or_default(),
        args.peer
    );
    print_json(&out)
}

/// Opens a session to `peer` at `addr`, pings, and checks the pong carries this session's
/// id; returns the session as JSON with its timings.
pub async fn ping_session(
    identity: &LocalIdentity,
    peer: Digest,
    addr: &str,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Value> {
    let started = Instant::now();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach {addr}"))?;
    tcp.set_nodelay(true)?;
    let mut session = milagro_tls::connect(tcp, identity, peer, directory, options)
        .await
        .with_context(|| format!("no session with {peer} at {addr}"))?;
    let handshake = started.elapsed();
    session.write_all(b"ping\n").await?;
    let answer = read_line(&mut session).await?;
    let round_trip = started.elapsed() - handshake;
    let ours = hex_id(session.established());
    if answer != format!("pong {ours}") {
        bail!("the peer answered {answer:?}, not a pong of this session ({ours})");
    }
    let mut out = describe(identity, session.peer(), session.established());
    out["handshake_ms"] = json!(millis(handshake));
    out["round_trip_ms"] = json!(millis(round_trip));
    Ok(out)
}

/// Runs `milagro pat listen`.
pub fn listen(args: ListenArgs) -> Result<()> {
    let (identity, directory, min_depth) = device_side(&args.session)?;
    let identity = Arc::new(identity);
    let options = Options {
        min_depth,
        accepted: args.accept.iter().copied().map(Protocol::from).collect(),
        ..Options::default()
    };
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!("listening on {}", listener.local_addr()?);
        let mut served = 0u64;
        while args.count.is_none_or(|count| served < count) {
            let (tcp, from) = listener.accept().await?;
            let (identity, directory, options) =
                (identity.clone(), directory.clone(), options.clone());
            let task =
                tokio::spawn(
                    async move { answer_session(tcp, &identity, directory, &options).await },
                );
            let report = move |outcome: Result<Result<Value>, tokio::task::JoinError>| match outcome
            {
                Ok(Ok(session)) => {
                    println!("{session}");
                    true
                }
                Ok(Err(e)) => {
                    eprintln!("session from {from} refused: {e:#}");
                    false
                }
                Err(e) => {
                    eprintln!("session from {from} failed: {e}");
                    false
                }
            };
            // When counting, one session at a time (so the last is reported before the
            // command exits) and only established ones count; concurrent otherwise.
            if args.count.is_some() {
                served += u64::from(report(task.await));
            } else {
                tokio::spawn(async move { report(task.await) });
            }
        }
        Ok(())
    })
}

/// Accepts one session on `tcp` and answers its ping with this session's id; returns
/// the session as JSON.
pub async fn answer_session(
    tcp: tokio::net::TcpStream,
    identity: &LocalIdentity,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Value> {
    tcp.set_nodelay(true)?;
    let mut session = milagro_tls::accept(tcp, identity, directory, options).await?;
    let line = read_line(&mut session).await?;
    if line != "ping" {
        bail!("expected ping, got {line:?}");
    }
    let id = hex_id(session.established());
    session.write_all(format!("pong {id}\n").as_bytes()).await?;
    session.shutdown().await?;
    Ok(describe(identity, session.peer(), session.established()))
}

/// A multi-threaded runtime for a command's sessions.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Reads one line of at most [`MAX_LINE`] bytes, without its newline.
async fn read_line<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<String> {
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(stream, MAX_LINE));
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .context("no answer within 10 s")??;
    Ok(line.trim_end().to_owned())
}

fn hex_id(established: &Established) -> String {
    established.session_id().to_string()
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e5).round() / 100.0
}

/// The session as JSON: both anchors, the protocol, the session id.
fn describe(local: &LocalIdentity, peer: &AdmittedPeer, established: &Established) -> Value {
    let anchor = peer.anchor();
    json!({
        "protocol": established.protocol().label(),
        "forward_secret": established.protocol().is_forward_secret(),
        "session_id": hex_id(established),
        "local": {
            "birth_certificate": local.birth_certificate().digest(),
            "name": local.birth_certificate().fields().name,
            "anchor": established.local().anchor().to_string(),
        },
        "peer": {
            "birth_certificate": peer.birth_certificate().digest(),
            "name": peer.birth_certificate().fields().name,
            "role": peer.birth_certificate().role().as_str(),
            "anchor": established.peer().anchor().to_string(),
            "height": anchor.height(),
            "depth": anchor.depth(),
        },
    })
}
