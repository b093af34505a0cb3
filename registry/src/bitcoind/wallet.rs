//! The node's wallet: paying and re-sending, for anchoring (the follower needs none of
//! it). Mining and chain rewriting are regtest-only and live in the test environment
//! (`milagro-regtest`'s `RegtestControls`), not here.

use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, Txid};
use serde_json::{json, Value};

use super::{
    decode_error, decode_hex, BitcoindRpc, Resent, RPC_INVALID_ADDRESS_OR_KEY,
    RPC_VERIFY_ALREADY_IN_CHAIN, RPC_VERIFY_ERROR, WALLET_PAY_ATTEMPTS,
};
use crate::chain::{ChainError, ChainSource};

impl BitcoindRpc {
    /// A new address of the node's loaded wallet.
    pub fn wallet_new_address(&self) -> Result<String, ChainError> {
        self.call("getnewaddress", &[])
    }

    /// A fresh address of the node's wallet as an output script, checked to be for the
    /// node's chain (where change goes back to the wallet).
    pub fn wallet_new_script(&self) -> Result<ScriptBuf, ChainError> {
        let address: bitcoin::Address<bitcoin::address::NetworkUnchecked> = self
            .wallet_new_address()?
            .parse()
            .map_err(|e| decode_error("getnewaddress", e))?;
        let address = address
            .require_network(self.chain()?)
            .map_err(|e| decode_error("getnewaddress", e))?;
        Ok(address.script_pubkey())
    }

    /// Pays `amount` from the node's wallet to `script`; returns the new output.
    pub fn wallet_pay_to(
        &self,
        script: &ScriptBuf,
        amount: Amount,
    ) -> Result<(OutPoint, Amount), ChainError> {
        let (tx, vout) = self.wallet_pay(script, amount)?;
        Ok((OutPoint::new(tx.compute_txid(), vout), amount))
    }

    /// Pays `amount` from the node's wallet to `script` and broadcasts the payment;
    /// returns the payment transaction and the index of the output paying `script`.
    ///
    /// A wallet keeps a payment its node refused to relay and still returns its txid
    /// (Bitcoin Knots refuses, for one, a lock time of 21, which the wallet's
    /// anti-fee-sniping picks now and then below height 122): such a payment is
    /// abandoned and made again, up to [`WALLET_PAY_ATTEMPTS`] times.
    pub fn wallet_pay(
        &self,
        script: &ScriptBuf,
        amount: Amount,
    ) -> Result<(Transaction, u32), ChainError> {
        let address = bitcoin::Address::from_script(script, self.chain()?)
            .map_err(|e| decode_error("sendtoaddress", e))?;
        let mut attempts = 0;
        let txid = loop {
            attempts += 1;
            let txid: Txid = self.call(
                "sendtoaddress",
                &[json!(address.to_string()), json!(amount.to_btc())],
            )?;
            if self.in_mempool(&txid)? || attempts >= WALLET_PAY_ATTEMPTS {
                break txid;
            }
            // A wallet refuses to abandon a transaction in its node's mempool or chain:
            // then the payment confirmed in the meantime, and stands.
            if self
                .call::<Value>("abandontransaction", &[json!(txid.to_string())])
                .is_err()
            {
                break txid;
            }
        };
        let tx = self.mempool_or_wallet_tx(&txid)?;
        let vout = tx
            .output
            .iter()
            .position(|out| &out.script_pubkey == script)
            .and_then(|vout| u32::try_from(vout).ok())
            .ok_or_else(|| decode_error("sendtoaddress", "payment output not found"))?;
        Ok((tx, vout))
    }

