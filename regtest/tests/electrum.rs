//! ElectrumX from PyPI against a real bitcoind: install once, serve, follow, stop.
//! Nothing here skips: a missing ElectrumX or bitcoind is installed (network needed once).

use std::time::Duration;

use milagro_regtest::{
    bitcoind_exe, install_electrumx, machine_cache_dir, pid_alive, BitcoindRpc, ElectrumServer,
    ElectrumServerError,
};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn install_is_idempotent_and_imports_the_pinned_version() -> TestResult {
    let first = install_electrumx(&machine_cache_dir())?;
    assert_eq!(first.version, milagro_regtest::electrum::ELECTRUMX_VERSION);
    assert!(first.server.is_file());
    assert!(first.home.starts_with(machine_cache_dir().canonicalize()?));
    let again = install_electrumx(&machine_cache_dir())?;
    assert_eq!(again, first);
    Ok(())
}

#[test]
fn serves_the_nodes_tip_follows_new_blocks_and_dies_with_its_handle() -> TestResult {
    let mut conf = bitcoind::Conf::default();
    conf.args.push("-txindex=1");
    let node = bitcoind::BitcoinD::with_conf(bitcoind_exe()?, &conf)?;
    let rpc = BitcoindRpc::with_cookie(node.rpc_url(), &node.params.cookie_file);
    let address: String = rpc.call("getnewaddress", &[])?;
    rpc.call::<Value>("generatetoaddress", &[json!(3), json!(address)])?;

    let server = ElectrumServer::start(
        &node.rpc_url(),
        &node.params.cookie_file,
        bitcoin::Network::Regtest,
    )?;
    assert!(
        server.url().starts_with("tcp://127.0.0.1:"),
        "{}",
        server.url()
    );
    assert_eq!(server.tip_height()?, 3);

    rpc.call::<Value>("generatetoaddress", &[json!(2), json!(address)])?;
    assert_eq!(server.wait_synced(5, Duration::from_secs(30))?, 5);

    let not_yet = server.wait_synced(6, Duration::from_millis(300));
    assert!(
        matches!(
            not_yet,
            Err(ElectrumServerError::NotSynced { height: 6, .. })
        ),
        "{not_yet:?}"
    );

    let dir = server.dir().to_path_buf();
    assert!(
        server.log_tail().contains("ElectrumX"),
        "{}",
        server.log_tail()
    );
    let pid = server.pid();
    drop(server);
    assert!(!pid_alive(pid), "electrumx {pid} survived its handle");
    assert!(!dir.exists(), "{} survived its handle", dir.display());
    Ok(())
}

#[test]
fn a_node_without_txindex_is_refused_before_electrumx_starts() -> TestResult {
    let node = bitcoind::BitcoinD::new(bitcoind_exe()?)?;
    let refused = ElectrumServer::start(
        &node.rpc_url(),
        &node.params.cookie_file,
        bitcoin::Network::Regtest,
    );
    assert!(
        matches!(&refused, Err(ElectrumServerError::NoTxindex(url)) if *url == node.rpc_url()),
        "{refused:?}"
    );
    Ok(())
}

#[test]
fn a_node_that_is_not_there_is_an_error_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cookie = dir.path().join(".cookie");
    std::fs::write(&cookie, "__cookie__:00")?;
    let refused = ElectrumServer::start("http://127.0.0.1:9", &cookie, bitcoin::Network::Regtest);
    assert!(
        matches!(refused, Err(ElectrumServerError::Node { .. })),
        "{refused:?}"
    );
    Ok(())
}
