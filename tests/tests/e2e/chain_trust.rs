//! Chain trust against an attacker (issue "chain trust that holds against an attacker"):
//! each test performs one attack against real processes and passes because it fails.
//! `docs/threat-model.md` maps every claim to its test here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::dta_common;
use milagro_tests::idp_common;

use dta_common::{call, config, sealing_key_file, wait_for_anchors_broadcast, wait_for_share_api};
use idp_common::{alice_id_token, register_client, start_idp_with_alice, wait_for_certificate};
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_anchor::record::RecordCandidate;
use milagro_dta::Dta;
use milagro_registry::chain::ChainSource as _;
use milagro_registry::follower::Follower;
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::RecordStore as _;
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::forgery::mine_record_by_shape;
use milagro_tests::tls_parties::{directory, TlsParty};
use serde_json::json;

/// Attack 1: a miner puts a "compromised" certificate record in the D-TA's and the IdP's
/// names, spending a Taproot output whose script-path witness reads `[signature, key]`.
/// The registry, the TBS API, the device's directory, Milagro TLS admission (both ways)
/// and the D-TA's IdP check all ignore it: the device still connects and gets shares.
#[test]
fn a_record_mined_in_a_victims_name_without_its_key_is_ignored_everywhere() {
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let (idp, issuer, _) = start_idp_with_alice(w.node(), dir.path(), "idp");
    let client = register_client(&issuer);
    let trusted = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {:?}\n",
        idp.state().identity.digest(),
        client.0,
    );
    let master_key = sealing_key_file(dir.path());
    let dta = Dta::start(config(&w, &dir.path().join("dta"), &master_key, &trusted)).unwrap();
    wait_for_anchors_broadcast(&[&idp], &[dta.local_url()]);
    let pat = TlsParty::broadcast(&w, Role::Pat, "pat");
    w.mine(6);
    wait_for_share_api(&w, &dta);
    wait_for_certificate(&issuer);
    let request = || {
        json!({ "id_token": alice_id_token(&issuer, &client, &pat.key) })
            .to_string()
            .into_bytes()
    };
    let (status, issued) = call(&w, &dta, &pat, "POST", "/v1/shares/client", request()).unwrap();
    assert_eq!(status, 200, "before the attack: {issued}");

    // The attack: "compromised" certificates in both victims' names, mined.
    let dta_key = *dta.state().identity.bc().public_key();
    let idp_key = *idp.state().identity.bc().public_key();
    let mut forged = Vec::new();
    for (victim, label) in [(dta_key, "D-TA"), (idp_key, "IdP")] {
        let compromised = Digest::sha256(
            json!({"public_key": victim.to_string(), "status": "compromised", "name": label})
                .to_string()
                .as_bytes(),
        );
        let payload = Payload::new(RecordKind::BirthCertificate, compromised);
        let (txid, block) = mine_record_by_shape(w.node(), &victim, payload);
        // The attack is real: the mined witness names the victim as its signer.
        let tx = w.node().rpc.transaction(&txid, &block).unwrap();
        assert_eq!(
            RecordCandidate::from_tx(&tx).unwrap().claimed_signer(),
            victim
        );
        forged.push((txid, victim));
    }
    w.mine(1);
    wait_for_share_api(&w, &dta);

    // The registry, synced afresh from the node, holds only the victims' own records.
    let index_dir = tempfile::tempdir().unwrap();
    let follower = Follower::new(&w.node().rpc, RedbStore::open(index_dir.path()).unwrap(), 0);
    follower.sync(500, |_| {}).unwrap();
    for (txid, victim) in &forged {
        assert!(follower.store().by_txid(txid).unwrap().is_empty());
        let own = follower.store().by_signer(&victim.compressed()).unwrap();
        let certificates = own
            .iter()
            .filter(|r| r.kind == RecordKind::BirthCertificate)
            .count();
        assert_eq!(
            certificates, 1,
            "only the victim's own certificate: {own:?}"
        );
        // The TBS API: no such record, no proof, not listed under the victim's key.
        assert_eq!(w.api.get(&format!("/v1/proofs/{txid}")).0, 404);
        let listed = w.api.ok(&format!("/v1/records?signer={victim}"));
        let listed = listed["records"].as_array().unwrap();
        assert!(!listed.is_empty());
        assert!(
            listed.iter().all(|r| r["txid"] != txid.to_string()),
            "{listed:?}"
        );
    }

    // The device's directory (TBS answers checked by SPV): the D-TA is not superseded.
    let milagro_service::own_anchor::AnchorState::Confirmed(served) = dta.state().own_anchor.get()
    else {
        panic!("the D-TA's anchor is confirmed")
    };
    let dta_anchor = served.verified.txid();
    let standing = directory(&w).standing(dta_anchor).unwrap();
    assert_eq!(standing.superseded_by, None);

    // Milagro TLS both ways and the D-TA's check of the IdP: the device still gets shares.
    let (status, again) = call(&w, &dta, &pat, "POST", "/v1/shares/client", request()).unwrap();
    assert_eq!(status, 200, "after the attack: {again}");
    assert_eq!(again["client_share"], issued["client_share"]);
    dta.stop();
    drop(idp);
}

