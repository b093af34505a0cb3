//! npm packages from outside this project run under Node (a relying party, an OpenID
//! provider), each pinned and installed once per machine into the
//! [`machine_cache_dir`](crate::machine_cache_dir), with the Node script that drives it
//! beside it. Used by the tests (`tests/src/npm.rs`) and by `milagro bench token`. Needs
//! `node`, `npm` and `flock(1)` on the PATH; a caller never skips without them, it gets an
//! error naming what is missing.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use bitcoin::hashes::{sha256, Hash as _};

/// The pinned version of `oidc-provider` (major 9), which the tests run as a third-party
/// OpenID provider and `milagro bench token` measures the IdP's token endpoint against.
pub const OIDC_PROVIDER: &str = "9.13.3";

/// Why a pinned package could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum NpmError {
    /// `flock`, `sh` or `npm` could not be run.
    #[error("cannot run npm for {package} (node, npm and flock must be installed): {source}")]
    Spawn {
        /// The package.
        package: String,
        /// What failed.
        source: std::io::Error,
    },
    /// `npm install` failed, or left no `package.json` of the package.
    #[error("npm install {package}@{version} failed:\n{stdout}\n{stderr}")]
    Install {
        /// The package.
        package: String,
        /// Its pinned version.
        version: String,
        /// What npm printed.
        stdout: String,
        /// What npm printed on stderr.
        stderr: String,
    },
    /// The folder or the script could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// What was written.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// A Node script to run beside an installed package: its file name and its text.
#[derive(Debug, Clone, Copy)]
pub struct NodeScript<'a> {
    /// The file name (e.g. `op.mjs`).
    pub name: &'a str,
    /// The script's text.
    pub text: &'a [u8],
}

/// Installs `package@version` into `folder` of the machine cache (outside the clone, so
/// fresh clones reuse it) once, under a `flock` (tests and benchmarks may run at the same
/// time), and writes `script` into a subfolder named by the script's digest, so that its
/// imports resolve in the folder's `node_modules` and clones with different versions of
/// the script, running at the same time, each run their own. Returns that subfolder.
pub fn install_pinned(
    folder: &str,
    package: &str,
    version: &str,
    script: NodeScript<'_>,
) -> Result<PathBuf, NpmError> {
    let dir = crate::machine_cache_dir().join(folder);
    let write_err = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| NpmError::Write { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    let installed = dir.join(format!("node_modules/{package}/package.json"));
    let shell = format!(
        "set -e
         cd {dir:?}
         if ! grep -q '\"version\": \"{version}\"' node_modules/{package}/package.json 2>/dev/null; then
           [ -f package.json ] || echo '{{\"name\":\"milagro-{folder}\",\"private\":true,\"type\":\"module\"}}' > package.json
           npm install --no-audit --no-fund --save-exact {package}@{version}
         fi"
    );
    let output = Command::new("flock")
        .arg(dir.join("install.lock"))
        .args(["sh", "-c", &shell])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NpmError::Spawn {
            package: package.to_owned(),
            source,
        })?;
    if !output.status.success() || !installed.exists() {
        return Err(NpmError::Install {
            package: package.to_owned(),
            version: version.to_owned(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let digest = sha256::Hash::hash(script.text).to_string();
    let scripts = dir.join(format!("script-{}", &digest[..16]));
    std::fs::create_dir_all(&scripts).map_err(write_err(&scripts))?;
    // Written whole, then renamed: a caller starting the same script meanwhile never reads
    // half of it.
    let partial = scripts.join(format!(
        "{}.{}.{}.tmp",
        script.name,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::write(&partial, script.text).map_err(write_err(&partial))?;
    let target = scripts.join(script.name);
    std::fs::rename(&partial, &target).map_err(write_err(&target))?;
    Ok(scripts)
}

/// Why a Node script did not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// `node` could not be run.
    #[error("cannot run node (it must be installed): {0}")]
    Spawn(std::io::Error),
    /// The script's first line on stdout was not the JSON it prints once it serves.
    #[error("{script} did not start: {line:?}")]
    Start {
        /// The script.
        script: String,
        /// What it printed instead.
        line: String,
    },
}

/// A Node script serving until its stdin closes (the scripts beside the pinned packages
/// print one JSON line once they serve, then run until end of input): stopped when
/// dropped, so that it never outlives its caller.
#[derive(Debug)]
pub struct NodeProcess {
    node: std::process::Child,
    // Closing it tells the script to stop.
    stdin: Option<std::process::ChildStdin>,
}

impl NodeProcess {
    /// Runs `dir/script` with `args` and `env` in `dir` (so its imports resolve in the
    /// installed `node_modules`) and returns it with the JSON of its first line. Its
    /// stdout after that line and its stderr go to this process's stderr.
    pub fn start(
        dir: &std::path::Path,
        script: &str,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
    ) -> Result<(Self, serde_json::Value), NodeError> {
        use std::io::BufRead as _;
        let mut node = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(NodeError::Spawn)?;
        let stdin = node.stdin.take();
        let stdout = node.stdout.take();
        let started = Self { node, stdin };
        let mut line = String::new();
        if let Some(stdout) = stdout {
            let mut stdout = std::io::BufReader::new(stdout);
            let _ = stdout.read_line(&mut line);
            // The script may print notices on stdout as it serves: keep reading it (into
            // stderr), or its next write fails on a closed pipe and kills it.
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut stdout, &mut std::io::stderr());
            });
        }
        match serde_json::from_str(&line) {
            Ok(first) => Ok((started, first)),
            Err(_) => Err(NodeError::Start {
                script: script.to_owned(),
                line,
            }),
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // The script exits on end of input; kill it only if it does not.
        for _ in 0..50 {
            if let Ok(Some(_)) = self.node.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.node.kill();
        let _ = self.node.wait();
    }
}
