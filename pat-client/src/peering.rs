//! Talking to other anchored parties over Milagro TLS: this device's identity, and a peer
//! directory that asks the TBS and checks every answer by SPV.
//!
//! A device can open (or accept) a [`milagro_tls`] session once its own Birth Certificate
//! is anchored by a transaction it signed itself (direct mode): the key agreement uses the
//! nonce of that signature, recomputed from the device key, the signed transaction and the
//! value it spends ([`Device::tls_identity`]). A batch member has no signature of its own
//! on chain and cannot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bitcoin::{Network, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::proof::{AnchorProof, Expected, HeaderChain as _, Headers, VerifiedAnchor};
use milagro_anchor::record::RecordCandidate;
use milagro_tls::{DirectoryError, LocalIdentity, PeerDirectory, Standing};
use milagro_wire::tbs::registry::{Proof, Records};

use crate::error::{Error, Step};
use crate::http::ServiceClient;
use crate::sources::{self, check_registry, registry_clients};
use crate::spv::{extend_headers, fetch_headers};
use crate::state::{ChainSeen, ChainSources, Device, Progress};
use milagro_http_client::Outbound;

impl Device {
    /// This device as a Milagro TLS party: its key, its Birth Certificate and the nonce of
    /// its own anchoring signature.
    pub fn tls_identity(&self) -> Result<LocalIdentity, Error> {
        let unavailable = |why: &str| Error::Unsupported(format!("milagro tls: {why}"));
        let (tx, funding) = match &self.progress {
            Some(Progress::Direct {
                tx: Some(tx),
                funding: Some(funding),
                ..
            }) => (tx, *funding),
            Some(Progress::Direct { .. }) => {
                return Err(unavailable(
                    "this device does not hold its signed anchor and the value it spends \
                     (it resumed an enrolment another run signed)",
                ))
            }
            Some(Progress::Batch) => {
                return Err(unavailable(
                    "a batch member has no signature of its own on chain",
                ))
            }
            None => return Err(unavailable("this device is not enrolled yet")),
        };
        LocalIdentity::from_anchor_tx(self.key.clone(), self.bc.clone(), tx, funding)
            .map_err(|e| unavailable(&e.to_string()))
    }
}

/// A [`PeerDirectory`] backed by a TBS: the anchor proof (its signer proven by the output
/// it spends) and the headers it serves are checked by SPV from the network's pinned
/// checkpoint under the consensus rules, and the chain must keep at least the work of
/// any chain this directory (or the device it was made for) saw before. So the TBS cannot
/// make up an anchor or its depth on a chain of its own without outspending the real
/// chain's work since the checkpoint. What one TBS can still do is lie by omission:
/// withhold new blocks (depths then stay low, and a superseding certificate in them goes
/// unseen) or hide a later certificate of the peer's key (the canary). Given
/// [`ChainSources`] ([`TbsDirectory::with_sources`]), every chain is also checked against
/// each Electrum server, and a peer's later certificates are looked up in every registry:
/// the union decides ([`crate::sources`], `docs/threat-model.md`).
pub struct TbsDirectory {
    tbs: ServiceClient,
    network: Network,
    /// The Electrum servers every chain is checked against.
    electrum: Vec<String>,
    registries: Vec<Registry>,
    cache_for: Duration,
    cache: Mutex<Vec<(Txid, Instant, Standing)>>,
    /// The header chain checked so far: each lookup only fetches what is new.
    headers: Mutex<Option<Headers>>,
    /// The best chain accepted so far: none with less work is accepted after it.
    best: Mutex<Option<ChainSeen>>,
}

/// A registry asked besides the TBS, pinned by its certificate digest.
struct Registry {
    client: ServiceClient,
    digest: Digest,
    /// Its certificate was checked (digest, role, status, anchor by SPV).
    checked: AtomicBool,
}

/// Why one attempt at a lookup failed.
enum Attempt {
    /// The answer is final.
    Final(DirectoryError),
    /// The answer may differ against a newer chain (a proof that does not verify after a
    /// reorg, a record above the chain's tip): fetch the chain afresh and try once more.
    Stale(DirectoryError),
}

impl From<DirectoryError> for Attempt {
    fn from(error: DirectoryError) -> Self {
        Self::Final(error)
    }
}

impl TbsDirectory {
    /// A directory asking `tbs` afresh for every lookup.
    pub fn new(tbs: ServiceClient, network: Network) -> Self {
        Self::caching(tbs, network, Duration::ZERO)
    }

