//! `bench kex`: Milagro TLS handshakes (TLS 1.3 with throwaway certificates bound to
//! on-chain identities, admission, then YAK or ECDH over Bitcoin) against plain rustls
//! TLS 1.3 handshakes, measured in the same run on the same loopback, plus the raw
//! cryptography the Milagro handshake adds.
//!
//! Two parties anchor their Birth Certificates on a private regtest node with a TBS
//! ([`super::tbs_world`]); each side looks the other up through that TBS with
//! [`TbsDirectory`] caching its SPV-checked answer (a cold lookup is timed apart: it is
//! I/O to the TBS, not protocol). One handshake is timed from the TCP connect to a
//! one-byte echo after it, so the server has finished its side too. Client and server
//! share the machine's two cores in every flavour alike.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bitcoin::{Amount, FeeRate, Network};
use milagro_anchor::anchor_tx::{build_anchor_tx, p2wpkh_script, FundingUtxo};
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::kex::{ecdh, yak, Protocol, SessionContext};
use milagro_anchor::keys::SecretKey;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_pat_client::peering::TbsDirectory;
use milagro_registry::chain::ChainSource as _;
use milagro_tls::binding::CertBinding;
use milagro_tls::{LocalIdentity, Options, PeerDirectory};
use rand_core::OsRng;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::kex_plain;
use super::levels::{best, level, tabulate_levels, Level};
use super::stats::{latency, Latency, Table};
use super::tbs_world::{party, TbsWorld};

/// What `bench kex` runs.
#[derive(Debug, Clone, Serialize)]
pub struct KexParams {
    /// Handshakes per flavour and concurrency level.
    pub handshakes: usize,
    /// Concurrent clients.
    pub concurrency: Vec<usize>,
}

/// Every figure.
#[derive(Debug, Serialize)]
pub struct KexReport {
    /// Plain TLS 1.3, server authentication only.
    pub plain_tls: Vec<Level>,
    /// Plain TLS 1.3, mutual authentication (CA-issued certificates).
    pub plain_mutual_tls: Vec<Level>,
    /// Milagro TLS with YAK over Bitcoin.
    pub milagro_yak: Vec<Level>,
    /// Milagro TLS with ECDH over Bitcoin.
    pub milagro_ecdh: Vec<Level>,
    /// Milagro YAK handshake latency at concurrency 1 over plain mutual TLS's.
    pub yak_over_mutual_latency: f64,
    /// Plain mutual TLS throughput over Milagro YAK's, at the best level of each.
    pub mutual_over_yak_throughput: f64,
    /// The whole YAK exchange in memory (both sides, four steps).
    pub raw_yak_exchange: Latency,
    /// The whole ECDH-over-Bitcoin exchange in memory.
    pub raw_ecdh_exchange: Latency,
    /// A throwaway P-256 key and self-signed certificate (rcgen).
    pub raw_throwaway_certificate: Latency,
    /// Signing and verifying one certificate binding (secp256k1).
    pub raw_binding_sign_verify: Latency,
    /// One uncached directory lookup: HTTP to the TBS for the proof and the superseded
    /// check, the held header chain extended to the TBS's tip, the proof checked by SPV.
    pub cold_directory_lookup: Latency,
}

