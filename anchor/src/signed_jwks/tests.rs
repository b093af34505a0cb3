//! The signed JWK Set: what verifies, and each way a forged or stale one is refused.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde_json::json;

use super::*;
use crate::keys::Signature;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://idp.milagro.test";

fn idp() -> (SecretKey, Digest) {
    (
        SecretKey::from_bytes(&[7; 32]).unwrap(),
        Digest::sha256(b"the IdP's certificate"),
    )
}

fn keys() -> Vec<Value> {
    vec![
        json!({"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "kid": "k1", "use": "sig", "alg": "ES256"}),
    ]
}

fn json_part(value: &Value) -> String {
    B64URL.encode(value.to_string())
}

/// A token with `header` and `claims` as given, signed by `key`.
fn signed_raw(key: &SecretKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", json_part(header), json_part(claims));
    let signature = key.sign_digest(&Digest::sha256(input.as_bytes()));
    format!("{input}.{}", B64URL.encode(signature.to_compact()))
}

fn claims(digest: &Digest, iat: u64, exp: u64) -> Value {
    json!({"iss": ISSUER, "sub": ISSUER, "iat": iat, "exp": exp,
           "milagro_birth_certificate_digest": digest, "keys": keys()})
}

fn header(digest: &Digest) -> Value {
    json!({"alg": ALG, "typ": TYP, "kid": digest.to_string()})
}

#[test]
fn a_signed_set_verifies_with_the_certificate_key_and_has_the_documented_shape() {
    let (key, digest) = idp();
    let token = sign(&key, digest, ISSUER, keys(), NOW, NOW + 300);
    let verified = verify(&token, &key.public_key(), &digest, ISSUER, NOW + 10).unwrap();
    assert_eq!(verified.jwks(), json!({ "keys": keys() }));
    assert_eq!(verified.expires(), NOW + 300);
    // The documented layout: the header, the claims, a signature over SHA-256 of both.
    let parts: Vec<&str> = token.split('.').collect();
    let decode =
        |part: &str| -> Value { serde_json::from_slice(&B64URL.decode(part).unwrap()).unwrap() };
    assert_eq!(decode(parts[0]), header(&digest));
    assert_eq!(decode(parts[1]), claims(&digest, NOW, NOW + 300));
    let signature = Signature::from_compact(&B64URL.decode(parts[2]).unwrap()).unwrap();
    let signed = Digest::sha256(format!("{}.{}", parts[0], parts[1]).as_bytes());
    key.public_key().verify_digest(&signed, &signature).unwrap();
}

#[test]
fn a_set_signed_by_another_key_or_tampered_with_is_refused() {
    let (key, digest) = idp();
    let public = key.public_key();
    let token = sign(&key, digest, ISSUER, keys(), NOW, NOW + 300);
    // The on-path attacker's own secp256k1 key, naming the IdP's certificate.
    let attacker = SecretKey::from_bytes(&[8; 32]).unwrap();
    let swapped = sign(
        &attacker,
        digest,
        ISSUER,
        vec![json!({"kid": "mine"})],
        NOW,
        NOW + 300,
    );
    let parts: Vec<&str> = token.split('.').collect();
    let mut more_keys = claims(&digest, NOW, NOW + 300);
    more_keys["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kid": "mine"}));
    let added = format!("{}.{}.{}", parts[0], json_part(&more_keys), parts[2]);
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    for (i, forged) in [swapped, added, unsigned].iter().enumerate() {
        assert_eq!(
            verify(forged, &public, &digest, ISSUER, NOW),
            Err(SignedJwksError::Signature),
            "case {i}"
        );
    }
}

#[test]
fn other_types_algorithms_parties_and_shapes_are_refused() {
    let (key, digest) = idp();
    let public = key.public_key();
    let other = Digest::sha256(b"another certificate");
    let body = claims(&digest, NOW, NOW + 300);
    let cases = [
        // A JWS of the same key for another purpose (a plain JWT).
        json!({"alg": ALG, "typ": "JWT", "kid": digest.to_string()}),
        json!({"alg": "none", "typ": TYP, "kid": digest.to_string()}),
        json!({"alg": "ES256", "typ": TYP, "kid": digest.to_string()}),
        json!({"alg": ALG, "typ": TYP, "kid": other.to_string()}),
        json!({"alg": ALG, "typ": TYP, "kid": digest.to_string(), "jwk": {}}),
    ];
    for (i, forged) in cases.iter().enumerate() {
        let token = signed_raw(&key, forged, &body);
        let refused = verify(&token, &public, &digest, ISSUER, NOW).unwrap_err();
        assert!(
            matches!(
                refused,
                SignedJwksError::Header(_) | SignedJwksError::Malformed(_)
            ),
            "case {i}: {refused}"
        );
    }
    // Right key and header, another party in the claims.
    let mut other_issuer = body.clone();
    other_issuer["iss"] = json!("https://evil.milagro.test");
    let mut other_sub = body.clone();
    other_sub["sub"] = json!("https://evil.milagro.test");
    let mut other_digest = body.clone();
    other_digest["milagro_birth_certificate_digest"] = json!(other);
    for (i, claims) in [other_issuer, other_sub, other_digest].iter().enumerate() {
        let token = signed_raw(&key, &header(&digest), claims);
        assert!(
            matches!(
                verify(&token, &public, &digest, ISSUER, NOW),
                Err(SignedJwksError::OtherParty { .. })
            ),
            "case {i}"
        );
    }
    // Unknown members, and not a JWS at all.
    let mut extra = body.clone();
    extra["admin"] = json!(true);
    let token = signed_raw(&key, &header(&digest), &extra);
    assert!(matches!(
        verify(&token, &public, &digest, ISSUER, NOW),
        Err(SignedJwksError::Malformed(_))
    ));
    let plain = json!({ "keys": keys() }).to_string();
    let long = "a".repeat(MAX_TOKEN_BYTES + 1);
    for text in [plain.as_str(), "a.b", "a.b.c.d", long.as_str()] {
        assert!(matches!(
            verify(text, &public, &digest, ISSUER, NOW),
            Err(SignedJwksError::Malformed(_))
        ));
    }
}

#[test]
fn expired_future_and_long_lived_sets_are_refused() {
    let (key, digest) = idp();
    let public = key.public_key();
    let at = |iat: u64, exp: u64, now: u64| {
        verify(
            &sign(&key, digest, ISSUER, keys(), iat, exp),
            &public,
            &digest,
            ISSUER,
            now,
        )
    };
    // (iat, exp, now, accepted)
    let cases = [
        (NOW, NOW + 300, NOW, true),
        (NOW, NOW + 300, NOW + 299, true),
        (NOW, NOW + 300, NOW + 300, false),
        (NOW + CLOCK_SKEW_SECS, NOW + 300, NOW, true),
        (NOW + CLOCK_SKEW_SECS + 1, NOW + 300, NOW, false),
        (NOW, NOW + MAX_VALIDITY_SECS, NOW, true),
        (NOW, NOW + MAX_VALIDITY_SECS + 1, NOW, false),
    ];
    for (i, (iat, exp, now, accepted)) in cases.into_iter().enumerate() {
        let verdict = at(iat, exp, now);
        assert_eq!(verdict.is_ok(), accepted, "case {i}: {verdict:?}");
        if !accepted {
            assert!(matches!(verdict, Err(SignedJwksError::Stale { .. })));
        }
    }
}
