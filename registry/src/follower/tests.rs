//! Follower specifications against an in-memory chain, run on both stores.
//!
//! Diagrams: `0 - 1 - 2x` is a chain of three blocks whose block 2 holds record `x`;
//! a prime marks a block of a competing branch.

use std::collections::HashMap;
use std::sync::Mutex;

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::merkle_tree::MerkleBlock;
use bitcoin::script::PushBytesBuf;
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, Block, CompactTarget, FeeRate, OutPoint, ScriptBuf, Transaction, TxMerkleNode, TxOut,
    Txid,
};
use milagro_anchor::anchor_tx::{build_anchor_tx, FundingUtxo};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::SecretKey;
use milagro_anchor::payload::{Payload, RecordKind};

use super::*;
use crate::redb_store::RedbStore;
use crate::store::MemoryStore;

/// A chain held in memory; tests rewrite it to simulate reorgs. Like a node, it still
/// serves blocks of branches it has left.
#[derive(Default)]
pub(super) struct FakeChain {
    pub(super) blocks: Mutex<Vec<Block>>,
    every_block: Mutex<HashMap<BlockHash, Block>>,
}

impl FakeChain {
    pub(super) fn extend(&self, txs_per_block: Vec<Vec<Transaction>>) {
        let mut blocks = self.blocks.lock().unwrap();
        for txs in txs_per_block {
            let prev = blocks
                .last()
                .map_or(BlockHash::all_zeros(), Block::block_hash);
            let salt = blocks.len() as u32;
            let block = block(prev, salt, txs);
            self.every_block
                .lock()
                .unwrap()
                .insert(block.block_hash(), block.clone());
            blocks.push(block);
        }
    }

    /// Drops every block at or above `height`.
    fn truncate(&self, height: usize) {
        self.blocks.lock().unwrap().truncate(height);
    }
}

pub(super) fn block(prev: BlockHash, salt: u32, mut txs: Vec<Transaction>) -> Block {
    // One input, as every real coinbase has: a transaction without inputs does not
    // survive serialization (its empty input list reads as the segwit marker), and the
    // follower reads blocks serialized.
    let coinbase = Transaction {
        version: TxVersion::ONE,
        lock_time: LockTime::from_consensus(salt),
        input: vec![bitcoin::TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(salt.to_le_bytes().to_vec()),
            ..Default::default()
        }],
        output: vec![TxOut {
            value: Amount::from_sat(1),
            script_pubkey: ScriptBuf::new(),
        }],
    };
    txs.insert(0, coinbase);
    let mut block = Block {
        header: Header {
            version: Version::TWO,
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time: salt,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: salt,
        },
        txdata: txs,
    };
    block.header.merkle_root = block.compute_merkle_root().unwrap();
    block
}

impl ChainSource for FakeChain {
    fn tip(&self) -> Result<BlockId, ChainError> {
        let blocks = self.blocks.lock().unwrap();
        let last = blocks
            .last()
            .ok_or_else(|| ChainError::NotFound("empty".into()))?;
        Ok(BlockId {
            height: blocks.len() as u32 - 1,
            hash: last.block_hash(),
        })
    }
    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        Ok(self
            .blocks
            .lock()
            .unwrap()
            .get(height as usize)
            .map(Block::block_hash))
    }
    fn block(&self, hash: &BlockHash) -> Result<Block, ChainError> {
        self.every_block
            .lock()
            .unwrap()
            .get(hash)
            .cloned()
            .ok_or_else(|| ChainError::NotFound(hash.to_string()))
    }
    fn header(&self, hash: &BlockHash) -> Result<Header, ChainError> {
        self.block(hash).map(|b| b.header)
    }
    fn transaction(&self, _: &Txid, _: &BlockHash) -> Result<Transaction, ChainError> {
        Err(ChainError::NotFound("unused".into()))
    }
    fn indexed_transactions(&self, txids: &[Txid]) -> Result<Vec<Transaction>, ChainError> {
        let fundings = FUNDINGS.lock().unwrap();
        txids
            .iter()
            .map(|t| {
                fundings
                    .get(t)
                    .cloned()
                    .ok_or_else(|| ChainError::NotFound(t.to_string()))
            })
            .collect()
    }
    fn merkle_block(&self, _: &[Txid], _: &BlockHash) -> Result<MerkleBlock, ChainError> {
        Err(ChainError::NotFound("unused".into()))
    }
    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        Ok(tx.compute_txid())
    }
}

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

