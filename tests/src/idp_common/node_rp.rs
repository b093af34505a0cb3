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

/// `rp.mjs` running: it printed the authorization URL and waits for the URL the browser
/// landed on.
pub struct NodeRp {
    node: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    /// Where the relying party sends the browser.
    pub authorize_url: String,
}

impl NodeRp {
    /// Runs the relying party in `dir` (where [`npm_rp`] installed it) for the client
    /// `client_id`/`secret` of `issuer` with `redirect`, with the extra environment
    /// `env`; `Err` with Node's stderr if it failed before printing the URL.
    pub fn start(
        dir: &Path,
        issuer: &str,
        (client_id, secret): (&str, &str),
        redirect: &str,
        env: &[(&str, &Path)],
    ) -> Result<Self, String> {
        let (node, stdout, started) =
            run_script(dir, "rp.mjs", &[issuer, client_id, secret, redirect], env)?;
        let authorize_url = started["authorize_url"].as_str().unwrap().to_owned();
        Ok(Self {
            node,
            stdout,
            authorize_url,
        })
    }

    /// Hands the relying party the URL the browser `landed` on: it redeems the code,
    /// validates the ID token, fetches userinfo and says what it saw (or Node's stderr).
    pub fn finish(mut self, landed: &str) -> Result<Value, String> {
        writeln!(self.node.stdin.take().unwrap(), "{landed}").unwrap();
        last_result(self.node, &mut self.stdout)
    }
}

/// Node running `script` of `dir` with `args` and the extra environment `env`, its
/// stdout, and the JSON of its first line; `Err` with Node's stderr if that line is not
/// JSON (the script failed first).
fn run_script(
    dir: &Path,
    script: &str,
    args: &[&str],
    env: &[(&str, &Path)],
) -> Result<
    (
        std::process::Child,
        BufReader<std::process::ChildStdout>,
        Value,
    ),
    String,
> {
    let mut node = Command::new("node");
    node.arg(dir.join(script))
        .args(args)
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
    match serde_json::from_str::<Value>(&line) {
        Ok(first) => Ok((node, stdout, first)),
        Err(_) => Err(failed(node)),
    }
}

/// The JSON line a script prints last, once it exited successfully; `Err` with Node's
/// stderr if the line is not JSON.
fn last_result(
    mut node: std::process::Child,
    stdout: &mut BufReader<std::process::ChildStdout>,
) -> Result<Value, String> {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let Ok(result) = serde_json::from_str::<Value>(&line) else {
        return Err(failed(node));
    };
    assert!(node.wait().unwrap().success());
    Ok(result)
}

fn failed(node: std::process::Child) -> String {
    let output = node.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
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
    let client = (
        registered["client_id"].as_str().unwrap(),
        registered["client_secret"].as_str().unwrap(),
    );
    let rp = match NodeRp::start(dir, &w.issuer, client, REDIRECT, env) {
        Ok(rp) => rp,
        Err(stderr) => return (registered, Err(stderr)),
    };
    assert!(
        rp.authorize_url
            .starts_with(&format!("{}/authorize?", w.issuer)),
        "{}",
        rp.authorize_url
    );
    // The login a browser would make; the relying party gets the URL it landed on.
    let landed = w.login(&rp.authorize_url, USER, PASSWORD).unwrap();
    let result = rp.finish(&landed);
    (registered, result)
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

/// Installs `openid-client` as [`npm_rp`] does (the same folder and version) and copies
/// the CIBA relying party `tests/node/ciba.mjs` next to it.
pub fn npm_ciba() -> PathBuf {
    crate::npm::install_pinned("npm-rp", "openid-client", OPENID_CLIENT, "ciba.mjs")
}

/// `ciba.mjs` running: it asked the IdP to authenticate a person and polls for the
/// tokens.
pub struct NodeCiba {
    node: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    /// What the backchannel authentication endpoint answered (`auth_req_id`,
    /// `expires_in`, `interval`).
    pub started: Value,
}

impl NodeCiba {
    /// Runs the relying party in `dir` (where [`npm_ciba`] installed it) for the client
    /// `client_id`/`secret` of `issuer`, naming the person `login_hint` and showing
    /// `binding_message`; `Err` with Node's stderr if the request failed.
    pub fn start(
        dir: &Path,
        issuer: &str,
        (client_id, secret): (&str, &str),
        login_hint: &str,
        binding_message: &str,
    ) -> Result<Self, String> {
        let (node, stdout, started) = run_script(
            dir,
            "ciba.mjs",
            &[issuer, client_id, secret, login_hint, binding_message],
            &[],
        )?;
        Ok(Self {
            node,
            stdout,
            started,
        })
    }

    /// Waits for the relying party's tokens: what it saw of them, or Node's stderr.
    pub fn finish(mut self) -> Result<Value, String> {
        last_result(self.node, &mut self.stdout)
    }
}
