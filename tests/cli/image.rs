//! What the container tests share: the tools `deploy/container/tools.sh` installs (podman,
//! runc, mmdebstrap, podman-compose, the local base image), `podman` run with the
//! configuration that works here, the image built from the project's own Dockerfile with
//! this build's binary, and enrolling a host device with the command a network printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{json, milagro, stderr};

/// The local base image `tools.sh` imports (the machine's cache: never removed).
const BASE: &str = "localhost/milagro-base:bookworm";

/// The container tools of this machine, installed by `deploy/container/tools.sh`.
pub struct Tools {
    /// The `CONTAINERS_CONF` to run podman with.
    pub conf: String,
    /// The podman-compose executable.
    pub compose: PathBuf,
}

impl Tools {
    /// Installs what is missing (once per machine) and reads what `tools.sh` printed.
    /// Panics, naming what is missing, if they cannot be installed: never skipped.
    pub fn install() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("sh")
            .arg(root.join("deploy/container/tools.sh"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the container tools cannot be installed here: {}",
            stderr(&out)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            printed
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .map(|value| value.trim_matches('\'').to_owned())
                .unwrap_or_else(|| panic!("tools.sh printed no {name}: {printed}"))
        };
        Self {
            conf: var("CONTAINERS_CONF"),
            compose: PathBuf::from(var("PODMAN_COMPOSE")),
        }
    }

    /// `podman ARGS` with the configuration that works here.
    pub fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .env("CONTAINERS_CONF", &self.conf)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("podman (deploy/container/tools.sh installs it): {e}"))
    }
}

/// One image test at a time: a test's cleanup prunes dangling layers, which would pull
/// the layers from under another test's build running meanwhile.
static ONE_IMAGE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The image built from `deploy/container/Dockerfile` on the local base image, with this
/// build's binary (`BINARY=prebuilt`). Dropping it removes it and the build's intermediate
/// layers, so repeated runs do not pile them up (the base image stays). While it lives, no
/// other image test of this process builds or cleans up.
pub struct Image<'t> {
    tools: &'t Tools,
    // Released after `drop` has pruned.
    _alone: std::sync::MutexGuard<'static, ()>,
    /// Its name.
    pub name: String,
    /// Scratch space that lives as long as the image (the build context, host files).
    pub scratch: tempfile::TempDir,
}

impl<'t> Image<'t> {
    /// Builds it as `localhost/NAME:PID` and checks that it runs as the non-root user
    /// `milagro` and has a HEALTHCHECK.
    pub fn build(tools: &'t Tools, name: &str) -> Self {
        let alone = ONE_IMAGE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let scratch = tempfile::tempdir().unwrap();
        let context = scratch.path().join("context");
        std::fs::create_dir_all(context.join("target/release")).unwrap();
        std::fs::copy(
            env!("CARGO_BIN_EXE_milagro"),
            context.join("target/release/milagro"),
        )
        .unwrap();
        std::fs::copy(
            root.join("deploy/container/Dockerfile"),
            context.join("Dockerfile"),
        )
        .unwrap();
        let image = Self {
            tools,
            _alone: alone,
            name: format!("localhost/{name}:{}", std::process::id()),
            scratch,
        };
        let built = tools.podman(&[
            "build",
            "--format",
            "docker",
            "--build-arg",
            "BINARY=prebuilt",
            // This machine's Debian mirror is a frozen snapshot (its host apt says so too).
            "--build-arg",
            "APT_ALLOW_EXPIRED=true",
            "--build-arg",
            &format!("RUNTIME_IMAGE={BASE}"),
            "--build-arg",
            &format!("BUILD_IMAGE={BASE}"),
            "-t",
            &image.name,
            &context.display().to_string(),
        ]);
        assert!(built.status.success(), "podman build: {}", stderr(&built));
        let inspected = tools.podman(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.Healthcheck}}",
            &image.name,
        ]);
        let inspected = String::from_utf8_lossy(&inspected.stdout).into_owned();
        assert!(
            inspected.starts_with("milagro "),
            "runs as milagro: {inspected}"
        );
        assert!(
            inspected.contains("milagro probe"),
            "a HEALTHCHECK: {inspected}"
        );
        image
    }

    /// A path in the scratch directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }
}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        let _ = self.tools.podman(&["rmi", "-f", &self.name]);
        let _ = self.tools.podman(&["image", "prune", "-f"]);
    }
}

/// Runs the `milagro pat enrol …` command a network printed, on the host, with the claim
/// key copied out of the container (`claim` on the host for `claim_in_container`) and
/// the device's state in `device`; checks that the device enrolled.
pub fn enrol(command: &str, claim_in_container: &str, claim: &Path, device: &Path) {
    let (claim, device) = (claim.display().to_string(), device.display().to_string());
    let args: Vec<&str> = command
        .split_whitespace()
        .skip(1)
        .map(|arg| match arg {
            "./my-device" => device.as_str(),
            other if other == claim_in_container => claim.as_str(),
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
}
