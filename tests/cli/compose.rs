//! Issue 16: the compose file (`deploy/container/compose.yaml`) brings up the network of
//! `milagro network up` with one container per party (node, tbs, idp, dta1, dta2,
//! authserver) and the one-shot `configure` step, from the image built of the project's
//! own Dockerfile (local bases: `tests/cli/image.rs`), run by podman-compose (from PyPI,
//! pinned, installed once per machine by `deploy/container/tools.sh`). Every party becomes
//! ready, a device on the host enrols with the command the network's status prints and
//! its person registers it (an activation code from the TBS's container, typed on the
//! IdP's device page) so that it collects both D-TAs' shares,
//! a party whose process is killed is restarted by the container engine (`restart:
//! on-failure`), `down` and `up -d` again resume the same parties, and `down -v` leaves no container
//! or volume behind. Never skipped: a machine that cannot run
//! it fails, naming what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::image::{enrol, Image, Tools};
use super::{milagro, stderr};

/// The long-running containers, one per party; `configure` runs once beside them.
const PARTIES: [&str; 6] = ["node", "tbs", "idp", "dta1", "dta2", "authserver"];
/// The network's directory in every container (on the shared volume).
const NET: &str = "/var/lib/milagro/net";

/// One compose project of the test (its own name, so that it touches nothing else).
/// Dropping it runs `down` with its volumes, however the test ends.
struct Project<'t> {
    tools: &'t Tools,
    image: String,
    name: String,
    file: PathBuf,
}

impl Project<'_> {
    /// `podman-compose -p NAME -f compose.yaml ARGS`, on the test's image.
    fn compose(&self, args: &[&str]) -> Output {
        Command::new(&self.tools.compose)
            .env("CONTAINERS_CONF", &self.tools.conf)
            .env("MILAGRO_IMAGE", &self.image)
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(&self.file)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", self.tools.compose.display()))
    }

    /// The container of `service`.
    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.name)
    }

    /// `podman inspect` of `service`'s container: `STATUS EXITCODE`.
    fn state(&self, service: &str) -> String {
        let out = self.tools.podman(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            &self.container(service),
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits until the one-shot step ends (once it has wired the network and every party
    /// is ready) and checks that it succeeded.
    fn wait_configured(&self) {
        let configured = milagro_tests::wait_until(
            "the configure step to end",
            Duration::from_secs(400),
            || {
                let state = self.state("configure");
                state.starts_with("exited").then_some(state)
            },
        );
        assert_eq!(configured, "exited 0", "{}", self.logs());
    }

    /// What `milagro network status --json` says, asked in the TBS's container (every
    /// container shares the network's directory); checks that each party answers
    /// `/readyz` with 200 from the host, at the URL in its certificate.
    fn status(&self) -> Value {
        let status = self.tools.podman(&[
            "exec",
            &self.container("tbs"),
            "milagro",
            "network",
            "status",
            "--dir",
            NET,
            "--json",
        ]);
        assert!(status.status.success(), "{}", stderr(&status));
        let status: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["runner"], "containers", "{status}");
        let parties = status["parties"].as_array().unwrap();
        assert_eq!(parties.len(), 5, "{status}");
        for party in parties {
            let url = format!("{}/readyz", party["url"].as_str().unwrap());
            let ready = milagro(&["probe", &url]);
            assert!(ready.status.success(), "{url}: {}", stderr(&ready));
        }
        status
    }

    /// The last lines every container logged, for a failure's message.
    fn logs(&self) -> String {
        let mut all = String::new();
        for service in ["configure"].iter().chain(PARTIES.iter()) {
            let out = self
                .tools
                .podman(&["logs", "--tail", "30", &self.container(service)]);
            all.push_str(&format!(
                "--- {service} ({}):\n{}{}\n",
                self.state(service),
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            ));
        }
        all
    }

    /// The project's containers and volumes that still exist.
    fn leftovers(&self) -> String {
        let label = format!("label=io.podman.compose.project={}", self.name);
        let containers =
            self.tools
                .podman(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]);
        let volumes =
            self.tools
                .podman(&["volume", "ls", "--filter", &label, "--format", "{{.Name}}"]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&containers.stdout),
            String::from_utf8_lossy(&volumes.stdout)
        )
        .trim()
        .to_owned()
    }
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "-t", "10"]);
    }
}

