//! Against a real bitcoind: install, a persistent node's lifecycle, and the `bitcoind` crate.
//! Nothing here skips: a missing bitcoind is installed (network needed on the first run).

use std::path::PathBuf;

use milagro_regtest::{
    bitcoind_exe, default_cache_dir, down, install, pid_alive, up, NodeError, NodeInfo, NODE_FILE,
};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn install_is_idempotent_and_reports_a_knots_version() -> TestResult {
    let first = install(&default_cache_dir())?;
    assert!(first.version.contains("version v29."), "{}", first.version);
    assert!(first.bitcoin_cli.is_file());
    let again = install(&default_cache_dir())?;
    assert_eq!(again, first);
    Ok(())
}

#[test]
fn node_comes_up_funded_is_idempotent_and_goes_down() -> TestResult {
    let exe = install(&default_cache_dir())?.bitcoind;
    let dir = tempfile::tempdir()?;

    let node = up(&exe, dir.path())?;
    // Stop the daemon even if an assertion below fails.
    let guard = StopOnDrop(dir.path().to_path_buf());
    assert!(node.rpc_url.starts_with("http://127.0.0.1:"));
    assert!(dir.path().join("milagro-node.json").is_file());

    let rpc = node.rpc();
    let height = rpc.call::<Value>("getblockcount", &[])?;
    assert!(height.as_u64().is_some_and(|h| h >= 101), "height {height}");
    let balance = node.wallet_rpc().call::<Value>("getbalance", &[])?;
    assert!(
        balance.as_f64().is_some_and(|b| b > 0.0),
        "balance {balance}"
    );

    let again = up(&exe, dir.path())?;
    assert_eq!(again, node, "a second `up` must reuse the running node");

    down(dir.path())?;
    std::mem::forget(guard);
    assert!(!pid_alive(node.pid), "pid {} still running", node.pid);
    assert!(!dir.path().join("milagro-node.json").exists());
    assert!(matches!(
        down(dir.path()),
        Err(NodeError::NotRecorded { .. })
    ));
    Ok(())
}

#[test]
fn a_stopped_node_comes_back_with_its_wallet_and_chain() -> TestResult {
    let exe = install(&default_cache_dir())?.bitcoind;
    let dir = tempfile::tempdir()?;
    let first = up(&exe, dir.path())?;
    let guard = StopOnDrop(dir.path().to_path_buf());
    down(dir.path())?;

    let second = up(&exe, dir.path())?;
    assert_ne!(second.pid, first.pid);
    let height = second.rpc().call::<Value>("getblockcount", &[])?;
    assert_eq!(height, json!(101), "no extra blocks on a restart");
    let balance = second.wallet_rpc().call::<Value>("getbalance", &[])?;
    assert!(
        balance.as_f64().is_some_and(|b| b > 0.0),
        "balance {balance}"
    );
    down(dir.path())?;
    std::mem::forget(guard);
    Ok(())
}

#[test]
fn a_stale_record_is_replaced_by_a_fresh_node() -> TestResult {
    let exe = install(&default_cache_dir())?.bitcoind;
    let dir = tempfile::tempdir()?;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // A record left by a crashed node; its pid now belongs to some other process (this one).
    let stale = NodeInfo {
        datadir: dir.path().canonicalize()?,
        rpc_url: format!("http://127.0.0.1:{closed_port}"),
        rpc_port: closed_port,
        p2p_port: closed_port,
        cookie_file: dir.path().join("regtest/.cookie"),
        wallet: "milagro".into(),
        pid: std::process::id(),
    };
    std::fs::write(dir.path().join(NODE_FILE), serde_json::to_string(&stale)?)?;

    let node = up(&exe, dir.path())?;
    let guard = StopOnDrop(dir.path().to_path_buf());
    assert_ne!(node.pid, stale.pid);
    assert_ne!(node.rpc_port, closed_port);
    down(dir.path())?;
    std::mem::forget(guard);
    assert!(
        pid_alive(std::process::id()),
        "down must not signal a stranger"
    );
    Ok(())
}

#[test]
fn down_without_a_node_names_the_datadir() -> TestResult {
    let dir = tempfile::tempdir()?;
    let err = down(dir.path())
        .err()
        .ok_or("down succeeded on an empty datadir")?;
    assert!(matches!(err, NodeError::NotRecorded { .. }));
    assert!(
        err.to_string().starts_with("no node is recorded in "),
        "{err}"
    );
    Ok(())
}

#[test]
fn bitcoind_crate_starts_the_installed_executable() -> TestResult {
    let exe = bitcoind_exe()?;
    let node = bitcoind::BitcoinD::new(&exe)?;
    let info = node.client.get_blockchain_info()?;
    assert_eq!(info.chain, "regtest");
    Ok(())
}

/// Stops the node in a datadir when a test fails before its own `down`.
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = down(&self.0);
    }
}
