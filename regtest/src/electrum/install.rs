//! Installing ElectrumX from PyPI into a virtual environment, once per machine.
//!
//! Layout in the cache directory (all named after [`ELECTRUMX_VERSION`]):
//!
//! ```text
//! electrumx-1.20.0.lock       flock(2) lock file: one installer at a time across processes
//! electrumx-1.20.0.staging/   the venv being built (only ever under the lock)
//! electrumx-1.20.0/           the finished venv, renamed from .staging in one step
//!   bin/milagro-electrumx    wrapper that runs the venv's electrumx_server
//!   milagro-requirements.txt the pins it was built from (a changed pin list reinstalls)
//! ```
//!
//! The lock is taken before anything is looked at, so a second process waits for the first
//! to finish and then finds the venv ready. A staging directory found under the lock was left
//! by a killed install and is deleted. The finished directory appears only by `rename`, so a
//! killed install never leaves a half-made `electrumx-1.20.0/`.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{run, tail, RunError};

/// The ElectrumX release installed (PyPI package `e-x`).
///
/// Not 2.0: ElectrumX 2.0 refuses any node older than Bitcoin Core 31 (it needs Core's
/// `txospenderindex` for protocol 1.7), and the workspace's node is Bitcoin Knots 29.
/// 1.20 speaks protocol 1.4 to 1.6 and needs Core 28 or later with `-txindex=1`.
pub const ELECTRUMX_VERSION: &str = "1.20.0";

/// Every package of the virtual environment, pinned: ElectrumX, the LevelDB binding it
/// needs (`plyvel`, whose manylinux wheels bundle LevelDB, so nothing is compiled) and what
/// pip resolved for them on CPython 3.11 (2026-12).
pub const ELECTRUMX_REQUIREMENTS: &[&str] = &[
    "e-x==1.20.0",
    "plyvel==1.5.1",
    "aiorpcx[ws]==0.25.0",
    "aiohttp==3.14.5",
    "aiohappyeyeballs==2.7.1",
    "aiosignal==1.4.0",
    "attrs==26.1.0",
    "frozenlist==1.8.0",
    "idna==3.21",
    "multidict==7.2.1",
    "propcache==0.5.4",
    "typing_extensions==4.16.0",
    "websockets==17.4",
    "yarl==1.25.1",
];

/// The Python that builds the virtual environment (ElectrumX needs 3.10 or later).
const PYTHON: &str = "python3";
/// The wrapper script inside the venv's `bin/`.
const WRAPPER: &str = "milagro-electrumx";
/// The pins a venv was built from, inside it.
const PINS_FILE: &str = "milagro-requirements.txt";
const VENV_TIMEOUT: Duration = Duration::from_secs(120);
const PIP_TIMEOUT: Duration = Duration::from_secs(600);
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// A usable ElectrumX, as left in the cache by [`install_electrumx`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Electrumx {
    /// Runs the venv's `electrumx_server` (configured through environment variables).
    pub server: PathBuf,
    /// The virtual environment's directory.
    pub home: PathBuf,
    /// ElectrumX's own version, as its package reports it (e.g. `1.20.0`).
    pub version: String,
}

