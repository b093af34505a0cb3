//! Paying for devices' anchors from a pool of small outputs, without the node's wallet.
//!
//! A TBS pays a small output to each enrolling device's key, which the device's anchoring
//! transaction then spends (so the device's own signature lands on chain). Paying each one
//! from the node wallet costs several wallet calls per device and leaves the wallet with
//! two unconfirmed transactions per device, which a wallet handles slowly and, past a few
//! hundred, not at all. The pool instead holds many outputs of one pool key, each worth
//! exactly one device payment ([`pool_coin_value`]), made ahead of time by one
//! [`build_fan_out`] transaction per refill; a device's payment is then one input, one
//! output, signed by the pool key ([`build_device_payment`]): no wallet call, no change.
//!
//! Everything here is pure: the TBS decides when to refill, tracks which coins are free,
//! and broadcasts.

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Weight};

use crate::anchor_tx::{
    p2wpkh_script, p2wpkh_sighash, p2wpkh_witness, single_anchor_funding, AnchorTxError,
    FundingUtxo,
};
use crate::keys::{PublicKey, SecretKey};

/// An upper bound of a device payment's weight: one P2WPKH input (largest signature) and
/// one P2WPKH output.
pub const DEVICE_PAYMENT_WEIGHT_BOUND: Weight = Weight::from_wu(450);

/// An upper bound of the fixed part of a fan-out's weight (version, counts, one P2WPKH
/// input with its witness, lock time); each output adds [`FAN_OUT_WEIGHT_PER_COIN`].
pub const FAN_OUT_FIXED_WEIGHT: Weight = Weight::from_wu(450);

/// The weight one P2WPKH output adds to a fan-out.
pub const FAN_OUT_WEIGHT_PER_COIN: Weight = Weight::from_wu(124);

/// The most coins one fan-out makes (keeps it far below the standard transaction weight).
pub const MAX_FAN_OUT_COINS: usize = 1_000;

/// The value of one pool coin at `fee_rate`: one device's anchor funding
/// ([`single_anchor_funding`]) plus the fee of the payment that hands it over.
pub fn pool_coin_value(fee_rate: FeeRate) -> Option<Amount> {
    single_anchor_funding(fee_rate)?.checked_add(fee_rate.fee_wu(DEVICE_PAYMENT_WEIGHT_BOUND)?)
}

/// What the wallet must pay the pool key for a fan-out of `coins` coins at `fee_rate`:
/// the coins and the fan-out's own fee, exactly.
pub fn fan_out_cost(coins: usize, fee_rate: FeeRate) -> Option<Amount> {
    let count = u64::try_from(coins).ok()?;
    let weight = FAN_OUT_FIXED_WEIGHT.checked_add(FAN_OUT_WEIGHT_PER_COIN.checked_mul(count)?)?;
    pool_coin_value(fee_rate)?
        .checked_mul(count)?
        .checked_add(fee_rate.fee_wu(weight)?)
}

/// Why a pool transaction could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FundingPoolError {
    /// A fan-out makes 1 to [`MAX_FAN_OUT_COINS`] coins.
    #[error("a fan-out makes 1 to {MAX_FAN_OUT_COINS} coins, not {0}")]
    CoinCount(usize),
    /// The input does not carry what the transaction must pay.
    #[error("input of {value} cannot pay {needed}")]
    InsufficientFunds {
        /// The input's value.
        value: Amount,
        /// What the transaction needs.
        needed: Amount,
    },
    /// The fee rate overflows an amount.
    #[error("fee rate {0} overflows")]
    FeeOverflow(FeeRate),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] AnchorTxError),
}

/// Splits `input` (a wallet payment to the pool key worth [`fan_out_cost`]) into `coins`
/// outputs of [`pool_coin_value`] each, all to the pool key, signed by it. Whatever the
/// input carries beyond the cost goes to the fee.
pub fn build_fan_out(
    pool_key: &SecretKey,
    input: &FundingUtxo,
    coins: usize,
    fee_rate: FeeRate,
) -> Result<Transaction, FundingPoolError> {
    if coins == 0 || coins > MAX_FAN_OUT_COINS {
        return Err(FundingPoolError::CoinCount(coins));
    }
    let needed = fan_out_cost(coins, fee_rate).ok_or(FundingPoolError::FeeOverflow(fee_rate))?;
    let value = pool_coin_value(fee_rate).ok_or(FundingPoolError::FeeOverflow(fee_rate))?;
    if input.value < needed {
        return Err(FundingPoolError::InsufficientFunds {
            value: input.value,
            needed,
        });
    }
    let script = p2wpkh_script(&pool_key.public_key());
    let outputs = vec![
        TxOut {
            value,
            script_pubkey: script,
        };
        coins
    ];
    sign_one_input(pool_key, input, outputs)
}

