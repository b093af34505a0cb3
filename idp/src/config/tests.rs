//! `Config::parse` against the example file and against each bad value.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn the_example_file_parses_and_documents_every_key() {
    let text = include_str!("../../idp.example.toml");
    let config = Config::parse(text).unwrap();
    assert_eq!(config.party.public_url, "https://idp.example.com");
    let missing = milagro_service::config::undocumented_keys(text, SCHEMA);
    // `[[mpin.dtas]]` (an array of tables), `[mpin.login]` and `[mpin.ciba]` (nested
    // tables) are not looked for by the check: their keys are checked here instead.
    assert_eq!(
        missing,
        ["mpin.dtas", "mpin.login", "mpin.ciba"],
        "idp.example.toml does not show {missing:?}"
    );
    let mpin = config.mpin.unwrap();
    assert_eq!(mpin.dtas.len(), 2);
    assert_eq!(mpin.login, LoginConfig::new());
    assert_eq!(mpin.signin, Duration::from_secs(300));
    assert_eq!(mpin.ciba, CibaConfig::new());
    for key in ["request_secs", "poll_interval_secs", "max_requests"] {
        assert!(text.contains(&format!("\n{key} = ")), "{key}");
    }
    for key in milagro_verifier::config::LOGIN_KEYS {
        assert!(text.contains(&format!("\n{key} = ")), "{key}");
    }
}

#[test]
fn the_mpin_section_is_checked_by_key() {
    let base = EXAMPLE_CONFIG;
    let cases = [
        ("signin_secs = 300", "signin_secs = 10", "mpin.signin_secs"),
        ("max_signins = 10000", "max_signins = 0", "mpin.max_signins"),
        (
            "min_peer_depth = 6",
            "min_peer_depth = 0",
            "mpin.min_peer_depth",
        ),
        (
            "max_failures = 5",
            "max_failures = 0",
            "mpin.login.max_failures",
        ),
        (
            "share_api = \"dta1.example.com:8092\"",
            "share_api = \"dta1\"",
            "mpin.dtas.share_api",
        ),
        (
            "bc_digest = \"1a2b",
            "bc_digest = \"zz2b",
            "mpin.dtas.bc_digest",
        ),
        (
            "bc_digest = \"9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0\"",
            "bc_digest = \"1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809\"",
            "mpin.dtas.bc_digest",
        ),
    ];
    for (from, to, key) in cases {
        assert!(base.contains(from), "{from}");
        match Config::parse(&base.replacen(from, to, 1)) {
            Err(ConfigError::Invalid { key: found, .. }) => assert_eq!(found, key, "{to}"),
            other => panic!("{to}: {other:?}"),
        }
    }
    // Without [mpin], no M-Pin sign-in; with it, at least one D-TA.
    let start = base.find("\n[mpin]").unwrap();
    assert!(Config::parse(&base[..start]).unwrap().mpin.is_none());
    let no_dtas = format!("{}\n[mpin]\n", &base[..start]);
    match Config::parse(&no_dtas) {
        Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "mpin.dtas"),
        other => panic!("{other:?}"),
    }
    assert!(Config::parse(&base.replacen("max_lockouts = 3", "max_lockout = 3", 1)).is_err());
}

#[test]
fn bad_values_are_refused_by_key() {
    let minimal = r#"
listen = "127.0.0.1:0"
public_url = "https://idp.milagro.test"
name = "IdP"
state_dir = "state"
[node]
rpc_url = "http://127.0.0.1:18443"
rpc_cookie = "/tmp/.cookie"
network = "regtest"
"#;
    let config = Config::parse(minimal).unwrap();
    assert!(
        !config.passwords,
        "password sign-in is off unless switched on"
    );
    let migrating = Config::parse(&format!("{minimal}[passwords]\nenabled = true\n")).unwrap();
    assert!(migrating.passwords);
    let vague = Config::parse(&format!("{minimal}[passwords]\nenabled = \"yes\"\n"));
    assert!(matches!(vague, Err(ConfigError::Toml(_))), "{vague:?}");
    assert_eq!(config.tokens.code, Duration::from_secs(60));
    assert_eq!(config.party.audit.origin.as_str(), "idp.milagro.test/audit");
    let cases = [
        (
            minimal.replace("milagro.test\"", "milagro.test/\""),
            "public_url",
        ),
        (
            format!("{minimal}[tokens]\ncode_secs = 0\n"),
            "tokens.code_secs",
        ),
        (
            format!("{minimal}[keys]\nrotation_secs = 10\nprepublish_secs = 10\n"),
            "keys.prepublish_secs",
        ),
        (
            format!("{minimal}[admin]\ntoken_sha256 = \"xy\"\n"),
            "admin.token_sha256",
        ),
        (
            format!("{minimal}[enrolment]\nallowed_domains = [\"no domain\"]\n"),
            "enrolment.allowed_domains",
        ),
        (
            format!("{minimal}[smtp]\nhost = \"mail.example.com\"\nport = 25\ntls = \"none\"\nfrom = \"a@b.c\"\n"),
            "smtp.tls",
        ),
    ];
    for (text, key) in cases {
        match Config::parse(&text) {
            Err(ConfigError::Invalid { key: found, .. }) => assert_eq!(found, key),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(matches!(
        Config::parse(&format!("{minimal}[tokens]\nfoo = 1\n")),
        Err(ConfigError::UnknownKeys(_))
    ));
}
