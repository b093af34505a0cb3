//! The funding pool: direct-mode devices paid from small confirmed outputs of the pool key
//! ([`Identity::funding_pool_key`](crate::identity::Identity::funding_pool_key)) instead of
//! one wallet payment each (`milagro_anchor::funding_pool` says why).
//!
//! Keys in the enrolments tree: `p\0` ‖ txid (32 bytes) ‖ vout (4 bytes, big-endian) →
//! value in satoshis (8 bytes, big-endian), one per free coin; `f\0` ‖ fan-out txid →
//! [`StoredFanOut`] JSON, kept for good so that a device payment can bring back the fan-out
//! it spends if a reorg dropped it; `r\0` ‖ fan-out txid → nothing, while that fan-out's
//! coins are not released (at most one), so the chain loop never scans every fan-out.
//!
//! The rule, run by the chain loop after each poll that reached the tip ([`tick`]):
//! 0. Offers that lapsed unsigned give their coins back
//!    ([`EnrolmentStore::expire_offers`]).
//! 1. A fan-out not yet confirmed is awaited, and sent again (with the wallet payment it
//!    spends) if the node has it nowhere; once its first output is a confirmed unspent
//!    output, all its coins become free in one atomic write.
//! 2. Otherwise, when fewer than a quarter of `anchoring.funding_pool` coins are free, the
//!    wallet pays [`fan_out_cost`] to the pool key, the fan-out splitting it into that many
//!    coins is signed, stored, and only then broadcast. At most one fan-out is in flight.
//!
//! An offer reserves a free coin in the same atomic write that stores it
//! ([`EnrolmentStore::reserve_offer`], `offers.rs`), so two concurrent offers never share
//! one, and the coin comes back when the offer lapses unsigned. With no free coin the
//! enrolment waits (`503` with `Retry-After`) for the refill: the wallet never pays a device
//! directly, since a wallet payment cannot be held back until the device signs without
//! locking wallet coins the node itself may forget.

use bitcoin::consensus::encode;
use bitcoin::{Amount, OutPoint, Transaction, Txid};
use milagro_anchor::anchor_tx::{p2wpkh_script, FundingUtxo};
use milagro_anchor::funding_pool::{build_fan_out, fan_out_coins, fan_out_cost, FundingPoolError};
use milagro_registry::bitcoind::{BitcoindRpc, Resent};
use milagro_registry::chain::{ChainError, ChainSource};
use serde::{Deserialize, Serialize};

use super::store::storage;
use super::{EnrolmentStore, EnrolmentStoreError};
use crate::state::AppState;

/// A fan-out as stored: the wallet's payment to the pool key and the transaction that
/// splits it into coins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFanOut {
    /// The fan-out's id.
    pub txid: Txid,
    /// The fan-out (hex).
    pub tx: String,
    /// The wallet payment it spends (hex).
    pub payment: String,
    /// Whether its coins were released into the pool.
    pub released: bool,
}

/// Why a step of the pool rule failed; it is retried later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The node failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] EnrolmentStoreError),
    /// The fan-out could not be built.
    #[error(transparent)]
    Build(#[from] FundingPoolError),
}

pub(super) fn coin_key(outpoint: &OutPoint) -> Vec<u8> {
    [
        b"p\0".as_slice(),
        bitcoin::hashes::Hash::as_byte_array(&outpoint.txid),
        &outpoint.vout.to_be_bytes(),
    ]
    .concat()
}

fn fan_out_key(txid: &Txid) -> Vec<u8> {
    [
        b"f\0".as_slice(),
        bitcoin::hashes::Hash::as_byte_array(txid),
    ]
    .concat()
}

fn pending_key(txid: &Txid) -> Vec<u8> {
    [
        b"r\0".as_slice(),
        bitcoin::hashes::Hash::as_byte_array(txid),
    ]
    .concat()
}

pub(super) fn coin_from(key: &[u8], value: &[u8]) -> Result<FundingUtxo, EnrolmentStoreError> {
    let txid = key
        .get(2..34)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(<Txid as bitcoin::hashes::Hash>::from_byte_array);
    let vout = key
        .get(34..38)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes);
    let value = <[u8; 8]>::try_from(value).ok().map(u64::from_be_bytes);
    match (txid, vout, value) {
        (Some(txid), Some(vout), Some(value)) => Ok(FundingUtxo {
            outpoint: OutPoint::new(txid, vout),
            value: Amount::from_sat(value),
        }),
        _ => Err(storage("malformed pool coin row")),
    }
}

impl EnrolmentStore {
    /// How many coins are free, counting up to `limit`.
    pub fn free_coins(&self, limit: usize) -> usize {
        self.tree.scan_prefix(b"p\0").take(limit).count()
    }

