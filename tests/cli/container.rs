//! Issue 16: the container image, built from the project's own Dockerfile
//! (`deploy/container/Dockerfile`) with local base images (`deploy/container/tools.sh`
//! installs podman, runc and mmdebstrap if missing and imports a Debian minbase image:
//! no registry is reachable here) and this build's binary (`BINARY=prebuilt`). The image
//! runs as a non-root user with a HEALTHCHECK; a container of it runs `milagro network up`
//! (node included) on the host's network, and a device on the host enrols through its TBS
//! with the command `status` printed. Never skipped: a machine that cannot build the image
//! fails, naming what is missing.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::{json, milagro, stderr};

/// `podman ARGS` with the configuration that works here.
fn podman(conf: &str, args: &[&str]) -> Output {
    Command::new("podman")
        .env("CONTAINERS_CONF", conf)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("podman (deploy/container/tools.sh installs it): {e}"))
}

/// Removes the test's container, image and build layers however the test ends (the
/// imported base image stays: it is the machine's cache).
struct Cleanup {
    conf: String,
    name: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = podman(&self.conf, &["rm", "-f", "-t", "5", &self.name]);
        let _ = podman(&self.conf, &["rmi", "-f", &self.image]);
        // The build's intermediate layers too, so repeated runs do not pile them up.
        let _ = podman(&self.conf, &["image", "prune", "-f"]);
    }
}

#[test]
fn the_image_builds_from_the_dockerfile_and_a_host_device_enrols_through_the_network_it_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tools = Command::new("sh")
        .arg(root.join("deploy/container/tools.sh"))
        .output()
        .unwrap();
    assert!(
        tools.status.success(),
        "the container tools cannot be installed here: {}",
        stderr(&tools)
    );
    let conf = String::from_utf8(tools.stdout).unwrap().trim().to_owned();

    // The build context: the Dockerfile and this build's binary where BINARY=prebuilt
    // takes it from.
    let context = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(context.path().join("target/release")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_milagro"),
        context.path().join("target/release/milagro"),
    )
    .unwrap();
    std::fs::copy(
        root.join("deploy/container/Dockerfile"),
        context.path().join("Dockerfile"),
    )
    .unwrap();
    let id = std::process::id();
    let cleanup = Cleanup {
        conf: conf.clone(),
        name: format!("milagro-test-{id}"),
        image: format!("localhost/milagro-test:{id}"),
    };
    let base = "localhost/milagro-base:bookworm";
    let built = podman(
        &conf,
        &[
            "build",
            "--format",
            "docker",
            "--build-arg",
            "BINARY=prebuilt",
            // This machine's Debian mirror is a frozen snapshot (its host apt says so too).
            "--build-arg",
            "APT_ALLOW_EXPIRED=true",
            "--build-arg",
            &format!("RUNTIME_IMAGE={base}"),
            "--build-arg",
            &format!("BUILD_IMAGE={base}"),
            "-t",
            &cleanup.image,
            &context.path().display().to_string(),
        ],
    );
    assert!(built.status.success(), "podman build: {}", stderr(&built));

    let inspected = podman(
        &conf,
        &[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.Healthcheck}}",
            &cleanup.image,
        ],
    );
    let inspected = String::from_utf8_lossy(&inspected.stdout).into_owned();
    assert!(
        inspected.starts_with("milagro "),
        "runs as milagro: {inspected}"
    );
    assert!(
        inspected.contains("milagro probe"),
        "a HEALTHCHECK: {inspected}"
    );

    // The local network, node included, in one container on the host's network.
    let started = podman(
        &conf,
        &[
            "run",
            "-d",
            "--name",
            &cleanup.name,
            "--network",
            "host",
            "--entrypoint",
            "sh",
            &cleanup.image,
            "-c",
            "milagro network up --dir /var/lib/milagro/net --json > /var/lib/milagro/up.json \
             && exec sleep infinity",
        ],
    );
    assert!(started.status.success(), "podman run: {}", stderr(&started));
    let status: Value = milagro_tests::wait_until(
        "the network in the container",
        Duration::from_secs(240),
        || {
            let out = podman(
                &conf,
                &["exec", &cleanup.name, "cat", "/var/lib/milagro/up.json"],
            );
            serde_json::from_slice(&out.stdout).ok()
        },
    );
    assert!(
        status["parties"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["ready"] == true),
        "{status}"
    );
    let uid = podman(&conf, &["exec", &cleanup.name, "id", "-u"]);
    assert_eq!(String::from_utf8_lossy(&uid.stdout).trim(), "10001");

    // The image's health probe, against the TBS it serves and against nothing.
    let tbs = status["parties"][0]["url"].as_str().unwrap();
    let alive = podman(
        &conf,
        &[
            "exec",
            &cleanup.name,
            "milagro",
            "probe",
            &format!("{tbs}/healthz"),
        ],
    );
    assert!(alive.status.success(), "{}", stderr(&alive));
    let dead = podman(
        &conf,
        &[
            "exec",
            &cleanup.name,
            "milagro",
            "probe",
            "http://127.0.0.1:9/healthz",
        ],
    );
    assert!(!dead.status.success());

    // A device on the host enrols through the container's TBS, with the printed command.
    let claim = context.path().join("claim.key");
    let copied = podman(
        &conf,
        &[
            "cp",
            &format!("{}:/var/lib/milagro/net/claim.key", cleanup.name),
            &claim.display().to_string(),
        ],
    );
    assert!(copied.status.success(), "{}", stderr(&copied));
    let device = context.path().join("device").display().to_string();
    let claim = claim.display().to_string();
    let command = status["next_steps"][0].as_str().unwrap();
    let args: Vec<&str> = command
        .split_whitespace()
        .skip(1)
        .map(|arg| match arg {
            "./my-device" => device.as_str(),
            "/var/lib/milagro/net/claim.key" => claim.as_str(),
            other => other,
        })
        .collect();
    let enrolled = milagro(&args);
    assert!(
        enrolled.status.success(),
        "{command}: {}",
        stderr(&enrolled)
    );
    assert_eq!(json(&enrolled)["status"], "enrolled");
    drop(cleanup);
}
