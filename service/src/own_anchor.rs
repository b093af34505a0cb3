//! Anchoring a service's own Birth Certificate, exactly once, across restarts and reorgs.
//!
//! Every service (the TBS, the IdP, each D-TA) runs this rule; what it publishes,
//! [`OwnAnchor`], is what the service serves at `/.well-known/milagro/birth-certificate`.
//! The service's chain loop calls [`AnchorKeeper::tick`] after every poll that brought the index to
//! the node's tip. The rule, in order:
//!
//! 1. If the index holds a record of the certificate's digest signed by the service key,
//!    the service is anchored: the earliest such record is verified by SPV against the node's
//!    headers and published as [`AnchorState::Confirmed`]. Nothing is sent.
//! 2. Otherwise, if `state_dir/anchor.json` holds a pending anchor: if the node's mempool
//!    has it, wait. If not (the node restarted without its mempool, or a reorg dropped it
//!    and it was evicted), re-broadcast the *same* transaction, after the wallet payment
//!    that funded it if there was one. "Already in the chain" means it confirmed after the
//!    last poll: the next poll indexes it.
//! 3. If that re-broadcast fails because the transaction's inputs are spent or gone, the
//!    index is synced once more and checked again (a block may have confirmed it in the
//!    meantime); only if it is still absent can the pending anchor never confirm, and a new
//!    one is made (step 4).
//! 4. With no pending anchor: fund the service key (a confirmed output of its own, else a
//!    payment from the node wallet), build and sign the anchoring transaction, write it to
//!    `anchor.json` atomically, and only then broadcast it.
//!
//! A crash between any two steps therefore never leads to two anchors: a transaction is
//! on disk before it is on the network, and a restart re-broadcasts it instead of making
//! another. The worst a crash costs is one unused wallet payment to the service key, which the
//! next anchor spends.

use std::path::PathBuf;
use std::sync::Arc;

use bitcoin::consensus::encode;
use bitcoin::{FeeRate, Network, Transaction, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_anchor::proof::ProofError;
use milagro_registry::anchoring::{prepare_anchor, PrepareError};
use milagro_registry::bitcoind::{BitcoindRpc, Resent};
use milagro_registry::chain::{ChainError, ChainSource};
use milagro_registry::follower::{Follower, SyncError};
use milagro_registry::proofs::{anchor_proof, headers_from, AssembleError};
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::{IndexedRecord, RecordStore, StoreError};
use serde::{Deserialize, Serialize};

use std::sync::{PoisonError, RwLock};

use milagro_anchor::proof::{AnchorProofJson, VerifiedAnchor};

use crate::files::{self, FileError};
use crate::identity::PartyIdentity;

/// Where the service's own anchor stands.
#[derive(Debug, Clone, Default)]
pub enum AnchorState {
    /// No anchoring transaction yet (the node or its wallet has not been reachable).
    #[default]
    None,
    /// Broadcast, not yet in the index.
    Pending {
        /// The anchoring transaction.
        txid: Txid,
    },
    /// In the index, and verified by SPV against the node's headers.
    Confirmed(Box<ServedAnchor>),
}

/// The service's anchor as served at `/.well-known/milagro/birth-certificate`.
#[derive(Debug, Clone)]
pub struct ServedAnchor {
    /// The verdict of verifying `proof` (at the depth of that moment).
    pub verified: VerifiedAnchor,
    /// The self-contained proof.
    pub proof: AnchorProofJson,
}

/// The service's own anchor, shared between the chain loop (writer) and handlers (readers).
#[derive(Debug, Default)]
pub struct OwnAnchor(RwLock<AnchorState>);

impl OwnAnchor {
    /// The current state.
    pub fn get(&self) -> AnchorState {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the anchor is confirmed (and verified).
    pub fn is_confirmed(&self) -> bool {
        matches!(self.get(), AnchorState::Confirmed(_))
    }

    fn set(&self, state: AnchorState) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = state;
    }
}

/// File name of the pending anchor in the state directory.
pub const ANCHOR_FILE: &str = "anchor.json";

/// The anchoring transaction as persisted before it is broadcast.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingAnchor {
    digest: Digest,
    txid: Txid,
    /// The signed transaction, consensus-encoded in hex.
    tx: String,
    /// The wallet payment it spends, if the wallet had to fund the key.
    funding_tx: Option<String>,
    /// The value of the output it spends (the sighash commits to it): with the key and
    /// the transaction it recomputes the anchoring signature's nonce ([`signed_anchor`]).
    /// Absent from files written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    funding_value_sat: Option<u64>,
}