    /// The stored fan-out `txid`, if it is one of the pool's.
    pub fn fan_out(&self, txid: &Txid) -> Result<Option<StoredFanOut>, EnrolmentStoreError> {
        self.tree
            .get(fan_out_key(txid))
            .map_err(storage)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(storage))
            .transpose()
    }

    /// The fan-out whose coins are not released yet, if any.
    pub fn pending_fan_out(&self) -> Result<Option<StoredFanOut>, EnrolmentStoreError> {
        let Some(entry) = self.tree.scan_prefix(b"r\0").next() else {
            return Ok(None);
        };
        let (key, _) = entry.map_err(storage)?;
        let txid = key
            .get(2..)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(<Txid as bitcoin::hashes::Hash>::from_byte_array)
            .ok_or_else(|| storage("malformed pending fan-out key"))?;
        self.fan_out(&txid)?
            .map(Some)
            .ok_or_else(|| storage(format!("pending fan-out {txid} is missing")))
    }

    /// Stores a new fan-out, pending (before it is broadcast).
    pub fn put_fan_out(&self, fan_out: &StoredFanOut) -> Result<(), EnrolmentStoreError> {
        let mut write = sled::Batch::default();
        write.insert(
            fan_out_key(&fan_out.txid),
            serde_json::to_vec(fan_out).map_err(storage)?,
        );
        write.insert(pending_key(&fan_out.txid), &[]);
        self.tree.apply_batch(write).map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        Ok(())
    }

    /// Marks a confirmed fan-out released and frees its coins, atomically.
    pub fn release_fan_out(
        &self,
        fan_out: &StoredFanOut,
        tx: &Transaction,
    ) -> Result<usize, EnrolmentStoreError> {
        let mut write = sled::Batch::default();
        let mut count = 0;
        for (outpoint, value) in fan_out_coins(tx) {
            write.insert(coin_key(&outpoint), &value.to_sat().to_be_bytes());
            count += 1;
        }
        let released = StoredFanOut {
            released: true,
            ..fan_out.clone()
        };
        write.insert(
            fan_out_key(&fan_out.txid),
            serde_json::to_vec(&released).map_err(storage)?,
        );
        write.remove(pending_key(&fan_out.txid));
        self.tree.apply_batch(write).map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        Ok(count)
    }
}

/// Runs the pool rule once (see the module documentation).
pub(crate) fn tick(node: &BitcoindRpc, state: &AppState) -> Result<(), PoolError> {
    let target = state.config.anchoring.funding_pool;
    let store = &state.enrolments;
    store.expire_offers(crate::unix_now())?;
    if let Some(pending) = store.pending_fan_out()? {
        let tx = decode(&pending.tx)?;
        if node.is_confirmed_unspent(&OutPoint::new(pending.txid, 0))? {
            let coins = store.release_fan_out(&pending, &tx)?;
            tracing::info!(txid = %pending.txid, coins, "funding pool refilled");
        } else if !node.in_mempool(&pending.txid)? {
            tracing::warn!(txid = %pending.txid, "the funding pool's fan-out left the mempool; sending it again");
            send_fan_out(node, &pending)?;
        }
        return Ok(());
    }
    if store.free_coins(target) >= target.div_ceil(4) {
        return Ok(());
    }
    let fee_rate = state.config.party.fee_rate;
    let identity = &state.identity;
    let cost = fan_out_cost(target, fee_rate).ok_or(FundingPoolError::FeeOverflow(fee_rate))?;
    let script = p2wpkh_script(&identity.funding_pool_public_key());
    let (payment, vout) = node.wallet_pay(&script, cost)?;
    let input = FundingUtxo {
        outpoint: OutPoint::new(payment.compute_txid(), vout),
        value: cost,
    };
    let fan_out = build_fan_out(identity.funding_pool_key(), &input, target, fee_rate)?;
    let stored = StoredFanOut {
        txid: fan_out.compute_txid(),
        tx: encode::serialize_hex(&fan_out),
        payment: encode::serialize_hex(&payment),
        released: false,
    };
    // Written before it is sent: a crash after this line sends this fan-out again.
    store.put_fan_out(&stored)?;
    node.broadcast(&fan_out)?;
    tracing::info!(txid = %stored.txid, coins = target, cost_sat = cost.to_sat(), "broadcast a funding pool fan-out");
    Ok(())
}

/// Sends a fan-out's wallet payment, then the fan-out ([`BitcoindRpc::resend_anchor`]: a
/// fan-out is re-sent exactly like an anchor). A fan-out that cannot be sent is only
/// logged: the devices paid from it, or the next refill, show the failure.
pub(crate) fn send_fan_out(node: &BitcoindRpc, fan_out: &StoredFanOut) -> Result<(), PoolError> {
    let resent = node.resend_anchor(Some(&decode(&fan_out.payment)?), &decode(&fan_out.tx)?)?;
    if let Resent::InputsGone(message) = resent {
        tracing::warn!(txid = %fan_out.txid, %message, "a funding pool fan-out cannot be sent again");
    }
    Ok(())
}

fn decode(hex: &str) -> Result<Transaction, PoolError> {
    encode::deserialize_hex(hex).map_err(|e| PoolError::Store(storage(e)))
}
