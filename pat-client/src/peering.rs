//! Talking to other anchored parties over Milagro TLS: this device's identity, and a peer
//! directory that asks the TBS and checks every answer by SPV.
//!
//! A device can open (or accept) a [`milagro_tls`] session once its own Birth Certificate
//! is anchored by a transaction it signed itself (direct mode): the key agreement uses the
//! nonce of that signature, recomputed from the device key, the signed transaction and the
//! value it spends ([`Device::tls_identity`]). A batch member has no signature of its own
//! on chain and cannot.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bitcoin::{Network, Txid};
use milagro_anchor::payload::RecordKind;
use milagro_anchor::proof::{AnchorProof, AnchorProofJson, Expected, Headers, VerifiedAnchor};
use milagro_anchor::record::RecordCandidate;
use milagro_tls::{DirectoryError, LocalIdentity, PeerDirectory, Standing};
use serde_json::Value;

use crate::error::{Error, Step};
use crate::http::ServiceClient;
use crate::spv::{extend_headers, fetch_headers};
use crate::state::{Device, Progress};

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
/// any chain this directory saw before. So the TBS cannot make up an anchor or its depth
/// on a chain of its own without outspending the real chain's work since the checkpoint.
/// What it can still do is lie by omission: withhold new blocks (depths then stay low,
/// and a superseding certificate in them goes unseen) or hide a later certificate of the
/// peer's key (the canary). An independent header source and a second registry close
/// those gaps (`docs/threat-model.md`).
pub struct TbsDirectory {
    tbs: ServiceClient,
    network: Network,
    cache_for: Duration,
    cache: Mutex<Vec<(Txid, Instant, Standing)>>,
    /// The header chain checked so far: each lookup only fetches what is new.
    headers: Mutex<Option<Headers>>,
    /// The most work of any chain accepted so far.
    best_work: Mutex<Option<bitcoin::Work>>,
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
            cache_for,
            cache: Mutex::new(Vec::new()),
            headers: Mutex::new(None),
            best_work: Mutex::new(None),
        }
    }

    /// Looks `txid` up against the held header chain, extended to the TBS's tip; if the
    /// extension does not link or the answer does not verify against it (a reorg), once
    /// more against a chain fetched afresh from genesis. Lookups take turns on the chain.
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
        let headers = held.insert(self.at_least_as_much_work(chain)?);
        match self.standing_against(txid, headers) {
            Err(DirectoryError::Invalid { .. }) if !fresh => {
                let chain = fetch_headers(&self.tbs, self.network).map_err(unavailable)?;
                let headers = held.insert(self.at_least_as_much_work(chain)?);
                self.standing_against(txid, headers)
            }
            answer => answer,
        }
    }

    /// Refuses a chain with less work than one this directory already accepted (the TBS
    /// went back to a weaker branch, or is withholding blocks), and remembers the most.
    fn at_least_as_much_work(&self, chain: Headers) -> Result<Headers, DirectoryError> {
        let mut best = self
            .best_work
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        chain
            .check_work(*best)
            .map_err(|e| DirectoryError::Unavailable(format!("the tbs's headers: {e}")))?;
        *best = Some(chain.chain_work());
        Ok(chain)
    }

    fn standing_against(&self, txid: Txid, headers: &Headers) -> Result<Standing, DirectoryError> {
        let anchor = self.verified_record(txid, headers)?;
        let superseded_by = self.later_certificate(&anchor, headers)?;
        Ok(Standing {
            anchor,
            superseded_by,
        })
    }

    /// The record in `txid`, its proof verified against `headers`.
    fn verified_record(
        &self,
        txid: Txid,
        headers: &Headers,
    ) -> Result<VerifiedAnchor, DirectoryError> {
        let invalid = |reason: String| DirectoryError::Invalid { txid, reason };
        let answer = match self
            .tbs
            .get(Step::LookUpPeer, &format!("/v1/proofs/{txid}"))
        {
            Ok(answer) => answer,
            Err(Error::Server { status: 404, .. }) => {
                return Err(DirectoryError::NotAnchored(txid))
            }
            Err(e) => return Err(DirectoryError::Unavailable(e.to_string())),
        };
        let proof: AnchorProofJson = answer
            .body
            .get("anchor_proof")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| invalid(format!("anchor_proof: {e}")))?
            .ok_or_else(|| invalid("no anchor_proof".into()))?;
        let proof = AnchorProof::from_json(&proof).map_err(|e| invalid(e.to_string()))?;
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

    /// The first Birth Certificate record of `anchor`'s signer in a later block that
    /// verifies.
    fn later_certificate(
        &self,
        anchor: &VerifiedAnchor,
        headers: &Headers,
    ) -> Result<Option<Txid>, DirectoryError> {
        let signer = anchor.signer();
        let records = self
            .tbs
            .get(Step::LookUpPeer, &format!("/v1/records?signer={signer}"))
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
        let later = records
            .body
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("height").and_then(Value::as_u64) > Some(u64::from(anchor.height())))
            .filter_map(|r| r.get("txid").and_then(Value::as_str)?.parse::<Txid>().ok());
        for txid in later {
            // Only a later certificate that is really on this chain counts: a TBS must
            // not be able to shut a peer out with a made-up record.
            if let Ok(later) = self.verified_record(txid, headers) {
                if later.kind() == RecordKind::BirthCertificate
                    && later.signer() == signer
                    && later.digest() != anchor.digest()
                {
                    return Ok(Some(txid));
                }
            }
        }
        Ok(None)
    }
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
