//! The TBS audit log on a real regtest node, checked as an outsider would: each checkpoint
//! note's signature with the key of the TBS's anchored certificate, its on-chain anchor by
//! SPV, consistency between consecutive checkpoints, and each device's inclusion proof of
//! an entry the test recomputes itself. Checkpoints are due every second here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::time::Duration;

use bitcoin::hashes::Hash as _;
use milagro_anchor::anchor_offer::OfferTerms;
use milagro_anchor::audit_log::{ConsistencyProof, InclusionProof};
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::checkpoint::{KeyName, SignedCheckpoint};
use milagro_anchor::digest::Digest;
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::envelope::{InstructionKey, SealedOffer};
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::payload::RecordKind;
use milagro_anchor::proof::{AnchorProof, AnchorProofJson, Expected};
use milagro_anchor::purpose_keys::KeyPurpose;
use milagro_tbs::config::Config;
use milagro_tbs::tenants::model::ApiToken;
use milagro_tbs::{RunningTbs, Tbs};
use milagro_tests::{party, spv_headers, tbs_config, wait_until, Api, TcpRelay, TestNode};
use rand_core::OsRng;
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(30);
const ORIGIN: &str = "tbs.milagro.test/audit";

struct World {
    /// `None` only while the test restarts the node.
    node_slot: Option<TestNode>,
    relay: Option<TcpRelay>,
    /// `None` only while the test restarts the TBS.
    tbs: Option<RunningTbs>,
    config: Config,
    api: Api,
    /// The TBS's anchored key (it signs the anchors) ...
    tbs_key: PublicKey,
    /// ... and its certificate, which lists the keys that sign checkpoints and open
    /// envelopes.
    tbs_bc: BirthCertificate,
    /// The device maker's enrolment key, listed on group `eu`.
    maker: SecretKey,
    _dir: tempfile::TempDir,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A device's entry, computed from what the device knows (the documented layout).
fn entry(device: &PublicKey, txid: &str) -> Digest {
    let mut bytes = b"milagro-tbs/registration/v1\0".to_vec();
    bytes.extend_from_slice(&device.to_sec1());
    for slug in ["acme", "eu"] {
        bytes.push(slug.len() as u8);
        bytes.extend_from_slice(slug.as_bytes());
    }
    bytes.extend_from_slice(&bitcoin::Txid::from_str(txid).unwrap().to_byte_array());
    Digest::sha256(&bytes)
}

/// The TBS key, from its certificate once that is anchored and verified by SPV.
fn verified_tbs(api: &Api) -> BirthCertificate {
    let served = wait_until("the TBS certificate to be served", PATIENCE, || {
        let (status, body) = api.get("/.well-known/milagro/birth-certificate");
        (status == 200).then_some(body)
    });
    let bc = BirthCertificate::parse(served["birth_certificate"].to_string().as_bytes()).unwrap();
    let proof: AnchorProofJson = serde_json::from_value(served["anchor_proof"].clone()).unwrap();
    bc.verify_anchor(&AnchorProof::from_json(&proof).unwrap(), &spv_headers(api))
        .unwrap();
    bc
}

impl World {
    fn start() -> Self {
        Self::start_on(TestNode::start(), None, tempfile::tempdir().unwrap())
    }