/// Why ElectrumX could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ElectrumxInstallError {
    /// A file-system operation on the cache failed.
    #[error("could not {action} {}", path.display())]
    Io {
        /// What was being done, e.g. "lock".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command could not be started (e.g. no `python3` on the `PATH`).
    #[error("could not run {command}")]
    Spawn {
        /// The command, e.g. `python3 -m venv DIR`.
        command: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command exited unsuccessfully (pip could not reach PyPI, no wheel for this Python…).
    #[error("{command} failed ({status}): {output}")]
    CommandFailed {
        /// The command.
        command: String,
        /// Its exit status.
        status: String,
        /// The tail of what it printed.
        output: String,
    },
    /// A command did not finish in time and was killed.
    #[error("{command} did not finish within {} s", after.as_secs())]
    TimedOut {
        /// The command.
        command: String,
        /// How long it was given.
        after: Duration,
    },
    /// The freshly built environment does not import ElectrumX and LevelDB at the pinned
    /// version.
    #[error("the electrumx environment in {} is unusable: {detail}", home.display())]
    Unusable {
        /// The virtual environment.
        home: PathBuf,
        /// What the check found.
        detail: String,
    },
}

fn io_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> ElectrumxInstallError {
    let path = path.to_path_buf();
    move |source| ElectrumxInstallError::Io {
        action,
        path,
        source,
    }
}

/// The `electrumx_server` wrapper from [`install_electrumx`] into the
/// [`machine_cache_dir`](crate::machine_cache_dir) (installing it on first use).
pub fn electrumx_exe() -> Result<PathBuf, ElectrumxInstallError> {
    Ok(install_electrumx(&crate::machine_cache_dir())?.server)
}

/// Makes sure `cache/electrumx-VERSION/` holds a working ElectrumX and returns it.
///
/// Fast and offline when a previous install still imports at the same pins. Otherwise, under
/// an exclusive lock on `cache/electrumx-VERSION.lock`: `python3 -m venv` into a staging
/// directory, `pip install` of [`ELECTRUMX_REQUIREMENTS`] (LevelDB only as a wheel, never
/// compiled), a wrapper script, an import check, then one `rename` to the final name.
/// Needs PyPI on the first run (about 6 MB of downloads, about 20 s).
pub fn install_electrumx(cache: &Path) -> Result<Electrumx, ElectrumxInstallError> {
    fs::create_dir_all(cache).map_err(io_err("create directory", cache))?;
    let cache = cache
        .canonicalize()
        .map_err(io_err("resolve directory", cache))?;
    let name = format!("electrumx-{ELECTRUMX_VERSION}");
    let home = cache.join(&name);
    let _lock = lock(&cache.join(format!("{name}.lock")))?;
    if let Ok(ready) = check(&home) {
        return Ok(ready);
    }

    let started = Instant::now();
    tracing::info!(home = %home.display(), "installing ElectrumX {ELECTRUMX_VERSION} from PyPI");
    let staging = cache.join(format!("{name}.staging"));
    // Under the lock, a staging directory can only be a killed install's leftover.
    remove_if_present(&staging)?;
    build(&staging)?;
    check(&staging)?;
    if home.exists() {
        // A broken or outdated install: set it aside, then delete it.
        let old = cache.join(format!("{name}.old"));
        remove_if_present(&old)?;
        fs::rename(&home, &old).map_err(io_err("move aside the previous install", &home))?;
        remove_if_present(&old)?;
    }
    fs::rename(&staging, &home).map_err(io_err("move the finished install to", &home))?;
    let ready = check(&home)?;
    tracing::info!(
        version = %ready.version,
        seconds = started.elapsed().as_secs_f32(),
        "ElectrumX installed"
    );
    Ok(ready)
}

/// Creates the venv in `dir`, installs the pins and writes the wrapper and the pins file.
fn build(dir: &Path) -> Result<(), ElectrumxInstallError> {
    let dir_text = dir.display().to_string();
    run_ok(
        Command::new(PYTHON).args(["-m", "venv", &dir_text]),
        &format!("{PYTHON} -m venv {dir_text}"),
        VENV_TIMEOUT,
    )?;
    let python = dir.join("bin/python3");
    run_ok(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--no-input",
                "--only-binary",
                "plyvel",
            ])
            .args(ELECTRUMX_REQUIREMENTS),
        &format!(
            "pip install {} (into {dir_text})",
            ELECTRUMX_REQUIREMENTS.join(" ")
        ),
        PIP_TIMEOUT,
    )?;
    // The console script's shebang names the staging path, which the rename invalidates:
    // the wrapper runs it through the venv's own interpreter, found relative to itself.
    let wrapper = dir.join("bin").join(WRAPPER);
    let script = "#!/bin/sh\n\
        # ElectrumX from this virtual environment (milagro-regtest); relative, so the\n\
        # directory can be renamed.\n\
        here=$(dirname \"$0\")\n\
        exec \"$here/python3\" \"$here/electrumx_server\" \"$@\"\n";
    write_executable(&wrapper, script)?;
    let pins = dir.join(PINS_FILE);
    fs::write(&pins, pins_text()).map_err(io_err("write", &pins))
}

/// Checks an install in place: the pins match and the venv imports ElectrumX and LevelDB.
fn check(home: &Path) -> Result<Electrumx, ElectrumxInstallError> {
    let unusable = |detail: String| ElectrumxInstallError::Unusable {
        home: home.to_path_buf(),
        detail,
    };
    let pins = fs::read_to_string(home.join(PINS_FILE))
        .map_err(|e| unusable(format!("no {PINS_FILE}: {e}")))?;
    if pins != pins_text() {
        return Err(unusable("built from other pins".into()));
    }
    let server = home.join("bin").join(WRAPPER);
    if !server.is_file() {
        return Err(unusable(format!("no {}", server.display())));
    }
    let done = run_ok(
        Command::new(home.join("bin/python3")).args([
            "-c",
            "import electrumx, plyvel; print(electrumx.__version__)",
        ]),
        &format!(
            "{}/bin/python3 -c 'import electrumx, plyvel'",
            home.display()
        ),
        CHECK_TIMEOUT,
    )
    .map_err(|e| unusable(e.to_string()))?;
    let version = done.trim().to_owned();
    if version != ELECTRUMX_VERSION {
        return Err(unusable(format!(
            "electrumx reports version {version:?}, expected {ELECTRUMX_VERSION}"
        )));
    }
    Ok(Electrumx {
        server,
        home: home.to_path_buf(),
        version,
    })
}

fn pins_text() -> String {
    let mut text = ELECTRUMX_REQUIREMENTS.join("\n");
    text.push('\n');
    text
}

/// Takes an exclusive `flock` on `path`, waiting for another process's install to finish;
/// released when the returned file is closed.
fn lock(path: &Path) -> Result<File, ElectrumxInstallError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("open lock file", path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io_err("lock", path)(e.into()))?;
    Ok(file)
}

fn remove_if_present(dir: &Path) -> Result<(), ElectrumxInstallError> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_err("remove directory", dir)(e))
        }
        _ => Ok(()),
    }
}

fn write_executable(path: &Path, text: &str) -> Result<(), ElectrumxInstallError> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).map_err(io_err("write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(io_err("make executable", path))
}

/// Runs a command to completion; its stdout on success, a typed error naming `label` else.
fn run_ok(
    cmd: &mut Command,
    label: &str,
    timeout: Duration,
) -> Result<String, ElectrumxInstallError> {
    let done = run(cmd.env("LC_ALL", "C.UTF-8"), timeout).map_err(|e| match e {
        RunError::Spawn(source) | RunError::Wait(source) => ElectrumxInstallError::Spawn {
            command: label.to_owned(),
            source,
        },
        RunError::TimedOut => ElectrumxInstallError::TimedOut {
            command: label.to_owned(),
            after: timeout,
        },
    })?;
    if done.status.success() {
        Ok(done.stdout)
    } else {
        Err(ElectrumxInstallError::CommandFailed {
            command: label.to_owned(),
            status: done.status.to_string(),
            output: tail(&format!("{}\n{}", done.stdout, done.stderr), 15),
        })
    }
}
