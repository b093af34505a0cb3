#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use zeroize::Zeroizing;

use super::table::{Full, Poll, Refused, Summary, Table, PER_ADDRESS};
use crate::authentication::Authenticated;

fn summary() -> Summary {
    Summary {
        client_id: "rp".into(),
        client_name: Some("Relying party".into()),
        redirect_uri: "https://rp.test/cb".into(),
        scope: "openid".into(),
    }
}

fn params(state: &str) -> Vec<(String, Zeroizing<String>)> {
    vec![("state".into(), Zeroizing::new(state.into()))]
}

fn alice(now: u64) -> Authenticated {
    Authenticated::by_mpin("alice", now)
}

#[test]
fn a_sign_in_is_approved_by_the_proof_of_its_latest_challenge_then_taken_once() {
    let mut table = Table::new(300, 10);
    let a = table.begin(params("a"), summary(), None, 1000).unwrap();
    let b = table.begin(params("b"), summary(), None, 1000).unwrap();
    assert_ne!(a.access_number, b.access_number);
    assert_eq!(
        table.lookup(&a.access_number, 1010).unwrap().expires_in,
        290
    );
    // No proof before a challenge; a proof for the other sign-in's challenge is refused.
    assert_eq!(
        table.expects(&a.access_number, "l1", 1010),
        Err(Refused::OtherChallenge)
    );
    table.challenged(&a.access_number, "l1", 1010).unwrap();
    table.challenged(&b.access_number, "l2", 1010).unwrap();
    assert_eq!(
        table.approve(&a.access_number, "l2", alice(1011), 1011),
        Err(Refused::OtherChallenge)
    );
    // A new challenge replaces the old one.
    table.challenged(&a.access_number, "l3", 1012).unwrap();
    assert_eq!(
        table.expects(&a.access_number, "l1", 1012),
        Err(Refused::OtherChallenge)
    );
    table
        .approve(&a.access_number, "l3", alice(1013), 1013)
        .unwrap();
    assert_eq!(
        table.lookup(&a.access_number, 1014).unwrap_err(),
        Refused::Used
    );
    assert_eq!(
        table.challenged(&a.access_number, "l4", 1014),
        Err(Refused::Used)
    );
    // The other page still waits; this one is approved, then gone.
    assert!(matches!(table.poll(&b.handle, 1015), Poll::Waiting(_)));
    match table.poll(&a.handle, 1015) {
        Poll::Approved(params, who) => {
            assert_eq!(params[0].1.as_str(), "a");
            assert_eq!(who.subject, "alice");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(table.poll(&a.handle, 1016), Poll::Unknown));
    assert_eq!(
        table.lookup(&a.access_number, 1016).unwrap_err(),
        Refused::Unknown
    );
    // The device's access number is not the page's handle.
    assert!(matches!(
        table.poll(b.access_number.as_str(), 1016),
        Poll::Unknown
    ));
}

#[test]
fn an_expired_sign_in_is_refused_then_ends_the_page_then_is_swept() {
    let mut table = Table::new(300, 10);
    let a = table.begin(params("a"), summary(), None, 1000).unwrap();
    let b = table.begin(params("b"), summary(), None, 1000).unwrap();
    table.challenged(&a.access_number, "l1", 1100).unwrap();
    assert_eq!(
        table.lookup(&a.access_number, 1300).unwrap_err(),
        Refused::Expired
    );
    assert_eq!(
        table.approve(&a.access_number, "l1", alice(1300), 1300),
        Err(Refused::Expired)
    );
    assert!(matches!(table.poll(&a.handle, 1300), Poll::Expired(_)));
    assert_eq!(table.len(), 1);
    // Kept for a lifetime more (a late device hears "expired"), then swept.
    assert_eq!(
        table.lookup(&b.access_number, 1599).unwrap_err(),
        Refused::Expired
    );
    table.begin(params("c"), summary(), None, 1600).unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(
        table.lookup(&b.access_number, 1600).unwrap_err(),
        Refused::Unknown
    );
}

#[test]
fn the_table_and_each_address_are_bounded() {
    let mut table = Table::new(300, PER_ADDRESS + 1);
    let here: IpAddr = "192.0.2.1".parse().unwrap();
    let there: IpAddr = "192.0.2.2".parse().unwrap();
    let mut first = None;
    for _ in 0..PER_ADDRESS {
        let begun = table
            .begin(params("x"), summary(), Some(here), 1000)
            .unwrap();
        first.get_or_insert(begun);
    }
    assert_eq!(
        table
            .begin(params("x"), summary(), Some(here), 1000)
            .unwrap_err(),
        Full::Address(PER_ADDRESS)
    );
    table
        .begin(params("x"), summary(), Some(there), 1000)
        .unwrap();
    assert_eq!(
        table.begin(params("x"), summary(), None, 1000).unwrap_err(),
        Full::Table(PER_ADDRESS + 1)
    );
    // A finished sign-in frees its address's place.
    let first = first.unwrap();
    table.challenged(&first.access_number, "l", 1001).unwrap();
    table
        .approve(&first.access_number, "l", alice(1001), 1001)
        .unwrap();
    assert!(matches!(
        table.poll(&first.handle, 1001),
        Poll::Approved(..)
    ));
    table
        .begin(params("x"), summary(), Some(here), 1002)
        .unwrap();
}