    /// A TBS with tenant `acme`, group `eu`, its own certificate anchored and verified.
    fn start_on(node: TestNode, relay: Option<TcpRelay>, dir: tempfile::TempDir) -> Self {
        let rpc_url = relay.as_ref().map_or_else(|| node.rpc_url(), TcpRelay::url);
        let admin = ApiToken::generate(&mut OsRng);
        let text = format!(
            "{}\n[admin]\ntoken_sha256 = \"{}\"\n[audit]\ncheckpoint_interval_secs = 1\n",
            tbs_config(&rpc_url, &node.cookie(), &dir.path().join("s")),
            admin.hash()
        );
        let config = Config::parse(&text).unwrap();
        let tbs = Tbs::start(config.clone()).unwrap();
        let api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
        // "pending" is published just before the broadcast: wait for the mempool too.
        wait_until("the TBS anchor to be broadcast", PATIENCE, || {
            let status = api.ok("/v1/status");
            let txid = bitcoin::Txid::from_str(status["anchor"]["txid"].as_str()?).ok()?;
            node.rpc.in_mempool(&txid).unwrap().then_some(())
        });
        node.mine(1);
        let tbs_bc = verified_tbs(&api);
        let w = World {
            tbs_key: *tbs_bc.public_key(),
            tbs_bc,
            node_slot: Some(node),
            relay,
            tbs: Some(tbs),
            config,
            api,
            maker: SecretKey::generate(&mut OsRng),
            _dir: dir,
        };
        let (status, created) = w.api.call(
            "POST",
            "/v1/admin/tenants",
            Some(admin.reveal()),
            Some(json!({"id": "acme", "name": "Acme"})),
        );
        assert_eq!(status, 201, "{created}");
        let (status, _) = w.api.call(
            "PUT",
            "/v1/tenants/acme/groups/eu",
            created["token"].as_str(),
            Some(json!({"name": "EU", "mode": "direct",
                        "enrolment_keys": [w.maker.public_key()]})),
        );
        assert_eq!(status, 200);
        // Offers are paid only from confirmed pool coins.
        wait_until("the funding pool to fill", PATIENCE, || {
            let mempool: Vec<String> = w.node().rpc.call("getrawmempool", &[]).unwrap();
            if !mempool.is_empty() {
                w.node().mine(1);
            }
            (w.api.ok("/v1/status")["funding_pool"]["free"].as_u64() > Some(0)).then_some(())
        });
        w
    }

    fn node(&self) -> &TestNode {
        self.node_slot.as_ref().expect("a running node")
    }

    /// Stops the TBS (closing the client's idle connections first, so that stopping need
    /// not wait for them to expire).
    fn stop_tbs(&mut self) {
        self.api = Api::new("http://127.0.0.1:9");
        self.tbs.take().unwrap().stop();
    }

    /// Stops the TBS and starts it again on the same state directory.
    fn restart_tbs(&mut self) {
        self.stop_tbs();
        let tbs = Tbs::start(self.config.clone()).unwrap();
        self.api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
        self.tbs = Some(tbs);
        assert_eq!(verified_tbs(&self.api), self.tbs_bc);
    }

    /// The key the TBS certificate lists for `purpose`.
    fn purpose_key(&self, purpose: KeyPurpose) -> PublicKey {
        *self.tbs_bc.purpose_key(purpose).unwrap()
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.api.call("POST", path, None, Some(body))
    }

    /// Runs the device side to the broadcast; returns the txid and the signed body sent.
    fn enrol(&self, key: &SecretKey, bc: &BirthCertificate) -> (String, Value) {
        let instruction_key = InstructionKey::generate(&mut OsRng);
        let request = EnrolmentRequest::new(
            &mut OsRng,
            key,
            bc.clone(),
            instruction_key.clone(),
            EnrolmentCredential::issue(&self.maker, "acme", "eu", &key.public_key()).unwrap(),
            &self.purpose_key(KeyPurpose::Envelope),
            now(),
        )
        .unwrap();
        let envelope = request.seal(&mut OsRng, &self.purpose_key(KeyPurpose::Envelope));
        let body = json!({ "envelope": envelope.unwrap() });
        let (status, offered) = self.post("/v1/enrolments", body);
        assert_eq!(status, 200, "{offered}");
        let sealed = SealedOffer::from_base64(offered["offer"].as_str().unwrap()).unwrap();
        let offer =
            OfferTerms::open_checked(&instruction_key, &self.tbs_key, bc, &sealed, now()).unwrap();
        let signed = SignedAnchor {
            device: key.public_key(),
            tx: offer.sign(key).unwrap(),
        };
        let envelope = signed.seal(&mut OsRng, &self.purpose_key(KeyPurpose::Envelope));
        let body = json!({ "envelope": envelope.unwrap() });
        let (status, broadcast) = self.post("/v1/enrolments/signed", body.clone());
        assert_eq!(status, 202, "{broadcast}");
        (broadcast["txid"].as_str().unwrap().to_owned(), body)
    }

