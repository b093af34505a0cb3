//! The binding's encoding and signature.

use bitcoin::hashes::Hash as _;
use milagro_anchor::birth_certificate::{BcFields, Role, Status, VERSION};
use milagro_anchor::purpose_keys::PurposeKeys;

use super::*;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

fn bc(key: &SecretKey) -> BirthCertificate {
    BirthCertificate::sign(
        BcFields {
            version: VERSION,
            role: Role::Pat,
            name: "meter-1".into(),
            endpoints: vec![],
            created: 1_700_000_000,
            public_key: key.public_key(),
            status: Status::Active,
            previous: None,
            keys: PurposeKeys::none(),
        },
        key,
    )
    .unwrap()
}

fn anchor() -> AnchorRef {
    AnchorRef::new(Txid::from_byte_array([7; 32]), 0)
}

const SPKI: &[u8] = b"the DER of a throwaway TLS key";

#[test]
fn a_binding_round_trips_and_verifies_for_its_tls_key_only() {
    let owner = key(1);
    let binding = CertBinding::sign(anchor(), &bc(&owner), &owner, SPKI).unwrap();
    let der = binding.to_der();
    let bound = CertBinding::from_der(&der).unwrap().verify(SPKI).unwrap();
    assert_eq!(bound.anchor(), anchor());
    assert_eq!(bound.birth_certificate().digest(), bc(&owner).digest());

    // A man in the middle copies the binding into a certificate for its own TLS key.
    let copied = CertBinding::from_der(&der).unwrap();
    assert!(matches!(
        copied.verify(b"the DER of the attacker's TLS key"),
        Err(BindingError::Signature(_))
    ));
}

#[test]
fn only_the_certificates_key_can_bind() {
    let owner = key(1);
    assert!(matches!(
        CertBinding::sign(anchor(), &bc(&owner), &key(2), SPKI),
        Err(BindingError::KeyMismatch)
    ));
}

#[test]
fn a_claimed_anchor_or_certificate_cannot_be_swapped() {
    let owner = key(1);
    let binding = CertBinding::sign(anchor(), &bc(&owner), &owner, SPKI).unwrap();
    let mut swapped_anchor = binding.clone();
    swapped_anchor.anchor = AnchorRef::new(Txid::from_byte_array([8; 32]), 0);
    assert!(swapped_anchor.verify(SPKI).is_err());

    // Another party's certificate with this signature.
    let other = key(3);
    let mut swapped_bc = binding;
    swapped_bc.bc = bc(&other);
    assert!(swapped_bc.verify(SPKI).is_err());
}

#[test]
fn malformed_bindings_are_refused() {
    let owner = key(1);
    let der = CertBinding::sign(anchor(), &bc(&owner), &owner, SPKI)
        .unwrap()
        .to_der();

    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(
        CertBinding::from_der(&trailing),
        Err(BindingError::Malformed(_))
    ));
    assert!(matches!(
        CertBinding::from_der(&der[..der.len() - 1]),
        Err(BindingError::Malformed(_))
    ));
    assert!(matches!(
        CertBinding::from_der(&[]),
        Err(BindingError::Malformed(_))
    ));

    let with = |version: u32, anchor: &[u8], bc: &[u8], signature: &[u8]| {
        yasna::construct_der(|writer| {
            writer.write_sequence(|seq| {
                seq.next().write_u32(version);
                seq.next().write_bytes(anchor);
                seq.next().write_bytes(bc);
                seq.next().write_bytes(signature);
            })
        })
    };
    let good_bc = super::BirthCertificate::to_canonical_json(&bc(&owner));
    let signature = [1u8; 64];
    assert!(matches!(
        CertBinding::from_der(&with(2, &[0; 36], &good_bc, &signature)),
        Err(BindingError::Version(2))
    ));
    assert!(matches!(
        CertBinding::from_der(&with(1, &[0; 35], &good_bc, &signature)),
        Err(BindingError::Malformed(_))
    ));
    assert!(matches!(
        CertBinding::from_der(&with(1, &[0; 36], b"{}", &signature)),
        Err(BindingError::BirthCertificate(_))
    ));
    assert!(matches!(
        CertBinding::from_der(&with(1, &[0; 36], &vec![b' '; MAX_BC_LEN + 1], &signature)),
        Err(BindingError::Malformed(_))
    ));
    assert!(matches!(
        CertBinding::from_der(&with(1, &[0; 36], &good_bc, &[1; 63])),
        Err(BindingError::Signature(_))
    ));
}

#[test]
fn the_encoding_is_stable() {
    // Fixed key and RFC 6979: the same binding bytes every time, so other
    // implementations can check theirs against this length and prefix.
    let owner = key(1);
    let der = CertBinding::sign(anchor(), &bc(&owner), &owner, SPKI)
        .unwrap()
        .to_der();
    assert_eq!(
        der,
        CertBinding::sign(anchor(), &bc(&owner), &owner, SPKI)
            .unwrap()
            .to_der()
    );
    // SEQUENCE, long-form length, INTEGER 1, OCTET STRING of 36 bytes.
    assert_eq!(&der[..1], &[0x30]);
    let body = &der[2 + usize::from(der[1] & 0x7f)..];
    assert_eq!(&body[..5], &[0x02, 0x01, 0x01, 0x04, 0x24]);
}