/// The service's own anchoring transaction as persisted, with the value its first input
/// spends: what recomputes the nonce of the key's anchoring signature (the long-term
/// secret of ECDH/YAK over Bitcoin, see `milagro_anchor::anchor_tx::anchor_nonce`).
#[derive(Debug, Clone)]
pub struct SignedAnchor {
    /// The signed anchoring transaction.
    pub tx: Transaction,
    /// The value of the output its first input spends.
    pub funding_value: bitcoin::Amount,
}

/// The anchoring transaction `state_dir/anchor.json` holds for `party`, if any.
///
/// The funding value comes from the file, or, for files written before it was recorded,
/// from the wallet payment the file keeps; `None` if neither says it.
pub fn signed_anchor(
    state_dir: &std::path::Path,
    party: &PartyIdentity,
) -> Result<Option<SignedAnchor>, AnchorError> {
    let path = state_dir.join(ANCHOR_FILE);
    let corrupt = |detail: String| AnchorError::Corrupt {
        path: path.clone(),
        detail,
    };
    let Some(pending) = read_pending_file(&path, party)? else {
        return Ok(None);
    };
    let tx: Transaction =
        encode::deserialize_hex(&pending.tx).map_err(|e| corrupt(e.to_string()))?;
    let spent = tx
        .input
        .first()
        .map(|input| input.previous_output)
        .ok_or_else(|| corrupt("the anchoring transaction has no input".into()))?;
    let funding_value = match (pending.funding_value_sat, &pending.funding_tx) {
        (Some(sat), _) => bitcoin::Amount::from_sat(sat),
        (None, Some(funding)) => {
            let funding: Transaction =
                encode::deserialize_hex(funding).map_err(|e| corrupt(e.to_string()))?;
            let vout = usize::try_from(spent.vout).unwrap_or(usize::MAX);
            match funding.output.get(vout) {
                Some(out) if funding.compute_txid() == spent.txid => out.value,
                _ => return Ok(None),
            }
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(SignedAnchor { tx, funding_value }))
}

/// Reads a pending anchor file, checking that it anchors `party`'s certificate.
fn read_pending_file(
    path: &std::path::Path,
    party: &PartyIdentity,
) -> Result<Option<PendingAnchor>, AnchorError> {
    let corrupt = |detail: String| AnchorError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FileError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            }
            .into())
        }
    };
    let pending: PendingAnchor = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if pending.digest != party.digest() {
        return Err(corrupt(format!(
            "it anchors {}, not this service's birth certificate {}",
            pending.digest,
            party.digest()
        )));
    }
    Ok(Some(pending))
}

/// Why a step of the anchoring rule failed; it is retried at the next poll.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The node failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The index failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Syncing the index before a decision failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The proof of the indexed anchor could not be assembled.
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    /// The indexed anchor does not verify (the node serves inconsistent data).
    #[error("the service's anchor in the index does not verify: {0}")]
    Verify(#[from] ProofError),
    /// No anchoring transaction could be prepared (e.g. the node wallet is empty).
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// `anchor.json` could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// `anchor.json` does not parse.
    #[error("{} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl AnchorError {
    /// Whether the failure is the node being unreachable.
    pub fn node_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Chain(ChainError::Unreachable(_))
                | Self::Sync(SyncError::Chain(ChainError::Unreachable(_)))
                | Self::Assemble(AssembleError::Chain(ChainError::Unreachable(_)))
        )
    }
}

