use super::*;
use std::path::PathBuf;

use bitcoin::{FeeRate, Network};

const MINIMAL: &str = r#"
listen = "127.0.0.1:0"
public_url = "http://tbs.milagro.test"
name = "Test TBS"
state_dir = "state"

[node]
rpc_url = "http://127.0.0.1:18443"
rpc_cookie = "/tmp/.cookie"
network = "regtest"
"#;

fn parse_err(text: &str) -> ConfigError {
    match Config::parse(text) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_example_file_parses_and_documents_every_key() {
    let text = include_str!("../../tbs.example.toml");
    let config = Config::parse(text).unwrap();
    assert_eq!(config.party.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.party.node.network, Network::Bitcoin);
    assert_eq!(config.party.min_depth, 1);
    let missing = milagro_service::config::undocumented_keys(text, SCHEMA);
    assert!(
        missing.is_empty(),
        "tbs.example.toml does not show {missing:?}"
    );
}

#[test]
fn defaults_apply_when_sections_are_left_out() {
    let config = Config::parse(MINIMAL).unwrap();
    assert_eq!(config.party.listen.port(), 0);
    assert_eq!(config.party.sync.poll_interval, Duration::from_millis(1000));
    assert_eq!(config.party.sync.max_backoff, Duration::from_secs(30));
    assert_eq!(config.party.sync.start_height, 0);
    assert_eq!(config.party.fee_rate, FeeRate::from_sat_per_vb_u32(2));
    assert_eq!(config.party.min_depth, 1);
    assert_eq!(config.party.node.network, Network::Regtest);
    assert_eq!(config.party.state_dir, PathBuf::from("state"));
    assert_eq!(
        config.party.audit.checkpoint_interval,
        Duration::from_secs(3600)
    );
    assert_eq!(config.party.audit.origin.as_str(), "tbs.milagro.test/audit");
}

#[test]
fn the_audit_origin_derives_from_the_public_url_unless_set() {
    let origin = |text: &str| Config::parse(text).unwrap().party.audit.origin.to_string();
    let with_path = MINIMAL.replace(
        "\"http://tbs.milagro.test\"",
        "\"https://x.test:8443/tbs/\"",
    );
    assert_eq!(origin(&with_path), "x.test:8443/tbs/audit");
    let set =
        format!("{MINIMAL}[audit]\norigin = \"log.example/a\"\ncheckpoint_interval_secs = 1\n");
    assert_eq!(origin(&set), "log.example/a");
    assert_eq!(
        Config::parse(&set).unwrap().party.audit.checkpoint_interval,
        Duration::from_secs(1)
    );
    // A public URL that makes no valid key name must be overridden, and says so.
    let plus = MINIMAL.replace(
        "\"http://tbs.milagro.test\"",
        "\"http://tbs.milagro.test/a+b\"",
    );
    match parse_err(&plus) {
        ConfigError::Invalid { key, reason } => {
            assert_eq!(key, "audit.origin");
            assert!(reason.contains("set audit.origin"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn every_unknown_key_is_named_with_its_section() {
    let text = format!("listen_port = 1\n{MINIMAL}[sync]\npoll_interval = 5\n[extra]\na = 1\n");
    match parse_err(&text) {
        ConfigError::UnknownKeys(keys) => {
            assert_eq!(keys, ["extra", "listen_port", "sync.poll_interval"]);
        }
        other => panic!("{other}"),
    }
    let message = parse_err(&format!("{MINIMAL}rpc_user = \"x\"\n")).to_string();
    assert!(message.contains("node.rpc_user"), "{message}");
}

#[test]
fn missing_keys_and_wrong_types_are_refused_by_name() {
    let without_name = MINIMAL.replace("name = \"Test TBS\"\n", "");
    let message = parse_err(&without_name).to_string();
    assert!(message.contains("name"), "{message}");
    let message = parse_err(&MINIMAL.replace("\"127.0.0.1:0\"", "8080")).to_string();
    assert!(message.contains("listen"), "{message}");
    assert!(matches!(parse_err("listen = "), ConfigError::Toml(_)));
}

#[test]
fn out_of_range_values_are_refused_by_key() {
    let cases = [
        ("\"127.0.0.1:0\"", "\"localhost:80\"", "listen"),
        ("\"http://tbs.milagro.test\"", "\"ftp://x\"", "public_url"),
        ("\"http://tbs.milagro.test\"", "\"http://\"", "public_url"),
        (
            "\"http://127.0.0.1:18443\"",
            "\"127.0.0.1:18443\"",
            "node.rpc_url",
        ),
        ("\"Test TBS\"", "\"\"", "name"),
        ("\"state\"", "\"\"", "state_dir"),
        ("\"regtest\"", "\"moon\"", "node.network"),
    ];
    for (from, to, key) in cases {
        match parse_err(&MINIMAL.replace(from, to)) {
            ConfigError::Invalid { key: found, .. } => assert_eq!(found, key, "{to}"),
            other => panic!("{to}: {other}"),
        }
    }
    let sections = [
        ("[sync]\npoll_interval_ms = 0", "sync.poll_interval_ms"),
        (
            "[sync]\npoll_interval_ms = 500\nmax_backoff_ms = 100",
            "sync.max_backoff_ms",
        ),
        (
            "[anchoring]\nfee_rate_sat_vb = 0",
            "anchoring.fee_rate_sat_vb",
        ),
        ("[anchoring]\nmin_depth = 0", "anchoring.min_depth"),
        (
            "[anchoring]\nbatch_interval_secs = 0",
            "anchoring.batch_interval_secs",
        ),
        (
            "[anchoring]\nbatch_interval_secs = 86401",
            "anchoring.batch_interval_secs",
        ),
        ("[anchoring]\nfunding_pool = 1001", "anchoring.funding_pool"),
        ("[anchoring]\nfunding_pool = 0", "anchoring.funding_pool"),
        (
            "[enrolment]\noffer_expiry_secs = 0",
            "enrolment.offer_expiry_secs",
        ),
        (
            "[enrolment]\nrequests_per_minute_per_address = 0",
            "enrolment.requests_per_minute_per_address",
        ),
        (
            "[enrolment]\nmax_pending_offers_per_tenant = 0",
            "enrolment.max_pending_offers_per_tenant",
        ),
        ("[enrolment]\nmax_queued = 1000001", "enrolment.max_queued"),
        (
            "[audit]\ncheckpoint_interval_secs = 0",
            "audit.checkpoint_interval_secs",
        ),
        ("[audit]\norigin = \"has space\"", "audit.origin"),
        ("[audit]\norigin = \"\"", "audit.origin"),
    ];
    for (section, key) in sections {
        match parse_err(&format!("{MINIMAL}{section}\n")) {
            ConfigError::Invalid { key: found, .. } => assert_eq!(found, key),
            other => panic!("{section}: {other}"),
        }
    }
}
