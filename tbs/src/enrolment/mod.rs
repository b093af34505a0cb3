//! Device enrolment: the TBS side of `docs/enrolment.md`.
//!
//! **Direct mode** (the default): a device's sealed
//! [`EnrolmentRequest`](milagro_anchor::enrolment::EnrolmentRequest) is opened and checked
//! (self-signed `pat` certificate, recent, a credential signed by one of the group's
//! enrolment keys), a pool coin is reserved and a payment of it to the device's key built
//! but not sent, and the device is offered the PSBT of the anchoring transaction spending
//! it ([`AnchorOffer`](milagro_anchor::anchor_offer::AnchorOffer)). When the device sends
//! its signed transaction back, the TBS checks it is the offer signed by the device and
//! broadcasts payment and anchor together; an offer left unsigned lapses and its coin
//! returns to the pool (`offers.rs`). Every transition is written (one sled
//! transaction) before its side effect, so a crash leaves a row the device's retry or the
//! TBS resumes from; the anchoring transaction is fixed once signed, so nothing is anchored
//! twice. After every sync step that reaches the tip, [`watch`] looks at each broadcast
//! anchor that is not yet final: one a reorg dropped (not indexed, not in the mempool) is
//! sent again, with its payment, as the same transactions; one six blocks deep stops being
//! watched.
//!
//! **Batch mode** (a group's choice, for fleets): the device is queued with its
//! certificate's digest; [`batching`] anchors every queued digest under one RFC 6962 root
//! per interval from the TBS key, and each device's instructions carry its membership proof
//! with the root's anchor proof.

mod batches;
pub mod batching;
mod limits;
mod offers;
pub mod pool;
mod store;

use bitcoin::consensus::encode;
use bitcoin::Transaction;
use milagro_anchor::proof::FINAL_DEPTH;
use milagro_registry::bitcoind::{BitcoindRpc, Resent, RPC_VERIFY_ERROR};
use milagro_registry::chain::ChainError;
use milagro_registry::store::{RecordStore, StoreError};

pub use batches::{Member, QueuedDevice, StoredBatch};
pub use limits::EnrolmentLimits;
pub use offers::Reserved;
pub use store::{
    Enrolment, EnrolmentState, EnrolmentStore, EnrolmentStoreError, Replay, Reservation,
};

/// Why sending or watching an enrolment's transactions failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// The node failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] StoreError),
    /// The enrolment store failed or holds an unreadable transaction.
    #[error("enrolment storage: {0}")]
    Storage(String),
}

impl From<EnrolmentStoreError> for WatchError {
    fn from(error: EnrolmentStoreError) -> Self {
        Self::Storage(error.to_string())
    }
}

fn decode(hex: &str) -> Result<Transaction, WatchError> {
    encode::deserialize_hex(hex).map_err(|e| WatchError::Storage(e.to_string()))
}

/// Sends a signed enrolment's payment and anchor together (after the pool fan-out the
/// payment spends, if a reorg dropped that; [`BitcoindRpc::resend_anchor`]); "already in
/// the mempool or the chain" counts as sent. Does nothing for an offer (its payment waits
/// for the device's signature) or a batch-mode enrolment.
pub fn send(node: &BitcoindRpc, store: &EnrolmentStore, row: &Enrolment) -> Result<(), WatchError> {
    let (funding_tx, anchor_tx) = match &row.state {
        // A TBS before pay-after-sign broadcast the payment with the offer.
        EnrolmentState::Offered {
            funding_tx,
            reservation: None,
            ..
        } => (funding_tx, None),
        EnrolmentState::Broadcast {
            funding_tx,
            anchor_tx,
            ..
        } => (funding_tx, Some(anchor_tx)),
        // Held back until the device signs; nothing to send.
        EnrolmentState::Offered { .. }
        | EnrolmentState::Expired { .. }
        | EnrolmentState::Queued
        | EnrolmentState::Batched { .. } => return Ok(()),
    };
    let funding = decode(funding_tx)?;
    let parent = funding.input.first().map(|i| i.previous_output.txid);
    if let Some(fan_out) = parent
        .map(|txid| store.fan_out(&txid))
        .transpose()?
        .flatten()
    {
        if !node.in_mempool(&fan_out.txid)? {
            pool::send_fan_out(node, &fan_out).map_err(|e| match e {
                pool::PoolError::Chain(chain) => WatchError::Chain(chain),
                other => WatchError::Storage(other.to_string()),
            })?;
        }
    }
    // Offered: the payment is what is sent; broadcast: the anchor, after its payment.
    let (payment, tx) = match anchor_tx.map(|hex| decode(hex)).transpose()? {
        Some(anchor) => (Some(funding), anchor),
        None => (None, funding),
    };
    match node.resend_anchor(payment.as_ref(), &tx) {
        Ok(Resent::Accepted | Resent::AlreadyInChain) => Ok(()),
        _ if node.in_mempool(&tx.compute_txid())? => Ok(()),
        Ok(Resent::InputsGone(message)) => Err(WatchError::Chain(ChainError::Rpc {
            method: "sendrawtransaction",
            code: RPC_VERIFY_ERROR,
            message,
        })),
        Err(error) => Err(error.into()),
    }
}

/// Re-sends anchors a reorg dropped and settles final ones (see the module docs).
pub fn watch(
    node: &BitcoindRpc,
    index: &impl RecordStore,
    store: &EnrolmentStore,
) -> Result<(), WatchError> {
    let tip = index.tip()?.map_or(0, |t| t.height);
    for row in store.unsettled()? {
        let EnrolmentState::Broadcast { txid, .. } = &row.state else {
            continue;
        };
        match index.by_txid(txid)?.first() {
            Some(record) if record.depth(tip) >= FINAL_DEPTH => store.settle(&row.device)?,
            Some(_) => {}
            None if node.in_mempool(txid)? => {}
            None => {
                tracing::warn!(device = %row.device, %txid, "enrolment anchor left the chain and the mempool; sending it again");
                send(node, store, &row)?;
            }
        }
    }
    Ok(())
}
