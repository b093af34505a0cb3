//! Paying for an anchor with the node next to us: fund the party's key, build, sign.
//!
//! A party anchors from a UTXO of its own key (the record's signer is whoever signs the
//! first input, see [`milagro_anchor::record`]). A service that runs next to a full node
//! (the TBS, `milagro bc anchor`) lets the node's wallet pay: [`prepare_anchor`] spends a
//! confirmed output of the key if it has one worth [`MIN_FUNDING`], and otherwise pays
//! [`FUNDING_AMOUNT`] to the key from the node wallet first. It returns the signed
//! transaction *without broadcasting it*, so the caller can persist it before it leaves
//! the process, and re-broadcast exactly the same transaction after a crash or a reorg.
//!
//! [`prepare_wallet_paid_anchor`] never touches the key's own coins: the wallet pays
//! exactly one anchor's worth to the key and the change goes back to the wallet. A service
//! with several independent anchoring lanes (the TBS: its audit checkpoints spend its
//! key's coins one at a time; its batch roots use this) keeps them from ever choosing the
//! same coin.

use bitcoin::{Amount, FeeRate, ScriptBuf, Transaction};
use milagro_anchor::anchor_tx::{
    build_anchor_tx, p2wpkh_script, single_anchor_funding, AnchorTx, AnchorTxError, FundingUtxo,
};
use milagro_anchor::keys::SecretKey;
use milagro_anchor::payload::Payload;

use crate::bitcoind::BitcoindRpc;
use crate::chain::ChainError;

/// What the node wallet pays to a key that has no coins: enough for dozens of anchors.
pub const FUNDING_AMOUNT: Amount = Amount::from_sat(20_000);

/// The smallest confirmed output of the key worth spending on an anchor.
pub const MIN_FUNDING: Amount = Amount::from_sat(1_000);

/// A signed anchoring transaction, not yet broadcast, and how it was paid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedAnchor {
    /// The signed transaction and its fee.
    pub anchor: AnchorTx,
    /// The output it spends.
    pub funding: FundingUtxo,
    /// The wallet payment that created that output, when the wallet had to pay (it is
    /// unconfirmed: re-broadcast it first if the anchor has to be re-broadcast).
    pub funding_tx: Option<Transaction>,
}

/// A signed anchoring transaction, not yet broadcast, spending a fresh wallet payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletPaidAnchor {
    /// The signed transaction and its fee.
    pub anchor: AnchorTx,
    /// The wallet payment it spends (already broadcast; re-broadcast it first if the
    /// anchor has to be re-broadcast).
    pub funding_tx: Transaction,
}

/// Why an anchor could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The node could not look up the key's coins.
    #[error("cannot look up the coins of {key}: {source}")]
    Scan {
        /// The key's public half.
        key: String,
        /// The node's answer.
        #[source]
        source: ChainError,
    },
    /// The key had no coins and the node wallet could not pay it.
    #[error("the key has no coins and the node wallet could not fund it: {0}")]
    Funding(#[source] ChainError),
    /// The transaction could not be built (e.g. the funding output is too small).
    #[error(transparent)]
    Build(#[from] AnchorTxError),
}

/// Finds or makes a funding output of `key` and signs an anchoring transaction for `payload`.
///
/// Nothing is broadcast except, when needed, the wallet's payment to the key.
pub fn prepare_anchor(
    node: &BitcoindRpc,
    key: &SecretKey,
    payload: &Payload,
    fee_rate: FeeRate,
) -> Result<PreparedAnchor, PrepareError> {
    let public = key.public_key();
    let script = p2wpkh_script(&public);
    let confirmed = node
        .scan_utxos(&script)
        .map_err(|source| PrepareError::Scan {
            key: public.to_string(),
            source,
        })?
        .into_iter()
        .find(|(_, value)| *value >= MIN_FUNDING);
    let (funding, funding_tx) = match confirmed {
        Some((outpoint, value)) => (FundingUtxo { outpoint, value }, None),
        None => {
            let (tx, vout) = node
                .wallet_pay(&script, FUNDING_AMOUNT)
                .map_err(PrepareError::Funding)?;
            let outpoint = bitcoin::OutPoint::new(tx.compute_txid(), vout);
            let value = tx.output[vout as usize].value;
            (FundingUtxo { outpoint, value }, Some(tx))
        }
    };
    let anchor = build_anchor_tx(key, &funding, payload, fee_rate, None)?;
    Ok(PreparedAnchor {
        anchor,
        funding,
        funding_tx,
    })
}

/// Has the node wallet pay exactly one anchor's worth ([`single_anchor_funding`]) to `key`
/// and signs an anchoring transaction for `payload` spending it, with its change to
/// `change_to` (a wallet address). Nothing is broadcast but the payment; the key's other
/// coins are never spent.
pub fn prepare_wallet_paid_anchor(
    node: &BitcoindRpc,
    key: &SecretKey,
    payload: &Payload,
    fee_rate: FeeRate,
    change_to: ScriptBuf,
) -> Result<WalletPaidAnchor, PrepareError> {
    let amount = single_anchor_funding(fee_rate).ok_or(AnchorTxError::FeeOverflow(fee_rate))?;
    let (tx, vout) = node
        .wallet_pay(&p2wpkh_script(&key.public_key()), amount)
        .map_err(PrepareError::Funding)?;
    let funding = FundingUtxo {
        outpoint: bitcoin::OutPoint::new(tx.compute_txid(), vout),
        value: amount,
    };
    let anchor = build_anchor_tx(key, &funding, payload, fee_rate, Some(change_to))?;
    Ok(WalletPaidAnchor {
        anchor,
        funding_tx: tx,
    })
}