    /// Sends an anchoring transaction (again), after the payment that funds it if there
    /// is one, and says what became of it.
    ///
    /// With a payment, the two go first as one package (`submitpackage`, Bitcoin Core 28 /
    /// Knots 29 and later): the node then takes both or neither, and a payment too cheap
    /// alone is carried by its anchor. Where the node has no `submitpackage`, or refuses
    /// the package (a payment already confirmed is "missing inputs" as part of one), they
    /// go one after the other, whose answers say exactly what happened. The payment's own
    /// answer is not telling (once the anchor spends its only output, a confirmed payment
    /// looks like one with missing inputs): anything wrong with it shows up as the
    /// anchor's missing inputs.
    pub fn resend_anchor(
        &self,
        funding: Option<&Transaction>,
        anchor: &Transaction,
    ) -> Result<Resent, ChainError> {
        if let Some(funding) = funding {
            if self.submit_package(&[funding, anchor])? {
                return Ok(Resent::Accepted);
            }
            if let Err(error) = self.broadcast(funding) {
                tracing::debug!(%error, txid = %funding.compute_txid(), "re-sending a payment");
            }
        }
        match self.broadcast(anchor) {
            Ok(_) => Ok(Resent::Accepted),
            Err(ChainError::Rpc { code, .. }) if code == RPC_VERIFY_ALREADY_IN_CHAIN => {
                Ok(Resent::AlreadyInChain)
            }
            Err(ChainError::Rpc { code, message, .. }) if code == RPC_VERIFY_ERROR => {
                Ok(Resent::InputsGone(message))
            }
            Err(error) => Err(error),
        }
    }

    /// Submits `package` (parents first) with `submitpackage`; whether the node accepted
    /// every transaction of it (now or before). `false` when the node refused it or has no
    /// such call: the caller sends the transactions one by one.
    pub fn submit_package(&self, package: &[&Transaction]) -> Result<bool, ChainError> {
        let hexes: Vec<String> = package
            .iter()
            .map(|tx| bitcoin::consensus::encode::serialize_hex(*tx))
            .collect();
        match self.call::<Value>("submitpackage", &[json!(hexes)]) {
            Ok(answer) => Ok(answer["package_msg"] == "success"),
            Err(ChainError::Rpc { code, message, .. }) => {
                tracing::debug!(code, %message, "submitpackage refused; sending in order");
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether `outpoint` is a confirmed, unspent output of the node's chain (`gettxout`
    /// without the mempool).
    pub fn is_confirmed_unspent(&self, outpoint: &OutPoint) -> Result<bool, ChainError> {
        let found: Value = self.call(
            "gettxout",
            &[
                json!(outpoint.txid.to_string()),
                json!(outpoint.vout),
                json!(false),
            ],
        )?;
        Ok(!found.is_null())
    }

    /// Whether the node knows `txid` in its mempool.
    pub fn in_mempool(&self, txid: &Txid) -> Result<bool, ChainError> {
        match self.call::<Value>("getmempoolentry", &[json!(txid.to_string())]) {
            Ok(_) => Ok(true),
            Err(ChainError::Rpc {
                code: RPC_INVALID_ADDRESS_OR_KEY,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A payment the wallet just made: from the wallet itself (`gettransaction`), which
    /// knows it whether or not the mempool does at this instant.
    fn mempool_or_wallet_tx(&self, txid: &Txid) -> Result<Transaction, ChainError> {
        let answer: Value = self.call("gettransaction", &[json!(txid.to_string())])?;
        let hex = answer["hex"]
            .as_str()
            .ok_or_else(|| decode_error("gettransaction", "no hex in the answer"))?;
        decode_hex(hex, "gettransaction")
    }

    /// Confirmed unspent outputs paying `script` (`scantxoutset`; no wallet needed).
    pub fn scan_utxos(&self, script: &ScriptBuf) -> Result<Vec<(OutPoint, Amount)>, ChainError> {
        let descriptor = format!("raw({})", script.to_hex_string());
        let answer: Value = self.call("scantxoutset", &[json!("start"), json!([descriptor])])?;
        let unspents = answer["unspents"].as_array().cloned().unwrap_or_default();
        unspents
            .iter()
            .map(|u| {
                let txid: Txid = serde_json::from_value(u["txid"].clone())
                    .map_err(|e| decode_error("scantxoutset", e))?;
                let vout = u["vout"].as_u64().and_then(|v| u32::try_from(v).ok());
                let amount = u["amount"].as_f64().and_then(|a| Amount::from_btc(a).ok());
                match (vout, amount) {
                    (Some(vout), Some(amount)) => Ok((OutPoint::new(txid, vout), amount)),
                    _ => Err(ChainError::Decode {
                        method: "scantxoutset",
                        detail: u.to_string(),
                    }),
                }
            })
            .collect()
    }
}
