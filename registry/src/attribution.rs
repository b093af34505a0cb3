//! Proving who signed the record candidates of a run of blocks.
//!
//! A candidate ([`RecordCandidate`]) names a key; it becomes a record only once the output
//! its first input spends is shown to be that key's P2WPKH output. The follower reads
//! blocks its node validated, so that comparison is the whole proof
//! ([`RecordCandidate::attribute_in_validated_block`] says why; ADR 0009): no signature is
//! checked again here, while every verifier without a node ([`milagro_anchor::proof`])
//! still checks it.
//!
//! The spent outputs come from the node's transaction index, one batched lookup per run
//! of blocks. Funding transactions are shared: a wallet pays many anchors from one
//! transaction, so [`Fundings`] keeps the ones the last run used (up to
//! [`FUNDING_CACHE_OUTPUTS`] outputs) and the next run asks the node only for the others.

use std::collections::HashMap;
use std::sync::Arc;

use bitcoin::{Transaction, TxOut, Txid};
use milagro_anchor::record::RecordCandidate;

use crate::chain::{BlockId, ChainError, ChainSource};
use crate::scan::BlockCandidates;
use crate::store::{ConnectedBlock, IndexedRecord};

/// Outputs of funding transactions kept from one run for the next: a few large wallet
/// transactions (tens of bytes per output) stay, a flood of distinct ones does not grow
/// the follower's memory.
pub const FUNDING_CACHE_OUTPUTS: usize = 65_536;

/// Funding transactions per `getrawtransaction` batch: the answers of one batch are held
/// together, so this bounds that memory (a transaction is at most a block).
pub const FUNDINGS_PER_BATCH: usize = 64;

/// The outputs of funding transactions looked up so far (those the last run used).
#[derive(Debug, Default)]
pub struct Fundings {
    outputs: HashMap<Txid, Arc<[TxOut]>>,
}

