#![allow(clippy::unwrap_used)]

use k256::elliptic_curve::PrimeField as _;

use super::*;
use crate::digest::Digest;

const NOW: u64 = 1_900_000_000;
const TOKEN_URI: &str = "http://idp.milagro.test/token";

fn device() -> SecretKey {
    SecretKey::from_bytes(&[7; 32]).unwrap()
}

fn token_request() -> Request<'static> {
    Request {
        method: "POST",
        uri: TOKEN_URI,
        access_token: None,
    }
}

fn b64_json(value: &serde_json::Value) -> String {
    B64URL.encode(serde_json::to_vec(value).unwrap())
}

/// A proof with the given header and claims, signed by `key` over exactly those bytes.
fn forge(key: &SecretKey, header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let input = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = key.sign_digest(&Digest::sha256(input.as_bytes()));
    format!("{input}.{}", B64URL.encode(signature.to_compact()))
}

fn good_header(key: &SecretKey) -> serde_json::Value {
    serde_json::json!({"typ": TYP, "alg": ALG, "jwk": jwk(&key.public_key())})
}

fn good_claims() -> serde_json::Value {
    serde_json::json!({"jti": "j-1", "htm": "POST", "htu": TOKEN_URI, "iat": NOW})
}

#[test]
fn the_thumbprint_is_rfc_7638_over_the_canonical_secp256k1_jwk() {
    // Secret key 1: the public key is the generator, whose coordinates are published.
    let mut one = [0u8; 32];
    one[31] = 1;
    let g = SecretKey::from_bytes(&one).unwrap().public_key();
    let x =
        hex::decode("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798").unwrap();
    let y =
        hex::decode("483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8").unwrap();
    let canonical = format!(
        r#"{{"crv":"secp256k1","kty":"EC","x":"{}","y":"{}"}}"#,
        B64URL.encode(&x),
        B64URL.encode(&y)
    );
    let expected = B64URL.encode(Sha256::digest(canonical.as_bytes()));
    assert_eq!(Thumbprint::of(&g).as_str(), expected);
    assert_eq!(expected.len(), 43);
    // The JWK's members give the key back.
    let jwk = jwk(&g);
    assert_eq!(jwk["x"], B64URL.encode(&x));
    assert_eq!(jwk["y"], B64URL.encode(&y));
    // Thumbprints parse only in their canonical form.
    assert_eq!(expected.parse::<Thumbprint>().unwrap(), Thumbprint::of(&g));
    for bad in [
        "",
        "abc",
        &format!("{expected}A"),
        &B64URL.encode([0u8; 31]),
    ] {
        assert!(bad.parse::<Thumbprint>().is_err(), "{bad}");
    }
    let confirmation: Confirmation =
        serde_json::from_value(serde_json::json!({ "jkt": expected })).unwrap();
    assert_eq!(confirmation.jkt, Thumbprint::of(&g));
}

#[test]
fn a_proof_verifies_for_its_request_and_names_its_key() {
    let key = device();
    let proof = sign(&key, &token_request(), "j-1", NOW);
    let verified = verify(&proof, &token_request(), NOW).unwrap();
    assert_eq!(verified.key(), &key.public_key());
    assert_eq!(verified.thumbprint(), &Thumbprint::of(&key.public_key()));
    assert_eq!((verified.jti(), verified.iat()), ("j-1", NOW));
    // Query and fragment of htu are not compared (RFC 9449 §4.3).
    let with_query = forge(
        &key,
        &good_header(&key),
        &serde_json::json!({"jti": "j", "htm": "POST", "htu": format!("{TOKEN_URI}?a=b#c"), "iat": NOW}),
    );
    assert!(verify(&with_query, &token_request(), NOW).is_ok());
    // With an access token, its hash is bound.
    let userinfo = Request {
        method: "GET",
        uri: "http://idp.milagro.test/userinfo",
        access_token: Some("at-1"),
    };
    let proof = sign(&key, &userinfo, "j-2", NOW);
    assert!(verify(&proof, &userinfo, NOW).is_ok());
}

#[test]
fn a_proof_for_another_request_or_time_is_refused() {
    let key = device();
    let proof = sign(&key, &token_request(), "j-1", NOW);
    let other_method = Request {
        method: "GET",
        ..token_request()
    };
    let other_uri = Request {
        uri: "http://idp.milagro.test/userinfo",
        ..token_request()
    };
    let other_host = Request {
        uri: "http://evil.milagro.test/token",
        ..token_request()
    };
    for (request, what) in [
        (other_method, "htm"),
        (other_uri, "htu"),
        (other_host, "htu"),
    ] {
        match verify(&proof, &request, NOW) {
            Err(DpopError::OtherRequest { what: found, .. }) => assert_eq!(found, what),
            other => panic!("{what}: {other:?}"),
        }
    }
    // A proof made for one access token does not carry another (nor none).
    let with_token = |token| Request {
        method: "GET",
        uri: "http://idp.milagro.test/userinfo",
        access_token: Some(token),
    };
    let proof = sign(&key, &with_token("at-1"), "j-2", NOW);
    assert!(matches!(
        verify(&proof, &with_token("at-2"), NOW),
        Err(DpopError::OtherRequest { what: "ath", .. })
    ));
    let no_ath = sign(
        &key,
        &Request {
            access_token: None,
            ..with_token("at-1")
        },
        "j-3",
        NOW,
    );
    assert!(matches!(
        verify(&no_ath, &with_token("at-1"), NOW),
        Err(DpopError::OtherRequest { what: "ath", .. })
    ));
    // Too old, or from the future.
    let proof = sign(&key, &token_request(), "j-1", NOW);
    assert!(verify(&proof, &token_request(), NOW + MAX_AGE_SECS).is_ok());
    for now in [NOW + MAX_AGE_SECS + 1, NOW - CLOCK_SKEW_SECS - 1] {
        assert_eq!(
            verify(&proof, &token_request(), now),
            Err(DpopError::Stale { iat: NOW, now })
        );
    }
}

