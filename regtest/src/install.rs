//! Getting a working `bitcoind` into a private prefix, once per machine (DESIGN.md §6).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::process::{pid_alive, run, tail, Finished, RunError};

mod apt;
mod prefix;

use apt::{fetch_packages, unpack};
pub use prefix::UnresolvedLibrary;
use prefix::{check_libraries, loader_command, wrapper_script, write_executable};

const STAGING_PREFIX: &str = ".bitcoind-install-";
const LOCAL_TIMEOUT: Duration = Duration::from_secs(120);

/// Serializes installs within one process (tests call [`install`] from several threads).
/// Separate processes race safely: each stages privately and the loser discards its copy.
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

/// A usable `bitcoind`, as left in the cache by [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Wrapper script that runs `bitcoind` through the prefix's own loader; use it as
    /// `BITCOIND_EXE` or pass it to `bitcoind::BitcoinD::new`.
    pub bitcoind: PathBuf,
    /// Wrapper script for `bitcoin-cli`.
    pub bitcoin_cli: PathBuf,
    /// First line of `bitcoind --version`, e.g. `Bitcoin Knots daemon version v29.4.3...`.
    pub version: String,
}

/// Why [`install`] could not provide a working `bitcoind`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The recipe only knows x86-64 Linux binaries.
    #[error("installing bitcoind is only supported on x86_64 linux, not {arch} {os}")]
    Unsupported {
        /// `std::env::consts::OS`.
        os: &'static str,
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },
    /// A file-system operation on the cache failed.
    #[error("could not {action} {}", path.display())]
    Io {
        /// What was being done, e.g. "create directory".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command could not be started (e.g. `apt-get` is not installed).
    #[error("could not run {command}")]
    Spawn {
        /// The command, e.g. `apt-get update`.
        command: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command exited unsuccessfully.
    #[error("{command} failed ({status}): {stderr}")]
    CommandFailed {
        /// The command, e.g. `apt-get update`.
        command: String,
        /// Its exit status.
        status: String,
        /// The tail of its standard error.
        stderr: String,
    },
    /// A command did not finish in time and was killed.
    #[error("{command} did not finish within {} s", after.as_secs())]
    TimedOut {
        /// The command.
        command: String,
        /// How long it was given.
        after: Duration,
    },
    /// One package of the recipe could not be downloaded (renamed or dropped from Debian?).
    #[error("apt-get download failed for package {package}: {stderr}")]
    DownloadFailed {
        /// The Debian package name.
        package: String,
        /// The tail of apt-get's standard error.
        stderr: String,
    },
    /// The unpacked packages do not contain a file the recipe relies on.
    #[error("the unpacked packages contain no {}", path.display())]
    MissingFile {
        /// The expected file.
        path: PathBuf,
    },
    /// Some shared libraries of a binary do not resolve inside the prefix.
    #[error("{} needs libraries that do not resolve inside the prefix: {}",
        binary.display(), list(libraries))]
    MissingLibraries {
        /// The binary that was checked.
        binary: PathBuf,
        /// The offending libraries.
        libraries: Vec<UnresolvedLibrary>,
    },
    /// `bitcoind --version` ran but did not print a version.
    #[error("{} --version printed no version: {output}", exe.display())]
    BadVersion {
        /// The program that was run.
        exe: PathBuf,
        /// The tail of what it printed.
        output: String,
    },
}

fn list(libraries: &[UnresolvedLibrary]) -> String {
    let names: Vec<String> = libraries.iter().map(ToString::to_string).collect();
    names.join(", ")
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_path_buf();
    move |source| InstallError::Io {
        action,
        path,
        source,
    }
}

