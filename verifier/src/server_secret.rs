//! The server secret: every configured D-TA's share `s_i·Q`, fetched over Milagro TLS
//! and summed into `s·Q`, kept in memory only.
//!
//! A background thread waits until the server's own anchor is confirmed (its Milagro TLS
//! identity is the nonce of that anchoring signature), then asks each D-TA for
//! `POST /v1/shares/server` (body `{}`), admitting only the party of the configured
//! Birth Certificate digest, anchored `min_peer_depth` deep in the server's own index.
//! An answer counts if it is `{"kind": "server", "share", "dta", "day"}` from that very
//! D-TA and its share is a valid G2 subgroup point ([`parse_share`]). A D-TA that fails
//! is asked again after a doubling wait (`[sync]` poll interval up to its backoff cap),
//! and why it failed is logged once per distinct reason. Once all have answered, the sum
//! is published in [`ServerSecretSlot`] and the thread ends: the login API is ready.
//!
//! A service starts the thread with [`run`], handing it [`FetchParts`].
//!
//! Neither the shares nor the sum are ever written to disk or to a log (the slot's
//! `Debug` shows the progress only); a restart fetches them again.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use milagro_anchor::digest::Digest;
use milagro_mpin::{ServerSecret, ServerSecretShare, G2};
use milagro_service::peer_directory::wait_for_identity;
use milagro_service::sync::{Backoff, Shutdown};
use milagro_tls::{LocalIdentity, Options, PeerDirectory};
use milagro_wire::authserver::{DtaShareStatus, SecretState, ServerSecretStatus, ShareState};
use milagro_wire::shares::{NoOptions, ServerShareAnswer, ShareKind};
use milagro_wire::ErrorBody;

use milagro_service::config::SyncConfig;
use milagro_service::identity::PartyIdentity;
use milagro_service::own_anchor::OwnAnchor;

use crate::config::DtaPeer;

/// The path of the D-TAs' server-share endpoint.
pub const SERVER_SHARE_PATH: &str = "/v1/shares/server";

/// Where one D-TA's share stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtaProgress {
    /// Not obtained yet; why the last attempt failed, if one did.
    Waiting(Option<String>),
    /// Obtained and checked.
    Fetched,
}

struct Slot {
    dtas: Vec<(Digest, DtaProgress)>,
    secret: Option<Arc<ServerSecret>>,
}

/// The server secret once ready, and each D-TA's progress until then.
pub struct ServerSecretSlot(RwLock<Slot>);

impl fmt::Debug for ServerSecretSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.0.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("ServerSecretSlot")
            .field("dtas", &slot.dtas)
            .field("ready", &slot.secret.is_some())
            .finish()
    }
}

