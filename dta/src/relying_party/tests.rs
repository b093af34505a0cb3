#![allow(clippy::unwrap_used)]

use milagro_anchor::keys::SecretKey;

use super::*;

fn key(byte: u8) -> PublicKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap().public_key()
}

fn bound_to(device: &PublicKey) -> Confirmation {
    Confirmation {
        jkt: Thumbprint::of(device),
    }
}

#[test]
fn a_token_counts_only_for_the_device_key_it_is_bound_to() {
    let (a, b) = (key(1), key(2));
    assert!(check_binding(Some(&bound_to(&a)), &a).is_ok());
    match check_binding(Some(&bound_to(&a)), &b) {
        Err(LoginError::BoundToAnotherKey { bound, presented }) => {
            assert_eq!(bound, Thumbprint::of(&a));
            assert_eq!(presented, Thumbprint::of(&b));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(check_binding(None, &a), Err(LoginError::NotBound)));
}

#[test]
fn the_confirmation_claim_is_read_from_the_id_token_claims() {
    let a = key(1);
    let claims: BindingClaims = serde_json::from_value(serde_json::json!({
        "cnf": { "jkt": Thumbprint::of(&a).as_str() }
    }))
    .unwrap();
    assert!(check_binding(claims.cnf.as_ref(), &a).is_ok());
    let unbound: BindingClaims = serde_json::from_value(serde_json::json!({})).unwrap();
    assert!(unbound.cnf.is_none());
    // A thumbprint that is not one is not a binding.
    assert!(serde_json::from_value::<BindingClaims>(serde_json::json!({
        "cnf": { "jkt": "not a thumbprint" }
    }))
    .is_err());
}
