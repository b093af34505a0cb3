//! The TBS's own identity, end to end: a real regtest `bitcoind`, the TBS over real HTTP on
//! loopback, and a client that trusts nothing but the genesis header.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::proof::{AnchorProof, AnchorProofJson, HeaderChain};
use milagro_tbs::config::Config;
use milagro_tbs::{RunningTbs, Tbs};
use milagro_tests::{spv_headers, tbs_config, wait_until, Api, TcpRelay, TestNode};
use serde_json::Value;

const WELL_KNOWN: &str = "/.well-known/milagro/birth-certificate";
const PATIENCE: Duration = Duration::from_secs(30);

fn start(rpc_url: &str, cookie: &Path, state_dir: &Path) -> (RunningTbs, Api) {
    let config = Config::parse(&tbs_config(rpc_url, cookie, state_dir)).unwrap();
    let tbs = Tbs::start(config).unwrap();
    let api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
    (tbs, api)
}

/// Waits for the TBS to report its own anchor in `state` ("pending" or "confirmed").
fn anchor_in_state(api: &Api, state: &str) -> Value {
    wait_until(&format!("the TBS anchor to be {state}"), PATIENCE, || {
        let status = api.ok("/v1/status");
        (status["anchor"]["state"] == state && status["caught_up"] == true)
            .then(|| status["anchor"].clone())
    })
}

fn records_signed_by_the_tbs(api: &Api) -> Vec<Value> {
    let key = api.ok("/v1/status")["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let records = api.ok(&format!("/v1/records?signer={key}"))["records"].clone();
    records.as_array().unwrap().clone()
}

#[test]
fn first_start_creates_the_identity_and_anchors_it_and_a_client_verifies_it_by_spv() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_tbs, api) = start(&node.rpc_url(), &node.cookie(), &state);

    let key_mode = std::fs::metadata(state.join("tbs.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "key file mode {key_mode:o}");
    let on_disk =
        BirthCertificate::parse(&std::fs::read(state.join("birth-certificate.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk.role(), Role::Tbs);
    assert_eq!(on_disk.fields().endpoints, ["https://tbs.milagro.test"]);

    // Broadcast but unconfirmed: the certificate is not served yet.
    let pending = anchor_in_state(&api, "pending");
    let (status, body) = api.get(WELL_KNOWN);
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("not_anchored")),
        "{body}"
    );

    node.mine(1);
    let served = wait_until("the certificate to be served", PATIENCE, || {
        let (status, body) = api.get(WELL_KNOWN);
        (status == 200).then_some(body)
    });

    // What a PAT does with it, trusting only the regtest genesis header.
    let bc = BirthCertificate::parse(&serde_json::to_vec(&served["birth_certificate"]).unwrap())
        .unwrap();
    assert_eq!(bc, on_disk);
    assert_eq!(served["digest"], bc.digest().to_string());
    assert_eq!(served["public_key"], bc.public_key().to_string());
    let proof: AnchorProofJson = serde_json::from_value(served["anchor_proof"].clone()).unwrap();
    let headers = spv_headers(&api);
    let verified = bc
        .verify_anchor(&AnchorProof::from_json(&proof).unwrap(), &headers)
        .unwrap();
    assert_eq!(verified.txid().to_string(), served["txid"]);
    assert_eq!(served["txid"], pending["txid"]);
    assert_eq!(verified.height(), 102);
    assert_eq!(served["height"], 102);
    assert_eq!(verified.signer(), *bc.public_key());
    assert_eq!(headers.tip_height(), 102);
    assert_eq!(served["depth"], 1);
    assert_eq!(records_signed_by_the_tbs(&api).len(), 1);
}

#[test]
fn restarts_never_anchor_twice_and_an_anchor_lost_with_the_mempool_is_re_broadcast() {
    let dir = tempfile::tempdir().unwrap();
    let (datadir, state) = (dir.path().join("node"), dir.path().join("state"));
    // No mempool.dat: a node restart forgets unconfirmed transactions.
    let node = TestNode::start_persistent(&datadir, &["-persistmempool=0"]);
    let relay = TcpRelay::start(node.rpc_socket());
    let cookie = node.cookie();

    let (tbs, api) = start(&relay.url(), &cookie, &state);
    let first = anchor_in_state(&api, "pending");
    let identity = api.ok("/v1/status");
    drop(api); // idle keep-alive connections would hold a graceful stop for 5 s
    tbs.stop();
    let anchor_file = std::fs::read_to_string(state.join("anchor.json")).unwrap();

    // Restart while the anchor is pending: same identity, same transaction.
    let (tbs, api) = start(&relay.url(), &cookie, &state);
    let again = api.ok("/v1/status");
    assert_eq!(again["digest"], identity["digest"]);
    assert_eq!(again["public_key"], identity["public_key"]);
    assert_eq!(anchor_in_state(&api, "pending"), first);
    std::thread::sleep(Duration::from_millis(300)); // a few more polls
    assert_eq!(
        std::fs::read_to_string(state.join("anchor.json")).unwrap(),
        anchor_file
    );
    let txid = first["txid"].as_str().unwrap();
    let mempool: Vec<String> = node.rpc.call("getrawmempool", &[]).unwrap();
    assert!(mempool.iter().any(|t| t == txid), "{mempool:?}");

    // The node restarts without its mempool, under the same URL, while the TBS runs: the
    // TBS re-broadcasts the very same transaction.
    drop(node);
    wait_until("the TBS to see the node gone", PATIENCE, || {
        (api.ok("/v1/status")["node_reachable"] == false).then_some(())
    });
    let node = TestNode::start_persistent(&datadir, &["-persistmempool=0"]);
    relay.forward_to(node.rpc_socket());
    wait_until("the anchor to be re-broadcast", PATIENCE, || {
        let mempool: Vec<String> = node.rpc.call("getrawmempool", &[]).unwrap();
        mempool.iter().any(|t| t == txid).then_some(())
    });
    node.mine(1);
    let confirmed = anchor_in_state(&api, "confirmed");
    assert_eq!(confirmed["txid"], first["txid"]);
    drop(api);
    tbs.stop();

    // Restart once anchored: nothing new is broadcast.
    let (_tbs, api) = start(&relay.url(), &cookie, &state);
    assert_eq!(anchor_in_state(&api, "confirmed")["txid"], first["txid"]);
    node.mine(1);
    wait_until("the index to reach the new block", PATIENCE, || {
        (api.ok("/v1/status")["index_height"] == 103).then_some(())
    });
    let records = records_signed_by_the_tbs(&api);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["txid"], first["txid"]);
    assert_eq!(
        std::fs::read_to_string(state.join("anchor.json")).unwrap(),
        anchor_file
    );
}
