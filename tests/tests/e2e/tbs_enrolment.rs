//! Direct-mode device enrolment through a real TBS on a real regtest node: the device
//! checks the TBS, gets an offer, signs its own anchor, and its signature lands on chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_regtest::RegtestControls as _;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use milagro_anchor::anchor_offer::OfferTerms;
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::envelope::{
    seal, InstructionKey, Purpose, SealedInstructions, SealedOffer, SenderId,
};
use milagro_anchor::instructions::{Instructions, VerifiedInstructions};
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::proof::{AnchorProof, AnchorProofJson};
use milagro_anchor::purpose_keys::KeyPurpose;
use milagro_registry::chain::ChainSource;
use milagro_tests::enrolment_world::{EnrolmentWorld, WorldOptions};
use milagro_tests::{party, spv_headers, wait_until};
use rand_core::OsRng;
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(30);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The shared enrolment world, plus the TBS keys a device learns from the certificate it
/// pinned and checked by SPV: the anchored key (instructions name it) and the envelope key
/// (requests are sealed to it).
struct World {
    inner: EnrolmentWorld,
    tbs_key: PublicKey,
    envelope_key: PublicKey,
}

impl std::ops::Deref for World {
    type Target = EnrolmentWorld;
    fn deref(&self) -> &EnrolmentWorld {
        &self.inner
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut EnrolmentWorld {
        &mut self.inner
    }
}

impl World {
    /// A TBS with tenant `acme`, group `eu` (direct mode), its own anchor confirmed and
    /// verified by the test as a device would (digest pinned, SPV against the headers).
    fn start() -> Self {
        Self::start_with(&WorldOptions::default())
    }

    /// The same with `options` (a restartable node, say).
    fn start_with(options: &WorldOptions) -> Self {
        let inner = EnrolmentWorld::start_with(options);
        let served = inner.api.ok("/.well-known/milagro/birth-certificate");
        let bc =
            BirthCertificate::parse(served["birth_certificate"].to_string().as_bytes()).unwrap();
        assert_eq!(
            bc.digest(),
            inner.tbs_digest,
            "the device checks the digest it was provisioned with"
        );
        let proof: AnchorProofJson =
            serde_json::from_value(served["anchor_proof"].clone()).unwrap();
        bc.verify_anchor(
            &AnchorProof::from_json(&proof).unwrap(),
            &spv_headers(&inner.api),
        )
        .unwrap();
        let (status, _) = inner.api.call(
            "PUT",
            "/v1/tenants/acme/groups/eu",
            Some(&inner.tenant_token),
            Some(json!({"name": "EU", "mode": "direct",
                        "enrolment_keys": [inner.maker.public_key()]})),
        );
        assert_eq!(status, 200);
        World {
            inner,
            tbs_key: *bc.public_key(),
            envelope_key: *bc.purpose_key(KeyPurpose::Envelope).unwrap(),
        }
    }

    fn request(&self, key: &SecretKey, bc: &BirthCertificate, group: &str) -> Value {
        self.request_with(key, bc, group, InstructionKey::generate(&mut OsRng))
    }

    fn request_with(
        &self,
        key: &SecretKey,
        bc: &BirthCertificate,
        group: &str,
        instruction_key: InstructionKey,
    ) -> Value {
        let request = EnrolmentRequest::new(
            &mut OsRng,
            key,
            bc.clone(),
            instruction_key,
            self.credential(&key.public_key(), group),
            &self.envelope_key,
            now(),
        )
        .unwrap();
        json!({ "envelope": request.seal(&mut OsRng, &self.envelope_key).unwrap() })
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.api.call("POST", path, None, Some(body))
    }

    /// Runs the device side to the broadcast; returns the anchoring txid.
    fn enrol(&self, key: &SecretKey, bc: &BirthCertificate) -> String {
        self.enrol_in(key, bc, "eu", InstructionKey::generate(&mut OsRng))
    }

    fn enrol_in(
        &self,
        key: &SecretKey,
        bc: &BirthCertificate,
        group: &str,
        instruction_key: InstructionKey,
    ) -> String {
        let (status, offered) = self.post(
            "/v1/enrolments",
            self.request_with(key, bc, group, instruction_key.clone()),
        );
        assert_eq!(status, 200, "{offered}");
        assert_eq!(offered["status"], "offered");
        let sealed = SealedOffer::from_base64(offered["offer"].as_str().unwrap()).unwrap();
        let offer = OfferTerms::open_checked(&instruction_key, &self.tbs_key, bc, &sealed, now())
            .expect("the device accepts the TBS's offer");
        let signed = SignedAnchor {
            device: key.public_key(),
            tx: offer.sign(key).unwrap(),
        };
        let (status, broadcast) = self.post(
            "/v1/enrolments/signed",
            json!({ "envelope": signed.seal(&mut OsRng, &self.envelope_key).unwrap() }),
        );
        assert_eq!(status, 202, "{broadcast}");
        assert_eq!(broadcast["status"], "broadcast");
        broadcast["txid"].as_str().unwrap().to_owned()
    }

