use super::*;
use crate::purpose_keys::{KeyPurpose, PurposeKeyError, PurposeKeys};
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
        keys: PurposeKeys::derive(Role::Dta, key).unwrap(),
    }
}

/// The same certificate in the first format: no `keys`.
fn fields_v1(key: &SecretKey) -> BcFields {
    BcFields {
        version: VERSION_1,
        keys: PurposeKeys::none(),
        ..fields(key)
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
    assert!(json.starts_with(r#"{"created":1700000000,"endpoints":["https://dta1.example.org/api"],"keys":{"checkpoint":""#));
    assert!(json.contains(r#""},"name":"D-TA Zürich #1","previous":null,"public_key":""#));
    assert!(!json.contains(' ') || json.contains("Zürich #1"));
}

#[test]
fn the_digest_is_stable_across_releases() {
    // Pins the wire format: a change here breaks every anchored certificate. Version 1
    // documents anchored before version 2 must keep their digests.
    let v1 = BirthCertificate::sign(fields_v1(&key()), &key()).unwrap();
    assert_eq!(
        v1.digest().to_string(),
        include_str!("../../tests/vectors/bc_digest.txt").trim()
    );
    // Pins version 2 and the purpose-key derivation with it.
    assert_eq!(
        signed().digest().to_string(),
        include_str!("../../tests/vectors/bc_v2_digest.txt").trim()
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
        (tweak(|v| v["version"] = 3.into()), |e| {
            matches!(e, BcError::UnsupportedVersion(3))
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

// Version 2: the purpose keys.

fn keys_of(json: &[u8]) -> serde_json::Value {
    serde_json::from_slice::<serde_json::Value>(json).unwrap()["keys"].clone()
}

/// Signs `edit`ed fields with the fixture key, so that only the key rules can refuse them.
fn sign_edited(edit: impl FnOnce(&mut BcFields)) -> Result<BirthCertificate, BcError> {
    let mut f = fields(&key());
    edit(&mut f);
    BirthCertificate::sign(f, &key())
}

/// A version 2 document re-signed after `edit` changed its JSON: parsing it can then
/// fail only on the rule under test, not on the signature.
fn resigned(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value =
        serde_json::from_slice(&signed().to_canonical_json()).unwrap();
    value.as_object_mut().unwrap().remove("signature");
    edit(&mut value);
    let digest = Digest::sha256(&serde_jcs::to_vec(&value).unwrap());
    let signature = key().sign_digest(&digest);
    value["signature"] = hex::encode(signature.to_compact()).into();
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn a_version_2_certificate_lists_the_roles_purpose_keys_and_round_trips() {
    let bc = signed();
    assert_eq!(bc.fields().version, VERSION_2);
    let checkpoint = *bc.purpose_key(KeyPurpose::Checkpoint).unwrap();
    assert_ne!(&checkpoint, bc.public_key());
    let derived = crate::purpose_keys::derive(&key(), KeyPurpose::Checkpoint).unwrap();
    assert_eq!(checkpoint, derived.public_key());
    assert_eq!(
        keys_of(&bc.to_canonical_json()),
        serde_json::json!({ "checkpoint": checkpoint.to_string() })
    );
    // A D-TA has no session or envelope key, and nothing falls back to the anchored key.
    assert_eq!(
        bc.purpose_key(KeyPurpose::Session),
        Err(PurposeKeyError::NotListed(KeyPurpose::Session))
    );
    let parsed = BirthCertificate::parse(&bc.to_canonical_json()).unwrap();
    assert_eq!(parsed, bc);
}

#[test]
fn every_role_lists_exactly_its_purposes() {
    for role in [Role::Tbs, Role::Idp, Role::Dta, Role::AuthServer, Role::Pat] {
        let bc = sign_edited(|f| {
            f.role = role;
            f.keys = PurposeKeys::derive(role, &key()).unwrap();
        })
        .unwrap();
        let listed: Vec<KeyPurpose> = bc.fields().keys.iter().map(|(p, _)| p).collect();
        assert_eq!(listed, crate::purpose_keys::required(role), "{role}");
        let parsed = BirthCertificate::parse(&bc.to_canonical_json()).unwrap();
        assert_eq!(parsed.digest(), bc.digest(), "{role}");
    }
    // A device lists none, and says so with an empty object.
    let pat = sign_edited(|f| {
        f.role = Role::Pat;
        f.keys = PurposeKeys::none();
    })
    .unwrap();
    assert_eq!(keys_of(&pat.to_canonical_json()), serde_json::json!({}));
}

#[test]
fn a_version_1_certificate_still_parses_but_lists_no_purpose_key() {
    let v1 = BirthCertificate::sign(fields_v1(&key()), &key()).unwrap();
    let json = v1.to_canonical_json();
    assert!(!String::from_utf8(json.clone()).unwrap().contains("keys"));
    let parsed = BirthCertificate::parse(&json).unwrap();
    assert_eq!(parsed.fields().version, VERSION_1);
    // The verifier asks for the checkpoint key and is refused: never the anchored key.
    assert_eq!(
        parsed.purpose_key(KeyPurpose::Checkpoint),
        Err(PurposeKeyError::NotListed(KeyPurpose::Checkpoint))
    );
    // Version 1 with keys is no format at all, whether signed or parsed.
    let mut f = fields(&key());
    f.version = VERSION_1;
    assert_eq!(
        BirthCertificate::sign(f, &key()),
        Err(BcError::KeysInVersion1)
    );
    let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    value["keys"] = serde_json::json!({});
    assert_eq!(
        BirthCertificate::parse(&serde_json::to_vec(&value).unwrap()),
        Err(BcError::KeysInVersion1)
    );
    // `null` is not a second spelling of "absent".
    value["keys"] = serde_json::Value::Null;
    assert!(matches!(
        BirthCertificate::parse(&serde_json::to_vec(&value).unwrap()),
        Err(BcError::Malformed(_))
    ));
}

#[test]
fn malformed_purpose_keys_get_typed_errors() {
    let other = SecretKey::from_bytes(&[0x44; 32]).unwrap().public_key();
    let cases: Vec<Case> = vec![
        (
            resigned(|v| {
                v.as_object_mut().unwrap().remove("keys");
            }),
            |e| matches!(e, BcError::Malformed(m) if m.contains("keys")),
        ),
        (
            resigned(|v| v["keys"]["checkpoint"] = "02abcd".into()),
            |e| {
                matches!(
                    e,
                    BcError::InvalidPurposeKey {
                        purpose: KeyPurpose::Checkpoint,
                        ..
                    }
                )
            },
        ),
        (
            // Not a point on the curve: x = 5 has no y on secp256k1.
            resigned(|v| v["keys"]["checkpoint"] = format!("02{:064x}", 5).into()),
            |e| matches!(e, BcError::InvalidPurposeKey { .. }),
        ),
        (
            resigned(|v| v["keys"]["audit"] = other.to_string().into()),
            |e| matches!(e, BcError::UnknownPurpose(name) if name == "audit"),
        ),
        (
            resigned(|v| v["keys"]["session"] = other.to_string().into()),
            |e| {
                matches!(
                    e,
                    BcError::UnexpectedPurposeKey {
                        role: Role::Dta,
                        purpose: KeyPurpose::Session
                    }
                )
            },
        ),
        (resigned(|v| v["keys"] = serde_json::json!({})), |e| {
            matches!(
                e,
                BcError::MissingPurposeKey {
                    role: Role::Dta,
                    purpose: KeyPurpose::Checkpoint
                }
            )
        }),
        (
            resigned(|v| v["keys"]["checkpoint"] = key().public_key().to_string().into()),
            |e| matches!(e, BcError::PurposeKeyNotSeparate(KeyPurpose::Checkpoint)),
        ),
        (resigned(|v| v["keys"] = serde_json::json!([])), |e| {
            matches!(e, BcError::Malformed(_))
        }),
        (resigned(|v| v["keys"]["checkpoint"] = 7.into()), |e| {
            matches!(e, BcError::Malformed(_))
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
    // A purpose named twice is refused, not resolved by taking the first or the last.
    let json = String::from_utf8(signed().to_canonical_json()).unwrap();
    let doubled = json.replacen(
        r#""keys":{"#,
        &format!(r#""keys":{{"checkpoint":"{other}","#),
        1,
    );
    assert_eq!(
        BirthCertificate::parse(doubled.as_bytes()),
        Err(BcError::DuplicatePurpose(KeyPurpose::Checkpoint))
    );
}

#[test]
fn signing_enforces_the_key_rules_too() {
    let anchored = key().public_key();
    let reused = sign_edited(|f| f.keys.insert(KeyPurpose::Checkpoint, anchored));
    assert_eq!(
        reused,
        Err(BcError::PurposeKeyNotSeparate(KeyPurpose::Checkpoint))
    );
    let missing = sign_edited(|f| f.keys = PurposeKeys::none());
    assert!(matches!(missing, Err(BcError::MissingPurposeKey { .. })));
    // Two purposes sharing one key would make a leak of one a leak of both.
    let tbs = sign_edited(|f| {
        f.role = Role::Tbs;
        f.keys = PurposeKeys::derive(Role::Tbs, &key()).unwrap();
        let shared = *f.keys.get(KeyPurpose::Checkpoint).unwrap();
        f.keys.insert(KeyPurpose::Envelope, shared);
    });
    assert_eq!(
        tbs,
        Err(BcError::PurposeKeyNotSeparate(KeyPurpose::Envelope))
    );
}