impl Fundings {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes sure the outputs of every transaction in `txids` are known, asking `chain`
    /// for the missing ones; forgets those not in `txids` first, and keeps the rest only
    /// while they hold at most [`FUNDING_CACHE_OUTPUTS`] outputs.
    fn load(&mut self, chain: &impl ChainSource, txids: &[Txid]) -> Result<(), ChainError> {
        let mut wanted: HashMap<Txid, Arc<[TxOut]>> = HashMap::with_capacity(txids.len());
        let mut missing = Vec::new();
        for txid in txids {
            if wanted.contains_key(txid) {
                continue;
            }
            match self.outputs.remove(txid) {
                Some(outputs) => {
                    wanted.insert(*txid, outputs);
                }
                None => missing.push(*txid),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        for batch in missing.chunks(FUNDINGS_PER_BATCH) {
            for (txid, tx) in batch.iter().zip(chain.indexed_transactions(batch)?) {
                let Transaction { output, .. } = tx;
                wanted.insert(*txid, output.into());
            }
        }
        self.outputs = wanted;
        Ok(())
    }

    fn spent_by(&self, candidate: &RecordCandidate) -> Option<&TxOut> {
        let funding = candidate.funding();
        self.outputs
            .get(&funding.txid)?
            .get(usize::try_from(funding.vout).ok()?)
    }

    /// Forgets transactions, largest first, until at most [`FUNDING_CACHE_OUTPUTS`]
    /// outputs are kept.
    fn trim(&mut self) {
        let mut held: usize = self.outputs.values().map(|o| o.len()).sum();
        if held <= FUNDING_CACHE_OUTPUTS {
            return;
        }
        let mut by_size: Vec<(usize, Txid)> =
            self.outputs.iter().map(|(t, o)| (o.len(), *t)).collect();
        by_size.sort_unstable_by(|a, b| b.cmp(a));
        for (len, txid) in by_size {
            if held <= FUNDING_CACHE_OUTPUTS {
                break;
            }
            self.outputs.remove(&txid);
            held -= len;
        }
    }
}

/// The attributed records of a run of blocks read from `chain`'s validating node: the
/// outputs the candidates spend are looked up (through `fundings`), and each candidate is
/// kept only if it spends its claimed key's P2WPKH output.
pub fn records_in(
    chain: &impl ChainSource,
    blocks: &[(BlockId, BlockCandidates)],
    fundings: &mut Fundings,
) -> Result<Vec<ConnectedBlock>, ChainError> {
    let txids: Vec<Txid> = blocks
        .iter()
        .flat_map(|(_, block)| &block.candidates)
        .map(|c| c.funding().txid)
        .collect();
    fundings.load(chain, &txids)?;
    let connected = blocks
        .iter()
        .map(|(id, block)| ConnectedBlock {
            id: *id,
            coinbase_txid: block.coinbase_txid,
            records: block
                .candidates
                .iter()
                .filter_map(|candidate| attribute(fundings, *id, block.coinbase_txid, candidate))
                .collect(),
        })
        .collect();
    fundings.trim();
    Ok(connected)
}

/// The indexed record of `candidate` if the output it spends is its claimed key's;
/// logged and `None` otherwise (anyone can mine a transaction naming any key).
fn attribute(
    fundings: &Fundings,
    id: BlockId,
    coinbase_txid: Txid,
    candidate: &RecordCandidate,
) -> Option<IndexedRecord> {
    let verdict = match fundings.spent_by(candidate) {
        Some(spent) => candidate.attribute_in_validated_block(spent),
        None => {
            tracing::warn!(txid = %candidate.txid(), "the node did not return the spent output");
            return None;
        }
    };
    match verdict {
        Ok(record) => Some(IndexedRecord::new(&record, id, coinbase_txid)),
        Err(error) => {
            tracing::warn!(
                txid = %candidate.txid(),
                height = id.height,
                %error,
                "ignored a record whose signer is not proven"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bitcoin::block::Header;
    use bitcoin::hashes::Hash;
    use bitcoin::merkle_tree::MerkleBlock;
    use bitcoin::{Amount, Block, BlockHash, FeeRate, OutPoint, ScriptBuf};
    use milagro_anchor::anchor_tx::{build_anchor_tx, p2wpkh_script, FundingUtxo};
    use milagro_anchor::digest::Digest;
    use milagro_anchor::keys::SecretKey;
    use milagro_anchor::payload::{Payload, RecordKind};

    use super::*;

    /// A transaction index holding one funding transaction; counts the lookups.
    struct OneFunding {
        funding: Transaction,
        lookups: Mutex<Vec<usize>>,
    }

    impl ChainSource for OneFunding {
        fn tip(&self) -> Result<BlockId, ChainError> {
            Err(ChainError::NotFound("unused".into()))
        }
        fn block_hash(&self, _: u32) -> Result<Option<BlockHash>, ChainError> {
            Err(ChainError::NotFound("unused".into()))
        }
        fn block(&self, _: &BlockHash) -> Result<Block, ChainError> {
            Err(ChainError::NotFound("unused".into()))
        }
        fn header(&self, _: &BlockHash) -> Result<Header, ChainError> {
            Err(ChainError::NotFound("unused".into()))
        }
        fn transaction(&self, _: &Txid, _: &BlockHash) -> Result<Transaction, ChainError> {
            Err(ChainError::NotFound("unused".into()))
        }
        fn indexed_transactions(&self, txids: &[Txid]) -> Result<Vec<Transaction>, ChainError> {
            self.lookups.lock().unwrap().push(txids.len());
            txids
                .iter()
                .map(|t| {
                    (*t == self.funding.compute_txid())
                        .then(|| self.funding.clone())
                        .ok_or_else(|| ChainError::NotFound(t.to_string()))
                })
                .collect()
        }
        fn merkle_block(&self, _: &[Txid], _: &BlockHash) -> Result<MerkleBlock, ChainError> {
            Err(ChainError::NotFound("unused".into()))
        }
        fn broadcast(&self, _: &Transaction) -> Result<Txid, ChainError> {
            Err(ChainError::NotFound("unused".into()))
        }
    }

    /// One block whose candidates spend outputs `outputs` of `funding`, each by its owner.
    fn block_spending(
        funding: &Transaction,
        owners: &[SecretKey],
        outputs: std::ops::Range<u32>,
    ) -> (BlockId, BlockCandidates) {
        let candidates = outputs
            .map(|vout| {
                let utxo = FundingUtxo {
                    outpoint: OutPoint::new(funding.compute_txid(), vout),
                    value: funding.output[vout as usize].value,
                };
                let payload = Payload::new(
                    RecordKind::BirthCertificate,
                    Digest::sha256(&vout.to_be_bytes()),
                );
                let owner = &owners[vout as usize];
                let tx = build_anchor_tx(
                    owner,
                    &utxo,
                    &payload,
                    FeeRate::from_sat_per_vb_u32(1),
                    None,
                )
                .unwrap()
                .tx;
                RecordCandidate::from_tx(&tx).unwrap()
            })
            .collect();
        let block = BlockCandidates {
            header: bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header,
            coinbase_txid: Txid::all_zeros(),
            candidates,
        };
        (
            BlockId {
                height: 1,
                hash: block.block_hash(),
            },
            block,
        )
    }

    #[test]
    fn a_funding_transaction_is_looked_up_once_for_the_runs_that_spend_it() {
        let owners: Vec<SecretKey> = (1..=6u8)
            .map(|b| SecretKey::from_bytes(&[b; 32]).unwrap())
            .collect();
        let mut funding = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![bitcoin::TxIn::default()],
            output: owners
                .iter()
                .map(|k| TxOut {
                    value: Amount::from_sat(10_000),
                    script_pubkey: p2wpkh_script(&k.public_key()),
                })
                .collect(),
        };
        // Output 5 pays a script that is not its spender's: that record is not attributed.
        funding.output[5].script_pubkey = ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::all_zeros());
        let chain = OneFunding {
            funding: funding.clone(),
            lookups: Mutex::default(),
        };
        let mut fundings = Fundings::new();
        let first = records_in(
            &chain,
            &[block_spending(&funding, &owners, 0..3)],
            &mut fundings,
        );
        let second = records_in(
            &chain,
            &[block_spending(&funding, &owners, 3..6)],
            &mut fundings,
        );
        assert_eq!(first.unwrap()[0].records.len(), 3);
        let second = second.unwrap();
        assert_eq!(second[0].records.len(), 2);
        assert_eq!(second[0].records[1].signer, owners[4].public_key());
        assert_eq!(
            *chain.lookups.lock().unwrap(),
            vec![1],
            "one lookup of one txid"
        );
    }
}
