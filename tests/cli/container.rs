//! Issue 16: the container image, built from the project's own Dockerfile
//! (`deploy/container/Dockerfile`) with local base images (`deploy/container/tools.sh`
//! installs podman, runc and mmdebstrap if missing and imports a Debian minbase image:
//! no registry is reachable here) and this build's binary (`BINARY=prebuilt`). The image
//! runs as a non-root user with a HEALTHCHECK; a container of it runs `milagro network up`
//! (node included) on the host's network, and a device on the host enrols through its TBS
//! with the command `status` printed. Never skipped: a machine that cannot build the image
//! fails, naming what is missing.

use std::time::Duration;

use serde_json::Value;

use super::image::{enrol, Image, Tools};
use super::stderr;

/// Removes the test's container however the test ends.
struct Container<'t> {
    tools: &'t Tools,
    name: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // With `-v`: the anonymous volume the image's `VOLUME` made for it goes too.
        let _ = self
            .tools
            .podman(&["rm", "-f", "-v", "-t", "5", &self.name]);
    }
}

#[test]
fn the_image_builds_from_the_dockerfile_and_a_host_device_enrols_through_the_network_it_runs() {
    let tools = Tools::install();
    let image = Image::build(&tools, "milagro-test");
    // Declared after the image: dropped (removed) before it.
    let container = Container {
        tools: &tools,
        name: format!("milagro-test-{}", std::process::id()),
    };

    // The local network, node included, in one container on the host's network.
    let started = tools.podman(&[
        "run",
        "-d",
        "--name",
        &container.name,
        "--network",
        "host",
        "--entrypoint",
        "sh",
        &image.name,
        "-c",
        "milagro network up --dir /var/lib/milagro/net --json > /var/lib/milagro/up.json \
         && exec sleep infinity",
    ]);
    assert!(started.status.success(), "podman run: {}", stderr(&started));
    let status: Value = milagro_tests::wait_until(
        "the network in the container",
        Duration::from_secs(240),
        || {
            let out = tools.podman(&["exec", &container.name, "cat", "/var/lib/milagro/up.json"]);
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
    let uid = tools.podman(&["exec", &container.name, "id", "-u"]);
    assert_eq!(String::from_utf8_lossy(&uid.stdout).trim(), "10001");

    // The image's health probe, against the TBS it serves and against nothing.
    let tbs = status["parties"][0]["url"].as_str().unwrap();
    let alive = tools.podman(&[
        "exec",
        &container.name,
        "milagro",
        "probe",
        &format!("{tbs}/healthz"),
    ]);
    assert!(alive.status.success(), "{}", stderr(&alive));
    let dead = tools.podman(&[
        "exec",
        &container.name,
        "milagro",
        "probe",
        "http://127.0.0.1:9/healthz",
    ]);
    assert!(!dead.status.success());

    // A device on the host enrols through the container's TBS, with the printed command.
    let in_container = "/var/lib/milagro/net/claim.key";
    let claim = image.scratch("claim.key");
    let copied = tools.podman(&[
        "cp",
        &format!("{}:{in_container}", container.name),
        &claim.display().to_string(),
    ]);
    assert!(copied.status.success(), "{}", stderr(&copied));
    let command = status["next_steps"][0].as_str().unwrap();
    enrol(command, in_container, &claim, &image.scratch("device"));
}
