//! A service as a Milagro TLS party (feature `tls`): its own [`LocalIdentity`] from its
//! anchor, and a [`PeerDirectory`] over its own registry index and node.
//!
//! A service follows the chain itself, so it needs no TBS to look its peers up: the index
//! says which transaction anchors what, the node serves the transaction, its Merkle path
//! and the headers, and the proof is verified by SPV like any other anchor (the node is
//! the service's own, but verifying costs little and catches an index that disagrees with
//! it). A later Birth Certificate record of the same key in the index supersedes the
//! peer's certificate (the canary: compromised or retired).
//!
//! Assembling a proof takes several node calls (about 2 ms on loopback), and a party
//! talks to the same peers again and again, so [`IndexDirectory`] keeps each answer for
//! as long as its index's tip is the same block: the answer depends on nothing else, so
//! the cache never serves a stale one (a new block, a reorg or a superseding record all
//! move the tip first).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bitcoin::{BlockHash, Network, Txid};
use milagro_anchor::anchor_tx::anchor_nonce;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::proof::Expected;
use milagro_anchor::record::TxRecord;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::proofs::{anchor_proof, headers_from};
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::RecordStore;
use milagro_tls::{DirectoryError, LocalIdentity, PeerDirectory, Standing};

use crate::config::NodeConfig;
use crate::identity::PartyIdentity;
use crate::own_anchor::{signed_anchor, AnchorError, AnchorState, OwnAnchor};
use crate::sync::Shutdown;

/// Why a service cannot be a Milagro TLS party (yet).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsIdentityError {
    /// The pending anchor file could not be read.
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    /// The confirmed anchor is not the transaction the service signed and kept.
    #[error("the confirmed anchor {confirmed} is not the kept anchoring transaction {kept}")]
    NotKept {
        /// The anchor in the chain.
        confirmed: Txid,
        /// What the state directory holds.
        kept: String,
    },
    /// The nonce or the identity could not be rebuilt.
    #[error("cannot rebuild the milagro tls identity: {0}")]
    Rebuild(String),
}

/// The service's Milagro TLS identity: its key, its certificate and the nonce of the
/// signature of `confirmed`, its anchoring transaction, recomputed from the transaction
/// and the value it spends as kept in `state_dir`.
pub fn local_identity(
    party: &PartyIdentity,
    state_dir: &Path,
    confirmed: Txid,
) -> Result<LocalIdentity, TlsIdentityError> {
    let kept = signed_anchor(state_dir, party)?;
    let Some(signed) = kept.filter(|s| s.tx.compute_txid() == confirmed) else {
        return Err(TlsIdentityError::NotKept {
            confirmed,
            kept: "another or no transaction with its funding value".into(),
        });
    };
    let rebuild = |e: &dyn std::fmt::Display| TlsIdentityError::Rebuild(e.to_string());
    let nonce = anchor_nonce(party.secret_key(), &signed.tx, signed.funding_value)
        .map_err(|e| rebuild(&e))?;
    let record =
        TxRecord::from_own_tx(&signed.tx, signed.funding_value).map_err(|e| rebuild(&e))?;
    LocalIdentity::new(
        party.secret_key().clone(),
        party.bc().clone(),
        &record,
        nonce,
    )
    .map_err(|e| rebuild(&e))
}

/// Waits until `own_anchor` is confirmed, polling every `poll`, then rebuilds the
/// service's Milagro TLS identity from it ([`local_identity`]); `None` once `shutdown`
/// is stopped. A failure to rebuild is logged once per anchor (it will not change until
/// the anchor does) as `what` (e.g. "the share API") that cannot start.
pub fn wait_for_identity(
    party: &PartyIdentity,
    own_anchor: &OwnAnchor,
    state_dir: &Path,
    poll: Duration,
    shutdown: &Shutdown,
    what: &str,
) -> Option<Arc<LocalIdentity>> {
    let mut reported = None;
    loop {
        if let AnchorState::Confirmed(served) = own_anchor.get() {
            let txid = served.verified.txid();
            match local_identity(party, state_dir, txid) {
                Ok(identity) => return Some(Arc::new(identity)),
                Err(error) => {
                    if reported != Some(txid) {
                        tracing::error!(%error, "{what} cannot start");
                        reported = Some(txid);
                    }
                }
            }
        }
        if shutdown.wait(poll) {
            return None;
        }
    }
}

/// Answers kept at most, across all tips (the cache is emptied when full).
const MAX_CACHED: usize = 4096;

/// A [`PeerDirectory`] answering from the service's own index, proofs assembled from and
/// verified against its own node; answers are kept while the index's tip stays the same.
#[derive(Debug)]
pub struct IndexDirectory {
    node: BitcoindRpc,
    index: Arc<RedbStore>,
    network: Network,
    cache: Mutex<Cache>,
}

/// The answers given at one index tip.
#[derive(Debug, Default)]
struct Cache {
    tip: Option<BlockHash>,
    standings: HashMap<Txid, Standing>,
}

impl IndexDirectory {
    /// A directory over `index`, which follows `node` on `network`.
    pub fn new(node: BitcoindRpc, index: Arc<RedbStore>, network: Network) -> Self {
        Self {
            node,
            index,
            network,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// A directory over `index`, which follows the node of the service's `[node]`.
    pub fn for_node(node: &NodeConfig, index: Arc<RedbStore>) -> Self {
        let rpc = BitcoindRpc::with_cookie(&node.rpc_url, &node.rpc_cookie);
        Self::new(rpc, index, node.network)
    }

    /// The answer for `txid`, assembled and verified afresh.
    fn look_up(&self, txid: Txid) -> Result<Standing, DirectoryError> {
        let unavailable = |e: &dyn std::fmt::Display| DirectoryError::Unavailable(e.to_string());
        let invalid = |e: &dyn std::fmt::Display| DirectoryError::Invalid {
            txid,
            reason: e.to_string(),
        };
        let record = self
            .index
            .by_txid(&txid)
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .next()
            .ok_or(DirectoryError::NotAnchored(txid))?;
        let proof = anchor_proof(&self.node, &record).map_err(|e| unavailable(&e))?;
        let headers =
            headers_from(&self.node, self.network, record.height).map_err(|e| unavailable(&e))?;
        let expected = Expected {
            kind: record.kind,
            digest: record.digest,
            signer: Some(record.signer.to_public_key().map_err(|e| invalid(&e))?),
        };
        let anchor = proof.verify(&expected, &headers).map_err(|e| invalid(&e))?;
        let superseded_by = self
            .index
            .by_signer(&record.signer)
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .filter(|later| {
                later.kind == RecordKind::BirthCertificate
                    && later.height > record.height
                    && later.digest != record.digest
            })
            .min_by_key(|later| (later.height, later.txid))
            .map(|later| later.txid);
        Ok(Standing {
            anchor,
            superseded_by,
        })
    }
}

impl PeerDirectory for IndexDirectory {
    fn standing(&self, txid: Txid) -> Result<Standing, DirectoryError> {
        let tip = self
            .index
            .tip()
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))?
            .map(|t| t.hash);
        {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.tip != tip {
                *cache = Cache {
                    tip,
                    standings: HashMap::new(),
                };
            } else if let Some(standing) = cache.standings.get(&txid) {
                return Ok(standing.clone());
            }
        }
        // Only answers are kept: a refusal may be a node that is briefly unreachable.
        let standing = self.look_up(txid)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.tip == tip {
            if cache.standings.len() >= MAX_CACHED {
                cache.standings.clear();
            }
            cache.standings.insert(txid, standing.clone());
        }
        Ok(standing)
    }
}
