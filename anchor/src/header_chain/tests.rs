use super::*;
use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::TxMerkleNode;

const REGTEST_BITS: u32 = 0x207f_ffff;

/// A regtest header on `prev` with `time` and `bits`, its nonce ground to meet them.
fn mined(prev: BlockHash, time: u32, bits: u32) -> Header {
    let mut header = Header {
        version: Version::TWO,
        prev_blockhash: prev,
        merkle_root: TxMerkleNode::from_byte_array([time as u8; 32]),
        time,
        bits: CompactTarget::from_consensus(bits),
        nonce: 0,
    };
    while header.validate_pow(header.target()).is_err() {
        header.nonce += 1;
    }
    header
}

/// Genesis and `n` regtest blocks ten minutes apart.
fn regtest_chain(n: u32) -> Headers {
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let mut chain = Headers::new(Network::Regtest, 0, genesis).unwrap();
    for _ in 0..n {
        let time = chain.header_at(chain.tip_height()).unwrap().time + 600;
        chain
            .push(mined(chain.tip_hash(), time, REGTEST_BITS))
            .unwrap();
    }
    chain
}

use bitcoin::CompactTarget;

#[test]
fn headers_must_link_and_carry_their_proof_of_work() {
    let mut chain = regtest_chain(2);
    let orphan = mined(
        BlockHash::from_byte_array([3; 32]),
        1_300_000_000,
        REGTEST_BITS,
    );
    assert!(matches!(
        chain.push(orphan),
        Err(HeaderChainError::Disconnected { height: 3, .. })
    ));
    let mut lazy = mined(chain.tip_hash(), 1_300_000_000, REGTEST_BITS);
    while lazy.validate_pow(lazy.target()).is_ok() {
        lazy.nonce += 1;
    }
    assert!(matches!(
        chain.push(lazy),
        Err(HeaderChainError::BadProofOfWork(_))
    ));
    // Regtest's easy target is far above mainnet's limit.
    let easy = mined(BlockHash::all_zeros(), 1_300_000_000, REGTEST_BITS);
    assert!(Headers::new(Network::Bitcoin, 0, easy).is_err());
}

#[test]
fn a_header_with_other_bits_than_the_chain_requires_is_refused_with_the_rule() {
    let mut chain = regtest_chain(3);
    let time = chain.header_at(3).unwrap().time + 600;
    // Harder than required, with valid work for its own target: still not the rule.
    let harder = mined(chain.tip_hash(), time, 0x2000_ffff);
    let error = chain.push(harder).unwrap_err();
    assert_eq!(
        error,
        HeaderChainError::BadDifficulty {
            height: 4,
            found: 0x2000_ffff,
            expected: REGTEST_BITS
        }
    );
    assert!(error.to_string().contains("difficulty rule"), "{error}");
}

#[test]
fn a_header_not_after_the_median_time_past_is_refused() {
    let mut chain = regtest_chain(12);
    let times: Vec<u32> = (2..=12).map(|h| chain.header_at(h).unwrap().time).collect();
    let median = times[5];
    let stale = mined(chain.tip_hash(), median, REGTEST_BITS);
    assert_eq!(
        chain.push(stale),
        Err(HeaderChainError::TimeTooOld {
            height: 13,
            time: median,
            median
        })
    );
    // One second later passes, though it is before the tip's own time.
    chain
        .push(mined(chain.tip_hash(), median + 1, REGTEST_BITS))
        .unwrap();
}

#[test]
fn a_header_more_than_two_hours_ahead_of_the_clock_is_refused() {
    let mut chain = regtest_chain(1);
    let now = chain.header_at(1).unwrap().time + 60;
    let future = mined(chain.tip_hash(), now + 2 * 3600 + 1, REGTEST_BITS);
    assert!(matches!(
        chain.clone().push_at(future, now),
        Err(HeaderChainError::TimeTooNew { height: 2, .. })
    ));
    let in_time = mined(chain.tip_hash(), now + 2 * 3600, REGTEST_BITS);
    chain.push_at(in_time, now).unwrap();
}

/// Headers for `next_bits` (no proof of work needed): `n` headers `spacing` apart.
fn run(n: u32, spacing: u32, bits: u32) -> Vec<Header> {
    (0..n)
        .map(|i| Header {
            version: Version::TWO,
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: 1_700_000_000 + i * spacing,
            bits: CompactTarget::from_consensus(bits),
            nonce: 0,
        })
        .collect()
}

#[test]
fn difficulty_retargets_every_period_from_its_timespan() {
    let params = Params::new(Network::Bitcoin);
    let bits = 0x1703_0000; // some real-looking mainnet target
                            // A period mined twice as fast as ten minutes a block: the target halves.
    let held = run(rules::PERIOD, 300, bits);
    let top = 2 * rules::PERIOD - 1;
    let next = rules::next_bits(&params, false, &held, top, 0).unwrap();
    let timespan = 300 * u64::from(rules::PERIOD - 1);
    assert_eq!(
        next,
        CompactTarget::from_next_work_required(
            CompactTarget::from_consensus(bits),
            timespan,
            &params
        )
    );
    assert!(
        bitcoin::Target::from_compact(next)
            < bitcoin::Target::from_compact(CompactTarget::from_consensus(bits))
    );
    // Inside a period, mainnet keeps the bits, whatever the time.
    let next = rules::next_bits(&params, false, &held[..10], top - 100, u32::MAX).unwrap();
    assert_eq!(next.to_consensus(), bits);
    // Without the period's first header, the rule cannot be checked.
    assert_eq!(rules::next_bits(&params, false, &held[1..], top, 0), None);
}

