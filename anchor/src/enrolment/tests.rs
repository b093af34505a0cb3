use super::*;
use crate::birth_certificate::{BcFields, Status, VERSION};
use crate::enrolment_credential::CredentialError;
use crate::purpose_keys::PurposeKeys;
use rand_core::OsRng;

fn certificate(role: Role, byte: u8) -> (SecretKey, BirthCertificate) {
    let key = SecretKey::from_bytes(&[byte; 32]).unwrap();
    let fields = BcFields {
        version: VERSION,
        role,
        name: format!("device {byte}"),
        endpoints: vec![],
        created: 1_750_000_000,
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
        keys: PurposeKeys::derive(role, &key).unwrap(),
    };
    (key.clone(), BirthCertificate::sign(fields, &key).unwrap())
}

fn tbs() -> SecretKey {
    SecretKey::from_bytes(&[0x7b; 32]).unwrap()
}

const NOW: u64 = 1_750_000_100;

fn maker() -> SecretKey {
    SecretKey::from_bytes(&[0x3c; 32]).unwrap()
}

fn credential(device: &SecretKey, tenant: &str, group: &str) -> EnrolmentCredential {
    EnrolmentCredential::issue(&maker(), tenant, group, &device.public_key()).unwrap()
}

fn request(role: Role) -> EnrolmentRequest {
    let (key, bc) = certificate(role, 1);
    EnrolmentRequest::new(
        &mut OsRng,
        &key,
        bc,
        InstructionKey::generate(&mut OsRng),
        credential(&key, "acme", "eu"),
        &tbs().public_key(),
        NOW,
    )
    .unwrap()
}

#[test]
fn a_sealed_request_opens_at_the_tbs_with_everything_in_it() {
    let sent = request(Role::Pat);
    let envelope = sent.seal(&mut OsRng, &tbs().public_key()).unwrap();
    let got = EnrolmentRequest::open(&tbs(), &envelope, NOW + 30).unwrap();
    assert_eq!(got.birth_certificate, sent.birth_certificate);
    assert_eq!(
        *got.instruction_key.to_bytes(),
        *sent.instruction_key.to_bytes()
    );
    assert_eq!((got.tenant.as_str(), got.group.as_str()), ("acme", "eu"));
    assert_eq!((got.nonce, got.created), (sent.nonce, NOW));
    assert_ne!(sent.nonce, request(Role::Pat).nonce);
}

#[test]
fn only_device_certificates_enrol() {
    let envelope = request(Role::Dta)
        .seal(&mut OsRng, &tbs().public_key())
        .unwrap();
    assert!(matches!(
        EnrolmentRequest::open(&tbs(), &envelope, NOW),
        Err(EnrolmentError::NotAPat(Role::Dta))
    ));
}

#[test]
fn stale_or_future_requests_are_refused() {
    let envelope = request(Role::Pat)
        .seal(&mut OsRng, &tbs().public_key())
        .unwrap();
    for now in [NOW + MAX_CLOCK_SKEW_SECS + 1, NOW - MAX_CLOCK_SKEW_SECS - 1] {
        assert!(matches!(
            EnrolmentRequest::open(&tbs(), &envelope, now),
            Err(EnrolmentError::Stale { .. })
        ));
    }
}

#[test]
fn a_request_claiming_another_sender_is_refused() {
    // Mallory seals Alice's certificate under her own sender id.
    let sent = request(Role::Pat);
    let (mallory, _) = certificate(Role::Pat, 9);
    let wire = RequestWire {
        birth_certificate: serde_json::from_slice(&sent.birth_certificate.to_canonical_json())
            .unwrap(),
        instruction_key: InstructionKey::generate(&mut OsRng),
        tenant: "acme".into(),
        group: "eu".into(),
        credential: sent.credential.clone(),
        nonce: hex::encode([0u8; 16]),
        created: NOW,
        possession: hex::encode(sent.possession.to_compact()),
    };
    let plaintext = serde_json::to_vec(&wire).unwrap();
    let sender = SenderId::from_public_key(&mallory.public_key());
    let envelope = seal(
        &mut OsRng,
        &tbs().public_key(),
        Purpose::EnrolmentRequest,
        &sender,
        &plaintext,
    )
    .unwrap();
    assert!(matches!(
        EnrolmentRequest::open(&tbs(), &envelope, NOW),
        Err(EnrolmentError::SenderMismatch)
    ));
}

#[test]
fn garbage_plaintexts_and_wrong_purposes_get_typed_errors() {
    let sender = SenderId::from_public_key(&certificate(Role::Pat, 1).0.public_key());
    for plaintext in [&b"not json"[..], b"{}", br#"{"birth_certificate":1}"#] {
        let envelope = seal(
            &mut OsRng,
            &tbs().public_key(),
            Purpose::EnrolmentRequest,
            &sender,
            plaintext,
        )
        .unwrap();
        assert!(EnrolmentRequest::open(&tbs(), &envelope, NOW).is_err());
    }
    let signed = SignedAnchor {
        device: certificate(Role::Pat, 1).0.public_key(),
        tx: bitcoin::Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![],
            output: vec![],
        },
    };
    let envelope = signed.seal(&mut OsRng, &tbs().public_key()).unwrap();
    assert!(matches!(
        EnrolmentRequest::open(&tbs(), &envelope, NOW),
        Err(EnrolmentError::Envelope(_))
    ));
    assert_eq!(SignedAnchor::open(&tbs(), &envelope).unwrap(), signed);
}