    /// The same, reusing an answer for `cache_for`: a peer's new certificate (or a reorg)
    /// is then noticed up to that much later.
    pub fn caching(tbs: ServiceClient, network: Network, cache_for: Duration) -> Self {
        Self {
            tbs,
            network,
            electrum: Vec::new(),
            registries: Vec::new(),
            cache_for,
            cache: Mutex::new(Vec::new()),
            headers: Mutex::new(None),
            best: Mutex::new(None),
        }
    }

    /// The directory of `device`: its TBS and sources, starting from the best chain it
    /// accepted.
    /// Its TBS and registries are reached under the HTTP policy `outbound`.
    pub fn for_device(
        device: &Device,
        outbound: &Outbound,
        cache_for: Duration,
    ) -> Result<Self, Error> {
        let provisioning = device.provisioning();
        let tbs = ServiceClient::with_outbound(
            &provisioning.tbs_url,
            outbound,
            crate::DEFAULT_REQUEST_TIMEOUT,
        )?;
        let directory = Self::caching(tbs, provisioning.network, cache_for)
            .with_sources(&provisioning.sources)?;
        *directory
            .best
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = device.chain_seen().cloned();
        Ok(directory)
    }

    /// Checks every chain against the Electrum servers of `sources` and asks its
    /// registries too (each must serve the certificate it is pinned to).
    pub fn with_sources(mut self, sources: &ChainSources) -> Result<Self, Error> {
        self.registries = registry_clients(&self.tbs, sources)?
            .into_iter()
            .map(|(client, digest)| Registry {
                client,
                digest,
                checked: AtomicBool::new(false),
            })
            .collect();
        self.electrum.clone_from(&sources.electrum);
        Ok(self)
    }

