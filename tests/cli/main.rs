//! The `milagro` binary end to end against a real regtest `bitcoind`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use milagro_anchor::digest::Digest;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::RecordStore;
use milagro_tests::{party, TestNode};
use serde_json::Value;

mod apache_mpin;
mod bench_token;
mod compose;
mod container;
mod https;
mod image;
mod init;
mod mpin_world;
mod network;
mod pat;
mod pat_ciba;
mod pat_mpin;
mod pat_provider;
mod pat_register;
mod pat_signin;
mod served;
mod tbs_crash;

fn milagro(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_milagro"))
        .args(args)
        .output()
        .unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct Cli {
    url: String,
    cookie: String,
}

impl Cli {
    fn new(node: &TestNode) -> Self {
        Self {
            url: node.rpc_url(),
            cookie: node.cookie().display().to_string(),
        }
    }

    fn with_node(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--rpc-url", &self.url, "--rpc-cookie", &self.cookie]);
        milagro(&all)
    }
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn a_birth_certificate_is_created_anchored_and_verified_from_the_command_line() {
    let node = TestNode::start();
    let cli = Cli::new(&node);
    let dir = tempfile::tempdir().unwrap();
    let (key, bc, db) = (
        path(dir.path(), "dta.key"),
        path(dir.path(), "bc.json"),
        path(dir.path(), "db"),
    );

    let created = milagro(&[
        "bc",
        "new",
        "--role",
        "dta",
        "--name",
        "D-TA 1",
        "--endpoint",
        "https://dta1.milagro.test",
        "--key-file",
        &key,
        "--out",
        &bc,
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let digest = json(&created)["digest"].as_str().unwrap().to_owned();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");

    let anchored = cli.with_node(&["bc", "anchor", &bc, "--key-file", &key]);
    assert!(anchored.status.success(), "{}", stderr(&anchored));
    let txid = json(&anchored)["txid"].as_str().unwrap().to_owned();

    // Unconfirmed: not anchored yet, and the exit status says so.
    let pending = cli.with_node(&["bc", "verify", &bc, "--db", &db]);
    assert!(!pending.status.success());
    assert_eq!(json(&pending)["anchored"], false);

    node.mine(1);
    let verified = cli.with_node(&["bc", "verify", &bc, "--db", &db]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    let verdict = json(&verified);
    assert_eq!(verdict["anchored"], true);
    assert_eq!(verdict["txid"], txid.as_str());
    assert_eq!(verdict["depth"], 1);
    assert_eq!(verdict["digest"], digest.as_str());

    let too_shallow = cli.with_node(&["bc", "verify", &bc, "--db", &db, "--min-depth", "6"]);
    assert!(!too_shallow.status.success());
    assert_eq!(json(&too_shallow)["anchored"], false);
    assert_eq!(json(&too_shallow)["depth"], 1);

    let shown = milagro(&["registry", "show", &digest, "--db", &db]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_eq!(json(&shown)[0]["txid"], txid.as_str());
    let unknown = milagro(&[
        "registry",
        "show",
        &Digest::sha256(b"nobody").to_string(),
        "--db",
        &db,
    ]);
    assert!(!unknown.status.success());

    // A tampered certificate is refused before any chain lookup.
    let text = std::fs::read_to_string(&bc)
        .unwrap()
        .replace("D-TA 1", "D-TA 9");
    std::fs::write(&bc, text).unwrap();
    let tampered = cli.with_node(&["bc", "verify", &bc, "--db", &db]);
    assert!(!tampered.status.success());
    assert!(
        stderr(&tampered).contains("signature does not verify"),
        "{}",
        stderr(&tampered)
    );
}

#[test]
fn bad_arguments_get_clear_errors_and_a_failing_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let missing = milagro(&[
        "bc",
        "anchor",
        &path(dir.path(), "none.json"),
        "--key-file",
        "k",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--rpc-cookie",
        "c",
    ]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );
    let bad_role = milagro(&[
        "bc",
        "new",
        "--role",
        "king",
        "--name",
        "x",
        "--key-file",
        &path(dir.path(), "k"),
        "--out",
        &path(dir.path(), "o"),
    ]);
    assert!(!bad_role.status.success());
    let bad_digest = milagro(&["registry", "show", "abcd", "--db", &path(dir.path(), "db")]);
    assert!(!bad_digest.status.success());
    let no_node = milagro(&[
        "registry",
        "sync",
        "--db",
        &path(dir.path(), "db"),
        "--rpc-url",
        "http://127.0.0.1:1",
        "--rpc-cookie",
        &path(dir.path(), "cookie"),
    ]);
    assert!(!no_node.status.success());
    assert!(
        stderr(&no_node).contains("cannot reach the node"),
        "{}",
        stderr(&no_node)
    );
}

#[test]
fn a_sync_killed_with_sigkill_resumes_without_loss_or_duplicates() {
    let node = TestNode::start();
    let cli = Cli::new(&node);
    let mut digests = Vec::new();
    for block in 0..120 {
        for i in 0..2 {
            let (key, _) = party(
                milagro_anchor::birth_certificate::Role::Pat,
                &format!("device {block}-{i}"),
            );
            let digest = Digest::sha256(format!("device {block}-{i}").as_bytes());
            node.anchor(&key, Payload::new(RecordKind::BirthCertificate, digest));
            digests.push(digest);
        }
        node.mine(1);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = path(dir.path(), "db");
    let args = [
        "registry",
        "sync",
        "--db",
        &db,
        "--step",
        "1",
        "--rpc-url",
        &cli.url,
        "--rpc-cookie",
        &cli.cookie,
    ];
    for delay_ms in [30, 60, 120, 240] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_milagro"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever the kill interrupted, the index holds whole blocks: every record it
        // counts is findable, and every block below its tip is complete.
        let store = RedbStore::open(Path::new(&db)).unwrap();
        let tip = store.tip().unwrap().map_or(0, |t| t.height);
        let found = digests
            .iter()
            .filter(|d| store.by_digest(d).unwrap().len() == 1)
            .count() as u64;
        assert_eq!(store.record_count().unwrap(), found);
        assert_eq!(found, 2 * u64::from(tip.saturating_sub(101)), "tip {tip}");
        eprintln!("killed after {delay_ms} ms at height {tip} with {found} records");
    }
    let finished = milagro(&args);
    assert!(finished.status.success(), "{}", stderr(&finished));
    assert_eq!(json(&finished)["records"], 240);
    let store = RedbStore::open(Path::new(&db)).unwrap();
    assert_eq!(store.record_count().unwrap(), 240);
    for digest in &digests {
        assert_eq!(store.by_digest(digest).unwrap().len(), 1, "{digest}");
    }
}

#[test]
fn the_demo_runs_end_to_end_and_reports_what_it_verified() {
    let demo = milagro(&["demo"]);
    assert!(demo.status.success(), "{}", stderr(&demo));
    let summary = json(&demo);
    let parties = summary["parties"].as_array().unwrap();
    assert_eq!(parties.len(), 4);
    assert!(parties.iter().all(|p| p["verdict"]["anchored"] == true));
    assert_eq!(summary["reorg"]["anchored_after_reorg"], false);
    assert_eq!(summary["reorg"]["anchored_after_re_mining"], true);
    let devices = summary["tbs"]["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 3);
    for device in devices {
        assert_eq!(device["dtas"].as_array().unwrap().len(), 2);
        assert!(device["idp"]["url"].is_string());
        // Its TBS and the Electrum server on the second node agreed on its chain.
        let agreed: Vec<_> = device["agreed_by"].as_array().unwrap().iter().collect();
        assert_eq!(agreed.len(), 2, "{device}");
        assert!(agreed[0].as_str().unwrap().starts_with("http://"));
        assert!(agreed[1].as_str().unwrap().starts_with("tcp://"));
    }
    let modes: Vec<_> = devices
        .iter()
        .map(|d| d["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["direct", "direct", "batch"]);
    assert_eq!(devices[2]["group"], "fleet");
    assert!(devices[2]["batch_root"].is_string());
    assert!(devices[0]["batch_root"].is_null());

    // meter-1 and D-TA 1 agreed a key over Milagro TLS: YAK over their own anchors.
    let session = &summary["tbs"]["milagro_tls"];
    assert_eq!(session["protocol"], "milagro/kex/yak/v1");
    assert_eq!(session["session_id"].as_str().unwrap().len(), 64);
    assert_eq!(session["local"]["name"], "meter-1");
    assert_eq!(
        session["local"]["anchor"],
        format!("{}:0", devices[0]["txid"].as_str().unwrap())
    );
    assert_eq!(session["peer"]["role"], "dta");
    assert_eq!(
        session["peer"]["birth_certificate"],
        parties[2]["verdict"]["digest"]
    );

    // A badge collected shares from two D-TAs and logged in with its PIN only; the wrong
    // PIN and a key from one D-TA's shares were refused.
    let mpin = &summary["mpin"];
    assert_eq!(mpin["dtas"].as_array().unwrap().len(), 2);
    let mpin_id = mpin["mpin_id"].as_str().unwrap();
    assert_eq!(mpin_id.len(), 64);
    assert_eq!(mpin["login"]["sub"], mpin_id);
    assert_eq!(
        mpin["login"]["milagro_birth_certificate_digest"],
        mpin["authserver"]
    );
    assert_eq!(mpin["login"]["milagro_permit_day"], mpin["permit_day"]);
    assert_eq!(mpin["wrong_pin"], "login_refused");
    assert_eq!(mpin["one_dta_key"], "login_refused");

    // The person registered the badge by e-mail (no password), and a relying party signed
    // them in through the IdP's sign-in page, the badge approving its access number; the
    // ID token says M-Pin, and the wrong PIN was refused.
    let signin = &summary["signin"];
    assert_eq!(signin["access_number"].as_str().unwrap().len(), 9);
    assert_eq!(signin["wrong_pin"], "login_refused");
    let claims = &signin["id_token_claims"];
    assert_eq!(claims["iss"], summary["idp"]["issuer"]);
    assert_eq!(claims["aud"], serde_json::json!([signin["client_id"]]));
    assert_eq!(claims["amr"], serde_json::json!(["pin", "swk", "mfa"]));
    assert_eq!(claims["acr"], milagro_idp::authentication::ACR_MPIN);
}
