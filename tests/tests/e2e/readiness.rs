//! Issue 16: `/healthz` and `/readyz`, served by every service through the one runtime
//! (`milagro_service::health`). A TBS follows a real regtest node through a relay the
//! test can cut: alive from the start; ready only once its anchor is confirmed and its
//! index is at the node's tip; not ready (naming the node) while the node is cut off,
//! and ready again once it is back. An authentication server whose D-TA nobody runs is
//! anchored and caught up, yet not ready: the check naming the D-TA says why. Every
//! answer is checked against the service's OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use milagro_tests::{tbs_config, wait_until, Api, TcpRelay, TestNode};
use milagro_wire::health::Readiness;

const PATIENCE: Duration = Duration::from_secs(60);

fn readiness(api: &Api) -> (u16, Readiness) {
    let (status, body) = api.get("/readyz");
    (status, serde_json::from_value(body).unwrap())
}

fn check<'a>(readiness: &'a Readiness, name: &str) -> &'a milagro_wire::health::ReadinessCheck {
    readiness
        .checks
        .iter()
        .find(|check| check.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {readiness:?}"))
}

/// Mines once the service's `/readyz` says its anchor waits for a block.
fn mine_once_broadcast(node: &TestNode, api: &Api) {
    wait_until("the anchor to be broadcast", PATIENCE, || {
        let (_, now) = readiness(api);
        check(&now, "anchor")
            .detail
            .contains("waits for a block")
            .then_some(())
    });
    node.mine(3);
}

#[test]
fn a_service_is_ready_only_with_its_node_its_index_at_the_tip_and_its_anchor_confirmed() {
    let node = TestNode::start();
    let relay = TcpRelay::start(node.rpc_socket());
    let dir = tempfile::tempdir().unwrap();
    let text = tbs_config(&relay.url(), &node.cookie(), &dir.path().join("tbs"));
    let tbs = milagro_tbs::Tbs::start(milagro_tbs::config::Config::parse(&text).unwrap()).unwrap();
    let api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);

    assert_eq!(api.ok("/healthz")["status"], "alive");
    let (status, before) = readiness(&api);
    assert_eq!(status, 503, "{before:?}");
    assert!(!before.ready);
    assert!(!check(&before, "anchor").ok, "{before:?}");
    assert_eq!(before.anchor_depth, None);
    assert_eq!(before.digest, tbs.identity().digest());
    assert_eq!(before.role, "tbs");

    mine_once_broadcast(&node, &api);
    let ready = wait_until("the tbs to be ready", PATIENCE, || {
        let (status, now) = readiness(&api);
        (status == 200).then_some(now)
    });
    assert!(ready.ready);
    assert!(ready.checks.iter().all(|check| check.ok), "{ready:?}");
    assert!(ready.anchor_depth.unwrap() >= 1, "{ready:?}");
    let names: Vec<&str> = ready.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["node", "index", "anchor"]);

    // The node cut off: alive, not ready, and the node check says so.
    relay.cut();
    let cut = wait_until("the tbs to see the node gone", PATIENCE, || {
        let (status, now) = readiness(&api);
        (status == 503).then_some(now)
    });
    assert!(!check(&cut, "node").ok, "{cut:?}");
    assert!(
        check(&cut, "anchor").ok,
        "the anchor stays confirmed: {cut:?}"
    );
    assert_eq!(api.ok("/healthz")["status"], "alive");

    relay.forward_to(node.rpc_socket());
    wait_until("the tbs to be ready again", PATIENCE, || {
        (readiness(&api).0 == 200).then_some(())
    });
}

#[test]
fn an_authentication_server_without_its_d_tas_shares_is_not_ready_and_says_which() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = "ab".repeat(32);
    let text = format!(
        r#"
listen = "127.0.0.1:0"
public_url = "https://auth.milagro.test"
name = "Auth server"
state_dir = {:?}
[[dtas]]
bc_digest = "{missing}"
share_api = "127.0.0.1:9"
[node]
rpc_url = {:?}
rpc_cookie = {:?}
network = "regtest"
[sync]
poll_interval_ms = 50
max_backoff_ms = 400
"#,
        dir.path().join("auth"),
        node.rpc_url(),
        node.cookie(),
    );
    let server = milagro_authserver::AuthServer::start(
        milagro_authserver::config::Config::parse(&text).unwrap(),
    )
    .unwrap();
    let api = Api::documented(server.local_url(), milagro_authserver::api::OPENAPI_JSON);
    mine_once_broadcast(&node, &api);
    let anchored = wait_until("the anchor to be confirmed", PATIENCE, || {
        let (_, now) = readiness(&api);
        check(&now, "anchor").ok.then_some(now)
    });
    let (status, now) = readiness(&api);
    assert_eq!(status, 503, "{now:?}");
    assert!(check(&anchored, "node").ok && check(&anchored, "index").ok);
    let secret = check(&now, "server_secret");
    assert!(!secret.ok);
    assert!(secret.detail.contains(&missing), "{secret:?}");
    assert_eq!(api.ok("/healthz")["status"], "alive");
}
