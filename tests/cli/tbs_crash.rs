//! `kill -9` of a TBS process in the middle of a burst of enrolments: after a restart every
//! device ends up anchored exactly once, and none twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use milagro_anchor::anchor_offer::OfferTerms;
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::envelope::{InstructionKey, SealedOffer};
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_tbs::tenants::model::ApiToken;
use milagro_tests::{party, tbs_config, wait_until, Api, TestNode};
use rand_core::OsRng;
use serde_json::{json, Value};

use crate::served::Served;

const DEVICES: usize = 12;
const PATIENCE: Duration = Duration::from_secs(60);

/// A `milagro tbs serve` process, killed with SIGKILL when dropped.
struct TbsProcess {
    served: Served,
    url: String,
    /// The TBS's keys.
    keys: TbsKeys,
}

/// The TBS's anchored key (which seals offers) and its envelope key (which devices seal
/// to).
#[derive(Clone, Copy, Debug, PartialEq)]
struct TbsKeys {
    anchored: PublicKey,
    envelope: PublicKey,
}

impl TbsProcess {
    fn start(config: &std::path::Path) -> Self {
        let served = Served::start("tbs", config);
        let started = &served.started;
        let keys = TbsKeys {
            anchored: started["public_key"].as_str().unwrap().parse().unwrap(),
            // Devices seal to the envelope key the TBS's certificate lists.
            envelope: started["keys"]["envelope"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        };
        Self {
            url: served.url.clone(),
            served,
            keys,
        }
    }

    /// SIGKILL, and waits for the process to end.
    fn kill(self) {
        drop(self.served);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A device: its key, its certificate and the instruction key it keeps across attempts
/// (the TBS seals its offer under the first one it was sent).
type Device = (SecretKey, BirthCertificate, InstructionKey);

/// One device's attempt: request (with the maker's credential), open, check and sign the
/// offer, send it. Returns whether the TBS answered every step (a killed TBS makes it stop
/// early).
fn try_enrol(
    url: &str,
    tbs: &TbsKeys,
    maker: &SecretKey,
    (key, bc, instruction_key): &Device,
) -> Option<()> {
    let client = milagro_http_client::Outbound::system()
        .unwrap()
        .builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let post = |path: &str, body: Value| -> Option<Value> {
        let response = client
            .post(format!("{url}{path}"))
            .json(&body)
            .send()
            .ok()?;
        response.status().is_success().then_some(())?;
        response.json().ok()
    };
    let request = EnrolmentRequest::new(
        &mut OsRng,
        key,
        bc.clone(),
        instruction_key.clone(),
        EnrolmentCredential::issue(maker, "acme", "eu", &key.public_key()).ok()?,
        &tbs.envelope,
        now(),
    )
    .ok()?;
    let answer = post(
        "/v1/enrolments",
        json!({ "envelope": request.seal(&mut OsRng, &tbs.envelope).ok()? }),
    )?;
    if answer["status"] != "offered" {
        return Some(()); // already broadcast: nothing left to do
    }
    let sealed = SealedOffer::from_base64(answer["offer"].as_str()?).ok()?;
    let offer =
        OfferTerms::open_checked(instruction_key, &tbs.anchored, bc, &sealed, now()).ok()?;
    let signed = SignedAnchor {
        device: key.public_key(),
        tx: offer.sign(key).ok()?,
    };
    post(
        "/v1/enrolments/signed",
        json!({ "envelope": signed.seal(&mut OsRng, &tbs.envelope).ok()? }),
    )?;
    Some(())
}

#[test]
fn a_tbs_killed_during_a_burst_of_enrolments_loses_none_and_anchors_none_twice() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let admin = ApiToken::generate(&mut OsRng);
    let config = dir.path().join("tbs.toml");
    // Every device retries from this one address until it is through.
    let text = format!(
        "{}\n[enrolment]\nrequests_per_minute_per_address = 100000\n[admin]\ntoken_sha256 = \"{}\"\n",
        tbs_config(&node.rpc_url(), &node.cookie(), &dir.path().join("state")),
        admin.hash()
    );
    let maker = SecretKey::generate(&mut OsRng);
    std::fs::write(&config, text).unwrap();

    let tbs = TbsProcess::start(&config);
    let api = Api::new(tbs.url.clone());
    wait_until("the TBS anchor to be broadcast", PATIENCE, || {
        (api.ok("/v1/status")["anchor"]["state"] == "pending").then_some(())
    });
    node.mine(1);
    let (status, created) = api.call(
        "POST",
        "/v1/admin/tenants",
        Some(admin.reveal()),
        Some(json!({"id": "acme", "name": "Acme"})),
    );
    assert_eq!(status, 201);
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, _) = api.call(
        "PUT",
        "/v1/tenants/acme/groups/eu",
        Some(&token),
        Some(json!({"name": "EU", "enrolment_keys": [maker.public_key()]})),
    );
    assert_eq!(status, 200);
    // Offers are paid only from confirmed pool coins.
    wait_until("the funding pool to fill", PATIENCE, || {
        let mempool: Vec<String> = node.rpc.call("getrawmempool", &[]).unwrap();
        if !mempool.is_empty() {
            node.mine(1);
        }
        (api.ok("/v1/status")["funding_pool"]["free"].as_u64() > Some(0)).then_some(())
    });

    // A burst of devices enrolling at once; the TBS is killed while they are at it.
    let devices: Arc<Vec<Device>> = Arc::new(
        (0..DEVICES)
            .map(|i| {
                let (key, bc) = party(Role::Pat, &format!("burst device {i}"));
                (key, bc, InstructionKey::generate(&mut OsRng))
            })
            .collect(),
    );
    let finished = Arc::new(AtomicUsize::new(0));
    let burst: Vec<_> = (0..DEVICES)
        .map(|i| {
            let (devices, url, tbs_key) = (devices.clone(), tbs.url.clone(), tbs.keys);
            let maker = maker.clone();
            let finished = finished.clone();
            std::thread::spawn(move || {
                let done = try_enrol(&url, &tbs_key, &maker, &devices[i]).is_some();
                if done {
                    finished.fetch_add(1, Ordering::SeqCst);
                }
                done
            })
        })
        .collect();
    // Kill once a few devices are through and the rest are in flight.
    wait_until("a few devices to get through", PATIENCE, || {
        (finished.load(Ordering::SeqCst) >= 3).then_some(())
    });
    let tbs_key = tbs.keys;
    drop(api);
    tbs.kill();
    let finished_before_kill = burst
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|done| *done)
        .count();
    eprintln!("{finished_before_kill} of {DEVICES} devices finished before the kill");

