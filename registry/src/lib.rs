//! The Milagro registry: a reorg-safe index of every Milagro record in the chain.
//!
//! A [`Follower`](follower::Follower) reads blocks from a [`ChainSource`](chain::ChainSource)
//! (in production [`BitcoindRpc`](bitcoind::BitcoindRpc), the only code in the workspace
//! that speaks to the node: JSON-RPC, and REST for blocks, so the node needs `-txindex=1`
//! and `-rest=1`), finds the record-shaped transactions without decoding the others
//! ([`scan`]), proves each signer with [`milagro_anchor::record::RecordCandidate`] against
//! the output it spends, and persists the records in a
//! [`RecordStore`](store::RecordStore) (by default [`RedbStore`](redb_store::RedbStore)).
//! Every update is a [`ChangeSet`](store::ChangeSet) written atomically with the new tip,
//! and a reorg is a change set that starts with a rollback, found by walking the stored
//! `(height, hash)` checkpoints back to the point where index and node agree.
//!
//! [`anchoring::prepare_anchor`] pays for a party's own anchor from the node's wallet and
//! signs it, leaving the broadcast to the caller.
//!
//! What it does not do: decide whether a record is *trustworthy* (that is the verifier's
//! job, with an anchor proof and headers: see [`milagro_anchor::proof`]), or serve HTTP
//! (the TBS does). The index is authoritative for the node it follows: every row it answers
//! from is on that node's active chain as of the last step.
//!
//! ```no_run
//! use milagro_registry::{bitcoind::BitcoindRpc, follower::Follower, redb_store::RedbStore};
//! use milagro_registry::store::RecordStore;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = BitcoindRpc::with_cookie("http://127.0.0.1:18443", "/tmp/regtest/.cookie".as_ref());
//! let store = RedbStore::open("/tmp/milagro-index".as_ref())?;
//! let follower = Follower::new(node, store, 0);
//! let report = follower.sync(200, |step| eprintln!("indexed up to {:?}", step.tip))?;
//! println!("{} records", follower.store().record_count()?);
//! # let _ = report; Ok(()) }
//! ```

pub mod anchoring;
pub mod attribution;
pub mod bitcoind;
pub mod chain;
pub mod follower;
pub mod proofs;
pub mod redb_store;
pub mod scan;
pub mod store;
