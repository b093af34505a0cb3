#![allow(clippy::unwrap_used)]

use super::*;

const MINIMAL: &str = r#"
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
public_url = "https://dta.milagro.test"
name = "D-TA"
state_dir = "state"
[master_key]
env = "MILAGRO_DTA_MASTER_KEY"
[node]
rpc_url = "http://127.0.0.1:18443"
rpc_cookie = "/tmp/.cookie"
network = "regtest"
"#;

const IDP: &str = "[[trusted_idps]]\nissuer = \"https://idp.test\"\nbc_digest = \"ab00000000000000000000000000000000000000000000000000000000000000\"\nclient_id = \"dta1\"\n";

#[test]
fn the_example_file_parses_and_documents_every_key() {
    let text = super::EXAMPLE_CONFIG;
    let config = Config::parse(text).unwrap();
    assert_eq!(config.party.public_url, "https://dta1.example.com");
    let missing = milagro_service::config::undocumented_keys(text, SCHEMA);
    // `file` is shown commented out; `[[trusted_idps]]` is an array of tables, which
    // the check does not look for.
    assert_eq!(
        missing,
        [".trusted_idps", "master_key.file"],
        "dta.example.toml"
    );
    assert!(text.contains("\n# file = ") && text.contains("\n[[trusted_idps]]\n"));
}