/// Makes sure `cache/bitcoind/` holds a working `bitcoind` and returns its wrapper scripts.
///
/// Fast and offline when a previous install still runs (`bin/bitcoind --version` succeeds).
/// Otherwise downloads about 15 MB of Debian packages with a private apt configuration
/// (never touching `/etc/apt` or the system's package state), unpacks them into a staging
/// directory inside `cache`, checks that every library resolves inside that prefix and that
/// `bitcoind --version` runs, and only then renames the result to `cache/bitcoind/`. A killed
/// install therefore never leaves a half-filled `cache/bitcoind/` behind.
pub fn install(cache: &Path) -> Result<Installed, InstallError> {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    if os != "linux" || arch != "x86_64" {
        return Err(InstallError::Unsupported { os, arch });
    }
    let _guard = INSTALL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    fs::create_dir_all(cache).map_err(io_err("create directory", cache))?;
    // The wrapper scripts hold an absolute path, so resolve it once.
    let cache = cache
        .canonicalize()
        .map_err(io_err("resolve directory", cache))?;
    let home = cache.join("bitcoind");
    if let Ok(installed) = verify(&home) {
        return Ok(installed);
    }

    let started = std::time::Instant::now();
    tracing::info!(cache = %cache.display(), "installing bitcoind (bitcoin-knots from Debian)");
    remove_stale_staging(&cache);
    let staging = tempfile::Builder::new()
        .prefix(&format!("{STAGING_PREFIX}{}-", std::process::id()))
        .tempdir_in(&cache)
        .map_err(io_err("create staging directory in", &cache))?;
    let stage = staging.path().join("bitcoind");
    let prefix = stage.join("prefix");
    let debs = staging.path().join("debs");
    fs::create_dir_all(&prefix).map_err(io_err("create directory", &prefix))?;
    fs::create_dir_all(&debs).map_err(io_err("create directory", &debs))?;

    fetch_packages(staging.path(), &debs)?;
    unpack(&debs, &prefix)?;
    for program in ["bitcoind", "bitcoin-cli"] {
        check_libraries(&prefix, program)?;
    }
    // Prove the staged prefix runs before it replaces anything.
    version_of(
        &mut loader_command(&prefix, "bitcoind"),
        &prefix.join("usr/bin/bitcoind"),
    )?;

    let bin = stage.join("bin");
    fs::create_dir_all(&bin).map_err(io_err("create directory", &bin))?;
    let final_prefix = home.join("prefix");
    for program in ["bitcoind", "bitcoin-cli"] {
        write_executable(&bin.join(program), &wrapper_script(&final_prefix, program)?)?;
    }

    // Another process may have finished first; then keep its copy and drop ours.
    if let Ok(installed) = verify(&home) {
        return Ok(installed);
    }
    if home.exists() {
        // A broken leftover (e.g. the cache folder was moved); park it inside the staging
        // directory so it is deleted with it.
        let old = staging.path().join("previous");
        fs::rename(&home, &old).map_err(io_err("move aside broken install", &home))?;
    }
    fs::rename(&stage, &home).map_err(io_err("move the finished install to", &home))?;
    remove_stale_staging(&cache);
    let installed = verify(&home)?;
    tracing::info!(version = %installed.version, seconds = started.elapsed().as_secs_f32(), "bitcoind installed");
    Ok(installed)
}

/// Checks an install in place by running its wrapper.
fn verify(home: &Path) -> Result<Installed, InstallError> {
    let bitcoind = home.join("bin/bitcoind");
    let bitcoin_cli = home.join("bin/bitcoin-cli");
    if !bitcoin_cli.is_file() {
        return Err(InstallError::MissingFile { path: bitcoin_cli });
    }
    let version = version_of(&mut Command::new(&bitcoind), &bitcoind)?;
    Ok(Installed {
        bitcoind,
        bitcoin_cli,
        version,
    })
}

/// Runs `cmd --version` and returns the first line if it names a version.
fn version_of(cmd: &mut Command, exe: &Path) -> Result<String, InstallError> {
    let label = format!("{} --version", exe.display());
    let done = run_ok(cmd.arg("--version"), &label, LOCAL_TIMEOUT)?;
    let first = done.stdout.lines().next().unwrap_or_default().trim();
    if first.contains("version") {
        Ok(first.to_owned())
    } else {
        Err(InstallError::BadVersion {
            exe: exe.to_path_buf(),
            output: tail(&format!("{}{}", done.stdout, done.stderr), 10),
        })
    }
}

/// Runs a command, mapping every way it can fail to an [`InstallError`] naming `label`.
fn run_ok(cmd: &mut Command, label: &str, timeout: Duration) -> Result<Finished, InstallError> {
    let done = run(cmd.env("LC_ALL", "C"), timeout).map_err(|e| match e {
        RunError::Spawn(source) | RunError::Wait(source) => InstallError::Spawn {
            command: label.to_owned(),
            source,
        },
        RunError::TimedOut => InstallError::TimedOut {
            command: label.to_owned(),
            after: timeout,
        },
    })?;
    if done.status.success() {
        Ok(done)
    } else {
        Err(InstallError::CommandFailed {
            command: label.to_owned(),
            status: done.status.to_string(),
            stderr: tail(&done.stderr, 15),
        })
    }
}

/// Deletes staging directories left by killed installs: those whose owning process is gone.
/// Best effort; a concurrent install in another live process is left alone.
fn remove_stale_staging(cache: &Path) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.strip_prefix(STAGING_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !pid_alive(pid)) {
            tracing::info!(dir = %entry.path().display(), "removing a killed install's staging");
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
