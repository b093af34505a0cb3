//! Anchored parties that speak Milagro TLS, for tests: each anchors its own Birth
//! Certificate on the world's regtest node (its key signs, so its nonce is on chain), and
//! a server accepts sessions on loopback and reports each outcome.

use std::net::SocketAddr;
use std::sync::Arc;

use bitcoin::FeeRate;
use milagro_anchor::anchor_tx::build_anchor_tx;
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::keys::SecretKey;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_pat_client::peering::TbsDirectory;
use milagro_pat_client::ServiceClient;
use milagro_registry::chain::ChainSource as _;
use milagro_tls::{LocalIdentity, Options, PeerDirectory, TlsError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

use crate::enrolment_world::EnrolmentWorld;
use crate::party;

/// A party with a confirmed-or-not anchor of its own certificate.
pub struct TlsParty {
    /// Its key.
    pub key: SecretKey,
    /// Its certificate.
    pub bc: BirthCertificate,
    /// Its Milagro TLS identity.
    pub identity: Arc<LocalIdentity>,
}

impl TlsParty {
    /// A new party of `role` whose certificate `key` anchors now (broadcast, not mined).
    pub fn broadcast(w: &EnrolmentWorld, role: Role, name: &str) -> Self {
        let (key, bc) = party(role, name);
        Self::anchor(w, key, bc)
    }

    /// Anchors `bc` with `key` (broadcast, not mined).
    pub fn anchor(w: &EnrolmentWorld, key: SecretKey, bc: BirthCertificate) -> Self {
        let funding = w.node().fund(&key);
        let payload = Payload::new(RecordKind::BirthCertificate, bc.digest());
        let tx = build_anchor_tx(
            &key,
            &funding,
            &payload,
            FeeRate::from_sat_per_vb_u32(2),
            None,
        )
        .unwrap()
        .tx;
        w.node().rpc.broadcast(&tx).unwrap();
        let identity =
            LocalIdentity::from_anchor_tx(key.clone(), bc.clone(), &tx, funding.value).unwrap();
        Self {
            key,
            bc,
            identity: Arc::new(identity),
        }
    }
}

/// A two-worker runtime for a test's async parts (blocking fixtures stay outside it).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A directory asking the world's TBS, uncached.
pub fn directory(w: &EnrolmentWorld) -> Arc<dyn PeerDirectory> {
    Arc::new(TbsDirectory::new(
        ServiceClient::new(&w.url()).unwrap(),
        bitcoin::Network::Regtest,
    ))
}

/// What a server saw of one connection.
#[derive(Debug)]
pub struct Served {
    /// The session id, or why the session failed.
    pub outcome: Result<[u8; 32], TlsError>,
}

/// A Milagro TLS echo server on loopback: each session echoes one message back.
pub struct EchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// One report per connection.
    pub reports: mpsc::UnboundedReceiver<Served>,
}

impl EchoServer {
    /// Starts serving `party` on the current runtime.
    pub async fn start(
        party: &TlsParty,
        directory: Arc<dyn PeerDirectory>,
        options: Options,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, reports) = mpsc::unbounded_channel();
        let identity = party.identity.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (identity, directory, options, report) = (
                    identity.clone(),
                    directory.clone(),
                    options.clone(),
                    report.clone(),
                );
                tokio::spawn(async move {
                    let outcome =
                        match milagro_tls::accept(tcp, &identity, directory, &options).await {
                            Ok(mut session) => {
                                let mut buf = [0u8; 64];
                                if let Ok(n) = session.read(&mut buf).await {
                                    let _ = session.write_all(&buf[..n]).await;
                                    let _ = session.shutdown().await;
                                }
                                Ok(*session.established().session_id().as_bytes())
                            }
                            Err(e) => Err(e),
                        };
                    let _ = report.send(Served { outcome });
                });
            }
        });
        Self { addr, reports }
    }

    /// The next connection's outcome.
    pub async fn next(&mut self) -> Served {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.reports.recv())
            .await
            .expect("a report within 30 s")
            .expect("the server runs")
    }
}