#[test]
fn testnet_allows_the_easiest_target_only_after_twenty_minutes() {
    let params = Params::new(Network::Testnet4);
    let limit = params
        .max_attainable_target
        .to_compact_lossy()
        .to_consensus();
    let real = 0x1c00_ffff;
    let mut held = run(5, 600, real);
    held.extend(run(3, 600, limit)); // three easy blocks after real ones
    let top = 100 + 7; // inside a period
    let last_time = held.last().unwrap().time;
    let after = |t| {
        rules::next_bits(&params, true, &held, top, t)
            .unwrap()
            .to_consensus()
    };
    assert_eq!(after(last_time + 1201), limit);
    // Sooner, the last bits that were not the easiest.
    assert_eq!(after(last_time + 1200), real);
}

#[test]
fn testnet4_retargets_from_the_periods_first_bits() {
    let params = Params::new(Network::Testnet4);
    let limit = params
        .max_attainable_target
        .to_compact_lossy()
        .to_consensus();
    let real = 0x1c00_ffff;
    let mut held = run(rules::PERIOD, 600, real);
    *held.last_mut().unwrap() = Header {
        bits: CompactTarget::from_consensus(limit),
        ..*held.last().unwrap()
    };
    let top = 2 * rules::PERIOD - 1;
    let bip94 = rules::next_bits(&params, true, &held, top, 0).unwrap();
    let expected = CompactTarget::from_next_work_required(
        CompactTarget::from_consensus(real),
        600 * u64::from(rules::PERIOD - 1),
        &params,
    );
    assert_eq!(
        bip94, expected,
        "from the first block's bits, not the easy last one"
    );
}

#[test]
fn a_chain_from_a_checkpoint_needs_its_authenticated_context() {
    let full = regtest_chain(30);
    let height = 25;
    let checkpoint = Checkpoint {
        height,
        hash: full.header_at(height).unwrap().block_hash(),
        chain_work: None,
    };
    let start = Headers::context_start(height);
    assert_eq!(
        start, 0,
        "a checkpoint in the first period needs its period from genesis"
    );
    let context: Vec<Header> = (start..=height)
        .map(|h| *full.header_at(h).unwrap())
        .collect();
    let mut chain =
        Headers::from_checkpoint(Network::Regtest, checkpoint, context.clone()).unwrap();
    for h in height + 1..=30 {
        chain.push(*full.header_at(h).unwrap()).unwrap();
    }
    assert_eq!(chain.tip_hash(), full.tip_hash());
    let short = context[1..].to_vec();
    assert!(matches!(
        Headers::from_checkpoint(Network::Regtest, checkpoint, short),
        Err(HeaderChainError::NotTheCheckpoint { .. })
    ));
    let mut forged = context;
    forged[3].time += 1;
    assert!(matches!(
        Headers::from_checkpoint(Network::Regtest, checkpoint, forged),
        Err(HeaderChainError::NotTheCheckpoint { .. })
    ));
}

#[test]
fn a_chain_with_less_work_than_required_or_seen_is_refused() {
    let genesis = bitcoin::constants::genesis_block(Network::Bitcoin).header;
    let mainnet = Headers::new(Network::Bitcoin, 0, genesis).unwrap();
    let error = mainnet.check_work(None).unwrap_err();
    assert!(error.to_string().contains("network's minimum"), "{error}");
    let long = regtest_chain(5);
    let short = regtest_chain(3);
    short.check_work(None).unwrap();
    assert!(matches!(
        short.check_work(Some(long.chain_work())),
        Err(HeaderChainError::InsufficientWork { .. })
    ));
    long.check_work(Some(short.chain_work())).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Arbitrary headers (on the tip or anywhere, any bits, any time, any nonce), at any
    /// clock: a typed error, never a panic, and a header is accepted only if it links to
    /// the tip, meets its own target, carries the network's bits and keeps the time rules.
    #[test]
    fn arbitrary_headers_are_typed_errors_never_panics(
        on_tip in proptest::prelude::any::<bool>(),
        prev in proptest::prelude::any::<[u8; 32]>(),
        bits in proptest::prop_oneof![proptest::strategy::Just(REGTEST_BITS), proptest::prelude::any::<u32>()],
        time in proptest::prop_oneof![1_296_700_000u32..1_296_720_000, proptest::prelude::any::<u32>()],
        nonce in proptest::prelude::any::<u32>(),
        now in proptest::prelude::any::<u32>(),
    ) {
        let mut chain = regtest_chain(12);
        let tip = chain.tip_hash();
        let median = chain.header_at(6).unwrap().time;
        let header = Header {
            version: Version::TWO,
            prev_blockhash: if on_tip { tip } else { BlockHash::from_byte_array(prev) },
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: CompactTarget::from_consensus(bits),
            nonce,
        };
        if chain.push_at(header, now).is_ok() {
            proptest::prop_assert_eq!(header.prev_blockhash, tip);
            proptest::prop_assert!(header.validate_pow(header.target()).is_ok());
            proptest::prop_assert_eq!(bits, REGTEST_BITS);
            proptest::prop_assert!(time > median);
            proptest::prop_assert!(u64::from(time) <= u64::from(now) + 2 * 60 * 60);
            proptest::prop_assert_eq!(chain.tip_hash(), header.block_hash());
        }
    }
}
