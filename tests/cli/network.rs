//! Issue 16: `milagro network up | status | down | logs` on a fresh directory: the
//! node, a TBS, an IdP, two D-TAs and an auth server come up anchored and ready; a
//! device enrols with the command `status` prints; a party killed with SIGKILL is
//! restarted by the supervisor, which `status` reports; a supervisor killed with SIGKILL
//! is replaced by the next `up`, which stops the parties it left running; after `down`
//! and `up` the same parties (same digests) are ready again.

use std::time::Duration;

use serde_json::Value;

use super::{json, milagro, stderr};

/// Takes the network down when the test ends, however it ends.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = milagro(&["network", "down", "--dir", &self.0]);
    }
}

fn status(dir: &str) -> Value {
    let output = milagro(&["network", "status", "--dir", dir, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    json(&output)
}

fn digests(status: &Value) -> Vec<(String, String)> {
    status["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn all_ready(status: &Value) -> bool {
    status["parties"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["ready"] == true)
}

#[test]
fn network_up_enrols_a_device_restarts_a_killed_party_and_comes_back_after_down() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("net").display().to_string();
    let _down = Down(dir.clone());
    let started = std::time::Instant::now();
    let up = milagro(&["network", "up", "--dir", &dir, "--json"]);
    assert!(up.status.success(), "{}", stderr(&up));
    eprintln!(
        "network up on a fresh directory: ready after {:?}",
        started.elapsed()
    );
    let first = json(&up);
    let roles: Vec<&str> = first["parties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["tbs", "idp", "dta", "dta", "authserver"]);
    assert!(all_ready(&first), "{first}");
    for party in first["parties"].as_array().unwrap() {
        assert!(party["depth"].as_u64().unwrap() >= 1, "{party}");
        assert_eq!(party["digest"].as_str().unwrap().len(), 64);
    }
    // The IdP signs in with M-Pin: it sums both D-TAs' server shares (it is ready, so it
    // has them), and each D-TA lists it.
    let idp_config = std::fs::read_to_string(root.path().join("net/parties/idp/idp.toml")).unwrap();
    assert_eq!(
        idp_config.matches("[[mpin.dtas]]").count(),
        2,
        "{idp_config}"
    );
    let idp_digest = first["parties"][1]["digest"].as_str().unwrap();
    let dta_config =
        std::fs::read_to_string(root.path().join("net/parties/dta1/dta.toml")).unwrap();
    let authservers = dta_config
        .lines()
        .find(|line| line.starts_with("authservers"))
        .unwrap();
    assert!(authservers.contains(idp_digest), "{dta_config}");

    // The enrolment command status prints, run as printed (into a directory of the test's).
    let enrol = first["next_steps"][0].as_str().unwrap();
    let device = root.path().join("device").display().to_string();
    let args: Vec<String> = enrol
        .split_whitespace()
        .skip(1) // "milagro"
        .map(|arg| {
            if arg == "./my-device" {
                device.clone()
            } else {
                arg.to_owned()
            }
        })
        .collect();
    assert!(args.contains(&"--claim-key".to_owned()), "{enrol}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let enrolled = milagro(&args);
    assert!(enrolled.status.success(), "{enrol}: {}", stderr(&enrolled));
    assert_eq!(json(&enrolled)["status"], "enrolled");

    // Its person registers it without a password, as the next steps say: the operator's
    // activation code (the network sends no mail), typed with the address on the IdP's
    // device page while `pat register` waits; the device ends with its M-Pin key from
    // both D-TAs.
    let steps: Vec<&str> = first["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let code_step = steps
        .iter()
        .find(|s| s.contains("network activation-code"))
        .unwrap_or_else(|| panic!("{steps:?}"));
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("milagro pat register --state ./my-device")),
        "{steps:?}"
    );
    let issuer = first["parties"][1]["url"].as_str().unwrap();
    let registered = register_with_activation_code(&device, issuer, &activation_code(code_step));
    assert_eq!(registered["status"], "registered", "{registered}");
    assert_eq!(
        registered["dtas"].as_array().unwrap().len(),
        2,
        "{registered}"
    );
    assert!(root.path().join("device/mpin-key.json").exists());

    // A party killed: the supervisor starts it again and says so.
    let supervisor: Value =
        serde_json::from_slice(&std::fs::read(root.path().join("net/supervisor.json")).unwrap())
            .unwrap();
    let pid = supervisor["parties"]["dta1"]["pid"]
        .as_u64()
        .unwrap()
        .to_string();
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    let restarted =
        milagro_tests::wait_until("dta1 to be restarted", Duration::from_secs(60), || {
            let now = status(&dir);
            let dta1 = now["parties"][2].clone();
            (dta1["restarts"] == 1 && dta1["ready"] == true).then_some(dta1)
        });
    assert!(
        restarted["last_exit"].as_str().unwrap().contains("9"),
        "{restarted}"
    );
    let log = milagro(&["network", "logs", "--dir", &dir, "supervisor"]);
    assert!(String::from_utf8_lossy(&log.stdout).contains("a party ended"));

    // The supervisor killed with SIGKILL: its parties keep running, orphaned. `up` starts
    // a new supervisor, which stops the orphans before it starts the parties again.
    let supervisor_pid = std::fs::read_to_string(root.path().join("net/supervisor.pid")).unwrap();
    let before: Value =
        serde_json::from_slice(&std::fs::read(root.path().join("net/supervisor.json")).unwrap())
            .unwrap();
    let orphan = before["parties"]["tbs"]["pid"].as_u64().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", supervisor_pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let recovered = milagro(&["network", "up", "--dir", &dir, "--json"]);
    assert!(recovered.status.success(), "{}", stderr(&recovered));
    let recovered = json(&recovered);
    assert!(all_ready(&recovered), "{recovered}");
    assert_ne!(recovered["supervisor"].to_string(), supervisor_pid.trim());
    assert!(
        !milagro_regtest::pid_alive(u32::try_from(orphan).unwrap()),
        "the orphaned tbs (pid {orphan}) was stopped"
    );

    // Down, then up again: the same parties, ready.
    let down = milagro(&["network", "down", "--dir", &dir]);
    assert!(down.status.success(), "{}", stderr(&down));
    let stopped = status(&dir);
    assert!(stopped["supervisor"].is_null(), "{stopped}");
    assert!(stopped["parties"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["ready"] == false));
    let again = milagro(&["network", "up", "--dir", &dir, "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let again = json(&again);
    assert!(all_ready(&again), "{again}");
    assert_eq!(digests(&again), digests(&first));
}

/// Runs the activation-code step `code_step` as printed (`milagro network
/// activation-code … --email you@example.com`): the activation code.
fn activation_code(code_step: &str) -> String {
    let args: Vec<&str> = code_step.split_whitespace().skip(1).collect();
    let issued = milagro(&args);
    assert!(issued.status.success(), "{code_step}: {}", stderr(&issued));
    let issued = json(&issued);
    assert_eq!(issued["email"], REGISTERING);
    issued["activation_code"].as_str().unwrap().to_owned()
}

/// The address the next steps register a device for.
pub(super) const REGISTERING: &str = "you@example.com";

/// `milagro pat register --email you@example.com` for the device at `device`, the person
/// typing the activation code `code` on the device page of the IdP at `issuer`: the
/// command's answer.
pub(super) fn register_with_activation_code(device: &str, issuer: &str, code: &str) -> Value {
    let http = milagro_tests::idp_common::no_redirect_client();
    super::mpin_world::pat_register(device, REGISTERING, |user_code| {
        let (status, page) =
            milagro_tests::idp_common::email_device(&http, issuer, user_code, REGISTERING, code);
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Device connected"), "{page}");
    })
}
