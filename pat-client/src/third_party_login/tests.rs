use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_anchor::keys::SecretKey;
use serde_json::json;

use super::*;

const ISSUER: &str = "https://op.test";

fn login() -> ThirdPartyLogin {
    let outbound = Outbound::system().unwrap();
    ThirdPartyLogin {
        issuer: ISSUER.into(),
        client_id: "milagro-pat".into(),
        device: Endpoint::new(
            &outbound,
            "device_authorization_endpoint",
            "https://op.test/device/auth",
        )
        .unwrap(),
        token: Endpoint::new(
            &outbound,
            "token_endpoint",
            "https://tokens.op.test:8443/t?x=1",
        )
        .unwrap(),
    }
}

/// A login started for `key` with salt 7…, as [`ThirdPartyLogin::start`] makes it.
fn started(key: &SecretKey) -> ThirdPartyDeviceLogin {
    let salt = NonceSalt::from_bytes([7; 32]);
    let nonce = commitment(&Thumbprint::of(&key.public_key()), &salt);
    let body =
        json!({"device_code": "d", "user_code": "U", "verification_uri": "https://op.test/device"});
    ThirdPartyDeviceLogin {
        login: login(),
        pending: Pending::read(body).unwrap(),
        salt,
        nonce,
    }
}

/// A token answer whose ID token has `claims` (its signature is not the device's to check).
fn answer(claims: Value) -> Value {
    let token = format!("e30.{}.sig", B64URL.encode(claims.to_string()));
    json!({"access_token": "a", "token_type": "Bearer", "id_token": token})
}

fn refused(login: &ThirdPartyDeviceLogin, body: Value) -> ProviderFault {
    match login.check(body) {
        Err(Error::Provider { url, fault }) => {
            assert_eq!(url, "https://tokens.op.test:8443/t?x=1");
            fault
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_token_is_kept_only_if_its_nonce_is_the_commitment_this_device_sent() {
    let (a, b) = (
        SecretKey::from_bytes(&[1; 32]).unwrap(),
        SecretKey::from_bytes(&[2; 32]).unwrap(),
    );
    let login = started(&a);
    let good =
        json!({"iss": ISSUER, "aud": "milagro-pat", "exp": 1_900_000_000u64, "nonce": login.nonce});
    let token = login.check(answer(good.clone())).unwrap();
    assert_eq!((token.idp, token.expires_at), (None, 1_900_000_000));
    let request = token.share_request();
    assert_eq!(request.nonce_salt, Some(login.salt.encode()));
    // Several audiences are fine if one is the client.
    let mut several = good.clone();
    several["aud"] = json!(["other", "milagro-pat"]);
    assert!(login.check(answer(several)).is_ok());

    // The same salt, B's key: a nonce committing to another key.
    let for_b = commitment(&Thumbprint::of(&b.public_key()), &login.salt);
    let mut other_key = good.clone();
    other_key["nonce"] = json!(for_b);
    assert_eq!(
        refused(&login, answer(other_key)),
        ProviderFault::NonceMismatch
    );
    let mut dropped = good.clone();
    dropped.as_object_mut().unwrap().remove("nonce");
    assert_eq!(
        refused(&login, answer(dropped)),
        ProviderFault::NonceNotCarried
    );
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("https://evil.test");
    assert!(
        matches!(refused(&login, answer(wrong_iss)), ProviderFault::TokenIssuer { found } if found == "https://evil.test")
    );
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("someone-else");
    assert!(matches!(
        refused(&login, answer(wrong_aud)),
        ProviderFault::TokenAudience { .. }
    ));
    for bad in [
        json!({"access_token": "a"}),
        json!({"id_token": "not.a-jwt"}),
        json!({"id_token": 7}),
    ] {
        assert!(matches!(refused(&login, bad), ProviderFault::Malformed(_)));
    }
}

#[test]
fn only_https_urls_are_used_and_an_endpoint_may_be_on_another_host() {
    let token = &login().token;
    assert_eq!(token.client.base_url(), "https://tokens.op.test:8443");
    assert_eq!(token.path, "/t?x=1");
    let outbound = Outbound::system().unwrap();
    for bad in [
        "http://op.test/token",
        "http://127.0.0.1:8080/token",
        "op.test/token",
        "https://op.test/token#fragment",
        "javascript:alert(1)",
    ] {
        match Endpoint::new(&outbound, "token_endpoint", bad) {
            Err(Error::Provider {
                url,
                fault: ProviderFault::NotHttps { what, url: named },
            }) => {
                assert_eq!(
                    (url.as_str(), what, named.as_str()),
                    (bad, "token_endpoint", bad)
                );
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // Plain HTTP is refused for the issuer itself before anything is asked.
    assert!(matches!(
        ThirdPartyLogin::discover(&outbound, "http://127.0.0.1:1", "c"),
        Err(Error::Provider {
            fault: ProviderFault::NotHttps { what: "issuer", .. },
            ..
        })
    ));
}

#[test]
fn the_provider_is_remembered_in_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(RememberedProvider::load(dir.path()).unwrap(), None);
    let provider = RememberedProvider {
        issuer: ISSUER.into(),
    };
    provider.save(dir.path()).unwrap();
    assert_eq!(
        RememberedProvider::load(dir.path()).unwrap(),
        Some(provider)
    );
    RememberedProvider::forget(dir.path()).unwrap();
    assert_eq!(RememberedProvider::load(dir.path()).unwrap(), None);
    std::fs::write(dir.path().join(PROVIDER_FILE), b"{\"issuer\": 1}").unwrap();
    assert!(matches!(
        RememberedProvider::load(dir.path()),
        Err(Error::CorruptState { .. })
    ));
}
