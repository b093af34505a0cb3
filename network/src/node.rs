//! The network's regtest node: `milagro_regtest`'s persistent node in the network's
//! directory (installed once per machine), on the same ports after every restart.

use milagro_regtest::NodeInfo;

use crate::layout::NetworkDir;
use crate::NetworkError;

/// Starts the node of `dir` (or finds it running) with a funded wallet.
pub fn start(dir: &NetworkDir) -> Result<NodeInfo, NetworkError> {
    let exe = milagro_regtest::bitcoind_exe().map_err(|e| NetworkError::Node(e.to_string()))?;
    milagro_regtest::up(&exe, &dir.node_dir()).map_err(|e| NetworkError::Node(e.to_string()))
}
