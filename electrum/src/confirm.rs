//! Checking a server's Merkle branch against a header the caller already trusts.
//!
//! Pure. The server only says where a transaction is; the proof is that folding the
//! transaction id with the branch gives the Merkle root of the caller's own header, so a
//! lying server can refuse to confirm but cannot confirm a transaction that is not there.
//! (As with every SPV check, this relies on no 64-byte transaction posing as an inner node;
//! Bitcoin Core's policy does not relay such transactions.)

use bitcoin::block::Header;
use bitcoin::hashes::{sha256d, Hash, HashEngine};
use bitcoin::{BlockHash, TxMerkleNode, Txid};

use crate::decode::MerkleAnswer;

/// A transaction proven to be in a block the caller holds.
///
/// Only [`check_branch`] makes one, so code that takes a `ConfirmedTx` cannot be handed an
/// unchecked claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedTx {
    txid: Txid,
    height: u32,
    block_hash: BlockHash,
    position: u32,
}

impl ConfirmedTx {
    /// The confirmed transaction.
    pub fn txid(&self) -> Txid {
        self.txid
    }

    /// The height of its block.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The hash of the caller's header it was checked against.
    pub fn block_hash(&self) -> BlockHash {
        self.block_hash
    }

    /// Its index in the block.
    pub fn position(&self) -> u32 {
        self.position
    }
}

/// Why a server's answer does not confirm a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotConfirmed {
    /// The server places the transaction at another height than asked.
    #[error("the server places {txid} at height {answered}, not {asked}")]
    OtherHeight {
        /// The transaction.
        txid: Txid,
        /// The height asked about.
        asked: u32,
        /// The height in the answer.
        answered: u32,
    },
    /// The branch does not lead to the header's Merkle root.
    #[error("the merkle branch of {txid} leads to {computed}, the header at height {height} commits to {expected}")]
    RootMismatch {
        /// The transaction.
        txid: Txid,
        /// The height of the header.
        height: u32,
        /// The root the branch leads to.
        computed: TxMerkleNode,
        /// The header's Merkle root.
        expected: TxMerkleNode,
    },
}

/// The Merkle root that `txid` at index `pos` with sibling hashes `branch` leads to.
pub fn merkle_root(txid: Txid, pos: u32, branch: &[TxMerkleNode]) -> TxMerkleNode {
    let mut node = txid.to_raw_hash();
    let mut index = pos;
    for sibling in branch {
        let mut engine = sha256d::Hash::engine();
        if index & 1 == 0 {
            engine.input(node.as_byte_array());
            engine.input(sibling.as_byte_array());
        } else {
            engine.input(sibling.as_byte_array());
            engine.input(node.as_byte_array());
        }
        node = sha256d::Hash::from_engine(engine);
        index >>= 1;
    }
    TxMerkleNode::from_raw_hash(node)
}

/// Checks a server's `answer` for `txid` at `height` against the caller's `header` at that
/// height.
pub fn check_branch(
    txid: Txid,
    height: u32,
    header: &Header,
    answer: &MerkleAnswer,
) -> Result<ConfirmedTx, NotConfirmed> {
    if answer.block_height != height {
        return Err(NotConfirmed::OtherHeight {
            txid,
            asked: height,
            answered: answer.block_height,
        });
    }
    let computed = merkle_root(txid, answer.pos, &answer.branch);
    if computed != header.merkle_root {
        return Err(NotConfirmed::RootMismatch {
            txid,
            height,
            computed,
            expected: header.merkle_root,
        });
    }
    Ok(ConfirmedTx {
        txid,
        height,
        block_hash: header.block_hash(),
        position: answer.pos,
    })
}

#[cfg(test)]
mod tests {
    use bitcoin::merkle_tree::PartialMerkleTree;

    use super::*;

    fn txid(n: u8) -> Txid {
        Txid::hash(&[n])
    }

