//! Anchoring signed checkpoints of the audit log, each exactly once, across restarts and
//! reorgs.
//!
//! The service's chain loop calls [`tick`] after every poll that brought the index to the
//! node's tip (after logging whatever a crash left unlogged). The rule, in order:
//!
//! 1. (The caller's: entries a crash left unlogged are logged first.)
//! 2. Nothing more happens until the service's own Birth Certificate is anchored and confirmed:
//!    a checkpoint is only worth something signed by a key its anchored certificate lists,
//!    and both anchors spend coins of the anchored key.
//! 3. Walking back from the newest stored checkpoint to the first one that is final (six
//!    blocks deep in the index), every checkpoint whose transaction is neither indexed nor
//!    in the node's mempool (the node lost its mempool, or a reorg dropped it and it was
//!    evicted) is sent again, oldest first, as the *same* transaction, after the wallet
//!    payment that funded it if there was one. If the newest one's inputs are spent or
//!    gone, the index is synced once more and checked again; only if it is still absent
//!    (it can never confirm) is the same signed note anchored by a new transaction.
//! 4. While any checkpoint is unconfirmed nothing new is made: at most one is in flight,
//!    and each anchor spends the change of the one before.
//! 5. A new checkpoint is due once the log has grown past the newest checkpoint's size and
//!    `audit.checkpoint_interval_secs` have passed since that one was signed (at once for
//!    the first). The consistency proof from the previous checkpoint is checked, the
//!    checkpoint is signed with the service's checkpoint key (ADR 0013), its anchoring
//!    transaction prepared
//!    ([`prepare_anchor`]: a confirmed coin of the service key, else a wallet payment to it),
//!    note and transaction are written and flushed, and only then is it broadcast.
//!
//! A crash between any two steps therefore never anchors a checkpoint twice: it is on disk
//! before its transaction is on the network, and a restart sends that transaction again
//! instead of making another. Failures (node, empty wallet) are logged and retried after
//! a wait that doubles from [`Rules::retry_base`] up to [`Rules::retry_cap`].

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use bitcoin::consensus::encode;
use bitcoin::{FeeRate, Transaction};
use milagro_anchor::audit_log::{AuditLogError, TreeHead};
use milagro_anchor::checkpoint::{Checkpoint, CheckpointError};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::SecretKey;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_anchor::proof::FINAL_DEPTH;
use milagro_registry::anchoring::{prepare_anchor, PrepareError};
use milagro_registry::bitcoind::{BitcoindRpc, Resent};
use milagro_registry::chain::{ChainError, ChainSource};
use milagro_registry::follower::{Follower, SyncError};
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::{RecordStore, StoreError};

use super::{Audit, AuditError, AuditStoreError, StoredCheckpoint};
use crate::own_anchor::OwnAnchor;

type ChainFollower = Follower<BitcoindRpc, Arc<RedbStore>>;

/// What one service's checkpoint anchoring needs.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The log.
    pub audit: &'a Audit,
    /// The service's anchored key: it pays for (signs) the checkpoints' anchoring
    /// transactions.
    pub key: &'a SecretKey,
    /// The service's checkpoint key (listed in its certificate): it signs the checkpoint
    /// notes, so that a leak of it gives no coins and no certificate (ADR 0013).
    pub checkpoint_key: &'a SecretKey,
    /// The service's own anchor: nothing is anchored before it is confirmed.
    pub own_anchor: &'a OwnAnchor,
    /// Fee rate of the anchoring transactions.
    pub fee_rate: FeeRate,
    /// Least time between two anchored checkpoints.
    pub interval: Duration,
    /// The first wait after a failure (it doubles after each further one)...
    pub retry_base: Duration,
    /// ... up to this.
    pub retry_cap: Duration,
}

/// When the next attempt may run after failures (the chain loop is the only user).
#[derive(Debug, Default)]
pub(super) struct Schedule {
    failures: u32,
    next_attempt: Option<Instant>,
}

