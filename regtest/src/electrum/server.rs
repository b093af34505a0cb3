//! Running ElectrumX against a node, on a free loopback port, killed on drop.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bitcoin::Network;
use milagro_registry::chain::{ChainError, ChainSource};

use super::install::{electrumx_exe, ElectrumxInstallError};
use super::probe;
use crate::process::{pid_alive, spawn, tail};
use crate::BitcoindRpc;

/// How long [`ElectrumServer::start`] waits for the server to serve the node's tip.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// One probe's connect and read deadline.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Log lines quoted in errors.
const LOG_LINES: usize = 20;

/// A running ElectrumX serving one node's chain over `tcp://127.0.0.1:PORT`.
///
/// Its database and log live in a temporary directory removed with it; dropping it kills
/// the process.
#[derive(Debug)]
pub struct ElectrumServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    // Last: removed after the process is killed.
    dir: tempfile::TempDir,
}

/// Why an [`ElectrumServer`] could not be started or did not sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ElectrumServerError {
    /// ElectrumX is not installed and could not be.
    #[error("cannot install electrumx")]
    Install(#[from] ElectrumxInstallError),
    /// ElectrumX knows no such network (or this runner does not map it).
    #[error("electrumx is not run for network {0}")]
    UnsupportedNetwork(Network),
    /// The node's RPC URL is not `http://HOST:PORT`.
    #[error("node rpc url {0:?} is not http://host:port")]
    BadRpcUrl(String),
    /// The node's cookie file could not be read or is not `user:password`.
    #[error("cannot use the node's cookie file {}: {detail}", path.display())]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The node could not be asked for its tip and indexes.
    #[error("cannot ask the node at {rpc_url}")]
    Node {
        /// The node's RPC URL.
        rpc_url: String,
        /// The underlying error.
        #[source]
        source: ChainError,
    },
    /// The node runs without a transaction index, which ElectrumX requires.
    #[error("the node at {0} runs without -txindex=1, which electrumx requires")]
    NoTxindex(String),
    /// A file-system operation failed (temporary directory, log file).
    #[error("could not {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server process could not be started.
    #[error("could not start {}", exe.display())]
    Spawn {
        /// The wrapper that was run.
        exe: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server exited (ElectrumX exits with status 0 even on a fatal error).
    #[error("electrumx exited; last lines of its log:\n{log_tail}")]
    Exited {
        /// The end of its log.
        log_tail: String,
    },
    /// The server did not answer `blockchain.headers.subscribe`.
    #[error("electrumx at {addr} does not answer: {detail}; last lines of its log:\n{log_tail}")]
    NotServing {
        /// Where it should serve.
        addr: SocketAddr,
        /// What went wrong.
        detail: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The server did not reach the height in time.
    #[error("electrumx at {addr} did not reach height {height} within {} s (last answer: {last}); last lines of its log:\n{log_tail}", after.as_secs())]
    NotSynced {
        /// Where it should serve.
        addr: SocketAddr,
        /// The height waited for.
        height: u32,
        /// How long it was given.
        after: Duration,
        /// Its last tip height, or why it did not answer.
        last: String,
        /// The end of its log.
        log_tail: String,
    },
}

impl ElectrumServer {
    /// Starts ElectrumX (installing it on first use, see [`electrumx_exe`]) against the node
    /// at `rpc_url` with the `user:password` of its `cookie_file`, and waits until it serves
    /// the node's current tip. The node must run with `-txindex=1`.
    pub fn start(
        rpc_url: &str,
        cookie_file: &Path,
        network: Network,
    ) -> Result<Self, ElectrumServerError> {
        Self::start_with(&electrumx_exe()?, rpc_url, cookie_file, network)
    }

    /// [`ElectrumServer::start`] with a given `electrumx_server` executable.
    pub fn start_with(
        exe: &Path,
        rpc_url: &str,
        cookie_file: &Path,
        network: Network,
    ) -> Result<Self, ElectrumServerError> {
        let net = match network {
            Network::Regtest => "regtest",
            Network::Signet => "signet",
            Network::Testnet => "testnet",
            Network::Bitcoin => "mainnet",
            other => return Err(ElectrumServerError::UnsupportedNetwork(other)),
        };
        let daemon_url = daemon_url(rpc_url, cookie_file)?;
        let node = BitcoindRpc::with_cookie(rpc_url, cookie_file);
        let node_err = |source| ElectrumServerError::Node {
            rpc_url: rpc_url.to_owned(),
            source,
        };
        let indexes: serde_json::Value = node.call("getindexinfo", &[]).map_err(node_err)?;
        if indexes.get("txindex").is_none() {
            return Err(ElectrumServerError::NoTxindex(rpc_url.to_owned()));
        }
        let node_tip = node.tip().map_err(node_err)?.height;

        let dir = tempfile::Builder::new()
            .prefix("milagro-electrumx-")
            .tempdir()
            .map_err(io_err(
                "create a temporary directory in",
                &std::env::temp_dir(),
            ))?;
        let db = dir.path().join("db");
        fs::create_dir(&db).map_err(io_err("create directory", &db))?;
        let log = dir.path().join("electrumx.log");
        let out = File::create(&log).map_err(io_err("create", &log))?;
        let err = out.try_clone().map_err(io_err("reopen", &log))?;
        let addr = free_port().map_err(io_err("find a free port on", Path::new("127.0.0.1")))?;

        let mut cmd = Command::new(exe);
        cmd.env_clear();
        for inherited in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(inherited) {
                cmd.env(inherited, value);
            }
        }
        cmd.envs([
            ("LANG", "C.UTF-8"),
            ("COIN", "Bitcoin"),
            ("NET", net),
            ("DB_ENGINE", "leveldb"),
            ("DAEMON_URL", &daemon_url),
            ("SERVICES", &format!("tcp://{addr}")),
            ("PEER_DISCOVERY", "off"),
            ("PEER_ANNOUNCE", ""),
            // Tests run as root in containers; ElectrumX refuses root otherwise.
            ("ALLOW_ROOT", "1"),
            // Small chains: a small cache, and new blocks seen within 100 ms.
            ("CACHE_MB", "100"),
            ("DAEMON_POLL_INTERVAL_BLOCKS", "100"),
            ("DAEMON_POLL_INTERVAL_MEMPOOL", "1000"),
            // No cost-based throttling of the (single, local) client: benches call a lot.
            ("COST_SOFT_LIMIT", "0"),
            ("COST_HARD_LIMIT", "0"),
        ]);
        cmd.env("DB_DIRECTORY", &db)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = spawn(&mut cmd).map_err(|source| ElectrumServerError::Spawn {
            exe: exe.to_path_buf(),
            source,
        })?;
        tracing::debug!(%addr, log = %log.display(), "electrumx started");
        let server = Self {
            child,
            addr,
            log,
            dir,
        };
        server.wait_synced(node_tip, START_TIMEOUT)?;
        Ok(server)
    }

    /// `tcp://127.0.0.1:PORT`, for an Electrum client.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log file (inside its temporary directory).
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// Its temporary directory (database and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        tail(
            &fs::read_to_string(&self.log).unwrap_or_default(),
            LOG_LINES,
        )
    }

    /// The height of the tip it serves now.
    pub fn tip_height(&self) -> Result<u32, ElectrumServerError> {
        self.ensure_running()?;
        probe::tip_height(self.addr, PROBE_TIMEOUT).map_err(|detail| {
            ElectrumServerError::NotServing {
                addr: self.addr,
                detail,
                log_tail: self.log_tail(),
            }
        })
    }

    /// Waits until it serves a tip at `height` or above (it polls the node every 100 ms);
    /// returns that tip's height. Fails early, with its log, if the process exits.
    pub fn wait_synced(&self, height: u32, timeout: Duration) -> Result<u32, ElectrumServerError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            let last = match probe::tip_height(self.addr, PROBE_TIMEOUT) {
                Ok(tip) if tip >= height => return Ok(tip),
                Ok(tip) => format!("tip {tip}"),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(ElectrumServerError::NotSynced {
                    addr: self.addr,
                    height,
                    after: timeout,
                    last,
                    log_tail: self.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn ensure_running(&self) -> Result<(), ElectrumServerError> {
        if pid_alive(self.child.id()) {
            Ok(())
        } else {
            Err(ElectrumServerError::Exited {
                log_tail: self.log_tail(),
            })
        }
    }
}

impl Drop for ElectrumServer {
    fn drop(&mut self) {
        // Best effort: it may have exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ElectrumX's `DAEMON_URL`: the node's URL with the cookie's `user:password` in it.
fn daemon_url(rpc_url: &str, cookie_file: &Path) -> Result<String, ElectrumServerError> {
    let host_port = rpc_url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|rest| !rest.is_empty() && !rest.contains(['@', '/']))
        .ok_or_else(|| ElectrumServerError::BadRpcUrl(rpc_url.to_owned()))?;
    let cookie_err = |detail: String| ElectrumServerError::Cookie {
        path: cookie_file.to_path_buf(),
        detail,
    };
    let cookie = fs::read_to_string(cookie_file).map_err(|e| cookie_err(e.to_string()))?;
    let (user, pass) = cookie
        .trim()
        .split_once(':')
        .ok_or_else(|| cookie_err("not user:password".into()))?;
    // ElectrumX splits DAEMON_URL at commas and parses user:pass@ itself; the node writes
    // `__cookie__:HEX`, so only a hand-made cookie could hold these.
    if user.is_empty()
        || [user, pass]
            .iter()
            .any(|s| s.contains([':', '@', '/', ',']))
    {
        return Err(cookie_err("user or password holds : @ / or ,".into()));
    }
    Ok(format!("http://{user}:{pass}@{host_port}/"))
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ElectrumServerError {
    let path = path.to_path_buf();
    move |source| ElectrumServerError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_url_puts_the_cookie_in_the_node_url() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let cookie = dir.path().join(".cookie");
        fs::write(&cookie, "__cookie__:ab12\n").unwrap_or_else(|e| panic!("write: {e}"));
        let url = daemon_url("http://127.0.0.1:18443/", &cookie);
        assert_eq!(
            url.ok().as_deref(),
            Some("http://__cookie__:ab12@127.0.0.1:18443/")
        );
        for bad in [
            "https://127.0.0.1:1",
            "127.0.0.1:1",
            "http://",
            "http://h:1/wallet/w",
        ] {
            assert!(
                matches!(
                    daemon_url(bad, &cookie),
                    Err(ElectrumServerError::BadRpcUrl(_))
                ),
                "{bad}"
            );
        }
        fs::write(&cookie, "no-colon").unwrap_or_else(|e| panic!("write: {e}"));
        assert!(matches!(
            daemon_url("http://127.0.0.1:1", &cookie),
            Err(ElectrumServerError::Cookie { .. })
        ));
        assert!(matches!(
            daemon_url("http://127.0.0.1:1", &dir.path().join("missing")),
            Err(ElectrumServerError::Cookie { .. })
        ));
    }
}