impl ServerSecretSlot {
    /// Nothing fetched from `dtas` yet.
    pub fn new(dtas: &[DtaPeer]) -> Self {
        let dtas = dtas
            .iter()
            .map(|d| (d.bc_digest, DtaProgress::Waiting(None)))
            .collect();
        Self(RwLock::new(Slot { dtas, secret: None }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Slot> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, index: usize, progress: DtaProgress) {
        let mut slot = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = slot.dtas.get_mut(index) {
            entry.1 = progress;
        }
    }

    /// The summed secret, once every D-TA answered.
    pub fn secret(&self) -> Option<Arc<ServerSecret>> {
        self.read().secret.clone()
    }

    /// Each D-TA's digest and progress.
    pub fn progress(&self) -> Vec<(Digest, DtaProgress)> {
        self.read().dtas.clone()
    }

    /// Whether the secret is assembled, and each D-TA's progress.
    pub fn status(&self) -> ServerSecretStatus {
        let slot = self.read();
        let dtas = slot
            .dtas
            .iter()
            .map(|(digest, progress)| {
                let (state, reason) = match progress {
                    DtaProgress::Fetched => (ShareState::Fetched, None),
                    DtaProgress::Waiting(reason) => (ShareState::Waiting, reason.clone()),
                };
                DtaShareStatus {
                    digest: *digest,
                    state,
                    reason,
                }
            })
            .collect();
        let state = if slot.secret.is_some() {
            SecretState::Ready
        } else {
            SecretState::Waiting
        };
        ServerSecretStatus { state, dtas }
    }

    /// Which D-TAs are missing and why, in a sentence.
    pub fn missing(&self) -> String {
        let waiting: Vec<String> = self
            .read()
            .dtas
            .iter()
            .filter_map(|(digest, progress)| match progress {
                DtaProgress::Fetched => None,
                DtaProgress::Waiting(None) => Some(format!("d-ta {digest} (not asked yet)")),
                DtaProgress::Waiting(Some(reason)) => Some(format!("d-ta {digest} ({reason})")),
            })
            .collect();
        format!(
            "the server secret is not assembled yet; waiting for {}",
            waiting.join(", ")
        )
    }

    fn publish(&self, secret: ServerSecret) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .secret = Some(Arc::new(secret));
    }
}

/// Reads a D-TA's answer: a server share from `expected`, on a valid G2 point.
pub fn parse_share(body: &[u8], expected: Digest) -> Result<ServerSecretShare, String> {
    let answer: ServerShareAnswer = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a server-share answer: {e}"))?;
    if answer.kind != ShareKind::Server {
        return Err("the answer is not a server share (kind)".into());
    }
    if answer.dta != expected {
        return Err(format!(
            "the answer is from d-ta {}, not {expected}",
            answer.dta
        ));
    }
    let bytes = hex::decode(&answer.share).map_err(|e| format!("the share is not hex: {e}"))?;
    G2::from_bytes(&bytes)
        .map(ServerSecretShare)
        .map_err(|e| format!("the share is not a valid point: {e}"))
}

/// Asks `dta` for its share over Milagro TLS.
async fn fetch(
    identity: &LocalIdentity,
    dta: &DtaPeer,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<ServerSecretShare, String> {
    let addr = &dta.share_api;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let session = milagro_tls::connect(tcp, identity, dta.bc_digest, directory, options)
        .await
        .map_err(|e| format!("milagro tls with {addr}: {e}"))?;
    let request = http::Request::builder()
        .method("POST")
        .uri(SERVER_SHARE_PATH)
        .header("host", "dta")
        .header("content-type", "application/json")
        .body(bytes::Bytes::from(
            serde_json::to_vec(&NoOptions {}).map_err(|e| format!("request: {e}"))?,
        ))
        .map_err(|e| format!("request: {e}"))?;
    let response = milagro_tls::http::send(session, request)
        .await
        .map_err(|e| format!("request to {addr}: {e}"))?;
    if !response.status().is_success() {
        let reason = serde_json::from_slice::<ErrorBody>(response.body())
            .map_or_else(|_| "no reason given".to_owned(), |e| e.error_description);
        return Err(format!(
            "refused with {}: {reason}",
            response.status().as_u16()
        ));
    }
    parse_share(response.body(), dta.bc_digest)
}

/// How often a fetch in flight checks whether the server is stopping.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// [`fetch`], unless `shutdown` stops first (`None`).
async fn fetch_unless_stopped(
    identity: &LocalIdentity,
    dta: &DtaPeer,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
    shutdown: &Shutdown,
) -> Option<Result<ServerSecretShare, String>> {
    let stopped = async {
        while !shutdown.is_stopped() {
            tokio::time::sleep(STOP_CHECK).await;
        }
    };
    let limit = options.timeout + Duration::from_secs(5);
    tokio::select! {
        outcome = tokio::time::timeout(limit, fetch(identity, dta, directory, options)) => {
            Some(outcome.unwrap_or_else(|_| Err(format!("no answer within {limit:?}"))))
        }
        () = stopped => None,
    }
}

/// What the fetching thread needs from the service it runs in.
#[derive(Clone)]
pub struct FetchParts {
    /// The service's anchored identity (its Milagro TLS identity once anchored).
    pub identity: Arc<PartyIdentity>,
    /// Where its anchor stands.
    pub own_anchor: Arc<OwnAnchor>,
    /// Its state directory (its Milagro TLS identity file).
    pub state_dir: std::path::PathBuf,
    /// How often to poll, and the longest wait between failures.
    pub sync: SyncConfig,
    /// Where the D-TAs' anchors are looked up.
    pub directory: Arc<dyn PeerDirectory>,
    /// Confirmations a D-TA's anchor needs.
    pub min_peer_depth: u32,
    /// The D-TAs to ask, in the slot's order.
    pub dtas: Vec<DtaPeer>,
    /// Where the secret is published.
    pub slot: Arc<ServerSecretSlot>,
}

impl fmt::Debug for FetchParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchParts")
            .field("dtas", &self.dtas)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// The fetching thread's work: returns once the secret is published or `shutdown` stops.
pub fn run(parts: &FetchParts, shutdown: &Shutdown) {
    let Some(identity) = wait_for_identity(
        &parts.identity,
        &parts.own_anchor,
        &parts.state_dir,
        parts.sync.poll_interval,
        shutdown,
        "fetching the server secret",
    ) else {
        return;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start a runtime to fetch the server secret");
            return;
        }
    };
    let directory = parts.directory.clone();
    let options = Options {
        min_depth: parts.min_peer_depth,
        ..Options::default()
    };
    let slot = &parts.slot;
    let mut shares: Vec<Option<ServerSecretShare>> = vec![None; parts.dtas.len()];
    let mut backoff = Backoff::new(parts.sync.poll_interval, parts.sync.max_backoff);
    loop {
        for (i, dta) in parts.dtas.iter().enumerate() {
            if shares[i].is_some() {
                continue;
            }
            let outcome = runtime.block_on(fetch_unless_stopped(
                &identity,
                dta,
                directory.clone(),
                &options,
                shutdown,
            ));
            match outcome {
                None => return,
                Some(Ok(share)) => {
                    tracing::info!(dta = %dta.bc_digest, "obtained a server-secret share");
                    shares[i] = Some(share);
                    slot.set(i, DtaProgress::Fetched);
                    backoff.failures = 0;
                }
                Some(Err(reason)) => {
                    let before = slot.progress().get(i).map(|p| p.1.clone());
                    if before.as_ref() != Some(&DtaProgress::Waiting(Some(reason.clone()))) {
                        tracing::warn!(dta = %dta.bc_digest, %reason, "no server-secret share yet; retrying");
                    }
                    slot.set(i, DtaProgress::Waiting(Some(reason)));
                }
            }
        }
        let fetched: Option<Vec<ServerSecretShare>> = shares.iter().cloned().collect();
        if let Some(all) = fetched {
            match ServerSecret::combine(&all) {
                Ok(secret) => {
                    slot.publish(secret);
                    tracing::info!(dtas = all.len(), "server secret assembled; logins open");
                    return;
                }
                Err(error) => {
                    // Shares that cancel out: ask every D-TA again.
                    tracing::error!(%error, "the server-secret shares do not sum to a secret");
                    for (i, share) in shares.iter_mut().enumerate() {
                        *share = None;
                        let reason = format!("the shares do not sum to a secret: {error}");
                        slot.set(i, DtaProgress::Waiting(Some(reason)));
                    }
                }
            }
        }
        backoff.failures = backoff.failures.saturating_add(1);
        if shutdown.wait(backoff.delay()) {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use milagro_mpin::MasterShare;
    use serde_json::json;

    fn answer(kind: &str, dta: &Digest, share: &str) -> Vec<u8> {
        json!({ "kind": kind, "share": share, "dta": dta, "day": 20_000 })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn a_share_is_read_only_from_the_d_ta_asked_and_on_a_valid_point() {
        let dta = Digest::sha256(b"d-ta 1");
        let share = MasterShare::generate(&mut rand_core::OsRng).server_share();
        let hex_share = hex::encode(share.0.to_bytes());
        assert_eq!(
            parse_share(&answer("server", &dta, &hex_share), dta).unwrap(),
            share
        );
        let mut off_curve = share.0.to_bytes();
        off_curve[40] ^= 1;
        let other = Digest::sha256(b"d-ta 2");
        let refused = [
            (answer("client", &dta, &hex_share), "kind"),
            (answer("server", &other, &hex_share), "not"),
            (answer("server", &dta, "zz"), "hex"),
            (answer("server", &dta, &hex::encode(off_curve)), "point"),
            (answer("server", &dta, &hex_share[2..]), "point"),
            (b"<html>".to_vec(), "not a server-share answer"),
            (
                br#"{"kind": "server", "share": "00"}"#.to_vec(),
                "missing field",
            ),
        ];
        for (body, why) in refused {
            let error = parse_share(&body, dta).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn the_slot_reports_each_d_ta_until_the_secret_is_published() {
        let peers: Vec<DtaPeer> = [b"1", b"2"]
            .iter()
            .map(|n| DtaPeer::new(Digest::sha256(*n), "127.0.0.1:1".into()))
            .collect();
        let slot = ServerSecretSlot::new(&peers);
        slot.set(0, DtaProgress::Fetched);
        slot.set(1, DtaProgress::Waiting(Some("refused with 403".into())));
        let status = slot.status();
        assert_eq!(status.state, SecretState::Waiting);
        assert_eq!(status.dtas[0].state, ShareState::Fetched);
        assert_eq!(status.dtas[1].reason.as_deref(), Some("refused with 403"));
        let missing = slot.missing();
        assert!(
            missing.contains(&peers[1].bc_digest.to_string())
                && !missing.contains(&peers[0].bc_digest.to_string()),
            "{missing}"
        );
        assert!(slot.secret().is_none());
        let share = MasterShare::generate(&mut rand_core::OsRng).server_share();
        slot.publish(ServerSecret::combine(&[share]).unwrap());
        assert_eq!(slot.status().state, SecretState::Ready);
        assert!(slot.secret().is_some());
        assert!(
            !format!("{slot:?}").contains("G2"),
            "the secret is never shown"
        );
    }
}