    // Restart on the same state; every device simply tries again until it is through.
    let tbs = TbsProcess::start(&config);
    assert_eq!(tbs.keys, tbs_key, "same identity after the crash");
    let api = Api::new(tbs.url.clone());
    for device in devices.iter() {
        wait_until("the device to get through", PATIENCE, || {
            try_enrol(&tbs.url, &tbs_key, &maker, device)
        });
    }
    // Keep mining: an anchor whose broadcast the kill interrupted is sent again by the
    // TBS's watcher only after its next poll, so it may miss the first block.
    let mut polls = 0u32;
    wait_until("every device anchor to be confirmed", PATIENCE, || {
        polls += 1;
        if polls % 25 == 1 {
            node.mine(1);
        }
        let all = devices.iter().all(|(key, _, _)| {
            let (_, body) = api.get(&format!("/v1/enrolments/{}", key.public_key()));
            body["status"] == "confirmed"
        });
        all.then_some(())
    });
    for (key, bc, _) in devices.iter() {
        let records = api.ok(&format!("/v1/records?signer={}", key.public_key()));
        let records = records["records"].as_array().unwrap();
        assert_eq!(
            records.len(),
            1,
            "device {} anchored {} times",
            key.public_key(),
            records.len()
        );
        assert_eq!(records[0]["digest"], bc.digest().to_string());
    }
}