    /// A header committing to `txids` (other fields do not matter here).
    fn header_of(txids: &[Txid]) -> Header {
        let root = bitcoin::merkle_tree::calculate_root(txids.iter().map(|t| t.to_raw_hash()))
            .map(TxMerkleNode::from_raw_hash)
            .unwrap_or_else(TxMerkleNode::all_zeros);
        Header {
            version: bitcoin::block::Version::TWO,
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: root,
            time: 0,
            bits: bitcoin::CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        }
    }

    /// The branch of `txids[pos]` as an Electrum server computes it: siblings bottom-up,
    /// the last node of an odd level paired with itself.
    fn branch(txids: &[Txid], pos: usize) -> Vec<TxMerkleNode> {
        let mut level: Vec<TxMerkleNode> = txids
            .iter()
            .map(|t| TxMerkleNode::from_raw_hash(t.to_raw_hash()))
            .collect();
        let mut index = pos;
        let mut out = Vec::new();
        while level.len() > 1 {
            if level.len() % 2 == 1 {
                level.push(level[level.len() - 1]);
            }
            out.push(level[index ^ 1]);
            level = level
                .chunks(2)
                .map(|pair| {
                    let mut engine = sha256d::Hash::engine();
                    engine.input(pair[0].as_byte_array());
                    engine.input(pair[1].as_byte_array());
                    TxMerkleNode::from_raw_hash(sha256d::Hash::from_engine(engine))
                })
                .collect();
            index /= 2;
        }
        out
    }

    #[test]
    fn every_position_of_every_small_block_confirms() {
        for size in 1..=9u8 {
            let txids: Vec<Txid> = (0..size).map(txid).collect();
            let header = header_of(&txids);
            for (pos, id) in txids.iter().enumerate() {
                let answer = MerkleAnswer {
                    block_height: 7,
                    pos: pos as u32,
                    branch: branch(&txids, pos),
                };
                let confirmed = check_branch(*id, 7, &header, &answer);
                assert_eq!(
                    confirmed.map(|c| (c.txid(), c.height(), c.position(), c.block_hash())),
                    Ok((*id, 7, pos as u32, header.block_hash())),
                    "block of {size}, position {pos}"
                );
            }
        }
    }

    #[test]
    fn the_root_matches_rust_bitcoins_partial_merkle_tree() {
        let txids: Vec<Txid> = (0..6).map(txid).collect();
        let matches = [false, false, false, true, false, false];
        let tree = PartialMerkleTree::from_txids(&txids, &matches);
        let (mut found, mut indexes) = (Vec::new(), Vec::new());
        let root = tree.extract_matches(&mut found, &mut indexes);
        assert_eq!(
            root.ok(),
            Some(merkle_root(txids[3], 3, &branch(&txids, 3)))
        );
    }

    #[test]
    fn a_wrong_position_sibling_transaction_or_height_does_not_confirm() {
        let txids: Vec<Txid> = (0..5).map(txid).collect();
        let header = header_of(&txids);
        let good = MerkleAnswer {
            block_height: 3,
            pos: 2,
            branch: branch(&txids, 2),
        };
        let wrong_pos = MerkleAnswer {
            pos: 3,
            ..good.clone()
        };
        let mut wrong_sibling = good.clone();
        wrong_sibling.branch[1] = TxMerkleNode::all_zeros();
        for answer in [&wrong_pos, &wrong_sibling] {
            assert!(matches!(
                check_branch(txids[2], 3, &header, answer),
                Err(NotConfirmed::RootMismatch { height: 3, .. })
            ));
        }
        assert!(matches!(
            check_branch(txid(99), 3, &header, &good),
            Err(NotConfirmed::RootMismatch { .. })
        ));
        assert_eq!(
            check_branch(txids[2], 4, &header, &good),
            Err(NotConfirmed::OtherHeight {
                txid: txids[2],
                asked: 4,
                answered: 3
            })
        );
    }
}