    fn device(&self, name: &str) -> (PublicKey, String, Value) {
        let (key, bc) = party(Role::Pat, name);
        let (txid, signed) = self.enrol(&key, &bc);
        (key.public_key(), txid, signed)
    }

    /// Waits until the newest checkpoint covers `size` entries and its anchor is confirmed,
    /// mining a block whenever a checkpoint anchor waits in the mempool.
    fn confirmed_checkpoint(&self, size: u64) -> Value {
        wait_until("a confirmed checkpoint", PATIENCE, || {
            let (status, body) = self.api.get("/v1/audit/checkpoint");
            if status != 200 {
                return None;
            }
            let anchor = &body["anchor"];
            let txid = bitcoin::Txid::from_str(anchor["txid"].as_str()?).ok()?;
            if anchor["state"] == "pending" && self.node().rpc.in_mempool(&txid).unwrap() {
                self.node().mine(1);
            }
            (anchor["state"] == "confirmed" && body["checkpoint"]["size"] == size).then_some(body)
        })
    }

    /// Verifies a served checkpoint as an outsider: the note's signature by the checkpoint
    /// key the TBS certificate lists, and its anchor by SPV (kind, digest = the note's,
    /// signer = the TBS's anchored key).
    fn verify_checkpoint(&self, body: &Value) -> SignedCheckpoint {
        assert_eq!(body["origin"], ORIGIN);
        let signed = self.verify_note(body["checkpoint"]["note"].as_str().unwrap());
        let proof: AnchorProofJson =
            serde_json::from_value(body["anchor"]["anchor_proof"].clone()).unwrap();
        let expected = Expected {
            kind: RecordKind::AuditLogRoot,
            digest: signed.digest(),
            signer: Some(self.tbs_key),
        };
        let verified = AnchorProof::from_json(&proof)
            .unwrap()
            .verify(&expected, &spv_headers(&self.api))
            .expect("the checkpoint is anchored by the TBS key");
        assert_eq!(verified.txid().to_string(), body["anchor"]["txid"]);
        signed
    }

    fn verify_note(&self, note: &str) -> SignedCheckpoint {
        let origin = KeyName::new(ORIGIN).unwrap();
        let signed = SignedCheckpoint::parse_certified(note, &origin, &self.tbs_bc).unwrap();
        assert_eq!(signed.checkpoint().origin(), ORIGIN);
        signed
    }

    /// Checks a device's inclusion proof (default size) against a verified checkpoint.
    fn verify_inclusion(&self, device: &PublicKey, txid: &str, checkpoint: &SignedCheckpoint) {
        let body = self
            .api
            .ok(&format!("/v1/audit/registrations/{device}/proof"));
        let entry = entry(device, txid);
        assert_eq!(body["entry"], entry.to_string());
        assert_eq!(body["tree_size"], checkpoint.checkpoint().size().get());
        let proof: InclusionProof =
            serde_json::from_value(body["inclusion_proof"].clone()).unwrap();
        proof
            .verify(entry.as_bytes(), &checkpoint.checkpoint().tree_head())
            .expect("the registration is in the anchored tree");
    }

    /// Every checkpoint's note and anchoring txid, oldest first.
    fn history(&self) -> Vec<(Value, Value)> {
        let listed = self.api.ok("/v1/audit/checkpoints")["checkpoints"].clone();
        let listed = listed.as_array().unwrap().iter();
        listed
            .map(|c| (c["note"].clone(), c["txid"].clone()))
            .collect()
    }