#[test]
fn the_compose_file_runs_each_party_in_its_own_container_and_a_host_device_enrols_and_gets_its_key_through_it(
) {
    let tools = Tools::install();
    let building = Instant::now();
    let image = Image::build(&tools, "milagro-compose-test");
    eprintln!("image built in {:.1} s", building.elapsed().as_secs_f64());
    // Declared after the image: dropped (down, volumes removed) before it is removed.
    let project = Project {
        tools: &tools,
        image: image.name.clone(),
        name: format!("milagro-test-{}", std::process::id()),
        file: Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/container/compose.yaml"),
    };

    let starting = Instant::now();
    let up = project.compose(&["up", "-d"]);
    assert!(up.status.success(), "podman-compose up: {}", stderr(&up));
    project.wait_configured();
    let status = project.status();
    eprintln!(
        "every party ready {:.1} s after `podman-compose up -d`",
        starting.elapsed().as_secs_f64()
    );
    // One running container per party, each healthy by its compose health check.
    for service in PARTIES {
        assert!(
            project.state(service).starts_with("running"),
            "{service}: {}",
            project.logs()
        );
        let health = tools.podman(&["healthcheck", "run", &project.container(service)]);
        assert!(
            health.status.success(),
            "{service}'s health check: {}{}",
            String::from_utf8_lossy(&health.stdout),
            stderr(&health)
        );
    }

    // A device on the host enrols through the TBS's container, with the printed command.
    let in_container = format!("{NET}/claim.key");
    let claim = image.scratch("claim.key");
    let copied = tools.podman(&[
        "cp",
        &format!("{}:{in_container}", project.container("tbs")),
        &claim.display().to_string(),
    ]);
    assert!(copied.status.success(), "{}", stderr(&copied));
    let command = status["next_steps"][0].as_str().unwrap();
    let device = image.scratch("device");
    enrol(command, &in_container, &claim, &device);

    // Its person registers it as the next steps say: the activation code from the TBS's
    // container (the network sends no mail), typed on the IdP's device page while
    // `pat register` on the host waits; the device collects both D-TAs' shares.
    let code_step = status["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|step| step.contains("network activation-code"))
        .unwrap_or_else(|| panic!("{status}"));
    let (_, in_tbs) = code_step
        .split_once(" exec tbs ")
        .unwrap_or_else(|| panic!("not run in the tbs container: {code_step}"));
    let container = project.container("tbs");
    let mut exec = vec!["exec", container.as_str()];
    exec.extend(in_tbs.split_whitespace());
    let issued = tools.podman(&exec);
    assert!(issued.status.success(), "{code_step}: {}", stderr(&issued));
    let issued: Value = serde_json::from_slice(&issued.stdout).unwrap();
    let registered = super::network::register_with_activation_code(
        &device.display().to_string(),
        status["parties"][1]["url"].as_str().unwrap(),
        issued["activation_code"].as_str().unwrap(),
    );
    assert_eq!(
        registered["dtas"].as_array().unwrap().len(),
        2,
        "{registered}"
    );

    // A party whose process dies is started again by the container engine (`restart:
    // on-failure`), and is healthy again.
    let dta1 = project.container("dta1");
    let killed = tools.podman(&["exec", &dta1, "sh", "-c", "kill -KILL -1"]);
    assert!(
        killed.status.success() || killed.status.code() == Some(137),
        "{}",
        stderr(&killed)
    );
    milagro_tests::wait_until(
        "dta1 to be restarted and healthy",
        Duration::from_secs(120),
        || {
            let restarts = tools.podman(&["inspect", "--format", "{{.RestartCount}}", &dta1]);
            let restarts: u32 = String::from_utf8_lossy(&restarts.stdout)
                .trim()
                .parse()
                .ok()?;
            let healthy = tools
                .podman(&["healthcheck", "run", &dta1])
                .status
                .success();
            (restarts >= 1 && healthy).then_some(())
        },
    );

    // `down` keeps the volume: `up -d` again resumes the same parties (same digests).
    let digests = |status: &Value| -> Vec<String> {
        status["parties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    let down = project.compose(&["down", "-t", "10"]);
    assert!(
        down.status.success(),
        "podman-compose down: {}",
        stderr(&down)
    );
    let restarting = Instant::now();
    let up = project.compose(&["up", "-d"]);
    assert!(
        up.status.success(),
        "podman-compose up again: {}",
        stderr(&up)
    );
    project.wait_configured();
    assert_eq!(digests(&project.status()), digests(&status));
    eprintln!(
        "every party ready again {:.1} s after `down` and `up -d`",
        restarting.elapsed().as_secs_f64()
    );

    let down = project.compose(&["down", "-v", "-t", "10"]);
    assert!(
        down.status.success(),
        "podman-compose down -v: {}",
        stderr(&down)
    );
    assert_eq!(project.leftovers(), "", "left behind by down -v");
}