/// Runs the anchoring rule; the chain loop owns it. `I` is the service's identity (its
/// [`PartyIdentity`], possibly inside a richer type).
#[derive(Debug)]
pub struct AnchorKeeper<I> {
    identity: Arc<I>,
    shared: Arc<OwnAnchor>,
    path: PathBuf,
    fee_rate: FeeRate,
    network: Network,
}

impl<I: AsRef<PartyIdentity>> AnchorKeeper<I> {
    /// A keeper publishing to `shared`, keeping its pending anchor in `state_dir`.
    pub fn new(
        identity: Arc<I>,
        shared: Arc<OwnAnchor>,
        state_dir: &std::path::Path,
        fee_rate: FeeRate,
        network: Network,
    ) -> Self {
        Self {
            identity,
            shared,
            path: state_dir.join(ANCHOR_FILE),
            fee_rate,
            network,
        }
    }

    /// Applies the rule once; call it only when the index has reached the node's tip.
    pub fn tick(
        &self,
        follower: &Follower<BitcoindRpc, Arc<RedbStore>>,
        max_blocks: u32,
    ) -> Result<(), AnchorError> {
        let node = follower.chain();
        if let Some(record) = self.indexed(follower.store())? {
            return self.confirm(node, &record);
        }
        if let Some(pending) = self.read_pending()? {
            // "pending" is published only once the transaction is known to be out there,
            // so whoever sees it (a test about to mine, an operator) can rely on it.
            let published = AnchorState::Pending { txid: pending.txid };
            if node.in_mempool(&pending.txid)? {
                self.shared.set(published);
                return Ok(());
            }
            match self.rebroadcast(node, &pending)? {
                Resent::Accepted => {
                    tracing::warn!(txid = %pending.txid, "re-broadcast the service's anchor, which had left the mempool");
                    self.shared.set(published);
                    return Ok(());
                }
                Resent::AlreadyInChain => {
                    self.shared.set(published);
                    return Ok(());
                }
                Resent::InputsGone(_) => {
                    follower.sync(max_blocks, |_| {})?;
                    if let Some(record) = self.indexed(follower.store())? {
                        return self.confirm(node, &record);
                    }
                    tracing::warn!(txid = %pending.txid, "the pending anchor can never confirm (its inputs are spent or gone); anchoring anew");
                }
            }
        }
        self.anchor_anew(node)
    }

    fn party(&self) -> &PartyIdentity {
        (*self.identity).as_ref()
    }

    /// The earliest indexed record of our digest signed by our key.
    fn indexed(&self, store: &impl RecordStore) -> Result<Option<IndexedRecord>, AnchorError> {
        let key = self.party().public_key();
        Ok(store
            .by_digest(&self.party().digest())?
            .into_iter()
            .filter(|r| r.signer == key && r.kind == RecordKind::BirthCertificate)
            .min_by_key(|r| (r.height, r.txid)))
    }

    /// Verifies the indexed record by SPV and publishes it (unless already published).
    fn confirm(&self, node: &BitcoindRpc, record: &IndexedRecord) -> Result<(), AnchorError> {
        if let AnchorState::Confirmed(served) = self.shared.get() {
            if served.verified.txid() == record.txid
                && served.verified.block_hash() == record.block_hash
            {
                return Ok(());
            }
        }
        let proof = anchor_proof(node, record)?;
        let headers = headers_from(node, self.network, record.height)?;
        let verified = self.party().bc().verify_anchor(&proof, &headers)?;
        tracing::info!(txid = %verified.txid(), height = verified.height(), "the birth certificate is anchored");
        self.shared
            .set(AnchorState::Confirmed(Box::new(ServedAnchor {
                verified,
                proof: proof.to_json(),
            })));
        Ok(())
    }

    fn read_pending(&self) -> Result<Option<PendingAnchor>, AnchorError> {
        read_pending_file(&self.path, self.party())
    }