/// The funding transactions the fake node's transaction index knows.
static FUNDINGS: std::sync::LazyLock<Mutex<HashMap<Txid, Transaction>>> =
    std::sync::LazyLock::new(Mutex::default);

/// Makes (and indexes) a transaction paying 10,000 sat to `script`.
fn funding_to(script: ScriptBuf, label: &str) -> FundingUtxo {
    let tx = Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: OutPoint::new(
                Txid::from_byte_array(Digest::sha256(label.as_bytes()).to_bytes()),
                0,
            ),
            ..Default::default()
        }],
        output: vec![TxOut {
            value: Amount::from_sat(10_000),
            script_pubkey: script,
        }],
    };
    let funding = FundingUtxo {
        outpoint: OutPoint::new(tx.compute_txid(), 0),
        value: tx.output[0].value,
    };
    FUNDINGS.lock().unwrap().insert(tx.compute_txid(), tx);
    funding
}

/// An anchoring transaction by key `signer` for the digest of `label`.
pub(super) fn anchor(signer: u8, label: &str) -> Transaction {
    let funding = funding_to(
        milagro_anchor::anchor_tx::p2wpkh_script(&key(signer).public_key()),
        label,
    );
    let payload = Payload::new(
        RecordKind::BirthCertificate,
        Digest::sha256(label.as_bytes()),
    );
    build_anchor_tx(
        &key(signer),
        &funding,
        &payload,
        FeeRate::from_sat_per_vb_u32(1),
        None,
    )
    .unwrap()
    .tx
}

pub(super) fn foreign_op_return(bytes: &[u8]) -> Transaction {
    let mut tx = anchor(1, "foreign");
    tx.output[0].script_pubkey =
        ScriptBuf::new_op_return(PushBytesBuf::try_from(bytes.to_vec()).unwrap());
    tx
}

pub(super) fn digest(label: &str) -> Digest {
    Digest::sha256(label.as_bytes())
}

/// Runs `test` once on each store; the redb directory lives until the run ends.
fn with_each_store(test: impl Fn(&str, Box<dyn RecordStore>)) {
    test("memory", Box::new(MemoryStore::new()));
    let dir = tempfile::tempdir().unwrap();
    test("redb", Box::new(RedbStore::open(dir.path()).unwrap()));
}

#[test]
fn indexes_every_record_and_answers_every_query() {
    with_each_store(|name, store| {
        // 0 - 1ab - 2 - 3c(+foreign)
        let chain = FakeChain::default();
        chain.extend(vec![
            vec![],
            vec![anchor(1, "a"), anchor(2, "b")],
            vec![],
            vec![anchor(1, "c"), foreign_op_return(b"omni....")],
        ]);
        let follower = Follower::new(chain, store, 0);
        let report = follower.sync(2, |_| {}).unwrap();
        assert!(report.caught_up(), "{name}");
        let store = follower.store();
        assert_eq!(store.record_count().unwrap(), 3, "{name}");
        let a = store.by_digest(&digest("a")).unwrap();
        assert_eq!(a.len(), 1, "{name}");
        assert_eq!(a[0].height, 1);
        assert_eq!(store.by_txid(&a[0].txid).unwrap(), a, "{name}");
        assert_eq!(
            store
                .by_signer(&key(1).public_key().compressed())
                .unwrap()
                .len(),
            2,
            "{name}"
        );
        assert!(a[0].nonce_point().is_some());
        assert!(
            store.by_digest(&digest("foreign")).unwrap().is_empty(),
            "{name}"
        );
    });
}

/// A transaction that names key 1 in a `[signature, key]` witness but spends a Taproot
/// output (any script-path spend can look like that): not key 1's record.
fn forged_by_shape(label: &str) -> Transaction {
    let mut tx = anchor(1, label);
    let x_only = key(7).public_key().to_bitcoin().0.x_only_public_key().0;
    let taproot = ScriptBuf::new_p2tr_tweaked(
        bitcoin::key::TweakedPublicKey::dangerous_assume_tweaked(x_only),
    );
    tx.input[0].previous_output = funding_to(taproot, &format!("forged {label}")).outpoint;
    tx
}

#[test]
fn a_record_whose_input_does_not_spend_the_signers_output_is_not_indexed() {
    with_each_store(|name, store| {
        let chain = FakeChain::default();
        chain.extend(vec![
            vec![],
            vec![anchor(1, "real"), forged_by_shape("fake")],
        ]);
        let follower = Follower::new(chain, store, 0);
        follower.sync(10, |_| {}).unwrap();
        let store = follower.store();
        assert_eq!(store.by_digest(&digest("real")).unwrap().len(), 1, "{name}");
        assert!(
            store.by_digest(&digest("fake")).unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            store
                .by_signer(&key(1).public_key().compressed())
                .unwrap()
                .len(),
            1,
            "{name}"
        );
    });
}

