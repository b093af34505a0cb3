//! npm packages from outside this project that the tests run under Node (a relying party,
//! an OpenID provider), each pinned and installed once per machine. Needs `node` and
//! `npm` on the PATH; a test never skips without them, it fails naming what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Installs `package@version` into `folder` of the machine cache (outside the clone,
/// so fresh clones reuse it; [`milagro_regtest::machine_cache_dir`]) once (under a
/// lock: test binaries may run in parallel) and copies the test script `tests/node/SCRIPT`
/// into a subfolder named by the script's digest, so that its imports resolve in the
/// folder's `node_modules` and clones with different versions of the script, testing at
/// the same time, each run their own. Returns that subfolder.
pub fn install_pinned(folder: &str, package: &str, version: &str, script: &str) -> PathBuf {
    let dir = milagro_regtest::machine_cache_dir().join(folder);
    std::fs::create_dir_all(&dir).unwrap();
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
        .unwrap_or_else(|e| panic!("run npm (node and npm must be installed): {e}"));
    assert!(
        output.status.success() && installed.exists(),
        "npm install {package}@{version} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node")
        .join(script);
    let text = std::fs::read(&source).unwrap();
    let digest = milagro_anchor::digest::Digest::sha256(&text).to_string();
    let scripts = dir.join(format!("script-{}", &digest[..16]));
    std::fs::create_dir_all(&scripts).unwrap();
    // Written whole, then renamed: a test starting the same script meanwhile never reads
    // half of it.
    let partial = scripts.join(format!(
        "{script}.{:016x}.tmp",
        rand_core::RngCore::next_u64(&mut rand_core::OsRng)
    ));
    std::fs::write(&partial, &text).unwrap();
    std::fs::rename(&partial, scripts.join(script)).unwrap();
    scripts
}
