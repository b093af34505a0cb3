//! The one service runtime (`milagro_service::runtime`) holds for every service, not only
//! the one that had a check first: here the IdP, which before the runtime followed any
//! node it was pointed at.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use std::time::Duration;

use idp_common::{free_port, idp_config};
use milagro_idp::config::Config;
use milagro_idp::Idp;
use milagro_registry::store::RecordStore as _;
use milagro_service::own_anchor::AnchorState;
use milagro_tests::{logs, wait_until, TestNode};

/// A test IdP's configuration naming `network` for a regtest node.
fn on_network(node: &TestNode, dir: &std::path::Path, port: u16, network: &str) -> Config {
    let text = format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
name = "Test IdP"
state_dir = {dir:?}
[node]
rpc_url = {rpc:?}
rpc_cookie = {cookie:?}
network = "{network}"
[sync]
poll_interval_ms = 50
max_backoff_ms = 200
"#,
        rpc = node.rpc_url(),
        cookie = node.cookie(),
    );
    Config::parse(&text).unwrap()
}

#[test]
fn a_service_configured_for_another_network_neither_indexes_nor_anchors() {
    let logs = logs::capture();
    let mark = logs.mark();
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let idp = Idp::start(on_network(&node, dir.path(), port, "signet")).unwrap();
    let refusal = "the node follows regtest, the configuration says signet: not indexing";
    wait_until(
        "the chain loop to refuse the node",
        Duration::from_secs(30),
        || logs.since(mark).contains(refusal).then_some(()),
    );
    let status = idp.state().chain.status.snapshot();
    assert_eq!(status.last_error.as_deref(), Some(refusal));
    assert!(status.sync_errors >= 1);
    // Several more polls: still nothing anchored, nothing sent to the node's mempool.
    std::thread::sleep(Duration::from_millis(600));
    assert!(matches!(idp.state().own_anchor.get(), AnchorState::None));
    let mempool: Vec<String> = node.rpc.call("getrawmempool", &[]).unwrap();
    assert!(mempool.is_empty(), "{mempool:?}");
    assert_eq!(idp.state().index.tip().unwrap(), None, "nothing indexed");
    idp.stop();
}

#[test]
fn a_stopped_or_dropped_service_gives_its_state_directory_back_at_once() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = || idp_config(&node, &dir.path().join("idp"), port, "");
    let first = Idp::start(config()).unwrap();
    let digest = first.identity().digest();
    first.stop();
    // The databases' locks are free the moment `stop` returns: the same directory and
    // port open again, with the same identity.
    let second = Idp::start(config()).unwrap();
    assert_eq!(second.identity().digest(), digest);
    drop(second);
    let third = Idp::start(config()).unwrap();
    assert_eq!(third.state().identity.digest(), digest);
    third.stop();
}
