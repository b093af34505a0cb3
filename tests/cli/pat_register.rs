//! `milagro pat register` as a process (issue 15, item 1), in an [`MpinWorld`] (a real
//! regtest node, a TBS, an IdP that keeps no password and sends mail through a real SMTP
//! server, aiosmtpd, and two D-TAs on loopback): the badge starts its login and waits; the
//! person gives their address on the IdP's device page, reads the code the IdP e-mailed,
//! types it and allows the client; the badge is registered at the IdP under the M-Pin
//! identity the D-TAs bind, collects both D-TAs' shares with its PIN and stores its key.
//! The person never had a password. A second badge registered for the same address
//! replaces the first at the IdP.

use super::mpin_world::{MpinWorld, EMAIL};

#[test]
fn a_badge_registers_by_email_and_gets_its_m_pin_key_from_two_d_tas() {
    let m = MpinWorld::start("", "");
    let badges: Vec<String> = ["badge-1", "badge-2"].map(|name| m.enrol(name)).into();
    let issuer = m.issuer.as_str();

    // Badge 1: registered by e-mail, key from both D-TAs, under the IdP's registration.
    let first = m.register(&badges[0], 1);
    assert_eq!(first["status"], "registered", "{first}");
    assert_eq!(first["issuer"], issuer);
    assert_eq!(first["dtas"].as_array().unwrap().len(), m.dtas.len());
    assert!(std::path::Path::new(&badges[0])
        .join("mpin-key.json")
        .exists());
    let state = m.idp.state();
    let carol = state
        .users
        .by_username(EMAIL)
        .unwrap()
        .expect("carol exists");
    assert_eq!(carol.password_hash, None);
    let registered = state
        .registered_devices
        .current(&carol.subject)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(registered.mpin_id.as_bytes()),
        first["mpin_id"].as_str().unwrap()
    );

    // Badge 2, the same person (badge 1 lost): it replaces badge 1 at the IdP.
    let second = m.register(&badges[1], 2);
    assert_eq!(second["status"], "registered", "{second}");
    assert_ne!(second["mpin_id"], first["mpin_id"]);
    let now = state
        .registered_devices
        .current(&carol.subject)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(now.mpin_id.as_bytes()),
        second["mpin_id"].as_str().unwrap()
    );
    assert_eq!(
        state
            .registered_devices
            .by_mpin_id(&registered.mpin_id)
            .unwrap(),
        None
    );
}
