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

mod web_pki_tokens {
    //! A third-party provider's tokens, signed here with a fixed RSA test key
    //! (`test-rs256-key.pem`, made for these tests only) and checked as the D-TA checks
    //! them: which keys it takes, which tokens it accepts, and how a token is bound.

    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine as _;
    use milagro_anchor::id_token_nonce::{commitment, NonceSalt};
    use openidconnect::core::{CoreHmacKey, CoreJsonWebKey, CoreRsaPrivateSigningKey};
    use openidconnect::{JsonWebKey as _, JsonWebKeyId, PrivateSigningKey as _};
    use serde_json::json;

    use super::super::web_pki::{jwks_uri, usable_keys};
    use super::super::*;
    use super::key;

    const ISSUER: &str = "https://op.example";

    fn web_pki() -> TrustedIdp {
        TrustedIdp {
            issuer: ISSUER.into(),
            trust: IdpTrust::WebPki,
            client_id: "milagro-pat".into(),
        }
    }

    fn rsa() -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(
            include_str!("test-rs256-key.pem"),
            Some(JsonWebKeyId::new("op-rsa".into())),
        )
        .unwrap()
    }

    fn public_jwk() -> Value {
        serde_json::to_value(rsa().as_verification_key()).unwrap()
    }

    fn keys() -> CoreJsonWebKeySet {
        usable_keys(&json!({ "keys": [public_jwk()] })).unwrap()
    }

    fn now() -> u64 {
        milagro_service::unix_now()
    }

    fn claims(nonce: &str) -> Value {
        json!({
            "iss": ISSUER, "aud": "milagro-pat", "sub": "alice",
            "iat": now(), "exp": now() + 600, "nonce": nonce,
        })
    }

    /// A compact JWS of `header` and `claims`, signed by `sign` over its signing input.
    fn jwt(header: Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let signature = B64URL.encode(sign(input.as_bytes()));
        format!("{input}.{signature}")
    }

    fn rs256(claims: &Value, kid: &str) -> String {
        jwt(json!({"alg": "RS256", "kid": kid}), claims, |input| {
            rsa()
                .sign(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, input)
                .unwrap()
        })
    }

    fn check(idp: &TrustedIdp, token: &str) -> Result<(VerifiedLogin, Evidence), LoginError> {
        let token: BoundIdToken = token
            .parse()
            .map_err(|e| LoginError::Malformed(format!("{e}")))?;
        verify_with(idp, &token, keys())
    }

    #[test]
    fn an_rs256_token_verifies_and_its_nonce_binds_the_device_that_committed_to() {
        let (a, b) = (key(1), key(2));
        let salt = NonceSalt::from_bytes([5; 32]);
        let nonce = commitment(&Thumbprint::of(&a), &salt);
        let (login, evidence) = check(&web_pki(), &rs256(&claims(&nonce), "op-rsa")).unwrap();
        assert_eq!((login.issuer(), login.subject()), (ISSUER, "alice"));
        assert_eq!(evidence.nonce.as_deref(), Some(nonce.as_str()));
        let bound = |device: &PublicKey, salt: Option<&NonceSalt>| {
            binding::check_nonce_binding(evidence.nonce.as_deref(), salt, device)
        };
        assert!(bound(&a, Some(&salt)).is_ok());
        // The stolen-token attack: another device, even with the very salt.
        match bound(&b, Some(&salt)) {
            Err(LoginError::NonceForAnotherKey { presented }) => {
                assert_eq!(presented, Thumbprint::of(&b))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            bound(&a, Some(&NonceSalt::from_bytes([6; 32]))),
            Err(LoginError::NonceForAnotherKey { .. })
        ));
        assert!(matches!(bound(&a, None), Err(LoginError::NonceNotBound(_))));
        assert!(matches!(
            binding::check_nonce_binding(None, Some(&salt), &a),
            Err(LoginError::NonceNotBound(_))
        ));
    }

    #[test]
    fn forged_foreign_stale_and_unkeyed_tokens_are_refused() {
        let good = claims("n");
        let mut wrong_aud = good.clone();
        wrong_aud["aud"] = json!("someone-else");
        let mut wrong_iss = good.clone();
        wrong_iss["iss"] = json!("https://op.example.evil");
        let mut expired = good.clone();
        expired["exp"] = json!(now() - 120);
        expired["iat"] = json!(now() - 720);
        let mut tampered = rs256(&good, "op-rsa");
        tampered.push('A');
        let secret = CoreHmacKey::new(b"anything public".to_vec());
        let cases = [
            ("wrong audience", rs256(&wrong_aud, "op-rsa")),
            ("wrong issuer", rs256(&wrong_iss, "op-rsa")),
            ("expired", rs256(&expired, "op-rsa")),
            ("unknown kid", rs256(&good, "op-other")),
            ("bad signature", tampered),
            (
                "alg none",
                format!(
                    "{}.{}.",
                    B64URL.encode(json!({"alg": "none"}).to_string()),
                    B64URL.encode(good.to_string())
                ),
            ),
            (
                "HS256",
                jwt(json!({"alg": "HS256", "kid": "op-rsa"}), &good, |input| {
                    secret
                        .sign(&CoreJwsSigningAlgorithm::HmacSha256, input)
                        .unwrap()
                }),
            ),
        ];
        assert!(check(&web_pki(), &rs256(&good, "op-rsa")).is_ok());
        for (what, token) in cases {
            assert!(check(&web_pki(), &token).is_err(), "{what} accepted");
        }
        // An anchored IdP signs ES256 only: an RS256 token in its name is refused.
        let anchored = TrustedIdp {
            trust: IdpTrust::Anchored {
                bc_digest: milagro_anchor::digest::Digest::sha256(b"bc"),
            },
            ..web_pki()
        };
        assert!(check(&anchored, &rs256(&good, "op-rsa")).is_err());
    }

    #[test]
    fn only_signing_keys_of_accepted_kinds_and_sizes_are_kept() {
        let rsa2048 = public_jwk();
        let mut rsa1024 = rsa2048.clone();
        rsa1024["n"] = json!(B64URL.encode([0xc5u8; 128]));
        rsa1024["kid"] = json!("small");
        let mut for_encryption = rsa2048.clone();
        for_encryption["use"] = json!("enc");
        let mut ps256 = rsa2048.clone();
        ps256["alg"] = json!("PS256");
        let p256 = json!({"kty": "EC", "crv": "P-256", "kid": "ec",
            "x": B64URL.encode([1u8; 32]), "y": B64URL.encode([2u8; 32])});
        let p384 = json!({"kty": "EC", "crv": "P-384", "kid": "ec384",
            "x": B64URL.encode([1u8; 48]), "y": B64URL.encode([2u8; 48])});
        let oct = json!({"kty": "oct", "k": B64URL.encode(b"secret"), "kid": "hmac"});
        let set =
            json!({ "keys": [rsa1024, for_encryption, ps256, p384, oct.clone(), rsa2048, p256] });
        let kept: Vec<CoreJsonWebKey> = usable_keys(&set).unwrap().keys().clone();
        let kids: Vec<&str> = kept
            .iter()
            .filter_map(|k| k.key_id().map(|kid| kid.as_str()))
            .collect();
        assert_eq!(kids, ["op-rsa", "ec"]);
        assert!(usable_keys(&json!({ "keys": [oct] })).is_err());
        assert!(usable_keys(&json!({ "no": "keys" })).is_err());
    }

    #[test]
    fn the_discovery_document_must_be_the_issuers_and_name_an_https_key_set() {
        let document = |issuer: &str, jwks: &str| json!({"issuer": issuer, "jwks_uri": jwks});
        assert_eq!(
            jwks_uri(ISSUER, &document(ISSUER, "https://keys.example/jwks")).unwrap(),
            "https://keys.example/jwks"
        );
        for bad in [
            document("https://op.example/", "https://op.example/jwks"),
            document("https://other.example", "https://op.example/jwks"),
            document(ISSUER, "http://op.example/jwks"),
            document(ISSUER, "https://"),
            json!({"issuer": ISSUER}),
            json!({"jwks_uri": "https://op.example/jwks"}),
        ] {
            assert!(jwks_uri(ISSUER, &bad).is_err(), "{bad}");
        }
    }
}