/// Sets up the node, the TBS and two anchored parties, then measures.
pub fn measure(
    params: &KexParams,
    calls: usize,
    dir: &Path,
    table: &mut Table,
) -> Result<KexReport> {
    // No device enrols through the TBS here; its funding pool takes the smallest size it
    // accepts (a device is paid only from a pool coin, so it cannot be 0).
    let world = TbsWorld::start(dir, 8, 1)?;
    let alice = anchored(&world.node, Role::Pat, "bench alice")?;
    let bob = anchored(&world.node, Role::Dta, "bench bob")?;
    for _ in 0..6 {
        world.mine()?;
    }
    let tbs = crate::cli::service_client(&world.url)?;
    let directory: Arc<dyn PeerDirectory> = Arc::new(TbsDirectory::caching(
        tbs.clone(),
        Network::Regtest,
        Duration::from_secs(3600),
    ));
    let bob_txid = bob.party().party().anchor().txid();
    let cold = TbsDirectory::new(tbs, Network::Regtest);
    let cold_directory_lookup = latency(calls.min(50), || {
        cold.standing(bob_txid).map(drop).map_err(Into::into)
    })?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (alice, bob) = (Arc::new(alice), Arc::new(bob));
    let report = runtime.block_on(async {
        let plain = kex_plain::configs(false)?;
        let mutual = kex_plain::configs(true)?;
        let plain_addr = serve_plain(plain.server.clone()).await?;
        let mutual_addr = serve_plain(mutual.server.clone()).await?;
        let both = Options {
            min_depth: 6,
            accepted: vec![Protocol::YakV1, Protocol::EcdhV1],
            ..Options::default()
        };
        let milagro_addr = serve_milagro(bob.clone(), directory.clone(), both).await?;

        let mut plain_tls = Vec::new();
        let mut plain_mutual_tls = Vec::new();
        let mut milagro_yak = Vec::new();
        let mut milagro_ecdh = Vec::new();
        for &concurrency in &params.concurrency {
            let n = params.handshakes;
            plain_tls.push(
                level("plain TLS handshake", n, concurrency, || {
                    plain_handshake(&plain, plain_addr)
                })
                .await?,
            );
            plain_mutual_tls.push(
                level("mutual TLS handshake", n, concurrency, || {
                    plain_handshake(&mutual, mutual_addr)
                })
                .await?,
            );
            for (protocol, into) in [
                (Protocol::YakV1, &mut milagro_yak),
                (Protocol::EcdhV1, &mut milagro_ecdh),
            ] {
                let options = Options {
                    min_depth: 6,
                    protocol,
                    ..Options::default()
                };
                let (alice, bob_digest, directory) = (
                    alice.clone(),
                    bob.birth_certificate().digest(),
                    directory.clone(),
                );
                into.push(
                    level("milagro TLS handshake", n, concurrency, || {
                        milagro_handshake(
                            milagro_addr,
                            alice.clone(),
                            bob_digest,
                            directory.clone(),
                            options.clone(),
                        )
                    })
                    .await?,
                );
            }
        }
        Ok::<_, anyhow::Error>((plain_tls, plain_mutual_tls, milagro_yak, milagro_ecdh))
    })?;
    let (plain_tls, plain_mutual_tls, milagro_yak, milagro_ecdh) = report;

    let raw_yak_exchange = raw_exchange(calls, &alice, &bob, Protocol::YakV1)?;
    let raw_ecdh_exchange = raw_exchange(calls, &alice, &bob, Protocol::EcdhV1)?;
    let raw_throwaway_certificate = latency(calls, || {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        rcgen::CertificateParams::new(Vec::<String>::new())?.self_signed(&key)?;
        Ok(())
    })?;
    // A binding needs no anchor on chain: a fresh party and Alice's anchor reference.
    let (key, bc) = party(Role::Pat, "bench binding", "")?;
    let spki = [0x30u8; 91]; // the size of a P-256 SubjectPublicKeyInfo
    let anchor = alice.party().party().anchor();
    let raw_binding_sign_verify = latency(calls, || {
        let binding = CertBinding::sign(anchor, &bc, &key, &spki)?;
        CertBinding::from_der(&binding.to_der())?.verify(&spki)?;
        Ok(())
    })?;
    world.stop()?;

    let first_p50 = |levels: &[Level]| levels.first().map_or(0.0, |l| l.p50_us);
    let report = KexReport {
        yak_over_mutual_latency: first_p50(&milagro_yak) / first_p50(&plain_mutual_tls).max(1e-9),
        mutual_over_yak_throughput: best(&plain_mutual_tls) / best(&milagro_yak).max(1e-9),
        plain_tls,
        plain_mutual_tls,
        milagro_yak,
        milagro_ecdh,
        raw_yak_exchange,
        raw_ecdh_exchange,
        raw_throwaway_certificate,
        raw_binding_sign_verify,
        cold_directory_lookup,
    };
    tabulate(&report, table);
    Ok(report)
}

/// A party whose certificate its own key anchors through `node`'s wallet (broadcast; the
/// caller mines).
pub(super) fn anchored(
    node: &milagro_registry::bitcoind::BitcoindRpc,
    role: Role,
    name: &str,
) -> Result<LocalIdentity> {
    Ok(anchored_with_key(node, role, name)?.1)
}

/// The same, with the party's key (a PAT's signs its DPoP proofs at the IdP).
pub(super) fn anchored_with_key(
    node: &milagro_registry::bitcoind::BitcoindRpc,
    role: Role,
    name: &str,
) -> Result<(SecretKey, LocalIdentity)> {
    let (key, bc) = party(role, name, "")?;
    let (outpoint, value) =
        node.wallet_pay_to(&p2wpkh_script(&key.public_key()), Amount::from_sat(20_000))?;
    let funding = FundingUtxo { outpoint, value };
    let payload = Payload::new(RecordKind::BirthCertificate, bc.digest());
    let tx = build_anchor_tx(
        &key,
        &funding,
        &payload,
        FeeRate::from_sat_per_vb_u32(2),
        None,
    )?
    .tx;
    node.broadcast(&tx)?;
    let identity = LocalIdentity::from_anchor_tx(key.clone(), bc, &tx, value)?;
    Ok((key, identity))
}