    /// The device fetches, opens and verifies its instructions by SPV.
    fn instructions(
        &self,
        key: &SecretKey,
        bc: &BirthCertificate,
        instruction_key: &InstructionKey,
    ) -> VerifiedInstructions {
        let (status, body) = self
            .api
            .get(&format!("/v1/enrolments/{}/instructions", key.public_key()));
        assert_eq!(status, 200, "{body}");
        let sealed: SealedInstructions =
            serde_json::from_value(body["instructions"].clone()).unwrap();
        let opened =
            Instructions::open(instruction_key, &self.tbs_key, &key.public_key(), &sealed).unwrap();
        opened
            .verify(bc, &self.tbs_key, &spv_headers(&self.api))
            .expect("every anchor in the instructions verifies by SPV")
    }

    fn confirmed(&self, device: &PublicKey) -> Value {
        self.node().mine(1);
        let tip = self.node().rpc.tip().unwrap();
        wait_until("the TBS to index the device anchor", PATIENCE, || {
            let (_, body) = self.api.get(&format!("/v1/enrolments/{device}"));
            (body["status"] == "confirmed"
                && self.api.ok("/v1/status")["index_hash"] == tip.hash.to_string())
            .then_some(body)
        })
    }
}

#[test]
fn a_device_enrols_and_its_own_signature_lands_on_chain() {
    let w = World::start();
    let (key, bc) = party(Role::Pat, "thermostat 1");
    let txid = w.enrol(&key, &bc);
    let status = w.confirmed(&key.public_key());
    assert_eq!(
        (status["txid"].as_str(), status["depth"].as_u64()),
        (Some(txid.as_str()), Some(1))
    );

    // The registry attributes the record to the device's key, and its proof verifies.
    let records = w
        .api
        .ok(&format!("/v1/records?signer={}", key.public_key()));
    assert_eq!(records["records"].as_array().unwrap().len(), 1);
    assert_eq!(records["records"][0]["digest"], bc.digest().to_string());
    let proof = w.api.ok(&format!("/v1/proofs/{txid}"));
    let proof: AnchorProofJson = serde_json::from_value(proof["anchor_proof"].clone()).unwrap();
    let verified = bc
        .verify_anchor(
            &AnchorProof::from_json(&proof).unwrap(),
            &spv_headers(&w.api),
        )
        .unwrap();
    assert_eq!(verified.signer(), key.public_key());

    // Asking again (a new request, or the signature again) never anchors a second time.
    let (status, again) = w.post("/v1/enrolments", w.request(&key, &bc, "eu"));
    assert_eq!(
        (status, again["status"].as_str(), again["txid"].as_str()),
        (200, Some("broadcast"), Some(txid.as_str()))
    );
    w.node().mine(1);
    let tip = w.node().rpc.tip().unwrap();
    wait_until("the index to catch up", PATIENCE, || {
        (w.api.ok("/v1/status")["index_hash"] == tip.hash.to_string()).then_some(())
    });
    let records = w
        .api
        .ok(&format!("/v1/records?signer={}", key.public_key()));
    assert_eq!(records["records"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_enrolments_get_a_4xx_and_change_nothing() {
    let w = World::start();
    let (key, bc) = party(Role::Pat, "thermostat 2");
    let (dta_key, dta) = party(Role::Dta, "not a device");
    let other_tbs = SecretKey::generate(&mut OsRng).public_key();
    // The device's own request to `tbs`, made at `created`.
    let signed = |tbs: &PublicKey, created: u64| {
        EnrolmentRequest::new(
            &mut OsRng,
            &key,
            bc.clone(),
            InstructionKey::generate(&mut OsRng),
            w.credential(&key.public_key(), "eu"),
            tbs,
            created,
        )
        .unwrap()
    };
    let stale = signed(&w.envelope_key, now() - 3600);
    let to_other = signed(&other_tbs, now());
    // Issue 13, attack 2: someone holding the device's (public) certificate asks to enrol
    // it with their own instruction key; without the device key they cannot sign the
    // request, and the device's signature of another request does not transfer.
    let genuine = signed(&w.envelope_key, now());
    let (attacker, _) = party(Role::Pat, "front-runner");
    let front_run = |possession| EnrolmentRequest {
        instruction_key: InstructionKey::generate(&mut OsRng),
        possession,
        ..signed(&w.envelope_key, now())
    };
    let signed_by_attacker = front_run(attacker.sign_prehash(&[7; 32]));
    let reused_signature = front_run(genuine.possession);
    let wrong_purpose = seal(
        &mut OsRng,
        &w.envelope_key,
        Purpose::Message,
        &SenderId::from_public_key(&key.public_key()),
        b"{}",
    )
    .unwrap();
    let cases = [
        (json!({"envelope": "not base64 !"}), 400),
        (json!({"envelope": STANDARD.encode([1u8; 90])}), 400),
        (json!({"nonsense": 1}), 400),
        (
            json!({ "envelope": stale.seal(&mut OsRng, &w.envelope_key).unwrap() }),
            400,
        ),
        (
            json!({ "envelope": to_other.seal(&mut OsRng, &other_tbs).unwrap() }),
            400,
        ),
        (json!({ "envelope": wrong_purpose }), 400),
        (
            json!({ "envelope": signed_by_attacker.seal(&mut OsRng, &w.envelope_key).unwrap() }),
            400,
        ),
        (
            json!({ "envelope": reused_signature.seal(&mut OsRng, &w.envelope_key).unwrap() }),
            400,
        ),
        (w.request(&dta_key, &dta, "eu"), 400),
        (w.request(&key, &bc, "no-such-group"), 404),
    ];
    for (body, expected) in cases {
        let (status, answer) = w.post("/v1/enrolments", body.clone());
        assert_eq!(status, expected, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let forged = front_run(attacker.sign_prehash(&[8; 32]));
    let (status, answer) = w.post(
        "/v1/enrolments",
        json!({ "envelope": forged.seal(&mut OsRng, &w.envelope_key).unwrap() }),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("proof of possession"),
        "{answer}"
    );
    // The same request twice (a replay) gets the state the first one made: never a second
    // offer. (A request refused before its credential and group were checked leaves no
    // trace, not even its nonce: that would be a disk write anyone could cause.)
    let (replayed_key, replayed_bc) = party(Role::Pat, "replayed");
    let replayed_instruction_key = InstructionKey::generate(&mut OsRng);
    let replayed = w.request_with(
        &replayed_key,
        &replayed_bc,
        "eu",
        replayed_instruction_key.clone(),
    );
    let (status, first) = w.post("/v1/enrolments", replayed.clone());
    assert_eq!(status, 200, "{first}");
    let (status, second) = w.post("/v1/enrolments", replayed);
    assert_eq!(status, 200, "{second}");
    let open = |answer: &Value| {
        let sealed = SealedOffer::from_base64(answer["offer"].as_str().unwrap()).unwrap();
        OfferTerms::open(
            &replayed_instruction_key,
            &w.tbs_key,
            &replayed_key.public_key(),
            &sealed,
        )
        .unwrap()
    };
    assert_eq!(open(&first), open(&second));
    // Whoever asks for the device's progress sees that it was offered, not the offer: it
    // is sealed under the device's instruction key, and nothing in the body is a PSBT.
    let (status, progress) = w
        .api
        .get(&format!("/v1/enrolments/{}", replayed_key.public_key()));
    assert_eq!(status, 200, "{progress}");
    assert_eq!(progress["status"], "offered");
    assert!(progress.get("psbt").is_none(), "{progress}");
    assert_eq!(open(&progress), open(&first));
    let stranger_key = InstructionKey::generate(&mut OsRng);
    let sealed = SealedOffer::from_base64(progress["offer"].as_str().unwrap()).unwrap();
    assert!(OfferTerms::open(
        &stranger_key,
        &w.tbs_key,
        &replayed_key.public_key(),
        &sealed
    )
    .is_err());
    // A signature for a device that never enrolled, and a transaction that is not the offer.
    let (stranger, _) = party(Role::Pat, "stranger");
    let tx = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![],
        output: vec![],
    };
    let unknown = SignedAnchor {
        device: stranger.public_key(),
        tx: tx.clone(),
    };
    assert_eq!(
        w.post(
            "/v1/enrolments/signed",
            json!({ "envelope": unknown.seal(&mut OsRng, &w.envelope_key).unwrap() })
        )
        .0,
        404
    );
    let (status, _) = w.post("/v1/enrolments", w.request(&key, &bc, "eu"));
    assert_eq!(status, 200);
    let forged = SignedAnchor {
        device: key.public_key(),
        tx,
    };
    let (status, answer) = w.post(
        "/v1/enrolments/signed",
        json!({ "envelope": forged.seal(&mut OsRng, &w.envelope_key).unwrap() }),
    );
    assert_eq!(status, 400, "{answer}");
    let (_, progress) = w.api.get(&format!("/v1/enrolments/{}", key.public_key()));
    assert_eq!(
        progress["status"], "offered",
        "a refused signature changes nothing"
    );
    assert_eq!(w.api.get("/v1/enrolments/02abcd").0, 400);
    assert_eq!(
        w.api
            .get(&format!("/v1/enrolments/{}", stranger.public_key()))
            .0,
        404
    );
}

#[test]
fn an_enrolled_device_gets_instructions_it_verifies_and_new_ones_when_its_group_changes() {
    let w = World::start();
    let dta1 = w.anchored(Role::Dta, "D-TA 1");
    let dta2 = w.anchored(Role::Dta, "D-TA 2");
    let idp = w.anchored(Role::Idp, "IdP");
    let first_revision = w.put_group("eu-metering", &[&dta1], &idp);
    let (key, bc) = party(Role::Pat, "meter 1");
    let instruction_key = InstructionKey::generate(&mut OsRng);
    let txid = w.enrol_in(&key, &bc, "eu-metering", instruction_key.clone());

    // Before the anchor confirms, instructions are not ready.
    let (status, pending) = w
        .api
        .get(&format!("/v1/enrolments/{}/instructions", key.public_key()));
    assert_eq!(
        (status, pending["status"].as_str()),
        (202, Some("broadcast"))
    );

    w.confirmed(&key.public_key());
    let verified = w.instructions(&key, &bc, &instruction_key);
    let got = verified.instructions();
    assert_eq!(
        (got.tenant.as_str(), got.group.as_str(), got.revision),
        ("acme", "eu-metering", first_revision)
    );
    assert_eq!(got.device.txid().to_string(), txid);
    assert_eq!(got.dtas.len(), 1);
    assert_eq!(got.dtas[0].birth_certificate, dta1.digest());
    assert_eq!(got.idp.as_ref().unwrap().birth_certificate, idp.digest());
    assert_eq!(verified.device_anchor().signer(), key.public_key());
    assert_eq!(verified.service_anchors()[0].digest(), dta1.digest());

    // An operator adds a D-TA: the device's next fetch has a higher sequence and both.
    let second_revision = w.put_group("eu-metering", &[&dta1, &dta2], &idp);
    assert!(second_revision > first_revision);
    let refreshed = w.instructions(&key, &bc, &instruction_key);
    assert_eq!(refreshed.instructions().revision, second_revision);
    assert_eq!(refreshed.instructions().dtas.len(), 2);

    // Sealed for this device only: another key opens nothing.
    let (_, body) = w
        .api
        .get(&format!("/v1/enrolments/{}/instructions", key.public_key()));
    let sealed: SealedInstructions = serde_json::from_value(body["instructions"].clone()).unwrap();
    assert!(Instructions::open(
        &InstructionKey::generate(&mut OsRng),
        &w.tbs_key,
        &key.public_key(),
        &sealed
    )
    .is_err());
}

#[test]
fn an_anchor_a_reorg_drops_is_sent_again_and_instructions_follow_it() {
    let mut w = World::start_with(&WorldOptions {
        restartable: true,
        ..WorldOptions::default()
    });
    let (key, bc) = party(Role::Pat, "meter 9");
    let instruction_key = InstructionKey::generate(&mut OsRng);
    let txid = w.enrol_in(&key, &bc, "eu", instruction_key.clone());
    let confirmed = w.confirmed(&key.public_key());
    w.instructions(&key, &bc, &instruction_key);

    // The anchor's block is invalidated and the node restarts without a mempool: the
    // payment and the anchor are gone from everywhere, and a longer chain grows without them.
    let height = confirmed["height"].as_u64().unwrap() as u32;
    let block = w.node().rpc.block_hash(height).unwrap().unwrap();
    w.node().rpc.invalidate_block(&block).unwrap();
    // No mempool.dat is read back (`-persistmempool=0`), as after a long reorg; and
    // `-walletbroadcast=0`: the wallet (which owns the payment and the anchor's change)
    // must not resubmit them itself, so only the TBS can bring them back.
    w.restart_node(&["-persistmempool=0", "-walletbroadcast=0"]);
    for _ in 0..2 {
        w.node().rpc.generate_block(&w.node().miner, &[]).unwrap();
    }

    // The TBS notices, sends the same transactions again, and they confirm again.
    wait_until("the anchor to be sent again", PATIENCE, || {
        let mempool: Vec<String> = w.node().rpc.call("getrawmempool", &[]).unwrap();
        mempool.contains(&txid).then_some(())
    });
    let again = w.confirmed(&key.public_key());
    assert_eq!(again["txid"].as_str(), Some(txid.as_str()));
    assert!(again["height"].as_u64().unwrap() > u64::from(height));
    let verified = w.instructions(&key, &bc, &instruction_key);
    assert_eq!(verified.device_anchor().txid().to_string(), txid);
}
