//! `milagro pat enrol` and `milagro pat refresh` against a real TBS started in-process.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_tests::enrolment_world::EnrolmentWorld;

use super::{json, milagro, stderr};

pub(super) fn enrol_args<'a>(
    url: &'a str,
    digest: &'a str,
    group: &'a str,
    state: &'a str,
    claim_key: &'a str,
) -> Vec<&'a str> {
    vec![
        "pat",
        "enrol",
        "--tbs",
        url,
        "--tbs-digest",
        digest,
        "--tenant",
        "acme",
        "--group",
        group,
        "--state",
        state,
        "--network",
        "regtest",
        "--wait-secs",
        "30",
        "--poll-ms",
        "50",
        "--claim-key",
        claim_key,
    ]
}

/// Runs `milagro args` while the test mines whatever the TBS broadcasts.
pub(super) fn run_mining(w: &EnrolmentWorld, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_milagro"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    w.mine_while_waiting("milagro pat to finish", || child.try_wait().unwrap());
    child.wait_with_output().unwrap()
}

fn dir(home: &Path, name: &str) -> String {
    home.join(name).display().to_string()
}

#[test]
fn a_device_enrols_and_refreshes_from_the_command_line() {
    let w = EnrolmentWorld::start();
    // Each device signs its own credential with the maker's fleet claim key.
    let claim = w.maker_key_file().display().to_string();
    let dta1 = w.anchored(Role::Dta, "D-TA 1");
    let dta2 = w.anchored(Role::Dta, "D-TA 2");
    let idp = w.anchored(Role::Idp, "IdP");
    let first = w.put_group("eu", &[&dta1], &idp);
    let home = tempfile::tempdir().unwrap();
    let (url, digest) = (w.url(), w.tbs_digest.to_string());

    // A TBS that is not the provisioned one: refused, non-zero, nothing on stdout.
    let state = dir(home.path(), "pat");
    let wrong = Digest::sha256(b"another TBS").to_string();
    let refused = milagro(&enrol_args(&url, &wrong, "eu", &state, &claim));
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    assert!(
        stderr(&refused).contains(&format!(
            "the tbs serves certificate {digest}, but this device was provisioned with {wrong}"
        )),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        milagro(&enrol_args(&url, "zz", "eu", "x", &claim))
            .status
            .code(),
        Some(2)
    );

    // Enrol with the right digest (nothing was sent under the wrong one, so the same state
    // directory takes it): the device's anchor is mined while the command waits for it.
    let enrolled = run_mining(&w, &enrol_args(&url, &digest, "eu", &state, &claim));
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    let out = json(&enrolled);
    assert_eq!(out["status"], "enrolled");
    assert_eq!(out["tbs"]["digest"], digest.as_str());
    assert_eq!(
        (out["tenant"].as_str(), out["group"].as_str()),
        (Some("acme"), Some("eu"))
    );
    assert_eq!(out["sequence"], first);
    assert_eq!(out["device"]["public_key"].as_str().unwrap().len(), 66);
    assert_eq!(
        out["device"]["birth_certificate"].as_str().unwrap().len(),
        64
    );
    assert_eq!(out["anchor"]["txid"].as_str().unwrap().len(), 64);
    assert!(out["anchor"]["depth"].as_u64().unwrap() >= 1);
    assert_eq!(out["dtas"][0]["url"], "https://dta0.milagro.test");
    assert_eq!(
        out["dtas"][0]["birth_certificate"],
        dta1.digest().to_string()
    );
    assert!(out["dtas"][0]["depth"].as_u64().unwrap() >= 2);
    assert_eq!(out["idp"]["url"], "https://idp.milagro.test");
    assert_eq!(out["idp"]["birth_certificate"], idp.digest().to_string());
    assert!(
        stderr(&enrolled).contains("verified by SPV"),
        "{}",
        stderr(&enrolled)
    );

    // Again on the same state: already enrolled, no second enrolment.
    let again = milagro(&enrol_args(&url, &digest, "eu", &state, &claim));
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(json(&again)["status"], "already_enrolled");
    assert_eq!(json(&again)["anchor"]["txid"], out["anchor"]["txid"]);

    // Refresh: unchanged, then the new group revision after an operator's change.
    let refresh = ["pat", "refresh", "--state", state.as_str()];
    let unchanged = milagro(&refresh);
    assert!(unchanged.status.success(), "{}", stderr(&unchanged));
    assert_eq!(
        (
            json(&unchanged)["status"].as_str(),
            json(&unchanged)["sequence"].as_u64()
        ),
        (Some("unchanged"), Some(first))
    );
    let second = w.put_group("eu", &[&dta1, &dta2], &idp);
    let updated = milagro(&refresh);
    assert!(updated.status.success(), "{}", stderr(&updated));
    let out = json(&updated);
    assert_eq!(out["status"], "updated");
    assert_eq!(
        (out["previous_sequence"].as_u64(), out["sequence"].as_u64()),
        (Some(first), Some(second))
    );
    assert_eq!(
        out["dtas"][1]["birth_certificate"],
        dta2.digest().to_string()
    );

    // A device that gives up waiting fails, keeps its anchor, and `refresh` waits again.
    let late = dir(home.path(), "late");
    let mut args = enrol_args(&url, &digest, "eu", &late, &claim);
    let wait = args.iter().position(|a| *a == "--wait-secs").unwrap();
    args[wait + 1] = "0";
    let gave_up = milagro(&args);
    assert!(!gave_up.status.success());
    assert!(gave_up.stdout.is_empty());
    assert!(
        stderr(&gave_up).contains("fetching instructions: not ready after 0 s"),
        "{}",
        stderr(&gave_up)
    );
    let resumed = run_mining(&w, &["pat", "refresh", "--state", &late, "--poll-ms", "50"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(json(&resumed)["status"], "enrolled");
    assert_eq!(json(&resumed)["sequence"], second);

    // Refresh of a directory that holds no device fails clearly.
    let nothing = milagro(&["pat", "refresh", "--state", &dir(home.path(), "empty")]);
    assert!(!nothing.status.success());
    assert!(
        stderr(&nothing).contains("holds no provisioned device"),
        "{}",
        stderr(&nothing)
    );
}

#[test]
fn two_enrolled_devices_open_a_milagro_tls_session_from_the_command_line() {
    use std::io::{BufRead as _, BufReader};

    let w = EnrolmentWorld::start();
    // Each device signs its own credential with the maker's fleet claim key.
    let claim = w.maker_key_file().display().to_string();
    let dta = w.anchored(Role::Dta, "D-TA 1");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    let home = tempfile::tempdir().unwrap();
    let (url, digest) = (w.url(), w.tbs_digest.to_string());
    let (server, client) = (dir(home.path(), "server"), dir(home.path(), "client"));
    let mut digests = Vec::new();
    for state in [&server, &client] {
        let enrolled = run_mining(&w, &enrol_args(&url, &digest, "eu", state, &claim));
        assert!(enrolled.status.success(), "{}", stderr(&enrolled));
        digests.push(
            json(&enrolled)["device"]["birth_certificate"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    w.mine(1);

    // The server device listens for one session; the address is on its stderr.
    let mut listener = Command::new(env!("CARGO_BIN_EXE_milagro"))
        .args([
            "pat",
            "listen",
            "--state",
            &server,
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--count", "1", "--min-depth", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listener.stderr.take().unwrap()).lines();
    let addr = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("listening on ")
        .expect("the listener says where it listens")
        .to_owned();

    // Asking for another party at that address is refused, with the reason.
    let wrong = milagro(&[
        "pat",
        "ping",
        "--state",
        &client,
        "--peer",
        &digests[1],
        "--addr",
        &addr,
        "--min-depth",
        "1",
    ]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains(&format!(
            "expected the party of birth certificate {}",
            digests[1]
        )),
        "{}",
        stderr(&wrong)
    );

    let ping = milagro(&[
        "pat",
        "ping",
        "--state",
        &client,
        "--peer",
        &digests[0],
        "--addr",
        &addr,
        "--min-depth",
        "1",
    ]);
    assert!(ping.status.success(), "{}", stderr(&ping));
    let out = json(&ping);
    assert_eq!(out["protocol"], "milagro/kex/yak/v1");
    assert_eq!(out["forward_secret"], true);
    assert_eq!(out["peer"]["birth_certificate"], digests[0].as_str());
    assert_eq!(out["local"]["birth_certificate"], digests[1].as_str());
    assert!(out["peer"]["depth"].as_u64().unwrap() >= 1);

    // A refused connection does not count: the listener served this session, reported
    // it with the same id, and stopped.
    let served = listener.wait_with_output().unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(served.status.success(), "{rest:?}");
    let session: serde_json::Value =
        serde_json::from_slice(served.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(session["session_id"], out["session_id"]);
    assert_eq!(session["peer"]["birth_certificate"], digests[1].as_str());
}

/// `--electrum` and `--registry` on the command line: the device checks the TBS's chain
/// against ElectrumX and each registry's certificate against its pin, says which sources
/// agreed, and a registry serving another certificate than its pin stops the enrolment.
#[test]
fn a_device_checks_its_tbs_against_the_sources_given_on_the_command_line() {
    let w = EnrolmentWorld::start();
    // Each device signs its own credential with the maker's fleet claim key.
    let claim = w.maker_key_file().display().to_string();
    let dta = w.anchored(Role::Dta, "D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    let (second, second_digest) = w.second_tbs("second-tbs");
    let electrum = milagro_regtest::ElectrumServer::start(
        &w.node().rpc_url(),
        &w.node().cookie(),
        bitcoin::Network::Regtest,
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let (url, digest) = (w.url(), w.tbs_digest.to_string());
    let electrum_url = electrum.url();
    let with_sources = |state: &str, pin: &str| -> Vec<String> {
        let mut args: Vec<String> = enrol_args(&url, &digest, "eu", state, &claim)
            .into_iter()
            .map(str::to_owned)
            .collect();
        args.extend(["--electrum".into(), electrum_url.clone()]);
        args.extend(["--registry".into(), format!("{pin}@{}", second.local_url())]);
        args
    };

    let wrong = dir(home.path(), "wrong-pin");
    let args = with_sources(&wrong, &dta.digest().to_string());
    let refused = milagro(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&format!(
            "cannot check the tbs against {}",
            second.local_url()
        )),
        "{}",
        stderr(&refused)
    );

    let state = dir(home.path(), "pat");
    let args = with_sources(&state, &second_digest.to_string());
    let enrolled = run_mining(&w, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(enrolled.status.success(), "{}", stderr(&enrolled));
    let out = json(&enrolled);
    assert_eq!(out["sources"]["electrum"][0], electrum_url.as_str());
    assert_eq!(
        out["sources"]["registries"][0]["digest"],
        second_digest.to_string()
    );
    assert_eq!(
        out["chain"]["agreed_by"],
        serde_json::json!([url, electrum_url])
    );
}