    /// The TBS key's audit-log-root records in the index (after a block, once indexed).
    fn anchored_roots(&self) -> Vec<Value> {
        let tip = self.node().mine(1)[0];
        wait_until("the index to catch up", PATIENCE, || {
            (self.api.ok("/v1/status")["index_hash"] == tip.to_string()).then_some(())
        });
        let records = self.api.ok(&format!("/v1/records?signer={}", self.tbs_key));
        records["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "audit_log_root")
            .cloned()
            .collect()
    }
}

#[test]
fn checkpoints_are_anchored_and_an_outsider_verifies_every_registration_and_their_consistency() {
    let w = World::start();
    assert_eq!(w.api.get("/v1/audit/checkpoint").0, 404);
    let (a, a_txid, _) = w.device("meter a");
    let (b, b_txid, _) = w.device("meter b");

    let first = w.verify_checkpoint(&w.confirmed_checkpoint(2));
    w.verify_inclusion(&a, &a_txid, &first);
    w.verify_inclusion(&b, &b_txid, &first);

    let (c, c_txid, _) = w.device("meter c");
    let second = w.verify_checkpoint(&w.confirmed_checkpoint(3));
    for (device, txid) in [(&a, &a_txid), (&b, &b_txid), (&c, &c_txid)] {
        w.verify_inclusion(device, txid, &second);
    }

    // The history: every note verifies, each consecutive pair is proven consistent, and
    // the first and second verified checkpoints are the last two.
    let history = w.api.ok("/v1/audit/checkpoints");
    let listed = history["checkpoints"].as_array().unwrap();
    assert!(listed.len() >= 2, "{history}");
    assert_eq!(history["next"], Value::Null);
    assert!(listed[0]["consistency_proof"].is_null());
    let notes: Vec<SignedCheckpoint> = listed
        .iter()
        .map(|c| w.verify_note(c["note"].as_str().unwrap()))
        .collect();
    for (pair, item) in notes.windows(2).zip(&listed[1..]) {
        let proof: ConsistencyProof =
            serde_json::from_value(item["consistency_proof"].clone()).unwrap();
        proof
            .verify(
                &pair[0].checkpoint().tree_head(),
                &pair[1].checkpoint().tree_head(),
            )
            .expect("each anchored root extends the previous one");
    }
    assert_eq!(notes[notes.len() - 2], first);
    assert_eq!(notes[notes.len() - 1], second);

    // Every checkpoint is one audit-log-root record on chain, signed by the TBS key.
    let roots = w.anchored_roots();
    assert_eq!(roots.len(), listed.len());
    for (root, item) in roots.iter().zip(listed) {
        assert_eq!(root["digest"], item["digest"]);
        assert_eq!(root["txid"], item["txid"]);
    }
    // Paging.
    let page = w.api.ok("/v1/audit/checkpoints?from=1&count=1");
    assert_eq!(page["checkpoints"][0]["sequence"], 1);
    assert!(page["checkpoints"][0]["consistency_proof"].is_object());
}

#[test]
fn a_retried_registration_is_logged_once_and_a_restart_rebuilds_the_same_log_without_re_anchoring()
{
    let mut w = World::start();
    let (a, a_txid, a_signed) = w.device("sensor a");
    // The device sends its signature again: same anchor, same single entry.
    let (status, again) = w.post("/v1/enrolments/signed", a_signed.clone());
    assert_eq!(
        (status, again["txid"].as_str()),
        (202, Some(a_txid.as_str()))
    );
    let (b, b_txid, _) = w.device("sensor b");
    let before = w.confirmed_checkpoint(2);
    assert_eq!(before["log_size"], 2);
    let anchored = w.history();
    let roots = w.anchored_roots();

    w.restart_tbs();
    let after = w.confirmed_checkpoint(2);
    assert_eq!(
        after["checkpoint"], before["checkpoint"],
        "same note, same root"
    );
    assert_eq!(after["log_size"], 2);
    let signed = w.verify_checkpoint(&after);
    w.verify_inclusion(&a, &a_txid, &signed);
    w.verify_inclusion(&b, &b_txid, &signed);

    // A retry after the restart changes nothing, and several intervals later (with new
    // blocks) no checkpoint was made or anchored again.
    assert_eq!(w.post("/v1/enrolments/signed", a_signed).0, 202);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(w.anchored_roots(), roots);
    assert_eq!(w.history(), anchored);
    assert_eq!(w.api.ok("/v1/audit/checkpoint")["log_size"], 2);
}

#[test]
fn a_checkpoint_anchor_the_node_forgot_is_sent_again_unchanged_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("node");
    // No mempool.dat: a node restart forgets unconfirmed transactions.
    let node = TestNode::start_persistent(&datadir, &["-persistmempool=0"]);
    let relay = TcpRelay::start(node.rpc_socket());
    let mut w = World::start_on(node, Some(relay), dir);
    let (a, a_txid, _) = w.device("valve a");
    let pending = wait_until("a checkpoint to be broadcast", PATIENCE, || {
        let (status, body) = w.api.get("/v1/audit/checkpoint");
        (status == 200).then_some(body)
    });
    assert_eq!(pending["anchor"]["state"], "pending");
    let txid = pending["anchor"]["txid"].as_str().unwrap().to_owned();