#[test]
fn names_are_bounded() {
    let (key, bc) = certificate(Role::Pat, 1);
    let long = "x".repeat(MAX_NAME_BYTES + 1);
    let tbs = tbs().public_key();
    let ik = || InstructionKey::generate(&mut OsRng);
    assert!(EnrolmentCredential::issue(&maker(), &long, "eu", &key.public_key()).is_err());
    assert!(EnrolmentCredential::issue(&maker(), "acme", "", &key.public_key()).is_err());
    // A request whose names differ from its credential's (bounded or not) never opens.
    let mut request = EnrolmentRequest::new(
        &mut OsRng,
        &key,
        bc,
        ik(),
        credential(&key, "acme", "eu"),
        &tbs,
        NOW,
    )
    .unwrap();
    request.tenant = long;
    let envelope = request.seal(&mut OsRng, &tbs).unwrap();
    assert!(matches!(
        EnrolmentRequest::open(&self::tbs(), &envelope, NOW),
        Err(EnrolmentError::InvalidName("tenant"))
    ));
}

/// Issue 13, attack 1: a request must carry a credential for its own device, tenant and
/// group; one made for another device, or moved to another group, is refused.
#[test]
fn a_credential_for_another_device_or_group_is_refused() {
    let (key, bc) = certificate(Role::Pat, 1);
    let (other, _) = certificate(Role::Pat, 2);
    let tbs = tbs().public_key();
    let ik = || InstructionKey::generate(&mut OsRng);
    let made = EnrolmentRequest::new(
        &mut OsRng,
        &key,
        bc.clone(),
        ik(),
        credential(&other, "acme", "eu"),
        &tbs,
        NOW,
    );
    assert!(matches!(
        made,
        Err(EnrolmentError::Credential(CredentialError::NotFor {
            what: "device",
            ..
        }))
    ));
    let mut moved = EnrolmentRequest::new(
        &mut OsRng,
        &key,
        bc,
        ik(),
        credential(&key, "acme", "eu"),
        &tbs,
        NOW,
    )
    .unwrap();
    moved.group = "us".into();
    let envelope = moved.seal(&mut OsRng, &tbs).unwrap();
    assert!(matches!(
        EnrolmentRequest::open(&self::tbs(), &envelope, NOW),
        Err(EnrolmentError::Credential(CredentialError::NotFor {
            what: "group",
            ..
        }))
    ));
}

#[test]
fn only_the_certificates_key_can_sign_a_request() {
    let (_, bc) = certificate(Role::Pat, 1);
    let (other, _) = certificate(Role::Pat, 2);
    let made = EnrolmentRequest::new(
        &mut OsRng,
        &other,
        bc,
        InstructionKey::generate(&mut OsRng),
        credential(&other, "acme", "eu"),
        &tbs().public_key(),
        NOW,
    );
    assert!(matches!(made, Err(EnrolmentError::WrongSigningKey)));
}

/// Issue 13, attack 2: whoever holds a device's (public) certificate builds a request
/// with their own instruction key, signing with their own key, reusing the device's
/// signature of another request, or getting the device to sign for another TBS.
#[test]
fn a_certificate_enrolled_by_anyone_but_its_device_for_this_tbs_is_refused() {
    let genuine = request(Role::Pat);
    let (attacker, _) = certificate(Role::Pat, 9);
    let theirs = InstructionKey::generate(&mut OsRng);
    let forge = |possession: Signature, key: &InstructionKey| EnrolmentRequest {
        birth_certificate: genuine.birth_certificate.clone(),
        instruction_key: key.clone(),
        tenant: genuine.tenant.clone(),
        group: genuine.group.clone(),
        credential: genuine.credential.clone(),
        nonce: genuine.nonce,
        created: genuine.created,
        possession,
    };
    let own_key = possession_digest(
        &genuine.nonce,
        NOW,
        "acme",
        "eu",
        &theirs,
        &tbs().public_key(),
    );
    let other_tbs = SecretKey::from_bytes(&[0x11; 32]).unwrap();
    let for_other_tbs = request_to(&other_tbs.public_key());
    let cases = [
        forge(attacker.sign_prehash(&own_key), &theirs),
        forge(genuine.possession, &theirs),
        for_other_tbs,
    ];
    for forged in cases {
        let envelope = forged.seal(&mut OsRng, &tbs().public_key()).unwrap();
        assert!(matches!(
            EnrolmentRequest::open(&tbs(), &envelope, NOW),
            Err(EnrolmentError::NoPossession)
        ));
    }
    // The genuine request still opens.
    let envelope = genuine.seal(&mut OsRng, &tbs().public_key()).unwrap();
    assert!(EnrolmentRequest::open(&tbs(), &envelope, NOW).is_ok());
}

fn request_to(tbs: &PublicKey) -> EnrolmentRequest {
    let (key, bc) = certificate(Role::Pat, 1);
    EnrolmentRequest::new(
        &mut OsRng,
        &key,
        bc,
        InstructionKey::generate(&mut OsRng),
        credential(&key, "acme", "eu"),
        tbs,
        NOW,
    )
    .unwrap()
}
