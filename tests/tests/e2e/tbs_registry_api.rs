//! The TBS registry API against a real regtest `bitcoind`: it answers what the registry
//! holds, its proofs verify by SPV against its own headers, and it follows a reorg.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_regtest::RegtestControls as _;
use std::time::Duration;

use bitcoin::consensus::encode;
use bitcoin::Network;
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::proof::{AnchorProof, AnchorProofJson};
use milagro_registry::chain::ChainSource;
use milagro_registry::follower::Follower;
use milagro_registry::proofs::anchor_proof;
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::RecordStore;
use milagro_tbs::api::{ENDPOINTS, OPENAPI_JSON};
use milagro_tbs::config::Config;
use milagro_tbs::Tbs;
use milagro_tests::{party, spv_headers, tbs_config, wait_until, Api, TestNode};
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until the TBS has indexed the node's tip.
fn synced(api: &Api, node: &TestNode) -> Value {
    let tip = node.rpc.tip().unwrap();
    wait_until("the index to reach the node's tip", PATIENCE, || {
        let status = api.ok("/v1/status");
        (status["index_hash"] == tip.hash.to_string()).then_some(status)
    })
}

#[test]
fn records_proofs_and_headers_are_the_registrys_and_follow_a_reorg() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(&tbs_config(
        &node.rpc_url(),
        &node.cookie(),
        &dir.path().join("s"),
    ))
    .unwrap();
    let tbs = Tbs::start(config).unwrap();
    let api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
    wait_until("the TBS anchor to be broadcast", PATIENCE, || {
        (api.ok("/v1/status")["anchor"]["state"] == "pending").then_some(())
    });
    let (dta_key, dta) = party(Role::Dta, "D-TA 1");
    let (idp_key, idp) = party(Role::Idp, "IdP");
    let dta_txid = node.anchor_bc(&dta_key, &dta);
    node.anchor_bc(&idp_key, &idp);
    let block = node.mine(1)[0];
    node.mine(1);
    synced(&api, &node);

    // The same answers as a registry of our own over the same node.
    let db = tempfile::tempdir().unwrap();
    let ours = Follower::new(&node.rpc, RedbStore::open(db.path()).unwrap(), 0);
    ours.sync(1000, |_| {}).unwrap();
    let record = ours.store().by_digest(&dta.digest()).unwrap()[0];
    let expected = json!({ "records": [record] });
    assert_eq!(
        api.ok(&format!("/v1/records?digest={}", dta.digest())),
        expected
    );
    assert_eq!(api.ok(&format!("/v1/records?txid={dta_txid}")), expected);
    assert_eq!(
        api.ok(&format!("/v1/records?signer={}", dta_key.public_key())),
        expected
    );
    assert_eq!(
        api.ok(&format!("/v1/records?digest={}", "00".repeat(32))),
        json!({ "records": [] })
    );
    assert_eq!(
        api.ok("/v1/status")["records"],
        ours.store().record_count().unwrap()
    );
    assert_eq!(
        ours.store().record_count().unwrap(),
        3,
        "the TBS, the D-TA, the IdP"
    );

    // A proof verifies by SPV against the served headers; it is the registry's proof.
    let served = api.ok(&format!("/v1/proofs/{dta_txid}"));
    let proof_json: AnchorProofJson =
        serde_json::from_value(served["anchor_proof"].clone()).unwrap();
    assert_eq!(
        proof_json,
        anchor_proof(&node.rpc, &record).unwrap().to_json()
    );
    let headers = spv_headers(&api);
    let verified = dta
        .verify_anchor(&AnchorProof::from_json(&proof_json).unwrap(), &headers)
        .unwrap();
    assert_eq!((verified.height(), verified.depth()), (102, 2));
    assert_eq!(served["height"], 102);
    assert_eq!(served["depth"], 2);
    assert_eq!(served["block_hash"], block.to_string());
    assert_eq!(served["signer"], dta_key.public_key().to_string());

    // Headers are the node's, hex-encoded; none above the tip.
    let page = api.ok("/v1/headers?from=101&count=3");
    let hashes: Vec<String> = page["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            encode::deserialize_hex::<bitcoin::block::Header>(h.as_str().unwrap())
                .unwrap()
                .block_hash()
                .to_string()
        })
        .collect();
    let node_hashes: Vec<String> = (101..=103)
        .map(|h| node.rpc.block_hash(h).unwrap().unwrap().to_string())
        .collect();
    assert_eq!(hashes, node_hashes);
    assert_eq!(page["tip_height"], 103);
    assert_eq!(api.ok("/v1/headers?from=104")["headers"], json!([]));

    // 101 - 102 (all three anchors) - 103   becomes   101 - 102' - 103' - 104'
    node.rpc.invalidate_block(&block).unwrap();
    for _ in 0..3 {
        node.rpc.generate_block(&node.miner, &[]).unwrap();
    }
    assert_eq!(synced(&api, &node)["records"], 0);
    wait_until("the TBS anchor to be pending again", PATIENCE, || {
        (api.ok("/v1/status")["anchor"]["state"] == "pending").then_some(())
    });
    assert_eq!(
        api.ok(&format!("/v1/records?digest={}", dta.digest())),
        json!({ "records": [] })
    );
    let (code, body) = api.get(&format!("/v1/proofs/{dta_txid}"));
    assert_eq!(
        (code, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (code, body) = api.get("/.well-known/milagro/birth-certificate");
    assert_eq!(
        (code, body["error"].as_str()),
        (503, Some("not_anchored")),
        "{body}"
    );

    // Re-mined from the mempool: everything is back, one block higher up.
    node.mine(1);
    synced(&api, &node);
    let records = api.ok(&format!("/v1/records?digest={}", dta.digest()));
    assert_eq!(records["records"][0]["height"], 105);
    let served = wait_until("the TBS certificate to be served again", PATIENCE, || {
        let (code, body) = api.get("/.well-known/milagro/birth-certificate");
        (code == 200).then_some(body)
    });
    assert_eq!(served["height"], 105);

    // Metrics saw all of it.
    let (code, content_type, metrics) = api.send("GET", "/metrics");
    assert_eq!(code, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    for line in [
        "milagro_tbs_http_requests_total{route=\"/v1/records\",method=\"GET\",status=\"200\"}",
        "milagro_tbs_http_requests_total{route=\"/v1/proofs/{txid}\",method=\"GET\",status=\"404\"} 1",
        "milagro_tbs_index_height 105",
        "milagro_tbs_records 3",
        "milagro_tbs_node_reachable 1",
        "milagro_tbs_anchored 1",
        "milagro_tbs_sync_errors_total 0",
    ] {
        assert!(metrics.contains(line), "no {line} in\n{metrics}");
    }
    assert_eq!(
        Network::Regtest.to_core_arg(),
        api.ok("/v1/status")["network"]
    );
}

#[test]
fn the_served_openapi_document_describes_every_route() {
    // No node is needed to describe the API (this one is never reachable).
    let dir = tempfile::tempdir().unwrap();
    let cookie = dir.path().join("no-cookie");
    let config = Config::parse(&tbs_config(
        "http://127.0.0.1:9",
        &cookie,
        &dir.path().join("s"),
    ))
    .unwrap();
    let tbs = Tbs::start(config).unwrap();
    let api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
    let (code, content_type, text) = api.send("GET", "/openapi.json");
    assert_eq!(code, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(text, OPENAPI_JSON);
    let doc: Value = serde_json::from_str(&text).unwrap();
    for endpoint in ENDPOINTS {
        assert!(
            doc["paths"][endpoint.path][endpoint.method].is_object(),
            "{endpoint:?} is not documented"
        );
        // Every routed path is reachable: an unknown route would be a 404 "no route".
        let path = endpoint.path.replace("{txid}", &"00".repeat(32));
        let (_, _, body) = api.send("GET", &path);
        assert!(!body.contains("no route"), "{endpoint:?}: {body}");
    }
}