    // The TBS stops and the node restarts without its mempool: the anchor is gone.
    w.stop_tbs();
    w.node_slot = None;
    w.node_slot = Some(TestNode::start_persistent(&datadir, &["-persistmempool=0"]));
    w.relay.as_ref().unwrap().forward_to(w.node().rpc_socket());
    let mempool: Vec<String> = w.node().rpc.call("getrawmempool", &[]).unwrap();
    assert!(!mempool.contains(&txid));

    // The restarted TBS sends the same transaction again, and it confirms.
    let tbs = Tbs::start(w.config.clone()).unwrap();
    w.api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
    w.tbs = Some(tbs);
    wait_until("the checkpoint anchor to be sent again", PATIENCE, || {
        let mempool: Vec<String> = w.node().rpc.call("getrawmempool", &[]).unwrap();
        mempool.contains(&txid).then_some(())
    });
    let confirmed = w.confirmed_checkpoint(1);
    assert_eq!(confirmed["anchor"]["txid"], txid.as_str());
    assert_eq!(confirmed["checkpoint"], pending["checkpoint"]);
    let signed = w.verify_checkpoint(&confirmed);
    w.verify_inclusion(&a, &a_txid, &signed);
    let roots = w.anchored_roots();
    assert_eq!(roots.len(), 1, "one checkpoint, anchored once: {roots:?}");
    assert_eq!(roots[0]["txid"], txid.as_str());
}

#[test]
fn bad_audit_requests_get_a_json_4xx_and_proofs_wait_for_a_confirmed_checkpoint() {
    let w = World::start();
    let (a, _, _) = w.device("lamp a");
    let (b, _, _) = w.device("lamp b");
    w.confirmed_checkpoint(2);
    // A third registration, whose checkpoint is not mined: not provable by default yet.
    let (c, _, _) = w.device("lamp c");
    let (status, body) = w.api.get(&format!("/v1/audit/registrations/{c}/proof"));
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("not_anchored"))
    );
    assert_eq!(
        w.api
            .ok(&format!("/v1/audit/registrations/{c}/proof?size=3"))["leaf_index"],
        2
    );

    let stranger = SecretKey::generate(&mut OsRng).public_key();
    let proof =
        |device: &PublicKey, query: &str| format!("/v1/audit/registrations/{device}/proof{query}");
    let cases = [
        ("/v1/audit/registrations/02abcd/proof".to_owned(), 400),
        ("/v1/audit/registrations/not-a-key/proof".to_owned(), 400),
        (proof(&a, "?size=0"), 400),
        (proof(&a, "?size=4"), 400),
        (proof(&a, "?size=18446744073709551615"), 400),
        (proof(&a, "?size=-1"), 400),
        (proof(&a, "?size=two"), 400),
        (proof(&a, "?colour=red"), 400),
        (proof(&b, "?size=1"), 400), // entry 1 is not in the tree of one entry
        (proof(&stranger, ""), 404),
        (proof(&stranger, "?size=1"), 404),
        ("/v1/audit/checkpoints?count=0".to_owned(), 400),
        ("/v1/audit/checkpoints?count=101".to_owned(), 400),
        ("/v1/audit/checkpoints?from=x".to_owned(), 400),
        ("/v1/audit/registrations".to_owned(), 404),
    ];
    for (path, expected) in cases {
        let (status, body) = w.api.get(&path);
        assert_eq!(status, expected, "{path}: {body}");
        assert!(
            body["error"].is_string() && body["error_description"].is_string(),
            "{path}: {body}"
        );
    }
    let (status, body) = w.api.call("POST", "/v1/audit/checkpoint", None, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    // By default a proof is against the newest confirmed checkpoint.
    assert_eq!(w.api.ok(&proof(&a, ""))["tree_size"], 2);
}
