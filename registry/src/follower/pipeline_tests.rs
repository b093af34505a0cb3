//! The follower's block reader: a failure or a malformed block fails the step and writes
//! nothing, a step that stops early releases its reader, and the scanned path proves the
//! same records as the fully decoded one.

use std::sync::Mutex;

use bitcoin::block::Header;
use bitcoin::consensus::encode::serialize;
use bitcoin::merkle_tree::MerkleBlock;

use super::tests::{anchor, block, digest, foreign_op_return, FakeChain};
use super::*;
use bitcoin::{Block, Transaction, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::CompressedKey;

use crate::attribution::{records_in, Fundings};
use crate::store::{IndexedRecord, MemoryStore};

/// What [`Faulty`] does to the block at one height.
#[derive(Clone, Copy)]
enum Fault {
    /// The reader fails.
    Unreachable,
    /// The bytes are cut short.
    Truncated,
    /// Another branch's block comes back (the node reorganised mid-step).
    OtherBranch,
}

/// A chain whose `raw_block` misbehaves at one height; counts the blocks read.
struct Faulty {
    chain: FakeChain,
    fault: Option<(usize, Fault)>,
    read: Mutex<usize>,
}

impl Faulty {
    fn new(blocks: usize, fault: Option<(usize, Fault)>) -> Self {
        let chain = FakeChain::default();
        chain.extend(
            (0..blocks)
                .map(|i| vec![anchor(1, &format!("r{i}"))])
                .collect(),
        );
        Self {
            chain,
            fault,
            read: Mutex::new(0),
        }
    }
}

impl ChainSource for Faulty {
    fn tip(&self) -> Result<BlockId, ChainError> {
        self.chain.tip()
    }
    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        self.chain.block_hash(height)
    }
    fn block(&self, hash: &BlockHash) -> Result<Block, ChainError> {
        self.chain.block(hash)
    }
    fn raw_block(&self, hash: &BlockHash) -> Result<Vec<u8>, ChainError> {
        *self.read.lock().unwrap() += 1;
        let height = self
            .chain
            .blocks
            .lock()
            .unwrap()
            .iter()
            .position(|b| b.block_hash() == *hash);
        let raw = serialize(&self.chain.block(hash)?);
        match (self.fault, height) {
            (Some((at, fault)), Some(height)) if at == height => match fault {
                Fault::Unreachable => Err(ChainError::Unreachable("pulled the plug".into())),
                Fault::Truncated => Ok(raw[..raw.len() - 3].to_vec()),
                Fault::OtherBranch => Ok(serialize(&block(*hash, 99, vec![]))),
            },
            _ => Ok(raw),
        }
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
fn a_reader_failure_fails_the_step_and_writes_nothing() {
    let follower = Follower::new(
        Faulty::new(40, Some((30, Fault::Unreachable))),
        MemoryStore::new(),
        0,
    );
    assert!(matches!(
        follower.step(100),
        Err(SyncError::Chain(ChainError::Unreachable(_)))
    ));
    assert_eq!(follower.store().tip().unwrap(), None);
}

#[test]
fn a_malformed_block_is_a_typed_error_naming_its_height() {
    let follower = Follower::new(
        Faulty::new(40, Some((21, Fault::Truncated))),
        MemoryStore::new(),
        0,
    );
    match follower.step(100) {
        Err(SyncError::Block { height, source, .. }) => {
            assert_eq!(height, 21);
            assert!(matches!(source, crate::scan::ScanError::Truncated { .. }));
        }
        other => panic!("a cut block gave {other:?}"),
    }
    assert_eq!(follower.store().tip().unwrap(), None);
}

#[test]
fn a_step_that_stops_early_releases_its_reader_and_resumes() {
    // 0 … 99, and at 10 the node hands out another branch's block: the step connects
    // 0-9, and its reader stops there.
    let follower = Follower::new(
        Faulty::new(100, Some((10, Fault::OtherBranch))),
        MemoryStore::new(),
        0,
    );
    let first = follower.step(1_000).unwrap();
    assert_eq!(first.tip.map(|t| t.height), Some(9));
    assert_eq!(follower.store().record_count().unwrap(), 10);
    let read = *follower.chain().read.lock().unwrap();
    assert_eq!(read, 11, "read {read} blocks");
}

#[test]
fn scanned_and_decoded_blocks_prove_the_same_records() {
    let chain = FakeChain::default();
    chain.extend(vec![
        vec![],
        vec![
            anchor(1, "a"),
            foreign_op_return(b"MLGR but not quite"),
            anchor(2, "b"),
        ],
        vec![foreign_op_return(b"omni")],
        vec![anchor(3, "c")],
    ]);
    let run = |scan: bool| {
        let blocks: Vec<(BlockId, BlockCandidates)> = chain
            .blocks
            .lock()
            .unwrap()
            .iter()
            .zip(0..)
            .map(|(b, height)| {
                let id = BlockId {
                    height,
                    hash: b.block_hash(),
                };
                let candidates = if scan {
                    BlockCandidates::scan(&serialize(b)).unwrap()
                } else {
                    BlockCandidates::from_block(b)
                };
                (id, candidates)
            })
            .collect();
        records_in(&chain, &blocks, &mut Fundings::new()).unwrap()
    };
    let scanned = run(true);
    assert_eq!(scanned, run(false));
    assert_eq!(scanned.iter().map(|b| b.records.len()).sum::<usize>(), 3);
    assert_eq!(scanned[1].records[0].digest, digest("a"));
}

#[test]
fn a_step_ends_once_it_holds_enough_records() {
    // 20 blocks of 250 records: the first step stops after the run that passes
    // RECORDS_PER_STEP, the next ones finish the chain.
    let chain = FakeChain::default();
    chain.extend(
        (0..20)
            .map(|b| (0..250).map(|r| anchor(4, &format!("{b}/{r}"))).collect())
            .collect(),
    );
    let follower = Follower::new(chain, MemoryStore::new(), 0);
    let first = follower.step(100).unwrap();
    assert!(
        (RECORDS_PER_STEP..RECORDS_PER_STEP + CANDIDATES_PER_LOOKUP + 250).contains(&first.records),
        "{} records",
        first.records
    );
    assert!(first.tip.unwrap().height < 19);
    assert!(follower.sync(100, |_| {}).unwrap().caught_up());
    assert_eq!(follower.store().record_count().unwrap(), 5_000);
}

/// A store that refuses every `apply` after the first `allowed`.
struct FailingAfter {
    inner: MemoryStore,
    allowed: Mutex<usize>,
}

impl RecordStore for FailingAfter {
    fn tip(&self) -> Result<Option<BlockId>, StoreError> {
        self.inner.tip()
    }
    fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        self.inner.block_hash_at(height)
    }
    fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        let mut allowed = self.allowed.lock().unwrap();
        if *allowed == 0 {
            return Err(StoreError::Backend("disk full".into()));
        }
        *allowed -= 1;
        self.inner.apply(changes)
    }
    fn by_digest(&self, d: &Digest) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_digest(d)
    }
    fn by_txid(&self, t: &Txid) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_txid(t)
    }
    fn by_signer(&self, s: &CompressedKey) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_signer(s)
    }
    fn record_count(&self) -> Result<u64, StoreError> {
        self.inner.record_count()
    }
}

#[test]
fn a_write_that_fails_during_the_overlapped_catch_up_stops_the_sync_at_the_last_step_written() {
    // Ten blocks of one record, synced two blocks a step: the first step and the first
    // overlapped one are written, the third write fails.
    let chain = FakeChain::default();
    chain.extend((0..10).map(|b| vec![anchor(4, &format!("{b}"))]).collect());
    let store = FailingAfter {
        inner: MemoryStore::new(),
        allowed: Mutex::new(2),
    };
    let follower = Follower::new(chain, store, 0);
    let mut reported = Vec::new();
    let error = follower
        .sync(2, |step| reported.push(step.tip.unwrap().height))
        .unwrap_err();
    assert!(
        matches!(&error, SyncError::Store(StoreError::Backend(m)) if m == "disk full"),
        "{error}"
    );
    assert_eq!(follower.store().tip().unwrap().unwrap().height, 3);
    assert_eq!(follower.store().record_count().unwrap(), 4);
    // Steps handed to the writer were reported in order, whatever was written.
    assert!(reported.windows(2).all(|w| w[0] < w[1]), "{reported:?}");
    assert!(reported.starts_with(&[1, 3, 5]), "{reported:?}");
}
