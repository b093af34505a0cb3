//! An Electrum server as an independent header source for SPV verifiers.
//!
//! A device that verifies anchors by SPV trusts the header chain it is given. This crate lets
//! it ask a second, independent party (any Electrum server: ElectrumX, electrs, Fulcrum)
//! whether that chain is the one the rest of the network sees:
//!
//! - [`ElectrumSource`] asks a server for its tip, headers and the Merkle branch of a known
//!   transaction, and decodes every answer into typed values ([`decode`]: never panics,
//!   whatever the server sends);
//! - [`CrossCheck`] compares the chain a verifier holds with the server's (pure, no I/O):
//!   the same block at the lower tip and tips at most `max_lag` apart give an [`Agreement`],
//!   anything else a [`Disagreement`] naming both sources (a fork and its height, or which side
//!   is behind); [`ElectrumSource::cross_check`] runs it live, fetching only what it needs;
//! - [`ElectrumSource::confirm_tx`] proves a known transaction is in a block whose header the
//!   caller holds ([`confirm::check_branch`]: the branch must reach the header's Merkle root).
//!
//! What it deliberately does not do: discover records. Electrum servers index scripts, not
//! `OP_RETURN` outputs, so finding Milagro records needs the TBS index; an Electrum server
//! can only confirm headers and transactions the verifier already knows of. It does not check
//! proof of work (the verifier's own header chain does, `milagro_anchor::proof::Headers`), keep
//! a connection alive, subscribe to new blocks, or speak TLS (`tcp://` only, which is what a
//! loopback or private server needs; an `ssl://` source would add rustls).
//!
//! The cross-check on its own, as a verifier holding headers would run it:
//!
//! ```
//! use bitcoin::block::{Header, Version};
//! use bitcoin::hashes::Hash;
//! use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};
//! use milagro_electrum::{CrossCheck, Disagreement, LocalChain, Outcome, RemoteHeaders};
//!
//! // A chain of three headers (proof of work does not matter to the comparison).
//! let mut chain: Vec<Header> = Vec::new();
//! for nonce in 0..3 {
//!     let prev_blockhash = chain.last().map_or(BlockHash::all_zeros(), Header::block_hash);
//!     chain.push(Header {
//!         version: Version::TWO,
//!         prev_blockhash,
//!         merkle_root: TxMerkleNode::all_zeros(),
//!         time: 0,
//!         bits: CompactTarget::from_consensus(0x207f_ffff),
//!         nonce,
//!     });
//! }
//! let local = LocalChain {
//!     label: "tbs https://tbs.example",
//!     tip: 2,
//!     hash_at: |height: u32| chain.get(height as usize).map(Header::block_hash),
//! };
//! // The server's tip is the same block: they agree at height 2.
//! let remote = RemoteHeaders { label: "tcp://electrum.example:50001", tip: 2, start: 2, headers: &chain[2..] };
//! match CrossCheck::new().check(&local, &remote) {
//!     Outcome::Agree(agreement) => assert_eq!(agreement.hash(), chain[2].block_hash()),
//!     other => panic!("{other:?}"),
//! }
//! // A server five blocks ahead: the local chain is behind (default max_lag: 2).
//! let remote = RemoteHeaders { tip: 7, start: 2, headers: &chain[2..], ..remote };
//! let Outcome::Disagree(behind) = CrossCheck::new().check(&local, &remote) else { panic!() };
//! assert!(matches!(behind, Disagreement::Behind { local_tip: 2, remote_tip: 7, .. }));
//! assert_eq!(
//!     behind.to_string(),
//!     "tbs https://tbs.example is behind: its tip is at 2, tcp://electrum.example:50001 is at 7"
//! );
//! ```
//!
//! Against a live server (see `milagro_regtest::ElectrumServer` for one on regtest):
//!
//! ```no_run
//! # use std::time::Duration;
//! # use milagro_electrum::{CrossCheck, ElectrumSource, LocalChain};
//! # use bitcoin::{block::Header, BlockHash, Txid};
//! // The verifier's own chain (tip and hashes), and a transaction it knows is at `height`
//! // in the block whose header it holds.
//! fn check(
//!     my_tip: u32,
//!     my_hash_at: impl Fn(u32) -> Option<BlockHash>,
//!     (txid, height, header): (Txid, u32, Header),
//! ) -> Result<(), Box<dyn std::error::Error>> {
//!     let server = ElectrumSource::connect("tcp://127.0.0.1:50001", Duration::from_secs(10))?;
//!     let local = LocalChain { label: "tbs https://tbs.example", tip: my_tip, hash_at: my_hash_at };
//!     let agreement = server.cross_check(&CrossCheck::new(), &local)?;
//!     println!("{} agrees on {} at {}", agreement.source(), agreement.hash(), agreement.height());
//!     let confirmed = server.confirm_tx(txid, height, &header)?; // header: the verifier's own
//! #     let _ = confirmed;
//!     Ok(())
//! }
//! ```

pub mod confirm;
pub mod cross_check;
pub mod decode;
mod source;

pub use confirm::{ConfirmedTx, NotConfirmed};
pub use cross_check::{
    Agreement, CrossCheck, Disagreement, LocalChain, Outcome, RemoteHeaders, Sources,
    DEFAULT_MAX_LAG,
};
pub use decode::{DecodeError, MerkleAnswer};
pub use source::{ConfirmError, CrossCheckError, ElectrumSource, SourceError};

#[cfg(test)]
mod cross_check_tests;
#[cfg(test)]
mod decode_tests;
