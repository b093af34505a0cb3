//! An Electrum server as an independent header source, with real processes: a regtest
//! `bitcoind`, ElectrumX from PyPI (installed on first use: never skipped) following it, and
//! `milagro-electrum` cross-checking the node's own headers against it, confirming a real
//! transaction, and telling a lagging or forked local chain apart, naming both sources.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_regtest::RegtestControls as _;
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::{BlockHash, Network};
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::proof::{HeaderChain, Headers};
use milagro_electrum::{
    ConfirmError, CrossCheck, CrossCheckError, Disagreement, ElectrumSource, LocalChain,
    NotConfirmed, SourceError,
};
use milagro_registry::chain::ChainSource;
use milagro_registry::proofs::headers_from;
use milagro_regtest::ElectrumServer;
use milagro_tests::{party, TestNode};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A node with the transaction index ElectrumX needs, and ElectrumX synced to it.
fn node_and_server() -> (TestNode, ElectrumServer) {
    let node = TestNode::start();
    let server = ElectrumServer::start(&node.rpc_url(), &node.cookie(), Network::Regtest)
        .expect("ElectrumX starts against the node (installed on first use)");
    (node, server)
}

/// Every header of the node's active chain, as a verifier holding them would.
fn node_headers(node: &TestNode) -> Headers {
    headers_from(&node.rpc, Network::Regtest, 0).unwrap()
}

/// The local side of a cross-check over `headers`.
fn local<'a>(
    label: &'a str,
    headers: &'a Headers,
) -> LocalChain<'a, impl Fn(u32) -> Option<BlockHash> + 'a> {
    LocalChain {
        label,
        tip: headers.tip_height(),
        hash_at: |height| headers.header_at(height).map(Header::block_hash),
    }
}

fn at(headers: &Headers, height: u32) -> Header {
    *headers.header_at(height).unwrap()
}

#[test]
fn the_nodes_own_headers_agree_and_a_known_transaction_confirms() {
    let (node, server) = node_and_server();
    let (key, bc) = party(Role::Idp, "IdP");
    let txid = node.anchor_bc(&key, &bc);
    let mined = node.mine(3); // the anchor is in the first: height 102
    server.wait_synced(104, TIMEOUT).unwrap();
    let source = ElectrumSource::connect(&server.url(), TIMEOUT).unwrap();
    let headers = node_headers(&node);
    assert_eq!(headers.tip_height(), 104);

    // What the server says is what the node says.
    assert_eq!(source.tip().unwrap(), (104, at(&headers, 104)));
    assert_eq!(source.header(7).unwrap(), at(&headers, 7));
    let run = source.headers(100, 5).unwrap();
    assert_eq!(
        run,
        (100..=104).map(|h| at(&headers, h)).collect::<Vec<_>>()
    );
    assert_eq!(
        source.headers(103, 10).unwrap().len(),
        2,
        "stops at its tip"
    );

    let label = format!("node {}", node.rpc_url());
    let agreement = source
        .cross_check(&CrossCheck::new(), &local(&label, &headers))
        .unwrap();
    assert_eq!(agreement.height(), 104);
    assert_eq!(agreement.hash(), mined[2]);
    assert_eq!(agreement.source(), server.url());
    assert_eq!(agreement.local(), label);

    // The anchor's Merkle branch reaches the root of the verifier's own header at 102.
    let confirmed = source.confirm_tx(txid, 102, &at(&headers, 102)).unwrap();
    assert_eq!(
        (confirmed.txid(), confirmed.height(), confirmed.block_hash()),
        (txid, 102, mined[0])
    );
    let block = node.rpc.block(&mined[0]).unwrap();
    let index = block.txdata.iter().position(|tx| tx.compute_txid() == txid);
    assert_eq!(Some(confirmed.position() as usize), index);

    // Checked against another header, the same answer proves nothing.
    let wrong_header = source.confirm_tx(txid, 102, &at(&headers, 103));
    assert!(
        matches!(&wrong_header, Err(ConfirmError::NotConfirmed { url, reason })
            if *url == server.url() && matches!(**reason, NotConfirmed::RootMismatch { height: 102, .. })),
        "{wrong_header:?}"
    );
    // Asked at a height where the transaction is not, the server refuses.
    let elsewhere = source.confirm_tx(txid, 103, &at(&headers, 103));
    assert!(
        matches!(
            &elsewhere,
            Err(ConfirmError::Source(SourceError::Refused {
                method: "blockchain.transaction.get_merkle",
                ..
            }))
        ),
        "{elsewhere:?}"
    );
}

#[test]
fn a_lagging_local_chain_is_behind_and_a_reorged_one_forks_naming_both_sources() {
    let (node, server) = node_and_server();
    let source = ElectrumSource::connect(&server.url(), TIMEOUT).unwrap();
    let label = format!("tbs {}", node.rpc_url());

    // The verifier holds the chain up to 101; the network moves on by three blocks.
    let stale = node_headers(&node);
    assert_eq!(stale.tip_height(), 101);
    node.mine(3);
    server.wait_synced(104, TIMEOUT).unwrap();
    let behind = source.cross_check(&CrossCheck::new(), &local(&label, &stale));
    let Err(CrossCheckError::Disagree(behind)) = behind else {
        panic!("expected the local chain behind, got {behind:?}")
    };
    assert!(
        matches!(&behind, Disagreement::Behind { sources, local_tip: 101, remote_tip: 104 }
            if sources.local == label && sources.remote == server.url()),
        "{behind:?}"
    );
    let message = behind.to_string();
    assert!(
        message.contains(&label) && message.contains(&server.url()),
        "{message}"
    );
    // Three blocks is within a wider tolerance, and the chains agree at 101.
    let within = source
        .cross_check(&CrossCheck::new().with_max_lag(3), &local(&label, &stale))
        .unwrap();
    assert_eq!((within.height(), within.hash()), (101, stale.tip_hash()));

    // The verifier now holds 0..=104; the node drops 102..=104 and mines a longer branch.
    //   verifier: … 101 ─ 102a ─ 103a ─ 104a
    //   electrum: … 101 ─ 102b ─ 103b ─ 104b ─ 105b
    let old = node_headers(&node);
    let dropped = old.header_at(102).unwrap().block_hash();
    node.rpc.invalidate_block(&dropped).unwrap();
    let other_miner = node.rpc.wallet_new_address().unwrap();
    let branch = node.rpc.generate_to_address(4, &other_miner).unwrap();
    assert_eq!(node.rpc.tip().unwrap().height, 105);
    server.wait_synced(105, TIMEOUT).unwrap();

    let fork = source.cross_check(&CrossCheck::new(), &local(&label, &old));
    let Err(CrossCheckError::Disagree(fork)) = fork else {
        panic!("expected a fork, got {fork:?}")
    };
    assert!(
        matches!(&fork, Disagreement::Fork { sources, height: 102, local, remote }
            if sources.local == label && sources.remote == server.url()
                && *local == dropped && *remote == branch[0]),
        "{fork:?}"
    );
    let message = fork.to_string();
    assert!(
        message.contains(&label) && message.contains(&server.url()) && message.contains("102"),
        "{message}"
    );

    // Once the verifier follows the node again, they agree on the new tip.
    let new = node_headers(&node);
    let agreement = source
        .cross_check(&CrossCheck::new(), &local(&label, &new))
        .unwrap();
    assert_eq!((agreement.height(), agreement.hash()), (105, branch[3]));
}