/// Why a step of the rule failed; it is retried later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointAnchorError {
    /// The node failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] StoreError),
    /// Syncing the index before a decision failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The log or its storage failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The log cannot prove the new checkpoint consistent with the previous one (a bug).
    #[error("the log is not consistent with the previous checkpoint: {0}")]
    Consistency(#[from] AuditLogError),
    /// The checkpoint cannot be built (an origin the format refuses).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// No anchoring transaction could be prepared (e.g. the node wallet is empty).
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// An older checkpoint's transaction can never confirm, and later ones spend it.
    #[error("checkpoint {sequence}'s anchor {txid} can never confirm (its inputs are gone) and later checkpoints depend on it")]
    Stuck {
        /// The checkpoint.
        sequence: u64,
        /// Its transaction.
        txid: bitcoin::Txid,
    },
}

impl From<AuditStoreError> for CheckpointAnchorError {
    fn from(error: AuditStoreError) -> Self {
        Self::Audit(error.into())
    }
}

/// Runs the rule once unless a recent failure asks to wait; logs failures.
pub fn tick(follower: &ChainFollower, rules: &Rules<'_>, max_blocks: u32) {
    let audit = rules.audit;
    let mut schedule = audit
        .schedule
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if schedule.next_attempt.is_some_and(|at| Instant::now() < at) {
        return;
    }
    match step(follower, rules, max_blocks) {
        Ok(()) => *schedule = Schedule::default(),
        Err(error) => {
            schedule.failures = schedule.failures.saturating_add(1);
            let delay = crate::sync::Backoff {
                base: rules.retry_base,
                cap: rules.retry_cap,
                failures: schedule.failures,
            }
            .delay();
            schedule.next_attempt = Some(Instant::now() + delay);
            let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(%error, retry_in_ms, "anchoring an audit checkpoint failed; will retry");
        }
    }
}

fn step(
    follower: &ChainFollower,
    rules: &Rules<'_>,
    max_blocks: u32,
) -> Result<(), CheckpointAnchorError> {
    let audit = rules.audit;
    if !rules.own_anchor.is_confirmed() {
        return Ok(());
    }
    let node = follower.chain();
    let unconfirmed = unconfirmed(audit, follower.store())?;
    let newest = unconfirmed.last().map(|c| c.sequence);
    for checkpoint in &unconfirmed {
        if node.in_mempool(&checkpoint.txid)? {
            continue;
        }
        match rebroadcast(node, checkpoint)? {
            Resent::Accepted => {
                tracing::warn!(sequence = checkpoint.sequence, txid = %checkpoint.txid, "re-broadcast an audit checkpoint anchor that had left the mempool");
            }
            Resent::AlreadyInChain => {}
            Resent::InputsGone(_) if Some(checkpoint.sequence) != newest => {
                return Err(CheckpointAnchorError::Stuck {
                    sequence: checkpoint.sequence,
                    txid: checkpoint.txid,
                });
            }
            Resent::InputsGone(_) => {
                follower.sync(max_blocks, |_| {})?;
                if follower.store().by_txid(&checkpoint.txid)?.is_empty() {
                    tracing::warn!(sequence = checkpoint.sequence, txid = %checkpoint.txid, "the audit checkpoint anchor can never confirm (its inputs are gone); anchoring the same note anew");
                    anchor(rules, node, Draft::of(checkpoint))?;
                }
            }
        }
    }
    if !unconfirmed.is_empty() {
        return Ok(());
    }
    if let Some(draft) = due(rules)? {
        anchor(rules, node, draft)?;
    }
    Ok(())
}

/// Checkpoints whose transaction is not in the index, oldest first, found by walking back
/// from the newest to the first final one.
fn unconfirmed(
    audit: &Audit,
    index: &impl RecordStore,
) -> Result<Vec<StoredCheckpoint>, CheckpointAnchorError> {
    let tip = index.tip()?.map_or(0, |t| t.height);
    let mut missing = Vec::new();
    for checkpoint in audit.store().checkpoints_newest_first() {
        let checkpoint = checkpoint?;
        match index.by_txid(&checkpoint.txid)?.first() {
            Some(record) if record.depth(tip) >= FINAL_DEPTH => break,
            Some(_) => {}
            None => missing.push(checkpoint),
        }
    }
    missing.reverse();
    Ok(missing)
}

