//! Assembling anchor proofs and header chains from a [`ChainSource`].
//!
//! What a server hands a verifier: the self-contained [`AnchorProof`] of an indexed record
//! and the headers from its block to the tip. Verifying them is [`milagro_anchor`]'s job,
//! and a verifier that does not trust this server checks the headers against its own.

use bitcoin::Network;
use milagro_anchor::proof::{AnchorProof, Headers};

use crate::chain::{ChainError, ChainSource};
use crate::store::IndexedRecord;

/// Why a proof could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    /// The node could not serve a piece.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The node served headers that do not form a chain (it reorganised mid-way, or lies).
    #[error("headers from the node do not form a chain: {0}")]
    Headers(#[from] milagro_anchor::proof::HeaderChainError),
}

/// The anchor proof of an indexed record: its transaction, the funding transaction its
/// first input spends, its block's coinbase, and the Merkle path of both.
pub fn anchor_proof(
    chain: &impl ChainSource,
    record: &IndexedRecord,
) -> Result<AnchorProof, AssembleError> {
    let tx = chain.transaction(&record.txid, &record.block_hash)?;
    let coinbase = chain.transaction(&record.coinbase_txid, &record.block_hash)?;
    let funding_txid = tx
        .input
        .first()
        .map(|input| input.previous_output.txid)
        .ok_or_else(|| ChainError::NotFound(format!("the inputs of {}", record.txid)))?;
    let funding = chain
        .indexed_transactions(&[funding_txid])?
        .pop()
        .ok_or_else(|| ChainError::NotFound(format!("transaction {funding_txid}")))?;
    let merkle_block =
        chain.merkle_block(&[record.coinbase_txid, record.txid], &record.block_hash)?;
    Ok(AnchorProof::new(tx, funding, coinbase, merkle_block))
}

/// The active chain's headers from `from_height` to the tip, linked and work-checked.
pub fn headers_from(
    chain: &impl ChainSource,
    network: Network,
    from_height: u32,
) -> Result<Headers, AssembleError> {
    let tip = chain.tip()?;
    let heights: Vec<u32> = (from_height..=tip.height.max(from_height)).collect();
    let hashes = chain
        .block_hashes(&heights)?
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            ChainError::NotFound(format!("blocks from height {from_height} to the tip"))
        })?;
    let headers = chain.headers(&hashes)?;
    Ok(Headers::from_headers(network, from_height, headers)?)
}