    fn corrupt(&self, detail: String) -> AnchorError {
        AnchorError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    fn rebroadcast(
        &self,
        node: &BitcoindRpc,
        pending: &PendingAnchor,
    ) -> Result<Resent, AnchorError> {
        let decode = |hex: &str| -> Result<Transaction, AnchorError> {
            encode::deserialize_hex(hex).map_err(|e| self.corrupt(e.to_string()))
        };
        let funding = pending.funding_tx.as_deref().map(decode).transpose()?;
        Ok(node.resend_anchor(funding.as_ref(), &decode(&pending.tx)?)?)
    }

    fn anchor_anew(&self, node: &BitcoindRpc) -> Result<(), AnchorError> {
        let payload = Payload::new(RecordKind::BirthCertificate, self.party().digest());
        let prepared = prepare_anchor(node, self.party().secret_key(), &payload, self.fee_rate)?;
        let tx = &prepared.anchor.tx;
        let pending = PendingAnchor {
            digest: self.party().digest(),
            txid: tx.compute_txid(),
            tx: encode::serialize_hex(tx),
            funding_tx: prepared.funding_tx.as_ref().map(encode::serialize_hex),
            funding_value_sat: Some(prepared.funding.value.to_sat()),
        };
        let json = serde_json::to_vec_pretty(&pending).map_err(|e| self.corrupt(e.to_string()))?;
        files::write_atomically(&self.path, &json)?;
        node.broadcast(tx)?;
        self.shared.set(AnchorState::Pending { txid: pending.txid });
        tracing::info!(txid = %pending.txid, fee_sat = prepared.anchor.fee.to_sat(), "broadcast the service's anchor");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bitcoin::{absolute, transaction, Amount, OutPoint, TxIn, TxOut};
    use milagro_anchor::anchor_tx::{anchor_nonce, build_anchor_tx, p2wpkh_script, FundingUtxo};
    use milagro_anchor::birth_certificate::Role;

    use super::*;
    use crate::identity::PartyKind;

    #[test]
    fn the_kept_anchor_gives_its_funding_value_and_older_files_their_wallet_payment() {
        let dir = tempfile::tempdir().unwrap();
        let kind = PartyKind {
            role: Role::Dta,
            key_file: "dta.key",
        };
        let party = PartyIdentity::load_or_create(kind, dir.path(), "D", "https://d.test", 1);
        let party = party.unwrap();
        assert!(signed_anchor(dir.path(), &party).unwrap().is_none());
        let value = Amount::from_sat(20_000);
        let funding_tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn::default()],
            output: vec![TxOut {
                value,
                script_pubkey: p2wpkh_script(&party.public_key()),
            }],
        };
        let funding = FundingUtxo {
            outpoint: OutPoint::new(funding_tx.compute_txid(), 0),
            value,
        };
        let payload = Payload::new(RecordKind::BirthCertificate, party.digest());
        let fee_rate = FeeRate::from_sat_per_vb_u32(2);
        let tx = build_anchor_tx(party.secret_key(), &funding, &payload, fee_rate, None);
        let tx = tx.unwrap().tx;
        let keep = |funding_value_sat: Option<u64>, funding: Option<&Transaction>| {
            let pending = PendingAnchor {
                digest: party.digest(),
                txid: tx.compute_txid(),
                tx: encode::serialize_hex(&tx),
                funding_tx: funding.map(encode::serialize_hex),
                funding_value_sat,
            };
            let json = serde_json::to_vec(&pending).unwrap();
            std::fs::write(dir.path().join(ANCHOR_FILE), json).unwrap();
        };

        keep(Some(value.to_sat()), None);
        let kept = signed_anchor(dir.path(), &party).unwrap().unwrap();
        assert_eq!(
            (kept.tx.compute_txid(), kept.funding_value),
            (tx.compute_txid(), value)
        );
        assert!(anchor_nonce(party.secret_key(), &kept.tx, kept.funding_value).is_ok());
        // A file from before the value was kept: the wallet payment it spends says it.
        keep(None, Some(&funding_tx));
        let kept = signed_anchor(dir.path(), &party).unwrap().unwrap();
        assert_eq!(kept.funding_value, value);
        keep(None, None);
        assert!(signed_anchor(dir.path(), &party).unwrap().is_none());
    }
}
