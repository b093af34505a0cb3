//! What only a regtest node lets anyone do: mine on demand and rewrite its chain. The
//! services never call these (the registry's node adapter has no such methods); tests,
//! the demo and the benchmarks do, through [`RegtestControls`] on the same adapter.

use bitcoin::consensus::encode;
use bitcoin::{BlockHash, Transaction};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainError;
use serde_json::{json, Value};

/// Mining and chain rewriting on a regtest node.
pub trait RegtestControls {
    /// Mines `count` blocks to `address`.
    fn generate_to_address(&self, count: u32, address: &str) -> Result<Vec<BlockHash>, ChainError>;

    /// Mines one block holding exactly `txs` (`generateblock`), paying `address`.
    fn generate_block(&self, address: &str, txs: &[Transaction]) -> Result<BlockHash, ChainError>;

    /// Makes the node forget `hash` and everything built on it (a reorg, for tests).
    fn invalidate_block(&self, hash: &BlockHash) -> Result<(), ChainError>;

    /// Undoes [`RegtestControls::invalidate_block`].
    fn reconsider_block(&self, hash: &BlockHash) -> Result<(), ChainError>;
}

impl RegtestControls for BitcoindRpc {
    fn generate_to_address(&self, count: u32, address: &str) -> Result<Vec<BlockHash>, ChainError> {
        self.call("generatetoaddress", &[json!(count), json!(address)])
    }

    fn generate_block(&self, address: &str, txs: &[Transaction]) -> Result<BlockHash, ChainError> {
        let raw: Vec<String> = txs.iter().map(encode::serialize_hex).collect();
        let answer: Value = self.call("generateblock", &[json!(address), json!(raw)])?;
        serde_json::from_value(answer["hash"].clone()).map_err(|e| ChainError::Decode {
            method: "generateblock",
            detail: e.to_string(),
        })
    }

    fn invalidate_block(&self, hash: &BlockHash) -> Result<(), ChainError> {
        self.call::<Value>("invalidateblock", &[json!(hash.to_string())])
            .map(drop)
    }

    fn reconsider_block(&self, hash: &BlockHash) -> Result<(), ChainError> {
        self.call::<Value>("reconsiderblock", &[json!(hash.to_string())])
            .map(drop)
    }
}