/// The payment of one pool coin to `device`: one input, one output worth
/// [`single_anchor_funding`], signed by the pool key.
pub fn build_device_payment(
    pool_key: &SecretKey,
    coin: &FundingUtxo,
    device: &PublicKey,
    fee_rate: FeeRate,
) -> Result<Transaction, FundingPoolError> {
    let needed = pool_coin_value(fee_rate).ok_or(FundingPoolError::FeeOverflow(fee_rate))?;
    let value = single_anchor_funding(fee_rate).ok_or(FundingPoolError::FeeOverflow(fee_rate))?;
    if coin.value < needed {
        return Err(FundingPoolError::InsufficientFunds {
            value: coin.value,
            needed,
        });
    }
    let output = TxOut {
        value,
        script_pubkey: p2wpkh_script(device),
    };
    sign_one_input(pool_key, coin, vec![output])
}

fn sign_one_input(
    key: &SecretKey,
    input: &FundingUtxo,
    output: Vec<TxOut>,
) -> Result<Transaction, FundingPoolError> {
    let public = key.public_key();
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: input.outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: bitcoin::Witness::new(),
        }],
        output,
    };
    let sighash = p2wpkh_sighash(&tx, 0, &public, input.value)?;
    tx.input[0].witness = p2wpkh_witness(&key.sign_prehash(&sighash), &public);
    Ok(tx)
}

/// The outpoints of a fan-out's coins, in order.
pub fn fan_out_coins(fan_out: &Transaction) -> impl Iterator<Item = (OutPoint, Amount)> + '_ {
    let txid = fan_out.compute_txid();
    (0u32..)
        .zip(&fan_out.output)
        .map(move |(vout, out)| (OutPoint::new(txid, vout), out.value))
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash as _;
    use bitcoin::Txid;

    use super::*;
    use crate::anchor_tx::build_anchor_tx;
    use crate::digest::Digest;
    use crate::payload::{Payload, RecordKind};

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn utxo(value: Amount) -> FundingUtxo {
        FundingUtxo {
            outpoint: OutPoint::new(Txid::from_byte_array([5; 32]), 0),
            value,
        }
    }

    #[test]
    fn a_fan_out_pays_its_fee_and_every_coin_funds_exactly_one_device_anchor() {
        let pool = key(1);
        for (rate, coins) in [(1, 1), (2, 50), (25, 7), (3, MAX_FAN_OUT_COINS)] {
            let rate = FeeRate::from_sat_per_vb_u32(rate);
            let cost = fan_out_cost(coins, rate).unwrap();
            let fan_out = build_fan_out(&pool, &utxo(cost), coins, rate).unwrap();
            assert_eq!(fan_out.output.len(), coins);
            let paid: Amount = fan_out.output.iter().map(|o| o.value).sum();
            assert!(cost - paid >= rate.fee_wu(fan_out.weight()).unwrap());
            assert!(fan_out.weight().to_wu() < 400_000, "standard size");

            let (outpoint, value) = fan_out_coins(&fan_out).last().unwrap();
            assert_eq!(outpoint.txid, fan_out.compute_txid());
            let device = key(2);
            let coin = FundingUtxo { outpoint, value };
            let payment = build_device_payment(&pool, &coin, &device.public_key(), rate).unwrap();
            assert!(payment.weight() <= DEVICE_PAYMENT_WEIGHT_BOUND);
            let fee = value - payment.output[0].value;
            assert!(fee >= rate.fee_wu(payment.weight()).unwrap());

            // The device's anchor spends it with a change above any dust limit.
            let funding = FundingUtxo {
                outpoint: OutPoint::new(payment.compute_txid(), 0),
                value: payment.output[0].value,
            };
            let payload = Payload::new(RecordKind::BirthCertificate, Digest::sha256(b"pat"));
            build_anchor_tx(
                &device,
                &funding,
                &payload,
                rate,
                Some(p2wpkh_script(&pool.public_key())),
            )
            .unwrap();
        }
    }

    #[test]
    fn short_inputs_and_bad_counts_are_refused() {
        let pool = key(1);
        let rate = FeeRate::from_sat_per_vb_u32(2);
        let cost = fan_out_cost(10, rate).unwrap();
        assert!(matches!(
            build_fan_out(&pool, &utxo(cost - Amount::ONE_SAT), 10, rate),
            Err(FundingPoolError::InsufficientFunds { .. })
        ));
        for coins in [0, MAX_FAN_OUT_COINS + 1] {
            assert_eq!(
                build_fan_out(&pool, &utxo(Amount::ONE_BTC), coins, rate),
                Err(FundingPoolError::CoinCount(coins))
            );
        }
        let short = utxo(pool_coin_value(rate).unwrap() - Amount::ONE_SAT);
        assert!(build_device_payment(&pool, &short, &key(2).public_key(), rate).is_err());
        assert!(pool_coin_value(FeeRate::MAX).is_none());
    }
}