#[test]
fn a_two_block_reorg_drops_the_record_and_re_mining_restores_it() {
    with_each_store(|name, store| {
        // before: 0 - 1 - 2x - 3        after: 0 - 1 - 2' - 3' - 4'      then: ... - 5'x
        let chain = FakeChain::default();
        chain.extend(vec![vec![], vec![], vec![anchor(1, "x")], vec![]]);
        let follower = Follower::new(chain, store, 0);
        follower.sync(100, |_| {}).unwrap();
        assert_eq!(follower.store().by_digest(&digest("x")).unwrap().len(), 1);

        follower.chain().truncate(2);
        follower
            .chain()
            .extend(vec![vec![anchor(3, "other")], vec![], vec![]]);
        let report = follower.sync(100, |_| {}).unwrap();
        assert_eq!(report.rolled_back_from, Some(2), "{name}");
        assert!(
            follower.store().by_digest(&digest("x")).unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(follower.store().record_count().unwrap(), 1, "{name}");

        follower.chain().extend(vec![vec![anchor(1, "x")]]);
        follower.sync(100, |_| {}).unwrap();
        let x = follower.store().by_digest(&digest("x")).unwrap();
        assert_eq!((x.len(), x[0].height), (1, 5), "{name}");
        assert_eq!(follower.store().record_count().unwrap(), 2, "{name}");
    });
}

#[test]
fn a_shorter_chain_rolls_the_index_back_to_its_tip() {
    with_each_store(|name, store| {
        // before: 0 - 1 - 2 - 3x - 4y      after: 0 - 1 - 2
        let chain = FakeChain::default();
        chain.extend(vec![
            vec![],
            vec![],
            vec![],
            vec![anchor(1, "x")],
            vec![anchor(1, "y")],
        ]);
        let follower = Follower::new(chain, store, 0);
        follower.sync(100, |_| {}).unwrap();
        follower.chain().truncate(3);
        let report = follower.sync(100, |_| {}).unwrap();
        assert_eq!(report.rolled_back_from, Some(3), "{name}");
        assert_eq!(report.tip.map(|t| t.height), Some(2), "{name}");
        assert_eq!(follower.store().record_count().unwrap(), 0, "{name}");
    });
}

#[test]
fn a_reorg_deeper_than_one_search_window_is_found() {
    with_each_store(|name, store| {
        // before: 0 - 1x - 2 … 40      after: 0 - 1x - 2' … 45'
        let chain = FakeChain::default();
        let mut blocks = vec![vec![], vec![anchor(1, "x")]];
        blocks.extend((2..=40).map(|i| vec![anchor(2, &format!("old{i}"))]));
        chain.extend(blocks);
        let follower = Follower::new(chain, store, 0);
        follower.sync(7, |_| {}).unwrap();
        assert_eq!(follower.store().record_count().unwrap(), 40, "{name}");
        follower.chain().truncate(2);
        follower.chain().extend((2..=45).map(|_| vec![]).collect());
        let report = follower.sync(1000, |_| {}).unwrap();
        assert_eq!(report.rolled_back_from, Some(2), "{name}");
        assert_eq!(follower.store().record_count().unwrap(), 1, "{name}");
        assert_eq!(report.tip.map(|t| t.height), Some(45), "{name}");
    });
}

#[test]
fn an_identical_chain_is_a_no_op() {
    let chain = FakeChain::default();
    chain.extend(vec![vec![], vec![anchor(1, "x")]]);
    let follower = Follower::new(chain, MemoryStore::new(), 0);
    follower.sync(10, |_| {}).unwrap();
    let report = follower.step(10).unwrap();
    assert_eq!((report.blocks, report.rolled_back_from), (0, None));
}

#[test]
fn a_restarted_redb_index_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let chain = FakeChain::default();
    chain.extend((0..30).map(|i| vec![anchor(1, &format!("r{i}"))]).collect());
    {
        let follower = Follower::new(&chain, RedbStore::open(dir.path()).unwrap(), 0);
        follower.step(12).unwrap();
        assert_eq!(follower.store().record_count().unwrap(), 12);
    }
    let follower = Follower::new(&chain, RedbStore::open(dir.path()).unwrap(), 0);
    let report = follower.sync(5, |_| {}).unwrap();
    assert!(report.caught_up());
    assert_eq!(follower.store().record_count().unwrap(), 30);
    for i in 0..30 {
        assert_eq!(
            follower
                .store()
                .by_digest(&digest(&format!("r{i}")))
                .unwrap()
                .len(),
            1
        );
    }
}

