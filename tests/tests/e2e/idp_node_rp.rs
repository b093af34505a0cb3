//! An independent, widely used relying party against the IdP: `openid-client` from the
//! npm registry (pinned, installed by this test into `.cache/npm-rp`), driven by
//! `tests/node/rp.mjs` under Node. It discovers the IdP, runs the code flow with PKCE
//! (this test performs the login a browser would), validates the ID token its own way
//! and fetches userinfo. Needs `node` and `npm` on the PATH; never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use idp_common::{IdpWorld, PASSWORD, USER};
use serde_json::{json, Value};

/// The pinned version of `openid-client`.
const OPENID_CLIENT: &str = "6.8.9";
const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// Installs `openid-client` into `.cache/npm-rp` once (under a lock: test binaries run in
/// parallel) and copies the script next to it, so that its import resolves there.
fn npm_rp() -> PathBuf {
    let dir = milagro_regtest::default_cache_dir().join("npm-rp");
    std::fs::create_dir_all(&dir).unwrap();
    let installed = dir.join("node_modules/openid-client/package.json");
    let script = format!(
        "set -e
         cd {dir:?}
         if ! grep -q '\"version\": \"{OPENID_CLIENT}\"' node_modules/openid-client/package.json 2>/dev/null; then
           [ -f package.json ] || echo '{{\"name\":\"milagro-npm-rp\",\"private\":true,\"type\":\"module\"}}' > package.json
           npm install --no-audit --no-fund --save-exact openid-client@{OPENID_CLIENT}
         fi"
    );
    let output = Command::new("flock")
        .arg(dir.join("install.lock"))
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run npm (node and npm must be installed): {e}"));
    assert!(
        output.status.success() && installed.exists(),
        "npm install openid-client@{OPENID_CLIENT} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/rp.mjs");
    std::fs::copy(source, dir.join("rp.mjs")).unwrap();
    dir
}

#[test]
fn openid_client_from_npm_discovers_logs_in_with_pkce_and_validates_the_id_token() {
    let dir = npm_rp();
    let w = IdpWorld::start("");
    let (status, registered) =
        w.register(&json!({"redirect_uris": [REDIRECT], "client_name": "node rp"}));
    assert_eq!(status, 201, "{registered}");

    let mut node = Command::new("node")
        .arg(dir.join("rp.mjs"))
        .args([
            &w.issuer,
            registered["client_id"].as_str().unwrap(),
            registered["client_secret"].as_str().unwrap(),
            REDIRECT,
        ])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdout = BufReader::new(node.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let failed = |node: std::process::Child| {
        let output = node.wait_with_output().unwrap();
        panic!(
            "the node relying party failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let Ok(started) = serde_json::from_str::<Value>(&line) else {
        failed(node)
    };
    let authorize = started["authorize_url"].as_str().unwrap();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", w.issuer)),
        "{authorize}"
    );

    // The login a browser would make; the relying party gets the URL it landed on.
    let landed = w.login(authorize, USER, PASSWORD).unwrap();
    writeln!(node.stdin.take().unwrap(), "{landed}").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let Ok(result) = serde_json::from_str::<Value>(&line) else {
        failed(node)
    };
    assert!(node.wait().unwrap().success());

    assert_eq!(result["issuer"], w.issuer);
    assert_eq!(
        result["milagro_birth_certificate_digest"],
        json!(w.idp.state().identity.digest().to_string())
    );
    let claims = &result["claims"];
    assert_eq!(claims["iss"], w.issuer);
    assert_eq!(claims["aud"], json!([registered["client_id"]]));
    assert_eq!(claims["preferred_username"], USER);
    assert!(
        claims["at_hash"].is_string() && claims["auth_time"].is_number(),
        "{claims}"
    );
    assert_eq!(result["userinfo"]["sub"], claims["sub"]);
}
