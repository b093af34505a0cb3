//! The cross-check as a specification: named cases with their chains drawn, then
//! properties over every shape of two chains sharing a prefix, run through the same loop
//! that [`ElectrumSource::cross_check`](crate::ElectrumSource::cross_check) runs live.

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};
use proptest::prelude::*;

use crate::cross_check::{CrossCheck, Disagreement, LocalChain, Outcome, RemoteHeaders};
use crate::source::{drive, CrossCheckError, SourceError};
use crate::DecodeError;

const LOCAL: &str = "tbs https://tbs.example";
const REMOTE: &str = "tcp://electrum.example:50001";

/// A chain from genesis: one letter per block, the branch it belongs to. Blocks with the
/// same letters up to a height are the same blocks ("aaab" and "aaac" share 0..=2).
fn chain(branches: &str) -> Vec<Header> {
    let mut headers: Vec<Header> = Vec::new();
    for (height, branch) in branches.bytes().enumerate() {
        let prev_blockhash = headers
            .last()
            .map_or(BlockHash::all_zeros(), Header::block_hash);
        headers.push(Header {
            version: Version::TWO,
            prev_blockhash,
            merkle_root: TxMerkleNode::all_zeros(),
            time: height as u32,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: u32::from(branch),
        });
    }
    headers
}

fn tip(headers: &[Header]) -> u32 {
    headers.len() as u32 - 1
}

fn hash_at(headers: &[Header]) -> impl Fn(u32) -> Option<BlockHash> + '_ {
    |height| headers.get(height as usize).map(Header::block_hash)
}

/// Runs the live loop against an in-memory server holding `remote`; counts headers fetched.
fn run(
    policy: CrossCheck,
    local: &[Header],
    remote: &[Header],
) -> (Result<crate::Agreement, CrossCheckError>, usize) {
    let view = LocalChain {
        label: LOCAL,
        tip: tip(local),
        hash_at: hash_at(local),
    };
    let mut fetched = 0;
    let tip_header = (tip(remote), remote[remote.len() - 1]);
    let result = drive(&policy, &view, REMOTE, tip_header, |from, count| {
        let headers = remote[from as usize..(from + count) as usize].to_vec();
        fetched += headers.len();
        Ok(headers)
    });
    (result, fetched)
}

fn disagreement(result: Result<crate::Agreement, CrossCheckError>) -> Disagreement {
    match result {
        Err(CrossCheckError::Disagree(d)) => d,
        other => panic!("expected a disagreement, got {other:?}"),
    }
}

#[test]
fn same_chain_same_tip_agrees_on_the_tip_without_fetching() {
    //  local:  0 ─ 1 ─ 2 ─ 3
    //  remote: 0 ─ 1 ─ 2 ─ 3
    let both = chain("aaaa");
    let (result, fetched) = run(CrossCheck::new(), &both, &both);
    let agreement = result.unwrap();
    assert_eq!(
        (agreement.height(), agreement.hash(), agreement.source()),
        (3, both[3].block_hash(), REMOTE)
    );
    assert_eq!(
        (
            agreement.local(),
            agreement.local_tip(),
            agreement.remote_tip()
        ),
        (LOCAL, 3, 3)
    );
    assert_eq!(fetched, 0);
}

#[test]
fn lag_within_max_lag_agrees_at_the_lower_tip_either_way() {
    //  local:  0 ─ 1 ─ 2 ─ 3               local:  0 ─ 1 ─ 2 ─ 3 ─ 4 ─ 5
    //  remote: 0 ─ 1 ─ 2 ─ 3 ─ 4 ─ 5       remote: 0 ─ 1 ─ 2 ─ 3
    let (short, long) = (chain("aaaa"), chain("aaaaaa"));
    for (local, remote) in [(&short, &long), (&long, &short)] {
        let (result, fetched) = run(CrossCheck::new(), local, remote);
        let agreement = result.unwrap();
        assert_eq!(
            (agreement.height(), agreement.hash()),
            (3, short[3].block_hash())
        );
        // The local tip is below the server's: one header fetched, at the local tip.
        assert_eq!(fetched, usize::from(local.len() < remote.len()));
    }
}

#[test]
fn a_remote_tip_more_than_max_lag_above_means_the_local_chain_is_behind() {
    //  local:  0 ─ 1 ─ 2
    //  remote: 0 ─ 1 ─ 2 ─ 3 ─ 4 ─ 5     (3 ahead; max_lag 2)
    let (result, _) = run(CrossCheck::new(), &chain("aaa"), &chain("aaaaaa"));
    let behind = disagreement(result);
    assert!(
        matches!(&behind, Disagreement::Behind { local_tip: 2, remote_tip: 5, sources } if sources.local == LOCAL && sources.remote == REMOTE),
        "{behind:?}"
    );
    assert_eq!(
        behind.to_string(),
        format!("{LOCAL} is behind: its tip is at 2, {REMOTE} is at 5")
    );
    // A wider tolerance accepts it.
    let (result, _) = run(
        CrossCheck::new().with_max_lag(3),
        &chain("aaa"),
        &chain("aaaaaa"),
    );
    assert_eq!(result.unwrap().height(), 2);
}

