//! The unpacked prefix: running its own loader, checking that every shared library of a
//! binary resolves inside it, and the wrapper scripts that hide the loader.
//!
//! The loader is run in trace mode (`LD_TRACE_LOADED_OBJECTS=1`, what `ldd` does), which prints
//! one line per library: `libzmq.so.5 => /prefix/usr/lib/.../libzmq.so.5 (0x...)`, or
//! `libzmq.so.5 => not found`. (`ld.so --list` stops at the first missing library instead, so it
//! cannot name them all.)

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{io_err, run_ok, InstallError, LOCAL_TIMEOUT};

pub(super) const LIB_DIR: &str = "usr/lib/x86_64-linux-gnu";
pub(super) const LOADER: &str = "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";

/// A shared library that does not resolve inside the private prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedLibrary {
    /// The name the binary asks for, e.g. `libzmq.so.5`.
    pub name: String,
    /// Where the loader found it instead, or `None` if it found it nowhere.
    pub found_at: Option<PathBuf>,
}

impl fmt::Display for UnresolvedLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.found_at {
            None => write!(f, "{} (not found)", self.name),
            Some(path) => write!(
                f,
                "{} (resolves to {}, outside the prefix)",
                self.name,
                path.display()
            ),
        }
    }
}

/// Parses the loader's trace output and returns the libraries not resolved under `prefix`.
///
/// Lines without `=>` (the vDSO, "statically linked") name no file and are ignored.
fn unresolved_libraries(trace: &str, prefix: &Path) -> Vec<UnresolvedLibrary> {
    trace
        .lines()
        .filter_map(|line| {
            let (name, target) = line.split_once("=>")?;
            let name = name.trim().to_owned();
            let target = target.trim();
            if target.starts_with("not found") {
                return Some(UnresolvedLibrary {
                    name,
                    found_at: None,
                });
            }
            // "/path/to/lib.so (0x00007f...)": the path ends before the load address.
            let path = match target.rfind(" (0x") {
                Some(at) => &target[..at],
                None => target,
            };
            let path = Path::new(path.trim());
            (!path.starts_with(prefix)).then(|| UnresolvedLibrary {
                name,
                found_at: Some(path.to_path_buf()),
            })
        })
        .collect()
}

/// Extracts the library name from a loader failure such as
/// `bitcoind: error while loading shared libraries: libzmq.so.5: cannot open shared object file`.
fn library_in_loader_error(stderr: &str) -> Option<String> {
    let (_, rest) = stderr.split_once("error while loading shared libraries: ")?;
    let (name, _) = rest.split_once(':')?;
    Some(name.trim().to_owned())
}

/// `PREFIX/…/ld-linux-x86-64.so.2 --library-path PREFIX/…/x86_64-linux-gnu PREFIX/usr/bin/<program>`.
pub(super) fn loader_command(prefix: &Path, program: &str) -> Command {
    let mut cmd = Command::new(prefix.join(LOADER));
    cmd.arg("--library-path")
        .arg(prefix.join(LIB_DIR))
        .arg(prefix.join("usr/bin").join(program));
    cmd
}

/// Fails naming every library of `program` that the loader does not find inside `prefix`.
pub(super) fn check_libraries(prefix: &Path, program: &str) -> Result<(), InstallError> {
    let binary = prefix.join("usr/bin").join(program);
    let mut cmd = loader_command(prefix, program);
    cmd.env("LD_TRACE_LOADED_OBJECTS", "1");
    let label = format!("library check of {program}");
    let done = match run_ok(&mut cmd, &label, LOCAL_TIMEOUT) {
        Ok(done) => done,
        Err(InstallError::CommandFailed {
            command,
            status,
            stderr,
        }) => match library_in_loader_error(&stderr) {
            Some(name) => {
                let libraries = vec![UnresolvedLibrary {
                    name,
                    found_at: None,
                }];
                return Err(InstallError::MissingLibraries { binary, libraries });
            }
            None => {
                return Err(InstallError::CommandFailed {
                    command,
                    status,
                    stderr,
                })
            }
        },
        Err(other) => return Err(other),
    };
    let libraries = unresolved_libraries(&done.stdout, prefix);
    if libraries.is_empty() {
        Ok(())
    } else {
        Err(InstallError::MissingLibraries { binary, libraries })
    }
}

