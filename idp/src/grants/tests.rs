//! The grants' rules: single use, rotation, revocation, binding.
#![allow(clippy::unwrap_used)]

use super::*;

fn grants() -> Grants {
    Grants::open(&sled::Config::new().temporary(true).open().unwrap(), 3600).unwrap()
}

fn auth() -> Authorization {
    Authorization::new(
        "client",
        &Authenticated::by_password("sub", 10),
        "openid",
        None,
    )
}

#[test]
fn a_code_works_once_and_a_second_use_revokes_its_tokens() {
    let g = grants();
    let code = g.issue_code(auth(), "https://rp/cb", None, 100).unwrap();
    let granted = g.redeem_code(&code, 50, |_| Ok(())).unwrap();
    let access = g.issue_token(TokenKind::Access, &granted, 1000).unwrap();
    assert_eq!(g.access(&access, 60).unwrap(), granted);
    let again = g.redeem_code(&code, 51, |_| Ok(())).unwrap_err();
    assert_eq!(again.code(), "invalid_grant");
    assert_eq!(g.access(&access, 60).unwrap_err().code(), "invalid_token");
}

#[test]
fn an_expired_or_failed_code_is_used_up() {
    let g = grants();
    let code = g.issue_code(auth(), "https://rp/cb", None, 100).unwrap();
    assert_eq!(
        g.redeem_code(&code, 100, |_| Ok(())).unwrap_err().code(),
        "invalid_grant"
    );
    let code = g.issue_code(auth(), "https://rp/cb", None, 100).unwrap();
    let wrong = |_: &CodeRow| Err(OAuthError::invalid_grant("pkce"));
    assert_eq!(
        g.redeem_code(&code, 1, wrong).unwrap_err().description(),
        "pkce"
    );
    assert!(g.redeem_code(&code, 1, |_| Ok(())).is_err());
    assert!(g.redeem_code("never issued", 1, |_| Ok(())).is_err());
}

#[test]
fn a_bound_refresh_token_needs_a_proof_by_its_key_and_is_not_burnt_without_one() {
    use milagro_anchor::keys::SecretKey;
    let g = grants();
    let key = |byte| Thumbprint::of(&SecretKey::from_bytes(&[byte; 32]).unwrap().public_key());
    let mut a = auth();
    a.jkt = Some(key(1));
    let refresh = g.issue_token(TokenKind::Refresh, &a, 1000).unwrap();
    for proved in [None, Some(key(2))] {
        let refused = g
            .use_refresh(&refresh, "client", proved.as_ref(), 5)
            .unwrap_err();
        assert_eq!(refused.code(), "invalid_dpop_proof");
    }
    // Neither attempt used it up: the key's holder still refreshes, once.
    assert_eq!(
        g.use_refresh(&refresh, "client", Some(&key(1)), 6).unwrap(),
        a
    );
    assert_eq!(
        g.use_refresh(&refresh, "client", Some(&key(1)), 7)
            .unwrap_err()
            .code(),
        "invalid_grant"
    );
}

#[test]
fn refresh_tokens_rotate_and_a_replay_revokes_the_grant() {
    let g = grants();
    let a = auth();
    let refresh = g.issue_token(TokenKind::Refresh, &a, 1000).unwrap();
    let access = g.issue_token(TokenKind::Access, &a, 1000).unwrap();
    assert_eq!(
        g.use_refresh(&refresh, "other", None, 5)
            .unwrap_err()
            .code(),
        "invalid_grant"
    );
    assert_eq!(g.use_refresh(&refresh, "client", None, 5).unwrap(), a);
    assert_eq!(
        g.use_refresh(&refresh, "client", None, 6)
            .unwrap_err()
            .code(),
        "invalid_grant"
    );
    assert!(
        g.access(&access, 7).is_err(),
        "the replay revoked the grant"
    );
    // An access token is not a refresh token, and revocation is per client.
    let b = auth();
    let access = g.issue_token(TokenKind::Access, &b, 1000).unwrap();
    assert!(g.use_refresh(&access, "client", None, 5).is_err());
    g.revoke(&access, "other", 7).unwrap();
    assert!(g.access(&access, 7).is_ok());
    g.revoke(&access, "client", 7).unwrap();
    assert!(g.access(&access, 7).is_err());
}

#[test]
fn of_many_concurrent_redemptions_of_one_code_exactly_one_succeeds() {
    let g = std::sync::Arc::new(grants());
    for _ in 0..20 {
        let code = g.issue_code(auth(), "https://rp/cb", None, 100).unwrap();
        let code = std::sync::Arc::new(code.to_string());
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (g, code) = (g.clone(), code.clone());
                std::thread::spawn(move || g.redeem_code(&code, 50, |_| Ok(())).is_ok())
            })
            .collect();
        let won = racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .filter(|won| *won)
            .count();
        assert_eq!(won, 1);
    }
}