/// The minimum-difficulty fixture: a mainnet header on genesis, mined at the easiest
/// target mainnet allows (0x1d00ffff, about 2^32 hashes), whose block holds a coinbase and
/// an anchor of a certificate only this chain knows (`data/mainnet_min_difficulty.json`
/// says how it was made; the test checks its proof of work, so nothing in it is trusted).
struct MinDifficultyChain {
    genesis: bitcoin::block::Header,
    header: bitcoin::block::Header,
    proof: milagro_anchor::proof::AnchorProof,
}

fn min_difficulty_chain() -> MinDifficultyChain {
    use bitcoin::consensus::encode::deserialize_hex;
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("data/mainnet_min_difficulty.json")).unwrap();
    let field = |name: &str| fixture[name].as_str().unwrap().to_owned();
    let header: bitcoin::block::Header = deserialize_hex(&field("header")).unwrap();
    let coinbase: bitcoin::Transaction = deserialize_hex(&field("coinbase")).unwrap();
    let tx: bitcoin::Transaction = deserialize_hex(&field("tx")).unwrap();
    let funding: bitcoin::Transaction = deserialize_hex(&field("funding")).unwrap();
    let txids = [coinbase.compute_txid(), tx.compute_txid()];
    let merkle_block =
        bitcoin::MerkleBlock::from_header_txids_with_predicate(&header, &txids, |_| true);
    MinDifficultyChain {
        genesis: bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin).header,
        header,
        proof: milagro_anchor::proof::AnchorProof::new(tx, funding, coinbase, merkle_block),
    }
}

/// Attack 2: a TBS (here a plain HTTP server that answers every header request with the
/// attacker's chain) feeds a mainnet device a chain of real, minimum-difficulty work that
/// anchors a certificate. Each header passes the per-header rules, and the anchor verifies
/// against it; the device refuses the chain, naming the rule that failed.
#[test]
fn a_minimum_difficulty_chain_with_an_anchor_is_refused_by_a_mainnet_verifier() {
    use milagro_anchor::proof::{Expected, Headers};
    let chain = min_difficulty_chain();
    assert_eq!(chain.header.bits.to_consensus(), 0x1d00_ffff);
    chain.header.validate_pow(chain.header.target()).unwrap();

    // What the attacker counts on: every header rule holds (genesis's own bits are the
    // easiest), and the anchor verifies against the chain.
    let mut headers = Headers::new(bitcoin::Network::Bitcoin, 0, chain.genesis).unwrap();
    headers.push_at(chain.header, chain.header.time).unwrap();
    let record = RecordCandidate::from_tx(chain.proof.tx()).unwrap();
    let expected = Expected {
        kind: record.payload().kind,
        digest: record.payload().digest,
        signer: Some(record.claimed_signer().to_public_key().unwrap()),
    };
    let anchor = chain.proof.verify(&expected, &headers).unwrap();
    assert_eq!(anchor.height(), 1);
    // The rule that refuses it: the network's minimum chain work.
    let error = headers.check_work(None).unwrap_err();
    assert!(
        error.to_string().contains("network's minimum chain work"),
        "{error}"
    );

    // Served over HTTP to the device's own header fetch: refused, naming the checkpoint.
    let served: Vec<String> = [chain.genesis, chain.header]
        .iter()
        .map(bitcoin::consensus::encode::serialize_hex)
        .collect();
    let page = milagro_wire::tbs::registry::Headers {
        from: 0,
        tip_height: 1,
        tip_hash: chain.header.block_hash().to_string(),
        headers: served,
    };
    let server = lying_header_server(serde_json::to_string(&page).unwrap());
    let tbs = milagro_pat_client::ServiceClient::new(&server).unwrap();
    let error = milagro_pat_client::spv::fetch_headers(&tbs, bitcoin::Network::Bitcoin)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no chain through the bitcoin checkpoint at height 938343"),
        "{error}"
    );
}

/// An HTTP server on loopback that answers every request with `body` (JSON), for as long
/// as the test runs; returns its base URL.
fn lying_header_server(body: String) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}