    /// The best chain this directory accepted, and which sources agreed on it.
    pub fn chain_seen(&self) -> Option<ChainSeen> {
        self.best
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Looks `txid` up against the held header chain, extended to the TBS's tip; if the
    /// extension does not link or the answer may be stale against it (a reorg), once
    /// more against a chain fetched afresh from the checkpoint. Lookups take turns on the
    /// chain.
    fn look_up(&self, txid: Txid) -> Result<Standing, DirectoryError> {
        let unavailable = |e: Error| DirectoryError::Unavailable(e.to_string());
        let mut held = self.headers.lock().unwrap_or_else(PoisonError::into_inner);
        let extended = match held.take() {
            Some(chain) => extend_headers(&self.tbs, self.network, chain).ok(),
            None => None,
        };
        let (chain, fresh) = match extended {
            Some(chain) => (chain, false),
            None => (
                fetch_headers(&self.tbs, self.network).map_err(unavailable)?,
                true,
            ),
        };
        let headers = held.insert(self.accept(chain)?);
        match self.standing_against(txid, headers) {
            Ok(standing) => Ok(standing),
            Err(Attempt::Final(error)) => Err(error),
            Err(Attempt::Stale(error)) if fresh => Err(error),
            Err(Attempt::Stale(_)) => {
                let chain = fetch_headers(&self.tbs, self.network).map_err(unavailable)?;
                let headers = held.insert(self.accept(chain)?);
                self.standing_against(txid, headers)
                    .map_err(|(Attempt::Final(e) | Attempt::Stale(e))| e)
            }
        }
    }

    /// Accepts `chain` if it has at least the work of the best chain accepted so far and
    /// every Electrum source agrees with it, and remembers it.
    fn accept(&self, chain: Headers) -> Result<Headers, DirectoryError> {
        let mut best = self.best.lock().unwrap_or_else(PoisonError::into_inner);
        let checked = sources::accept(&self.tbs, chain, best.as_ref(), &self.electrum)
            .map_err(|e| DirectoryError::Unavailable(format!("the tbs's headers: {e}")))?;
        *best = Some(checked.seen);
        Ok(checked.headers)
    }

    fn standing_against(&self, txid: Txid, headers: &Headers) -> Result<Standing, Attempt> {
        let anchor = self.verified_record(txid, headers)?;
        let superseded_by = self.later_certificate(&anchor, headers)?;
        Ok(Standing {
            anchor,
            superseded_by,
        })
    }

    /// The registries to ask, the TBS first, each extra one's certificate checked once.
    fn registries(&self, headers: &Headers) -> Result<Vec<&ServiceClient>, DirectoryError> {
        let mut all = vec![&self.tbs];
        for registry in &self.registries {
            if !registry.checked.load(Ordering::Acquire) {
                check_registry(&registry.client, registry.digest, headers)
                    .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
                registry.checked.store(true, Ordering::Release);
            }
            all.push(&registry.client);
        }
        Ok(all)
    }

    /// The record in `txid`, its proof (from the first registry that has it) verified
    /// against `headers`.
    fn verified_record(&self, txid: Txid, headers: &Headers) -> Result<VerifiedAnchor, Attempt> {
        for registry in self.registries(headers)? {
            match verified_record_from(registry, txid, headers) {
                Err(Attempt::Final(DirectoryError::NotAnchored(_))) => continue,
                answer => return answer,
            }
        }
        Err(Attempt::Final(DirectoryError::NotAnchored(txid)))
    }

    /// The first Birth Certificate record of `anchor`'s signer in a later block that
    /// verifies, from any registry (the union of what they list).
    fn later_certificate(
        &self,
        anchor: &VerifiedAnchor,
        headers: &Headers,
    ) -> Result<Option<Txid>, Attempt> {
        let signer = anchor.signer();
        for registry in self.registries(headers)? {
            let records: Records = registry
                .get(Step::LookUpPeer, &format!("/v1/records?signer={signer}"))
                .and_then(|answer| answer.read(Step::LookUpPeer))
                .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
            let later = records.records.into_iter().filter_map(|r| {
                let txid = r.txid.parse::<Txid>().ok()?;
                (r.height > anchor.height()).then_some((txid, r.height))
            });
            for (txid, height) in later {
                if height > headers.tip_height() {
                    // The registry is ahead of the chain checked: the record cannot be
                    // judged yet, and ignoring it could accept a revoked peer.
                    return Err(Attempt::Stale(DirectoryError::Unavailable(format!(
                        "registry {} lists a record of key {signer} at height {height}, above \
                         the tip of the chain checked ({})",
                        registry.base_url(),
                        headers.tip_height()
                    ))));
                }
                // Only a later certificate that is really on this chain counts: a
                // registry must not be able to shut a peer out with a made-up record.
                if let Ok(later) = verified_record_from(registry, txid, headers) {
                    if later.kind() == RecordKind::BirthCertificate
                        && later.signer() == signer
                        && later.digest() != anchor.digest()
                    {
                        return Ok(Some(txid));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// The record in `txid` as `registry` proves it, verified against `headers`.
fn verified_record_from(
    registry: &ServiceClient,
    txid: Txid,
    headers: &Headers,
) -> Result<VerifiedAnchor, Attempt> {
    let invalid = |reason: String| Attempt::Stale(DirectoryError::Invalid { txid, reason });
    let answer = match registry.get(Step::LookUpPeer, &format!("/v1/proofs/{txid}")) {
        Ok(answer) => answer,
        Err(Error::Server { status: 404, .. }) => {
            return Err(Attempt::Final(DirectoryError::NotAnchored(txid)))
        }
        Err(e) => return Err(Attempt::Final(DirectoryError::Unavailable(e.to_string()))),
    };
    let proof: Proof = answer
        .read(Step::LookUpPeer)
        .map_err(|e| invalid(e.to_string()))?;
    let proof = AnchorProof::from_json(&proof.anchor_proof).map_err(|e| invalid(e.to_string()))?;
    let record = RecordCandidate::from_tx(proof.tx()).map_err(|e| invalid(e.to_string()))?;
    // The signer is proven by the verification below (the funding output it spends).
    let expected = Expected {
        kind: record.payload().kind,
        digest: record.payload().digest,
        signer: None,
    };
    proof
        .verify(&expected, headers)
        .map_err(|e| invalid(e.to_string()))
}

impl PeerDirectory for TbsDirectory {
    fn standing(&self, txid: Txid) -> Result<Standing, DirectoryError> {
        if !self.cache_for.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, _, standing)) = cache
                .iter()
                .find(|(t, at, _)| *t == txid && at.elapsed() < self.cache_for)
            {
                return Ok(standing.clone());
            }
        }
        let standing = self.look_up(txid)?;
        if !self.cache_for.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.retain(|(t, at, _)| *t != txid && at.elapsed() < self.cache_for);
            cache.push((txid, Instant::now(), standing.clone()));
        }
        Ok(standing)
    }
}