#[test]
fn a_change_set_that_does_not_connect_is_refused() {
    let store = MemoryStore::new();
    let id = |height| BlockId {
        height,
        hash: BlockHash::all_zeros(),
    };
    store
        .apply(&ChangeSet {
            disconnect_from: None,
            connect: vec![ConnectedBlock {
                id: id(0),
                coinbase_txid: Txid::all_zeros(),
                records: vec![],
            }],
        })
        .unwrap();
    let gap = ChangeSet {
        disconnect_from: None,
        connect: vec![ConnectedBlock {
            id: id(5),
            coinbase_txid: Txid::all_zeros(),
            records: vec![],
        }],
    };
    assert!(matches!(
        store.apply(&gap),
        Err(StoreError::DoesNotConnect(_))
    ));
}

/// What the racy node does to its chain, once.
type Reorg = Box<dyn FnOnce(&FakeChain) + Send>;

/// A node that reorganises in the middle of answering one `getblockhash` batch: the first
/// half of the answers come from the old branch, the rest from the new one.
struct ReorgDuringBatch {
    chain: FakeChain,
    reorg: Mutex<Option<Reorg>>,
}

impl ChainSource for ReorgDuringBatch {
    fn tip(&self) -> Result<BlockId, ChainError> {
        self.chain.tip()
    }
    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        self.chain.block_hash(height)
    }
    fn block_hashes(&self, heights: &[u32]) -> Result<Vec<Option<BlockHash>>, ChainError> {
        let (before, after) = heights.split_at(heights.len() / 2);
        let mut answers: Vec<_> = before
            .iter()
            .map(|h| self.chain.block_hash(*h))
            .collect::<Result<_, _>>()?;
        if let Some(reorg) = self.reorg.lock().unwrap().take() {
            reorg(&self.chain);
        }
        for height in after {
            answers.push(self.chain.block_hash(*height)?);
        }
        Ok(answers)
    }
    fn block(&self, hash: &BlockHash) -> Result<Block, ChainError> {
        self.chain.block(hash)
    }
    fn header(&self, hash: &BlockHash) -> Result<Header, ChainError> {
        self.chain.header(hash)
    }
    fn transaction(&self, txid: &Txid, block: &BlockHash) -> Result<Transaction, ChainError> {
        self.chain.transaction(txid, block)
    }
    fn indexed_transactions(&self, txids: &[Txid]) -> Result<Vec<Transaction>, ChainError> {
        self.chain.indexed_transactions(txids)
    }
    fn merkle_block(&self, txids: &[Txid], block: &BlockHash) -> Result<MerkleBlock, ChainError> {
        self.chain.merkle_block(txids, block)
    }
    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        self.chain.broadcast(tx)
    }
}

#[test]
fn a_reorg_while_a_step_fetches_connects_only_what_builds_and_heals_next_step() {
    with_each_store(|name, store| {
        // the node starts at 0 - 1 - … - 9 (one record per block); while the first step
        // reads hashes it switches to 0 - 1 - 2 - 3' - … - 11' (records only up to 2).
        let chain = FakeChain::default();
        chain.extend(
            (0..10)
                .map(|i| vec![anchor(1, &format!("old{i}"))])
                .collect(),
        );
        let racy = ReorgDuringBatch {
            chain,
            reorg: Mutex::new(Some(Box::new(|chain: &FakeChain| {
                chain.truncate(3);
                chain.extend((3..12).map(|_| vec![]).collect());
            }))),
        };
        let follower = Follower::new(racy, store, 0);
        let first = follower.step(100).unwrap();
        // Hashes 0-4 came from the old branch and 5'-9' from the new one: 5' does not
        // build on old block 4, so the step connects 0-4 and stops there.
        assert_eq!(first.tip.map(|t| t.height), Some(4), "{name}");
        let report = follower.sync(100, |_| {}).unwrap();
        assert!(report.caught_up(), "{name}");
        assert_eq!(report.tip.map(|t| t.height), Some(11), "{name}");
        assert_eq!(report.rolled_back_from, Some(3), "{name}");
        assert_eq!(follower.store().record_count().unwrap(), 3, "{name}");
        assert!(
            follower
                .store()
                .by_digest(&digest("old3"))
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_eq!(
            follower.store().by_digest(&digest("old2")).unwrap().len(),
            1,
            "{name}"
        );
    });
}