#[test]
fn a_plain_http_issuer_off_loopback_needs_the_explicit_permission() {
    let plain = IDP.replace("https://idp.test", "http://idp.test");
    match Config::parse(&format!("{MINIMAL}{plain}")) {
        Err(ConfigError::Invalid { key, reason }) => {
            assert_eq!(key, "trusted_idps.issuer");
            assert!(reason.contains("loopback"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let allowed = format!("{MINIMAL}{plain}[outbound_http]\nallow_plain_http = true\n");
    assert!(
        Config::parse(&allowed)
            .unwrap()
            .outbound_http
            .allow_plain_http
    );
    let loopback = IDP.replace("https://idp.test", "http://127.0.0.1:8081");
    assert!(Config::parse(&format!("{MINIMAL}{loopback}")).is_ok());
    let bundle = format!("{MINIMAL}[outbound_http]\nca_bundle = \"/etc/ca.pem\"\n");
    assert_eq!(
        Config::parse(&bundle).unwrap().outbound_http.roots,
        milagro_http_client::Roots::Bundle("/etc/ca.pem".into())
    );
    assert!(matches!(
        Config::parse(&format!("{MINIMAL}[outbound_http]\nca_bundle = \"\"\n")),
        Err(ConfigError::Invalid {
            key: "outbound_http.ca_bundle",
            ..
        })
    ));
}

const WEB_PKI: &str = "[[trusted_idps]]\nissuer = \"https://op.example\"\ntrust = \"web_pki\"\nclient_id = \"milagro-pat\"\n";

#[test]
fn an_idp_is_anchored_unless_it_says_web_pki_which_needs_https_and_no_digest() {
    let anchored = Config::parse(&format!("{MINIMAL}{IDP}")).unwrap();
    assert!(matches!(
        anchored.trusted_idps[0].trust,
        IdpTrust::Anchored { .. }
    ));
    let explicit = IDP.replace("client_id", "trust = \"anchored\"\nclient_id");
    assert_eq!(
        Config::parse(&format!("{MINIMAL}{explicit}")).unwrap(),
        anchored
    );
    let both = Config::parse(&format!("{MINIMAL}{IDP}{WEB_PKI}")).unwrap();
    assert_eq!(both.trusted_idps[1].trust, IdpTrust::WebPki);
    assert_eq!(both.trusted_idps[1].issuer, "https://op.example");
    let cases = [
        // Plain HTTP, even to loopback and even when allowed: the channel is the trust.
        (
            WEB_PKI.replace("https://op.example", "http://127.0.0.1:8081"),
            "trusted_idps.issuer",
        ),
        (
            format!(
                "{}[outbound_http]\nallow_plain_http = true\n",
                WEB_PKI.replace("https://", "http://")
            ),
            "trusted_idps.issuer",
        ),
        // A digest nobody would check.
        (
            WEB_PKI.replace(
                "client_id",
                "bc_digest = \"ab00000000000000000000000000000000000000000000000000000000000000\"\nclient_id",
            ),
            "trusted_idps.bc_digest",
        ),
        // An anchored IdP without its digest.
        (
            WEB_PKI.replace("trust = \"web_pki\"\n", ""),
            "trusted_idps.bc_digest",
        ),
    ];
    for (idp, key) in cases {
        match Config::parse(&format!("{MINIMAL}{idp}")) {
            Err(ConfigError::Invalid { key: found, reason }) => {
                assert_eq!(found, key, "{idp}: {reason}")
            }
            other => panic!("{idp}: {other:?}"),
        }
    }
    // An unknown mode is refused by name.
    let unknown = WEB_PKI.replace("web_pki", "tofu");
    let refused = Config::parse(&format!("{MINIMAL}{unknown}")).unwrap_err();
    assert!(refused.to_string().contains("web_pki"), "{refused}");
}

#[test]
fn defaults_then_bad_values_are_refused_by_key() {
    let config = Config::parse(MINIMAL).unwrap();
    assert_eq!(config.min_peer_depth, 6);
    assert_eq!(
        config.master_key,
        MasterKeySource::Env("MILAGRO_DTA_MASTER_KEY".into())
    );
    assert_eq!(config.party.audit.origin.as_str(), "dta.milagro.test/audit");
    assert!(config.trusted_idps.is_empty());
    let with_idp = Config::parse(&format!("{MINIMAL}{IDP}")).unwrap();
    assert_eq!(with_idp.trusted_idps[0].client_id, "dta1");
    assert_eq!(config.tls_public_addr, None);
    let public = Config::parse(&format!("tls_public_addr = \"[::1]:8092\"\n{MINIMAL}"));
    assert_eq!(
        public.unwrap().tls_public_addr.as_deref(),
        Some("[::1]:8092")
    );
    let both = MINIMAL.replace(
        "env = \"MILAGRO_DTA_MASTER_KEY\"",
        "env = \"K\"\nfile = \"/k\"",
    );
    let cases = [
        (
            MINIMAL.replace("tls_listen = \"127.0.0.1:0\"", "tls_listen = \"x\""),
            "tls_listen",
        ),
        (both, "master_key"),
        (
            MINIMAL.replace("MILAGRO_DTA_MASTER_KEY", "BAD NAME"),
            "master_key.env",
        ),
        (format!("min_peer_depth = 0\n{MINIMAL}"), "min_peer_depth"),
        (
            format!("tls_public_addr = \"dta.example:0\"\n{MINIMAL}"),
            "tls_public_addr",
        ),
        (
            format!("tls_public_addr = \"dta example:8092\"\n{MINIMAL}"),
            "tls_public_addr",
        ),
        (
            format!("tls_public_addr = \"dta.example\"\n{MINIMAL}"),
            "tls_public_addr",
        ),
        (
            format!("{MINIMAL}{IDP}").replace("idp.test\"", "idp.test/\""),
            "trusted_idps.issuer",
        ),
        (
            format!("{MINIMAL}{IDP}").replace("\"ab", "\"x"),
            "trusted_idps.bc_digest",
        ),
        (format!("{MINIMAL}{IDP}{IDP}"), "trusted_idps.issuer"),
    ];
    for (text, key) in cases {
        match Config::parse(&text) {
            Err(ConfigError::Invalid { key: found, .. }) => assert_eq!(found, key),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(matches!(
        Config::parse(&format!("{MINIMAL}[master_key2]\n")),
        Err(ConfigError::UnknownKeys(_))
    ));
    assert!(matches!(
        Config::parse(&MINIMAL.replace("[master_key]\nenv = \"MILAGRO_DTA_MASTER_KEY\"\n", "")),
        Err(ConfigError::Toml(_))
    ));
}