/// The three-line `sh` wrapper that makes `PREFIX/usr/bin/<program>` look like a plain binary.
///
/// Refuses a prefix that is not UTF-8 or contains `:` (the loader's `--library-path` separator).
pub(super) fn wrapper_script(prefix: &Path, program: &str) -> Result<String, InstallError> {
    let text = prefix.to_str().filter(|p| !p.contains(':'));
    let Some(text) = text else {
        return Err(InstallError::Io {
            action: "use (path is not UTF-8 or contains ':') the cache directory",
            path: prefix.to_path_buf(),
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    };
    let quoted = format!("'{}'", text.replace('\'', r"'\''"));
    Ok(format!(
        "#!/bin/sh\n\
         P={quoted}\n\
         exec \"$P/{LOADER}\" --library-path \"$P/{LIB_DIR}\" \"$P/usr/bin/{program}\" \"$@\"\n"
    ))
}

pub(super) fn write_executable(path: &Path, text: &str) -> Result<(), InstallError> {
    fs::write(path, text).map_err(io_err("write", path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .map_err(io_err("make executable", path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::run;

    const PREFIX: &str = "/cache/bitcoind/prefix";

    /// Trimmed from a real run against the unpacked Knots 29.4 prefix.
    const ALL_INSIDE: &str = "\
\tlinux-vdso.so.1 (0x00007fe0d8c1d000)
\tlibzmq.so.5 => /cache/bitcoind/prefix/usr/lib/x86_64-linux-gnu/libzmq.so.5 (0x00007fe0d7d3a000)
\tlibstdc++.so.6 => /cache/bitcoind/prefix/usr/lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007fe0d7800000)
\tlibc.so.6 => /cache/bitcoind/prefix/usr/lib/x86_64-linux-gnu/libc.so.6 (0x00007fe0d760c000)
\t/lib64/ld-linux-x86-64.so.2 => /cache/bitcoind/prefix/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 (0x00007fe0d8c1f000)
";

    #[test]
    fn all_libraries_inside_the_prefix_pass() {
        assert_eq!(unresolved_libraries(ALL_INSIDE, Path::new(PREFIX)), vec![]);
    }

    #[test]
    fn a_missing_library_is_named() {
        let trace = "\
\tlinux-vdso.so.1 (0x00007effad197000)
\tlibzmq.so.5 => not found
\tlibc.so.6 => /cache/bitcoind/prefix/usr/lib/x86_64-linux-gnu/libc.so.6 (0x00007effabc0c000)
";
        let bad = unresolved_libraries(trace, Path::new(PREFIX));
        assert_eq!(
            bad,
            vec![UnresolvedLibrary {
                name: "libzmq.so.5".into(),
                found_at: None
            }]
        );
        assert_eq!(bad[0].to_string(), "libzmq.so.5 (not found)");
    }

    #[test]
    fn a_library_from_the_host_is_rejected() {
        let trace = "\
\tlibzmq.so.5 => /cache/bitcoind/prefix/usr/lib/x86_64-linux-gnu/libzmq.so.5 (0x00007fe0d7d3a000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3d2540c000)
";
        let bad = unresolved_libraries(trace, Path::new(PREFIX));
        assert_eq!(
            bad,
            vec![UnresolvedLibrary {
                name: "libc.so.6".into(),
                found_at: Some("/lib/x86_64-linux-gnu/libc.so.6".into())
            }]
        );
        assert_eq!(
            bad[0].to_string(),
            "libc.so.6 (resolves to /lib/x86_64-linux-gnu/libc.so.6, outside the prefix)"
        );
    }

    #[test]
    fn a_sibling_directory_with_the_same_name_prefix_is_outside() {
        // Component-wise comparison: /cache/bitcoind/prefix-old is not inside /cache/bitcoind/prefix.
        let trace = "\tlibc.so.6 => /cache/bitcoind/prefix-old/libc.so.6 (0x1)\n";
        assert_eq!(unresolved_libraries(trace, Path::new(PREFIX)).len(), 1);
    }

    #[test]
    fn loader_error_names_the_library() {
        let stderr = "/p/usr/bin/bitcoind: error while loading shared libraries: libzmq.so.5: \
                      cannot open shared object file: No such file or directory\n";
        assert_eq!(
            library_in_loader_error(stderr).as_deref(),
            Some("libzmq.so.5")
        );
        assert_eq!(library_in_loader_error("segfault"), None);
    }

    #[test]
    fn wrapper_script_is_three_lines_through_the_private_loader() {
        let text = wrapper_script(Path::new("/c/bitcoind/prefix"), "bitcoind");
        let Ok(text) = text else {
            panic!("plain path refused")
        };
        assert_eq!(
            text,
            "#!/bin/sh\n\
             P='/c/bitcoind/prefix'\n\
             exec \"$P/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\" \
             --library-path \"$P/usr/lib/x86_64-linux-gnu\" \"$P/usr/bin/bitcoind\" \"$@\"\n"
        );
    }

    #[test]
    fn wrapper_script_quotes_awkward_paths() {
        let text = wrapper_script(Path::new("/home/o'neil/my cache/prefix"), "bitcoin-cli");
        let Ok(text) = text else {
            panic!("quotable path refused")
        };
        assert!(text.contains(r#"P='/home/o'\''neil/my cache/prefix'"#));
        assert!(text.contains("\"$P/usr/bin/bitcoin-cli\" \"$@\""));
    }

    #[test]
    fn wrapper_script_refuses_a_colon_in_the_prefix() {
        assert!(wrapper_script(Path::new("/a:b/prefix"), "bitcoind").is_err());
    }

    #[test]
    fn wrapper_script_runs_under_sh() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { panic!("no tempdir") };
        // A fake prefix whose "loader" echoes its arguments.
        let prefix = dir.path().join("it's prefix");
        let loader = prefix.join(LOADER);
        let made = fs::create_dir_all(prefix.join(LIB_DIR));
        assert!(made.is_ok());
        let fake = write_executable(&loader, "#!/bin/sh\necho \"$@\"\n");
        assert!(fake.is_ok());
        let script = dir.path().join("bitcoind");
        let written =
            wrapper_script(&prefix, "bitcoind").and_then(|text| write_executable(&script, &text));
        assert!(written.is_ok());
        let out = run(Command::new(&script).arg("-regtest"), LOCAL_TIMEOUT);
        let Ok(out) = out else {
            panic!("wrapper did not run")
        };
        let p = prefix.display();
        assert_eq!(
            out.stdout,
            format!("--library-path {p}/{LIB_DIR} {p}/usr/bin/bitcoind -regtest\n")
        );
    }
}
