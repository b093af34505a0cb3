use super::*;

fn anchored() -> SecretKey {
    SecretKey::from_bytes(&[0x11; 32]).unwrap()
}

#[test]
fn derivation_is_stable_distinct_per_purpose_and_not_the_anchored_key() {
    let key = anchored();
    let mut seen = vec![key.public_key()];
    for purpose in KeyPurpose::ALL {
        let first = derive(&key, purpose).unwrap();
        let again = derive(&key, purpose).unwrap();
        assert_eq!(first.public_key(), again.public_key(), "{purpose}");
        assert!(
            !seen.contains(&first.public_key()),
            "{purpose} repeats a key"
        );
        seen.push(first.public_key());
    }
    // Another anchored key gives other purpose keys.
    let other = SecretKey::from_bytes(&[0x22; 32]).unwrap();
    for purpose in KeyPurpose::ALL {
        assert_ne!(
            derive(&other, purpose).unwrap().public_key(),
            derive(&key, purpose).unwrap().public_key()
        );
    }
}

#[test]
fn the_derivation_is_the_documented_hash() {
    // Pins the construction: SHA-256(label ‖ purpose ‖ 0x00 ‖ secret), as a scalar.
    let key = anchored();
    let mut input = b"milagro/purpose-key/v1/session".to_vec();
    input.push(0);
    input.extend_from_slice(&[0x11; 32]);
    let expected: [u8; 32] = Sha256::digest(&input).into();
    let derived = derive(&key, KeyPurpose::Session).unwrap();
    assert_eq!(*derived.to_bytes(), expected);
}

#[test]
fn pinned_derivation_vector() {
    // A change here changes every party's purpose keys and so its certificate.
    let checkpoint = derive(&anchored(), KeyPurpose::Checkpoint).unwrap();
    assert_eq!(
        checkpoint.public_key().to_string(),
        include_str!("../../tests/vectors/purpose_key_checkpoint.txt").trim()
    );
}

#[test]
fn secrets_and_public_keys_follow_the_role() {
    let key = anchored();
    let secrets = PurposeSecrets::derive(Role::AuthServer, &key).unwrap();
    let public = secrets.public_keys();
    assert_eq!(public, PurposeKeys::derive(Role::AuthServer, &key).unwrap());
    let session = secrets.get(KeyPurpose::Session).unwrap();
    assert_eq!(
        public.get(KeyPurpose::Session).unwrap(),
        &session.public_key()
    );
    assert_eq!(
        secrets.get(KeyPurpose::Envelope).map(|_| ()),
        Err(PurposeKeyError::NotListed(KeyPurpose::Envelope))
    );
    assert!(PurposeKeys::derive(Role::Pat, &key).unwrap().is_empty());
    // The debug form names purposes, never key material.
    let shown = format!("{secrets:?}");
    assert_eq!(shown, "{Checkpoint, Session}");
}

#[test]
fn wire_names_round_trip_and_unknown_names_are_none() {
    for purpose in KeyPurpose::ALL {
        assert_eq!(KeyPurpose::from_name(purpose.as_str()), Some(purpose));
    }
    assert_eq!(KeyPurpose::from_name("Session"), None);
    assert_eq!(KeyPurpose::from_name(""), None);
}
