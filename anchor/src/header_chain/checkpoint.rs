//! The chain points a verifier trusts without being told: one pinned block per network,
//! and the least total work a chain must show.
//!
//! The values are Bitcoin Core's (`src/kernel/chainparams.cpp`, early 2026):
//! `defaultAssumeValid` names the block and its height, and `nMinimumChainWork` is the
//! chain work Core's release process reads off that same block (`getblockheader`). A
//! verifier built here accepts a header chain only if it passes through the pinned block
//! and ends with at least that much work, so a chain made up on top of any earlier block,
//! however valid each header, is refused. Regtest pins its genesis block and asks no
//! minimum (its chains are made in seconds).

use bitcoin::hashes::Hash as _;
use bitcoin::{BlockHash, Network, Work};

/// A block whose place in the chain the verifier knows beforehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its height.
    pub height: u32,
    /// Its hash.
    pub hash: BlockHash,
    /// The chain's total work up to and including it, where known ([`None`] when the
    /// checkpoint is a header trusted for another reason, e.g. from the party's own node:
    /// work is then counted from it).
    pub chain_work: Option<Work>,
}

impl Checkpoint {
    /// The genesis block of `network`.
    pub fn genesis(network: Network) -> Self {
        let genesis = bitcoin::constants::genesis_block(network).header;
        Self {
            height: 0,
            hash: genesis.block_hash(),
            chain_work: Some(genesis.work()),
        }
    }

    /// The block this crate pins for `network` (genesis on regtest).
    pub fn pinned(network: Network) -> Self {
        let pinned = |height, hash: &str, work: &str| Self {
            height,
            hash: hash_from_hex(hash),
            chain_work: Some(work_from_hex(work)),
        };
        match network {
            Network::Bitcoin => pinned(
                938_343,
                "00000000000000000000ccebd6d74d9194d8dcdc1d177c478e094bfad51ba5ac",
                MAINNET_MINIMUM_WORK,
            ),
            Network::Testnet4 => pinned(
                123_613,
                "0000000002368b1e4ee27e2e85676ae6f9f9e69579b29093e9a82c170bf7cf8a",
                TESTNET4_MINIMUM_WORK,
            ),
            Network::Signet => pinned(
                293_175,
                "00000008414aab61092ef93f1aacc54cf9e9f16af29ddad493b908a01ff5c329",
                SIGNET_MINIMUM_WORK,
            ),
            Network::Testnet => pinned(
                4_842_348,
                "000000007a61e4230b28ac5cb6b5e5a0130de37ac1faf2f8987d2fa6505b67f4",
                TESTNET3_MINIMUM_WORK,
            ),
            _ => Self::genesis(network),
        }
    }
}

/// The least total work a header chain of `network` must show: the chain work of the
/// pinned block (zero on regtest, whose pinned block is genesis and whose chains are
/// made in seconds).
pub fn minimum_chain_work(network: Network) -> Work {
    match network {
        Network::Regtest => Work::from_be_bytes([0; 32]),
        _ => Checkpoint::pinned(network)
            .chain_work
            .unwrap_or_else(|| Work::from_be_bytes([0; 32])),
    }
}

const MAINNET_MINIMUM_WORK: &str =
    "0000000000000000000000000000000000000001128750f82f4c366153a3a030";
const TESTNET4_MINIMUM_WORK: &str =
    "0000000000000000000000000000000000000000000009a0fe15d0177d086304";
const SIGNET_MINIMUM_WORK: &str =
    "00000000000000000000000000000000000000000000000000000b463ea0a4b8";
const TESTNET3_MINIMUM_WORK: &str =
    "0000000000000000000000000000000000000000000017dde1c649f3708d14b6";

/// Parses a 64-digit display-order hex constant of this file (tested below).
fn hash_from_hex(hex: &str) -> BlockHash {
    hex.parse().unwrap_or_else(|_| BlockHash::all_zeros())
}

fn work_from_hex(hex: &str) -> Work {
    Work::from_unprefixed_hex(hex).unwrap_or_else(|_| Work::from_be_bytes([0; 32]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_constant_parses() {
        for network in [
            Network::Bitcoin,
            Network::Testnet4,
            Network::Signet,
            Network::Testnet,
        ] {
            let pinned = Checkpoint::pinned(network);
            assert_ne!(pinned.hash, BlockHash::all_zeros(), "{network}");
            assert!(pinned.height > 0);
            assert!(minimum_chain_work(network) > Work::from_be_bytes([0; 32]));
            assert_eq!(pinned.chain_work, Some(minimum_chain_work(network)));
        }
        assert_eq!(
            Checkpoint::pinned(Network::Regtest),
            Checkpoint::genesis(Network::Regtest)
        );
    }
}
