//! The follower's block reader: a failure or a malformed block fails the step and writes
//! nothing, a step that stops early releases its reader, and the scanned path proves the
//! same records as the fully decoded one.

use std::sync::Mutex;

use bitcoin::block::Header;
use bitcoin::consensus::encode::serialize;
use bitcoin::merkle_tree::MerkleBlock;

use super::tests::{anchor, block, digest, foreign_op_return, FakeChain};
use super::*;
use crate::store::MemoryStore;

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
    // 0-9, its reader (blocked on a full queue) is released, and it reads no further
    // than the queue allows.
    let follower = Follower::new(
        Faulty::new(100, Some((10, Fault::OtherBranch))),
        MemoryStore::new(),
        0,
    );
    let first = follower.step(1_000).unwrap();
    assert_eq!(first.tip.map(|t| t.height), Some(9));
    assert_eq!(follower.store().record_count().unwrap(), 10);
    let read = *follower.chain().read.lock().unwrap();
    assert!(read <= 11 + BLOCKS_IN_FLIGHT + 1, "read {read} blocks");
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
        records_in(&chain, &blocks).unwrap()
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
