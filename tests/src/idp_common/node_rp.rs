//! `openid-client` from the npm registry (pinned, installed into the machine cache,
//! `~/.cache/milagro/npm-rp`), driven by `tests/node/rp.mjs` under Node: a relying party
//! from outside this project signing in at the test IdP. Needs `node` and `npm` on the PATH; never skips.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::{IdpWorld, PASSWORD, USER};

/// The pinned version of `openid-client`.
pub const OPENID_CLIENT: &str = "6.8.9";
/// The redirect URI registered for it (nobody serves it; the test reads the redirect).
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// Installs `openid-client` into the machine cache once and copies the script next to it
/// ([`crate::npm::install_pinned`]).
pub fn npm_rp() -> PathBuf {
    crate::npm::install_pinned("npm-rp", "openid-client", OPENID_CLIENT, "rp.mjs")
}

/// Registers a client at `w`'s IdP and runs the relying party in `dir` with the extra
/// environment `env` (e.g. `NODE_EXTRA_CA_CERTS`): discovery, the code flow with PKCE
/// (this function performs the login a browser would), ID-token validation, userinfo.
/// Returns the client's registration and what the relying party printed, or what Node
/// wrote on stderr when it failed.
pub fn sign_in(w: &IdpWorld, dir: &Path, env: &[(&str, &Path)]) -> (Value, Result<Value, String>) {
    let (status, registered) =
        w.register(&json!({"redirect_uris": [REDIRECT], "client_name": "node rp"}));
    assert_eq!(status, 201, "{registered}");
    let mut node = Command::new("node");
    node.arg(dir.join("rp.mjs"))
        .args([
            &w.issuer,
            registered["client_id"].as_str().unwrap(),
            registered["client_secret"].as_str().unwrap(),
            REDIRECT,
        ])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        node.env(name, value);
    }
    let mut node = node.spawn().expect("node runs");
    let mut stdout = BufReader::new(node.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let failed = |node: std::process::Child| {
        let output = node.wait_with_output().unwrap();
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let Ok(started) = serde_json::from_str::<Value>(&line) else {
        return (registered, failed(node));
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
        return (registered, failed(node));
    };
    assert!(node.wait().unwrap().success());
    (registered, Ok(result))
}

/// Checks what the relying party saw: the issuer, the Milagro digest, the ID token's
/// claims and userinfo.
pub fn check_result(w: &IdpWorld, registered: &Value, result: &Value) {
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
