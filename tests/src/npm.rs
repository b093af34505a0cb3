//! npm packages from outside this project that the tests run under Node (a relying party,
//! an OpenID provider), each pinned and installed once per machine by
//! [`milagro_regtest::npm::install_pinned`] with its test script from `tests/node/`.
//! Needs `node` and `npm` on the PATH; a test never skips without them, it fails naming
//! what is missing.

use std::path::{Path, PathBuf};

use milagro_regtest::npm::NodeScript;

/// Installs `package@version` into `folder` of the machine cache once and copies the test
/// script `tests/node/SCRIPT` beside it ([`milagro_regtest::npm::install_pinned`]).
/// Returns the folder the script is in.
pub fn install_pinned(folder: &str, package: &str, version: &str, script: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node")
        .join(script);
    let text = std::fs::read(&source).unwrap();
    let script = NodeScript {
        name: script,
        text: &text,
    };
    milagro_regtest::npm::install_pinned(folder, package, version, script)
        .unwrap_or_else(|e| panic!("{e}"))
}
