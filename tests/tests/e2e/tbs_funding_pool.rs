//! The funding pool against a real TBS and node: a direct-mode offer reserves a confirmed
//! coin of the pool key, whose payment (one input, one output, no wallet call) goes out
//! only with the device's signed anchor; the pool refills itself when it runs low, and
//! while it is empty devices are told to come back (`503` with `Retry-After`): the wallet
//! never pays a device.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bitcoin::{Transaction, Txid};
use milagro_anchor::birth_certificate::Role;
use milagro_pat_client::{Error, Offered, Provisioning, Requested, ServiceClient, Stage};
use milagro_tests::enrolment_world::{EnrolmentWorld, WorldOptions};
use milagro_tests::wait_until;

const WAIT: Duration = Duration::from_secs(60);

/// A new device provisioned for `eu`, its TBS verified, and its enrolment request's answer.
fn request(w: &EnrolmentWorld, dir: &std::path::Path) -> Result<Requested, Error> {
    let provisioning = Provisioning {
        tbs_url: w.url(),
        tbs_digest: w.tbs_digest,
        tenant: "acme".into(),
        group: "eu".into(),
        network: bitcoin::Network::Regtest,
        sources: Default::default(),
    };
    let Stage::Provisioned(device) = w.provision(dir, provisioning, None) else {
        panic!("a new device starts provisioned")
    };
    let tbs = ServiceClient::new(&w.url()).unwrap();
    device.verify_tbs(&tbs).unwrap().request(&tbs)
}

fn offered(w: &EnrolmentWorld, dir: &std::path::Path) -> Offered {
    match request(w, dir).unwrap() {
        Requested::Offered(offered) => offered,
        other => panic!("a direct-mode device gets an offer, not {other:?}"),
    }
}

/// The node's copy of `txid`, if it has one (mempool or chain).
fn node_tx(w: &EnrolmentWorld, txid: &Txid) -> Option<Transaction> {
    let hex: String = w
        .node()
        .rpc
        .call("getrawtransaction", &[serde_json::json!(txid)])
        .ok()?;
    Some(bitcoin::consensus::encode::deserialize_hex(&hex).unwrap())
}

fn pool(w: &EnrolmentWorld) -> serde_json::Value {
    w.api.ok("/v1/status")["funding_pool"].clone()
}

#[test]
fn offers_reserve_pool_coins_whose_payment_goes_out_only_with_the_signed_anchor() {
    let w = EnrolmentWorld::start_with(&WorldOptions {
        extra_config: "[anchoring]\nfunding_pool = 4\n".into(),
        restartable: false,
        http: None,
    });
    let dta = w.anchored(Role::Dta, "D-TA 1");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    wait_until("the pool's coins to be free", WAIT, || {
        (pool(&w)["free"] == 4).then_some(())
    });

    // Three offers reserve three coins; none of their payments reaches the node.
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut offers: Vec<Offered> = dirs[..3].iter().map(|d| offered(&w, d.path())).collect();
    for offer in &offers {
        let funding = offer.offer().unsigned_tx().input[0].previous_output;
        assert!(
            node_tx(&w, &funding.txid).is_none(),
            "an offer's payment is held back"
        );
    }
    let mempool: Vec<String> = w.node().rpc.call("getrawmempool", &[]).unwrap();
    assert!(mempool.is_empty(), "nothing was paid: {mempool:?}");
    assert_eq!(pool(&w)["free"], 1);
    assert!(pool(&w)["refilling"].is_null());
    // The fourth takes the last coin; below a quarter, the pool refills.
    let _fourth = offered(&w, dirs[3].path());
    let second_fan_out = wait_until("a second fan-out", WAIT, || {
        pool(&w)["refilling"].as_str().map(str::to_owned)
    });
    // Until it confirms no coin is free: a fifth device is told when to come back, and
    // the wallet pays nobody.
    match request(&w, dirs[4].path()) {
        Err(Error::Server {
            status: 503,
            code: Some(code),
            retry_after_secs: Some(_),
            ..
        }) => assert_eq!(code, "funding_pool_empty"),
        other => panic!("expected 503 funding_pool_empty, got {other:?}"),
    }

    // A device signs: its payment (one pool coin in, one output, no change) and its anchor
    // go out together.
    let tbs = ServiceClient::new(&w.url()).unwrap();
    let signed = offers.remove(0);
    let funding = signed.offer().unsigned_tx().input[0].previous_output;
    signed.sign_and_send(&tbs).unwrap();
    let payment = node_tx(&w, &funding.txid).expect("the payment is sent with the anchor");
    assert_eq!(payment.input.len(), 1);
    assert_eq!(payment.output.len(), 1, "a pool payment has no change");
    w.mine(1);
    wait_until("the refilled coins to be free", WAIT, || {
        (pool(&w)["free"] == 4).then_some(())
    });
    let fifth = offered(&w, dirs[4].path());
    assert_eq!(pool(&w)["free"], 3);
    let fifth_funding = fifth.offer().unsigned_tx().input[0].previous_output;
    fifth.sign_and_send(&tbs).unwrap();
    let payment = node_tx(&w, &fifth_funding.txid).expect("sent with the anchor");
    assert_eq!(
        payment.input[0].previous_output.txid.to_string(),
        second_fan_out,
        "paid from the refill"
    );
}
