//! Fetching and unpacking the Debian packages with a private apt configuration
//! (never `/etc/apt`, never the system's package state).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::prefix::LOADER;
use super::{io_err, run_ok, InstallError, LOCAL_TIMEOUT};

/// The Debian packages whose contents make a self-contained Bitcoin Knots 29.4.
const PACKAGES: &[&str] = &[
    "bitcoin-knots",
    "libc6",
    "libstdc++6",
    "libgcc-s1",
    "libevent-core-2.1-7t64",
    "libevent-extra-2.1-7t64",
    "libevent-pthreads-2.1-7t64",
    "libzmq5",
    "libsodium23",
    "libpgm-5.3-0t64",
    "libnorm1t64",
    "libbsd0",
    "libmd0",
    "libsqlite3-0",
    "libgssapi-krb5-2",
    "libkrb5-3",
    "libk5crypto3",
    "libcom-err2",
    "libkrb5support0",
    "libkeyutils1",
];

/// `bitcoin-knots` is only in sid; everything else comes from trixie (the default release).
const SOURCES_LIST: &str = "deb http://deb.debian.org/debian sid main\n\
                            deb http://deb.debian.org/debian trixie main\n";

const NETWORK_TIMEOUT: Duration = Duration::from_secs(600);

/// `apt-get` with every piece of state redirected under `work/apt`.
fn apt_get(work: &Path) -> Result<Command, InstallError> {
    let apt = work.join("apt");
    for dir in ["lists/partial", "cache/archives/partial"] {
        let dir = apt.join(dir);
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
    }
    let sources = apt.join("sources.list");
    fs::write(&sources, SOURCES_LIST).map_err(io_err("write", &sources))?;
    let mut cmd = Command::new("apt-get");
    for (key, value) in [
        ("Dir::Etc::SourceList", sources),
        ("Dir::Etc::SourceParts", PathBuf::from("/dev/null")),
        ("Dir::State::Lists", apt.join("lists")),
        ("Dir::Cache", apt.join("cache")),
        ("APT::Default-Release", PathBuf::from("trixie")),
        ("Debug::NoLocking", PathBuf::from("1")),
    ] {
        cmd.arg("-o").arg(format!("{key}={}", value.display()));
    }
    cmd.arg("-q");
    Ok(cmd)
}

pub(super) fn fetch_packages(work: &Path, debs: &Path) -> Result<(), InstallError> {
    tracing::info!("apt-get update (private lists, about 32 MB)");
    run_ok(
        apt_get(work)?.arg("update"),
        "apt-get update",
        NETWORK_TIMEOUT,
    )?;
    tracing::info!(packages = PACKAGES.len(), "apt-get download");
    let mut all = apt_get(work)?;
    all.current_dir(debs).arg("download").args(PACKAGES);
    let Err(batch_error) = run_ok(&mut all, "apt-get download", NETWORK_TIMEOUT) else {
        return Ok(());
    };
    // Find out which package broke the batch, so the error names it.
    for package in PACKAGES {
        let mut one = apt_get(work)?;
        one.current_dir(debs).arg("download").arg(package);
        match run_ok(&mut one, "apt-get download", NETWORK_TIMEOUT) {
            Ok(_) => {}
            Err(InstallError::CommandFailed { stderr, .. }) => {
                return Err(InstallError::DownloadFailed {
                    package: (*package).to_owned(),
                    stderr,
                })
            }
            Err(other) => return Err(other),
        }
    }
    Err(batch_error)
}

pub(super) fn unpack(debs: &Path, prefix: &Path) -> Result<(), InstallError> {
    let mut files: Vec<PathBuf> = fs::read_dir(debs)
        .map_err(io_err("list", debs))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    files.sort();
    for deb in &files {
        let name = deb.file_name().unwrap_or_default().to_string_lossy();
        let label = format!("dpkg -x {name}");
        run_ok(
            Command::new("dpkg").arg("-x").arg(deb).arg(prefix),
            &label,
            LOCAL_TIMEOUT,
        )?;
    }
    for needed in [LOADER, "usr/bin/bitcoind", "usr/bin/bitcoin-cli"] {
        let path = prefix.join(needed);
        if !path.is_file() {
            return Err(InstallError::MissingFile { path });
        }
    }
    Ok(())
}
