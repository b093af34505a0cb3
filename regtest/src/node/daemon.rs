//! The bitcoind process: starting it detached, waiting for its RPC, telling whether it lives.

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{io_err, NodeError, NodeInfo, START_TIMEOUT, WALLET};
use crate::process::{pid_alive, spawn, tail};

/// The recorded pid is alive and really is a bitcoind on this datadir (pids get reused).
pub(super) fn daemon_alive(info: &NodeInfo) -> bool {
    let datadir_arg = format!("-datadir={}", info.datadir.display());
    pid_alive(info.pid)
        && fs::read(format!("/proc/{}/cmdline", info.pid)).is_ok_and(|cmdline| {
            cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == datadir_arg.as_bytes())
        })
}

/// Whether the recorded node answers RPC with the cookie in its datadir.
pub(super) fn answers(info: &NodeInfo) -> bool {
    info.rpc()
        .with_timeout(Duration::from_secs(10))
        .call::<serde_json::Value>("getblockcount", &[])
        .is_ok()
}

/// Starts bitcoind detached and waits until its RPC answers: on the `previous` ports if
/// it had some and they are free (so that services configured with its RPC URL find it
/// again after a restart), else on fresh loopback ports.
pub(super) fn start(
    exe: &Path,
    datadir: &Path,
    previous: Option<(u16, u16)>,
) -> Result<NodeInfo, NodeError> {
    let (rpc_port, p2p_port) = match previous.filter(|&(rpc, p2p)| free(rpc) && free(p2p)) {
        Some(ports) => ports,
        None => free_ports()?,
    };
    let output_path = datadir.join("milagro-bitcoind.out");
    let output = fs::File::create(&output_path).map_err(io_err("create", &output_path))?;
    let output_err = output.try_clone().map_err(io_err("reopen", &output_path))?;
    let mut cmd = Command::new(exe);
    cmd.arg("-regtest")
        .arg(format!("-datadir={}", datadir.display()))
        .arg(format!("-rpcport={rpc_port}"))
        .arg(format!("-port={p2p_port}"))
        .arg(format!("-bind=127.0.0.1:{p2p_port}"))
        .args([
            "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1",
            "-listenonion=0",
        ])
        .args(crate::NODE_ARGS)
        .args(["-rest=1", "-server=1"])
        // Forks once initialisation is done; the daemon is not our child, so it outlives us.
        .arg("-daemonwait")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(output_err);
    tracing::info!(datadir = %datadir.display(), rpc_port, "starting bitcoind");
    let mut child = spawn(&mut cmd).map_err(|source| NodeError::Spawn {
        exe: exe.to_path_buf(),
        source,
    })?;
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.to_string(),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break format!("killed after {} s", START_TIMEOUT.as_secs());
            }
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(source) => {
                return Err(NodeError::Spawn {
                    exe: exe.to_path_buf(),
                    source,
                })
            }
        }
    };
    let pid_file = datadir.join("regtest/bitcoind.pid");
    let pid = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    let Some(pid) = pid.filter(|_| status == "exit status: 0") else {
        let printed = fs::read_to_string(&output_path).unwrap_or_default();
        return Err(NodeError::StartFailed {
            datadir: datadir.to_path_buf(),
            status,
            output: tail(&printed, 10),
            log: debug_log_tail(datadir),
        });
    };
    let info = NodeInfo {
        datadir: datadir.to_path_buf(),
        rpc_url: format!("http://127.0.0.1:{rpc_port}"),
        rpc_port,
        p2p_port,
        cookie_file: datadir.join("regtest/.cookie"),
        wallet: WALLET.to_owned(),
        pid,
    };
    wait_for_rpc(&info, deadline)?;
    Ok(info)
}

/// Polls RPC until it answers, the daemon dies, or `deadline` passes.
pub(super) fn wait_for_rpc(info: &NodeInfo, deadline: Instant) -> Result<(), NodeError> {
    loop {
        let result = info
            .rpc()
            .with_timeout(Duration::from_secs(10))
            .call::<serde_json::Value>("getblockcount", &[]);
        let Err(last) = result else {
            return Ok(());
        };
        if !pid_alive(info.pid) {
            return Err(NodeError::Exited {
                pid: info.pid,
                log: debug_log_tail(&info.datadir),
            });
        }
        if Instant::now() >= deadline {
            return Err(NodeError::StartTimeout {
                datadir: info.datadir.clone(),
                after: START_TIMEOUT,
                log: debug_log_tail(&info.datadir),
                source: Box::new(last),
            });
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `port` can be bound on loopback now.
fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Two distinct free loopback ports. Another process may grab one before bitcoind binds it;
/// [`up`] retries on a bind failure.
fn free_ports() -> Result<(u16, u16), NodeError> {
    let bind = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr().map(|a| (l, a.port())))
            .map_err(io_err("bind a free port on", Path::new("127.0.0.1")))
    };
    // Both listeners stay open until both ports are known, so the ports differ.
    let (_first, rpc_port) = bind()?;
    let (_second, p2p_port) = bind()?;
    Ok((rpc_port, p2p_port))
}

/// Whether a failed start was a port taken between [`free_ports`] and bitcoind binding it.
pub(super) fn is_port_clash(output: &str, log: &str) -> bool {
    [output, log]
        .iter()
        .any(|text| text.contains("Unable to bind") || text.contains("Address already in use"))
}

fn debug_log_tail(datadir: &Path) -> String {
    let log = datadir.join("regtest/debug.log");
    match fs::read_to_string(&log) {
        Ok(text) => tail(&text, 20),
        Err(e) => format!("({} unreadable: {e})", log.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_failures_are_recognised() {
        assert!(is_port_clash(
            "Error: Unable to bind to 127.0.0.1:5555 on this computer.",
            ""
        ));
        assert!(!is_port_clash(
            "Error: Cannot obtain a lock on directory /d/regtest.",
            "Cannot obtain a lock"
        ));
    }
}
