//! The request table and the parameter checks, without a server.
#![allow(clippy::unwrap_used)]

use super::table::{Full, NewRequest, NotGranted, Refused, Table, GRACE_SECS, PER_SUBJECT};
use super::*;
use crate::authentication::Authenticated;

const NOW: u64 = 1_900_000_000;

fn request(client: &str, subject: &str) -> NewRequest {
    NewRequest {
        client_id: client.into(),
        client_name: Some("Till".into()),
        subject: subject.into(),
        scope: "openid".into(),
        binding_message: Some("W4SCT".into()),
        lifetime: 60,
    }
}

#[test]
fn an_approved_request_is_granted_once_to_its_own_client() {
    let mut table = Table::new(5, 10);
    let begun = table.begin(request("rp", "alice"), NOW).unwrap();
    assert_eq!((begun.expires_in, begun.interval), (60, 5));
    let id = begun.auth_req_id.to_string();
    // Only alice's device sees it.
    assert!(table.for_subject("bob", NOW).is_empty());
    let listed = table.for_subject("alice", NOW);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].binding_message.as_deref(), Some("W4SCT"));
    let request_id = listed[0].request_id.clone();
    assert_ne!(request_id, id, "the device never sees the client's id");

    assert_eq!(table.poll(&id, "rp", NOW), Err(NotGranted::Pending));
    assert_eq!(table.poll(&id, "rp", NOW + 1), Err(NotGranted::SlowDown));
    // Bob's device (his M-Pin identity) can neither start nor finish it.
    assert_eq!(
        table.challenged(&request_id, "bob", "l1", NOW),
        Err(Refused::Unknown)
    );
    table.challenged(&request_id, "alice", "l1", NOW).unwrap();
    assert_eq!(
        table.expects(&request_id, "l2", NOW),
        Err(Refused::OtherChallenge)
    );
    let bob = Authenticated::by_mpin("bob", NOW);
    assert_eq!(
        table.approve(&request_id, "l1", bob, NOW),
        Err(Refused::Unknown)
    );
    let alice = Authenticated::by_mpin("alice", NOW + 2);
    assert_eq!(
        table.approve(&request_id, "l1", alice.clone(), NOW + 2),
        Ok("rp".into())
    );
    assert_eq!(
        table.deny(&request_id, "alice", NOW + 2),
        Err(Refused::Decided)
    );
    // Another client's poll is invalid_grant and takes nothing.
    assert!(matches!(
        table.poll(&id, "other", NOW + 20),
        Err(NotGranted::Invalid(_))
    ));
    let granted = table.poll(&id, "rp", NOW + 20).unwrap();
    assert_eq!((granted.who, granted.scope.as_str()), (alice, "openid"));
    assert!(matches!(
        table.poll(&id, "rp", NOW + 30),
        Err(NotGranted::Invalid(_))
    ));
    assert!(table.is_empty());
}

#[test]
fn denied_and_expired_requests_say_so_then_go() {
    let mut table = Table::new(5, 10);
    let denied = table.begin(request("rp", "alice"), NOW).unwrap();
    let to_deny = table.for_subject("alice", NOW)[0].request_id.clone();
    let expiring = table.begin(request("rp", "alice"), NOW).unwrap();
    assert_eq!(table.deny(&to_deny, "bob", NOW), Err(Refused::Unknown));
    assert_eq!(table.deny(&to_deny, "alice", NOW), Ok("rp".into()));
    assert_eq!(table.for_subject("alice", NOW).len(), 1);
    assert_eq!(
        table.poll(&denied.auth_req_id, "rp", NOW),
        Err(NotGranted::Denied)
    );
    assert!(matches!(
        table.poll(&denied.auth_req_id, "rp", NOW + 10),
        Err(NotGranted::Invalid(_))
    ));
    assert_eq!(
        table.poll(&expiring.auth_req_id, "rp", NOW + 60),
        Err(NotGranted::Expired)
    );
    assert!(table.for_subject("alice", NOW + 60).is_empty());
    assert_eq!(table.sweep(NOW + 60 + GRACE_SECS - 1), 0);
    assert_eq!(table.sweep(NOW + 60 + GRACE_SECS), 1);
    assert!(table.is_empty());
}

#[test]
fn requests_are_bounded_per_person_and_overall() {
    let mut table = Table::new(5, PER_SUBJECT + 1);
    for _ in 0..PER_SUBJECT {
        table.begin(request("rp", "alice"), NOW).unwrap();
    }
    assert_eq!(
        table.begin(request("rp", "alice"), NOW).unwrap_err(),
        Full::Subject(PER_SUBJECT)
    );
    table.begin(request("rp", "bob"), NOW).unwrap();
    assert!(matches!(
        table.begin(request("rp", "carol"), NOW).unwrap_err(),
        Full::Table(_)
    ));
    // Once expired and past the grace they are swept, and room is made.
    table
        .begin(request("rp", "carol"), NOW + 60 + GRACE_SECS)
        .unwrap();
    assert_eq!(table.len(), 1);
}

#[test]
fn binding_messages_and_expiries_are_checked() {
    assert!(check_binding_message("W4SCT").is_ok());
    assert!(check_binding_message("Paiement de 12,50 € à la boulangerie").is_ok());
    for bad in [
        "",
        "two\nlines",
        "\u{1b}[2J",
        &"x".repeat(MAX_BINDING_MESSAGE + 1),
    ] {
        let refused = check_binding_message(bad).unwrap_err();
        assert_eq!(refused.code(), "invalid_binding_message", "{bad:?}");
    }
    assert_eq!(lifetime(None, 300), Ok(300));
    assert_eq!(lifetime(Some("120"), 300), Ok(120));
    assert_eq!(lifetime(Some("3600"), 300), Ok(300));
    for bad in ["0", "-5", "1.5", "+7", "soon"] {
        assert_eq!(
            lifetime(Some(bad), 300).unwrap_err().code(),
            "invalid_request",
            "{bad}"
        );
    }
}