fn plain_handshake(
    tls: &kex_plain::PlainTls,
    addr: SocketAddr,
) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
    let (config, name) = (tls.client.clone(), tls.server_name.clone());
    async move {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut stream = TlsConnector::from(config).connect(name, tcp).await?;
        echo_once(&mut stream).await
    }
}

async fn milagro_handshake(
    addr: SocketAddr,
    alice: Arc<LocalIdentity>,
    bob: milagro_anchor::digest::Digest,
    directory: Arc<dyn PeerDirectory>,
    options: Options,
) -> Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut session = milagro_tls::connect(tcp, &alice, bob, directory, &options).await?;
    echo_once(&mut session).await
}

/// One byte there and back: the server has finished its side of the handshake.
async fn echo_once<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<()> {
    stream.write_all(b"x").await?;
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    Ok(())
}

async fn serve_plain(config: Arc<rustls::ServerConfig>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Some(tcp) = accepted(&listener).await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut stream) = acceptor.accept(tcp).await {
                    let _ = echo_back(&mut stream).await;
                }
            });
        }
    });
    Ok(addr)
}

async fn serve_milagro(
    bob: Arc<LocalIdentity>,
    directory: Arc<dyn PeerDirectory>,
    options: Options,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Some(tcp) = accepted(&listener).await else {
                continue;
            };
            let (bob, directory, options) = (bob.clone(), directory.clone(), options.clone());
            tokio::spawn(async move {
                if let Ok(mut session) = milagro_tls::accept(tcp, &bob, directory, &options).await {
                    let _ = echo_back(&mut session).await;
                }
            });
        }
    });
    Ok(addr)
}

/// The next connection, with `TCP_NODELAY`; `None` after a failed accept (a client that
/// gave up, a descriptor limit), which must not end the server.
async fn accepted(listener: &TcpListener) -> Option<TcpStream> {
    match listener.accept().await {
        Ok((tcp, _)) => {
            let _ = tcp.set_nodelay(true);
            Some(tcp)
        }
        Err(e) => {
            eprintln!("accept failed: {e}");
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

async fn echo_back<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<()> {
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    stream.write_all(&byte).await?;
    stream.flush().await?;
    Ok(())
}

/// Both sides of one key agreement in memory, with a fixed 32-byte context.
fn raw_exchange(
    calls: usize,
    alice: &LocalIdentity,
    bob: &LocalIdentity,
    protocol: Protocol,
) -> Result<Latency> {
    let context = SessionContext::new(vec![7u8; 32])?;
    let (a, b) = (alice.party(), bob.party());
    latency(calls, || {
        match protocol {
            Protocol::EcdhV1 => {
                let (i, hello) = ecdh::Initiator::start(&mut OsRng, a, &b.party(), &context)?;
                let (r, reply) =
                    ecdh::Responder::respond(&mut OsRng, b, &a.party(), &context, &hello)?;
                let (_, finished) = i.finish(&reply)?;
                r.finish(&finished)?;
            }
            _ => {
                let (i, hello) = yak::Initiator::start(&mut OsRng, a, &b.party(), &context)?;
                let (r, reply) =
                    yak::Responder::respond(&mut OsRng, b, &a.party(), &context, &hello)?;
                let (_, finished) = i.finish(&reply)?;
                r.finish(&finished)?;
            }
        }
        Ok(())
    })
}

fn tabulate(report: &KexReport, table: &mut Table) {
    table.section("handshakes/s over loopback (TCP connect → handshake → 1-byte echo)");
    tabulate_levels(
        table,
        &[
            ("plain TLS 1.3", &report.plain_tls),
            ("plain TLS 1.3 mutual", &report.plain_mutual_tls),
            ("milagro TLS + YAK", &report.milagro_yak),
            ("milagro TLS + ECDH", &report.milagro_ecdh),
        ],
    );
    table.row(
        "YAK / mutual TLS latency (c1)",
        format!("{:.2}×", report.yak_over_mutual_latency),
        "",
    );
    table.row(
        "mutual TLS / YAK throughput (best)",
        format!("{:.2}×", report.mutual_over_yak_throughput),
        "",
    );
    table.section("raw cost of what Milagro TLS adds, per handshake");
    table.latency(
        "YAK exchange, both sides",
        &report.raw_yak_exchange,
        "4 steps in memory",
    );
    table.latency(
        "ECDH exchange, both sides",
        &report.raw_ecdh_exchange,
        "4 steps in memory",
    );
    table.latency(
        "throwaway certificate",
        &report.raw_throwaway_certificate,
        "one per side",
    );
    table.latency(
        "binding sign + verify",
        &report.raw_binding_sign_verify,
        "one per side",
    );
    table.latency(
        "uncached directory lookup",
        &report.cold_directory_lookup,
        "cached in the runs above",
    );
}
