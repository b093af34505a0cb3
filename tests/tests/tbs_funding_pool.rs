//! The funding pool against a real TBS and node: direct-mode devices are paid from
//! confirmed coins of the pool key (one input, one output, no wallet call), the pool
//! refills itself when it runs low, and an empty pool falls back to wallet payments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bitcoin::Transaction;
use milagro_anchor::birth_certificate::Role;
use milagro_pat_client::{provision, Provisioning, Requested, ServiceClient, Stage};
use milagro_tests::enrolment_world::{EnrolmentWorld, WorldOptions};
use milagro_tests::wait_until;

const WAIT: Duration = Duration::from_secs(60);

/// The payment the TBS made to a device for the offer it got (from the mempool).
fn offered_payment(w: &EnrolmentWorld, dir: &std::path::Path) -> Transaction {
    let provisioning = Provisioning {
        tbs_url: w.url(),
        tbs_digest: w.tbs_digest,
        tenant: "acme".into(),
        group: "eu".into(),
        network: bitcoin::Network::Regtest,
        sources: Default::default(),
    };
    let Stage::Provisioned(device) = provision(dir, provisioning, None).unwrap() else {
        panic!("a new device starts provisioned")
    };
    let tbs = ServiceClient::new(&w.url()).unwrap();
    let Requested::Offered(offered) = device.verify_tbs(&tbs).unwrap().request(&tbs).unwrap()
    else {
        panic!("a direct-mode device gets an offer")
    };
    let funding = offered.offer().unsigned_tx().input[0].previous_output;
    let hex: String = w
        .node()
        .rpc
        .call("getrawtransaction", &[serde_json::json!(funding.txid)])
        .unwrap();
    bitcoin::consensus::encode::deserialize_hex(&hex).unwrap()
}

fn pool(w: &EnrolmentWorld) -> serde_json::Value {
    w.api.ok("/v1/status")["funding_pool"].clone()
}

#[test]
fn devices_are_paid_from_the_pool_which_refills_itself_and_falls_back_to_the_wallet() {
    let w = EnrolmentWorld::start_with(&WorldOptions {
        extra_config: "[anchoring]\nfunding_pool = 4\n".into(),
        restartable: false,
    });
    let dta = w.anchored(Role::Dta, "D-TA 1");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    // The TBS made its first fan-out at start; the blocks mined since confirmed it.
    w.mine(1);
    wait_until("the pool's coins to be free", WAIT, || {
        (pool(&w)["free"] == 4).then_some(())
    });

    // Three devices take three coins: each payment spends one coin of the same fan-out,
    // with one output and no change; one coin of four is left, not below a quarter.
    let dirs: Vec<_> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut parents = Vec::new();
    for dir in &dirs[..3] {
        let payment = offered_payment(&w, dir.path());
        assert_eq!(payment.input.len(), 1);
        assert_eq!(payment.output.len(), 1, "a pool payment has no change");
        parents.push(payment.input[0].previous_output.txid.to_string());
    }
    parents.dedup();
    assert_eq!(parents.len(), 1, "one fan-out paid them all");
    let first_fan_out = parents.remove(0);
    assert_eq!(pool(&w)["free"], 1);
    assert!(pool(&w)["refilling"].is_null());
    // The fourth takes the last coin; the pool is below a quarter and refills.
    let payment = offered_payment(&w, dirs[3].path());
    assert_eq!(payment.output.len(), 1);
    let second_fan_out = wait_until("a second fan-out", WAIT, || {
        pool(&w)["refilling"].as_str().map(str::to_owned)
    });
    assert_ne!(second_fan_out, first_fan_out);
    // Until it confirms, devices are paid by the wallet (a payment with change).
    let payment = offered_payment(&w, dirs[4].path());
    assert_eq!(payment.output.len(), 2, "a wallet payment has change");
    w.mine(1);
    wait_until("the refilled coins to be free", WAIT, || {
        (pool(&w)["free"] == 4).then_some(())
    });
    let payment = offered_payment(&w, dirs[5].path());
    assert_eq!(
        payment.input[0].previous_output.txid.to_string(),
        second_fan_out
    );
}