#[test]
fn a_local_tip_more_than_max_lag_above_means_the_local_chain_is_ahead() {
    //  local:  0 ─ 1 ─ 2 ─ 3 ─ 4 ─ 5
    //  remote: 0 ─ 1 ─ 2
    let (result, _) = run(CrossCheck::new(), &chain("aaaaaa"), &chain("aaa"));
    let ahead = disagreement(result);
    assert!(
        matches!(
            ahead,
            Disagreement::Ahead {
                local_tip: 5,
                remote_tip: 2,
                ..
            }
        ),
        "{ahead:?}"
    );
    assert_eq!(
        ahead.to_string(),
        format!("{LOCAL} is ahead: its tip is at 5, {REMOTE} is only at 2")
    );
}

#[test]
fn a_fork_is_reported_at_its_first_block_with_both_hashes() {
    //  local:  0 ─ 1 ─ 2 ─ 3a ─ 4a
    //  remote: 0 ─ 1 ─ 2 ─ 3b ─ 4b ─ 5b
    //                      └ Fork { height: 3 }
    let (local, remote) = (chain("aaaaa"), chain("aaabbb"));
    let (result, fetched) = run(CrossCheck::new(), &local, &remote);
    let fork = disagreement(result);
    assert_eq!(
        fork,
        Disagreement::Fork {
            sources: crate::Sources {
                local: LOCAL.into(),
                remote: REMOTE.into()
            },
            height: 3,
            local: local[3].block_hash(),
            remote: remote[3].block_hash(),
        }
    );
    assert_eq!(
        fork.to_string(),
        format!(
            "{LOCAL} and {REMOTE} fork at height 3: {} against {}",
            local[3].block_hash(),
            remote[3].block_hash()
        )
    );
    // The header at 4, then one batch below it reaching the common block.
    assert!(fetched <= 1 + 8, "fetched {fetched}");
}

#[test]
fn a_fork_outweighs_a_lag() {
    //  local:  0 ─ 1a
    //  remote: 0 ─ 1b ─ 2b ─ 3b ─ 4b ─ 5b     (behind too, but a fork is what matters)
    let (result, _) = run(CrossCheck::new(), &chain("aa"), &chain("abbbbb"));
    assert!(matches!(
        disagreement(result),
        Disagreement::Fork { height: 1, .. }
    ));
}

#[test]
fn different_genesis_forks_at_zero() {
    //  local:  0a ─ 1a ─ 2a
    //  remote: 0b ─ 1b ─ 2b
    let (result, _) = run(CrossCheck::new(), &chain("aaa"), &chain("bbb"));
    assert!(matches!(
        disagreement(result),
        Disagreement::Fork { height: 0, .. }
    ));
}

#[test]
fn a_deep_fork_is_walked_down_in_growing_batches() {
    //  local:  0 ─ 1 ─ 2a ─ … ─ 40a
    //  remote: 0 ─ 1 ─ 2b ─ … ─ 40b
    let local = chain(&format!("aa{}", "a".repeat(39)));
    let remote = chain(&format!("aa{}", "b".repeat(39)));
    let (result, fetched) = run(CrossCheck::new(), &local, &remote);
    assert!(matches!(
        disagreement(result),
        Disagreement::Fork { height: 2, .. }
    ));
    // 1 + 8 + 9 + 18: never more than twice what the walk needed.
    assert!(fetched <= 2 * 40, "fetched {fetched}");
}

#[test]
fn a_fork_below_the_first_local_block_is_reported_at_that_block() {
    //  local (from a checkpoint at 3):  3a ─ 4a ─ 5a
    //  remote:          0 ─ 1b ─ 2b ─ 3b ─ 4b ─ 5b    the fork is at 3 or below
    let local = chain("aaaaaa");
    let remote = chain("abbbbb");
    let view = LocalChain {
        label: LOCAL,
        tip: 5,
        hash_at: |h: u32| (h >= 3).then(|| local[h as usize].block_hash()),
    };
    let result = drive(
        &CrossCheck::new(),
        &view,
        REMOTE,
        (5, remote[5]),
        |from, count| Ok(remote[from as usize..(from + count) as usize].to_vec()),
    );
    assert!(matches!(
        disagreement(result),
        Disagreement::Fork { height: 3, .. }
    ));
}

