#![allow(clippy::unwrap_used)]

use milagro_http_client::test_ca::TestCa;

use super::*;

#[test]
fn the_section_is_checked_by_key() {
    let raw = |cert: &str, key: &str| RawTls {
        cert: cert.into(),
        key: key.into(),
    };
    let ok = check_tls(Some(raw("/etc/milagro/cert.pem", "/etc/milagro/key.pem"))).unwrap();
    assert_eq!(
        ok,
        Some(TlsSettings::new(
            "/etc/milagro/cert.pem",
            "/etc/milagro/key.pem"
        ))
    );
    assert_eq!(check_tls(None).unwrap(), None);
    for (cert, key, named) in [
        ("", "k.pem", "tls.cert"),
        ("c.pem", "", "tls.key"),
        ("same.pem", "same.pem", "tls.key"),
    ] {
        match check_tls(Some(raw(cert, key))) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, named),
            other => panic!("{cert:?} {key:?}: {other:?}"),
        }
    }
    let parsed: Result<RawTls, _> = toml::from_str("cert = \"c\"\nkey = \"k\"\nextra = 1\n");
    assert!(parsed.is_err());
}

#[test]
fn a_pair_that_does_not_match_or_parse_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("unit CA");
    let (cert, key) = ca.leaf(1).write(dir.path());
    let settings = TlsSettings::new(&cert, &key);
    assert!(ServerTls::load(&settings).is_ok());

    let other = ca.leaf(2);
    std::fs::write(&key, &other.key_pem).unwrap();
    assert!(matches!(
        ServerTls::load(&settings),
        Err(TlsError::KeyMismatch { .. })
    ));
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let refused = ServerTls::load(&settings).unwrap_err();
    assert!(matches!(refused, TlsError::Invalid { .. }), "{refused}");
    std::fs::write(&cert, "not a certificate").unwrap();
    assert!(matches!(
        ServerTls::load(&settings),
        Err(TlsError::Invalid { .. })
    ));
    let missing = TlsSettings::new(dir.path().join("none.pem"), &key);
    assert!(matches!(
        ServerTls::load(&missing),
        Err(TlsError::Read { .. })
    ));
}

#[test]
fn a_reload_swaps_a_good_pair_and_keeps_the_old_one_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("unit CA");
    let first = ca.leaf(1);
    let (cert, key) = first.write(dir.path());
    let tls = ServerTls::load(&TlsSettings::new(&cert, &key)).unwrap();
    assert_eq!(tls.served_certificate(), first.der);
    assert_eq!(tls.reload().unwrap(), Reloaded::Unchanged);
    assert!(!tls.changed());

    // Half a renewal: the new certificate with the old key. Refused, the old one stays,
    // and the poll does not retry these same files.
    let second = ca.leaf(2);
    std::fs::write(&cert, &second.cert_pem).unwrap();
    assert!(tls.changed());
    assert!(matches!(tls.reload(), Err(TlsError::KeyMismatch { .. })));
    assert_eq!(tls.served_certificate(), first.der);
    assert!(!tls.changed());

    // The renewal completes: served from now on.
    std::fs::write(&key, &second.key_pem).unwrap();
    assert!(tls.changed());
    assert_eq!(tls.reload().unwrap(), Reloaded::Replaced);
    assert_eq!(tls.served_certificate(), second.der);
    assert_eq!(tls.reload().unwrap(), Reloaded::Unchanged);
    assert!(tls.server_config().is_ok());
}
