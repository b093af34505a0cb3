//! The node adapter reads blocks over REST from a real bitcoind: the same bytes as
//! `getblock`, a typed error naming `-rest=1` when the node does not serve REST.

use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use milagro_registry::chain::{ChainError, ChainSource};
use milagro_registry::follower::{Follower, SyncError};
use milagro_registry::store::{MemoryStore, RecordStore};
use milagro_regtest::RegtestControls as _;
use milagro_regtest::{bitcoind_exe, BitcoindRpc, NODE_ARGS};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn node(args: &[&str]) -> Result<(bitcoind::BitcoinD, BitcoindRpc), Box<dyn std::error::Error>> {
    let mut conf = bitcoind::Conf::default();
    conf.args.extend(args);
    let node = bitcoind::BitcoinD::with_conf(bitcoind_exe()?, &conf)?;
    let rpc = BitcoindRpc::with_cookie(node.rpc_url(), &node.params.cookie_file);
    let miner = rpc.wallet_new_address()?;
    rpc.generate_to_address(5, &miner)?;
    Ok((node, rpc))
}

#[test]
fn rest_serves_the_bytes_getblock_decodes_to_and_the_follower_reads_them() -> TestResult {
    let (_node, rpc) = node(NODE_ARGS)?;
    let heights: Vec<u32> = (0..=5).collect();
    for hash in rpc.block_hashes(&heights)?.into_iter().flatten() {
        assert_eq!(rpc.raw_block(&hash)?, serialize(&rpc.block(&hash)?));
    }
    match rpc.raw_block(&BlockHash::all_zeros()) {
        Err(ChainError::NotFound(what)) => assert!(what.contains("not found"), "{what}"),
        other => panic!("an unknown block gave {other:?}"),
    }
    let follower = Follower::new(&rpc, MemoryStore::new(), 0);
    let report = follower.sync(4, |_| {})?;
    assert!(report.caught_up());
    assert_eq!(follower.store().tip()?, Some(rpc.tip()?));
    Ok(())
}

#[test]
fn a_node_without_rest_is_named_as_such() -> TestResult {
    let args: Vec<&str> = NODE_ARGS
        .iter()
        .copied()
        .filter(|a| !a.starts_with("-rest"))
        .collect();
    let (_node, rpc) = node(&args)?;
    let tip = rpc.tip()?;
    let Err(error) = rpc.raw_block(&tip.hash) else {
        panic!("a node without -rest=1 served a block over REST");
    };
    assert!(
        matches!(error, ChainError::RestDisabled { status: 404, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("-rest=1"), "{error}");
    let follower = Follower::new(&rpc, MemoryStore::new(), 0);
    assert!(matches!(
        follower.sync(10, |_| {}),
        Err(SyncError::Chain(ChainError::RestDisabled { .. }))
    ));
    assert_eq!(follower.store().tip()?, None, "nothing was written");
    Ok(())
}