#[test]
fn nothing_to_compare_when_the_remote_tip_is_below_what_the_local_chain_holds() {
    //  local (from a checkpoint at 4):  4 ─ 5
    //  remote:                  0 ─ … ─ 3
    let remote = chain("aaaa");
    let view = LocalChain {
        label: LOCAL,
        tip: 5,
        hash_at: |h: u32| (h >= 4).then(BlockHash::all_zeros),
    };
    let outcome = CrossCheck::new().with_max_lag(9).check(
        &view,
        &RemoteHeaders {
            label: REMOTE,
            tip: 3,
            start: 3,
            headers: &remote[3..],
        },
    );
    assert!(matches!(
        outcome,
        Outcome::Disagree(Disagreement::NothingToCompare { height: 3, .. })
    ));
}

#[test]
fn the_pure_check_asks_for_the_compared_header_when_it_was_not_given() {
    let remote = chain("aaaaaa");
    let local = chain("aaaa");
    let view = LocalChain {
        label: LOCAL,
        tip: 3,
        hash_at: hash_at(&local),
    };
    let outcome = CrossCheck::new().check(
        &view,
        &RemoteHeaders {
            label: REMOTE,
            tip: 5,
            start: 5,
            headers: &remote[5..],
        },
    );
    assert_eq!(outcome, Outcome::Fetch { from: 3, count: 1 });
}

#[test]
fn headers_that_do_not_link_or_do_not_all_come_are_the_servers_fault() {
    //  local:  0 ─ 1 ─ 2 ─ 3a ─ … ─ 10a;  remote: 0 ─ 1 ─ 2 ─ 3b ─ … ─ 10b
    let local = chain("aaaaaaaaaaa");
    let remote = chain("aaabbbbbbbb");
    let view = LocalChain {
        label: LOCAL,
        tip: 10,
        hash_at: hash_at(&local),
    };
    let unlinked = drive(
        &CrossCheck::new(),
        &view,
        REMOTE,
        (10, remote[10]),
        |from, count| {
            // Headers of the local chain instead: they do not lead to the server's tip.
            Ok(local[from as usize..(from + count) as usize].to_vec())
        },
    );
    assert!(
        matches!(&unlinked, Err(CrossCheckError::Source(SourceError::Decode { url, source: DecodeError::Unlinked { height: 10 }, .. })) if url == REMOTE),
        "{unlinked:?}"
    );
    let short = drive(
        &CrossCheck::new(),
        &view,
        REMOTE,
        (10, remote[10]),
        |_, _| Ok(Vec::new()),
    );
    assert!(
        matches!(
            short,
            Err(CrossCheckError::Source(SourceError::Decode {
                source: DecodeError::Count { held: 0, .. },
                ..
            }))
        ),
        "{short:?}"
    );
}

proptest! {
    /// Two chains sharing `common` blocks, then `local_extra` and `remote_extra` blocks of
    /// their own: the loop reports exactly what the rules say, and fetches at most about
    /// twice the headers the walk needs.
    #[test]
    fn the_loop_follows_the_rules(
        common in 0usize..40,
        local_extra in 0usize..40,
        remote_extra in 0usize..40,
        max_lag in 0u32..5,
    ) {
        prop_assume!(common + local_extra > 0 && common + remote_extra > 0);
        let local = chain(&("a".repeat(common) + &"l".repeat(local_extra)));
        let remote = chain(&("a".repeat(common) + &"r".repeat(remote_extra)));
        let (local_tip, remote_tip) = (tip(&local), tip(&remote));
        let (result, fetched) = run(CrossCheck::new().with_max_lag(max_lag), &local, &remote);
        match result {
            _ if local_extra > 0 && remote_extra > 0 => {
                let fork = disagreement(result);
                let expected = Disagreement::Fork {
                    sources: crate::Sources { local: LOCAL.into(), remote: REMOTE.into() },
                    height: common as u32,
                    local: local[common].block_hash(),
                    remote: remote[common].block_hash(),
                };
                prop_assert_eq!(fork, expected);
                let depth = local_extra.min(remote_extra);
                prop_assert!(fetched <= 2 * depth + 9, "fetched {} for a fork {} deep", fetched, depth);
            }
            _ if remote_tip > local_tip + max_lag => {
                let behind = disagreement(result);
                let is_behind = matches!(behind, Disagreement::Behind { .. });
                prop_assert!(is_behind, "{:?}", behind);
            }
            _ if local_tip > remote_tip + max_lag => {
                let ahead = disagreement(result);
                let is_ahead = matches!(ahead, Disagreement::Ahead { .. });
                prop_assert!(is_ahead, "{:?}", ahead);
            }
            Ok(agreement) => {
                let height = local_tip.min(remote_tip);
                prop_assert_eq!(agreement.height(), height);
                prop_assert_eq!(agreement.hash(), local[height as usize].block_hash());
                prop_assert!(fetched <= 1);
            }
            Err(e) => prop_assert!(false, "expected agreement, got {}", e),
        }
    }
}
