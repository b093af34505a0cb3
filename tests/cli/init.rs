//! Issue 16: `milagro init ROLE` writes a configuration that `milagro ROLE serve` accepts
//! unchanged, for every role (here on regtest, against a real node; every network's
//! configuration is checked by the service's parser in `milagro-init`'s unit tests),
//! prints each admin token once with only its hash in the file, and refuses to set up a
//! directory twice. The services log JSON lines with `--log-format json`.

use serde_json::Value;

use super::{json, milagro, stderr, TestNode};
use crate::served::Served;

#[test]
fn init_makes_a_configuration_serve_accepts_for_every_role_and_never_overwrites_one() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let (rpc, cookie) = (node.rpc_url(), node.cookie().display().to_string());
    let mut made: Vec<(String, Value)> = Vec::new();
    let mut dta_digest = String::new();
    for role in ["tbs", "idp", "dta", "authserver"] {
        let role_dir = dir.path().join(role).display().to_string();
        let mut args = vec!["init", role, "--network", "regtest", "--dir", &role_dir];
        args.extend([
            "--listen",
            "127.0.0.1:0",
            "--rpc-url",
            &rpc,
            "--rpc-cookie",
            &cookie,
        ]);
        let peer = format!("{dta_digest}@127.0.0.1:9");
        match role {
            "dta" => args.extend(["--share-listen", "127.0.0.1:0"]),
            "authserver" => args.extend(["--dta", &peer]),
            _ => {}
        }
        let output = milagro(&args);
        assert!(output.status.success(), "init {role}: {}", stderr(&output));
        let printed = json(&output);
        assert!(
            stderr(&output).contains("next steps"),
            "{}",
            stderr(&output)
        );
        let config = std::fs::read_to_string(printed["config"].as_str().unwrap()).unwrap();
        match printed["admin_token"].as_str() {
            Some(token) => {
                assert!(!config.contains(token), "the token itself is never written");
                let hash = milagro_service::token::ApiToken::parse(token)
                    .unwrap()
                    .hash();
                assert!(config.contains(&hash.to_string()), "{config}");
            }
            None => assert_eq!(role, "dta"),
        }
        if role == "dta" {
            dta_digest = printed["digest"].as_str().unwrap().to_owned();
        }
        made.push((role.to_owned(), printed));
    }

    // The IdP `init` made signs people in without passwords: no password user is added.
    let idp_config = made
        .iter()
        .find_map(|(role, printed)| (role == "idp").then(|| printed["config"].as_str().unwrap()))
        .unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "a long enough password\n").unwrap();
    let refused = milagro(&[
        "idp",
        "user",
        "add",
        "--config",
        idp_config,
        "--username",
        "bob",
        "--password-file",
        &password_file.display().to_string(),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("[passwords] enabled = false"),
        "{}",
        stderr(&refused)
    );

    for (role, printed) in &made {
        let config = std::path::Path::new(printed["config"].as_str().unwrap());
        let served = Served::start_with(&["--log-format", "json"], role, config);
        assert_eq!(served.started["digest"], printed["digest"], "{role}");
        let api = milagro_tests::Api::new(&served.url);
        assert_eq!(api.ok("/healthz")["status"], "alive");
        let log = served.stderr();
        let first = log
            .lines()
            .next()
            .unwrap_or_else(|| panic!("{role} logged nothing"));
        let line: Value = serde_json::from_str(first)
            .unwrap_or_else(|e| panic!("{role}: a log line is not JSON ({e}): {first}"));
        assert!(
            line["level"].is_string() && line["fields"].is_object(),
            "{line}"
        );
    }

    // Again on the same directory: refused, and the identity is untouched.
    let tbs_dir = dir.path().join("tbs");
    let certificate = tbs_dir.join("state/birth-certificate.json");
    let before = std::fs::read(&certificate).unwrap();
    let again = milagro(&["init", "tbs", "--dir", &tbs_dir.display().to_string()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&certificate).unwrap(), before);
    // Off regtest, the public URL is not guessed.
    let signet = dir.path().join("signet").display().to_string();
    let refused = milagro(&["init", "idp", "--network", "signet", "--dir", &signet]);
    assert!(
        stderr(&refused).contains("--public-url"),
        "{}",
        stderr(&refused)
    );
}

/// The systemd unit `init`'s next steps name: what `systemd-analyze verify` accepts (with
/// the ExecStart pointed at this build), hardened as the issue asks: its own user, the
/// file system read-only but for the state directory, no capabilities.
#[test]
fn the_systemd_unit_verifies_and_writes_only_its_state_directory() {
    let unit = include_str!("../../deploy/systemd/milagro@.service");
    for line in [
        "User=milagro",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/milagro/%i",
        "StateDirectory=milagro/%i",
        "CapabilityBoundingSet=\n",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/local/bin/milagro --log-format json %i serve --config /var/lib/milagro/%i/%i.toml",
    ] {
        assert!(unit.contains(line), "the unit lacks {line:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("milagro@tbs.service");
    let here = unit.replace("/usr/local/bin/milagro", env!("CARGO_BIN_EXE_milagro"));
    std::fs::write(&path, here).unwrap();
    let verified = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze (Debian's systemd package) is needed: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        verified.status.success() && said.trim().is_empty(),
        "{said}"
    );
}