/// A signed checkpoint not yet paired with its anchoring transaction.
struct Draft {
    sequence: u64,
    note: String,
    head: TreeHead,
    digest: Digest,
    created: u64,
}

impl Draft {
    fn of(stored: &StoredCheckpoint) -> Self {
        Self {
            sequence: stored.sequence,
            note: stored.note.clone(),
            head: TreeHead {
                size: stored.size,
                root: stored.root,
            },
            digest: stored.digest,
            created: stored.created,
        }
    }
}

/// The next checkpoint, signed, if one is due (see the module documentation).
fn due(rules: &Rules<'_>) -> Result<Option<Draft>, CheckpointAnchorError> {
    let audit = rules.audit;
    let head = audit.tree_head();
    let latest = audit.store().latest_checkpoint()?;
    let now = crate::unix_now();
    let interval = rules.interval.as_secs();
    let (grown, due_at) = match &latest {
        None => (head.size.get() > 0, 0),
        Some(previous) => (
            head.size > previous.size,
            previous.created.saturating_add(interval),
        ),
    };
    if !grown || now < due_at {
        return Ok(None);
    }
    if let Some(previous) = &latest {
        let old = TreeHead {
            size: previous.size,
            root: previous.root,
        };
        audit
            .consistency_proof(old.size, head.size)?
            .verify(&old, &head)?;
    }
    let signed =
        Checkpoint::new(audit.origin().as_str(), head)?.sign(audit.origin(), rules.checkpoint_key);
    Ok(Some(Draft {
        sequence: latest.map_or(0, |c| c.sequence.saturating_add(1)),
        note: signed.to_note(),
        head,
        digest: signed.digest(),
        created: now,
    }))
}

/// Prepares the anchoring transaction of `draft`, writes both, then broadcasts.
fn anchor(
    rules: &Rules<'_>,
    node: &BitcoindRpc,
    draft: Draft,
) -> Result<(), CheckpointAnchorError> {
    let payload = Payload::new(RecordKind::AuditLogRoot, draft.digest);
    let prepared = prepare_anchor(node, rules.key, &payload, rules.fee_rate)?;
    let tx = &prepared.anchor.tx;
    let stored = StoredCheckpoint {
        sequence: draft.sequence,
        note: draft.note,
        size: draft.head.size,
        root: draft.head.root,
        digest: draft.digest,
        created: draft.created,
        txid: tx.compute_txid(),
        tx: encode::serialize_hex(tx),
        funding_tx: prepared.funding_tx.as_ref().map(encode::serialize_hex),
    };
    // Written before it is sent: a crash after this line re-sends this transaction.
    rules.audit.store().put_checkpoint(&stored)?;
    node.broadcast(tx)?;
    tracing::info!(
        sequence = stored.sequence,
        size = %stored.size,
        root = %stored.root,
        txid = %stored.txid,
        fee_sat = prepared.anchor.fee.to_sat(),
        "broadcast an audit checkpoint anchor"
    );
    Ok(())
}

/// Sends a stored checkpoint's payment (if any) and transaction again.
fn rebroadcast(
    node: &BitcoindRpc,
    checkpoint: &StoredCheckpoint,
) -> Result<Resent, CheckpointAnchorError> {
    let decode = |hex: &str| -> Result<Transaction, CheckpointAnchorError> {
        encode::deserialize_hex(hex).map_err(|e| {
            AuditStoreError::Corrupt(format!("checkpoint {}: {e}", checkpoint.sequence)).into()
        })
    };
    let funding = checkpoint.funding_tx.as_deref().map(decode).transpose()?;
    Ok(node.resend_anchor(funding.as_ref(), &decode(&checkpoint.tx)?)?)
}