#[test]
fn a_proof_not_signed_by_the_key_it_names_is_refused() {
    let (device, thief) = (device(), SecretKey::from_bytes(&[9; 32]).unwrap());
    // The thief names the device's key but can only sign with its own.
    let forged = forge(&thief, &good_header(&device), &good_claims());
    assert_eq!(
        verify(&forged, &token_request(), NOW),
        Err(DpopError::Signature)
    );
    // A changed claim breaks the device's signature.
    let proof = sign(&device, &token_request(), "j-1", NOW);
    let mut parts: Vec<String> = proof.split('.').map(str::to_owned).collect();
    parts[1] = b64_json(
        &serde_json::json!({"jti": "j-1", "htm": "POST", "htu": TOKEN_URI, "iat": NOW + 1}),
    );
    assert_eq!(
        verify(&parts.join("."), &token_request(), NOW),
        Err(DpopError::Signature)
    );
    // A high-S twin of a valid signature is refused (libsecp256k1 wants low S).
    let signature = B64URL.decode(proof.rsplit('.').next().unwrap()).unwrap();
    let (r, s) = signature.split_at(32);
    let s: [u8; 32] = s.try_into().unwrap();
    let s = k256::Scalar::from_repr(k256::FieldBytes::from(s)).unwrap();
    let negated: [u8; 32] = (-s).to_bytes().into();
    let twin = [r, &negated].concat();
    let (input, _) = proof.rsplit_once('.').unwrap();
    assert!(verify(
        &format!("{input}.{}", B64URL.encode(twin)),
        &token_request(),
        NOW
    )
    .is_err());
}

#[test]
fn malformed_proofs_and_other_headers_are_refused() {
    let key = device();
    let jwk_value = jwk(&key.public_key());
    let mut private = jwk_value.clone();
    private["d"] = serde_json::json!(B64URL.encode([7u8; 32]));
    let mut p256 = jwk_value.clone();
    p256["crv"] = serde_json::json!("P-256");
    let mut off_curve = jwk_value.clone();
    off_curve["y"] = serde_json::json!(B64URL.encode([1u8; 32]));
    let headers = [
        serde_json::json!({"typ": "JWT", "alg": ALG, "jwk": jwk_value}),
        serde_json::json!({"typ": "jwk-set+jwt", "alg": ALG, "jwk": jwk_value}),
        serde_json::json!({"typ": TYP, "alg": "none", "jwk": jwk_value}),
        serde_json::json!({"typ": TYP, "alg": "HS256", "jwk": jwk_value}),
        serde_json::json!({"typ": TYP, "alg": ALG, "jwk": private}),
        serde_json::json!({"typ": TYP, "alg": ALG, "jwk": p256}),
        serde_json::json!({"typ": TYP, "alg": ALG, "jwk": off_curve}),
        serde_json::json!({"typ": TYP, "alg": ALG}),
    ];
    for header in headers {
        let proof = forge(&key, &header, &good_claims());
        assert!(
            matches!(
                verify(&proof, &token_request(), NOW),
                Err(DpopError::Header(_) | DpopError::Malformed(_))
            ),
            "{header}"
        );
    }
    let long_jti = serde_json::json!({"jti": "j".repeat(MAX_JTI_BYTES + 1), "htm": "POST", "htu": TOKEN_URI, "iat": NOW});
    let no_jti = serde_json::json!({"htm": "POST", "htu": TOKEN_URI, "iat": NOW});
    for claims in [long_jti, no_jti] {
        let proof = forge(&key, &good_header(&key), &claims);
        assert!(matches!(
            verify(&proof, &token_request(), NOW),
            Err(DpopError::Malformed(_))
        ));
    }
    let proof = sign(&key, &token_request(), "j-1", NOW);
    let two = format!("{proof},{proof}");
    for bad in [
        "",
        "a.b",
        "a.b.c.d",
        two.as_str(),
        &"a".repeat(MAX_PROOF_BYTES + 1),
    ] {
        assert!(verify(bad, &token_request(), NOW).is_err(), "{bad}");
    }
}
