//! A minimal JSON-RPC client for bitcoind: one HTTP/1.1 POST per call over a plain
//! `TcpStream`, cookie authentication, no connection reuse. Enough to manage a regtest node;
//! the registry's node adapter brings its own client.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// bitcoind's "still starting" error code (`RPC_IN_WARMUP`).
pub const RPC_IN_WARMUP: i64 = -28;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// A JSON-RPC endpoint of one bitcoind (optionally one of its wallets, via a `/wallet/NAME` path).
#[derive(Clone)]
pub struct Rpc {
    host: String,
    path: String,
    authorization: String,
    timeout: Duration,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The authorization header is a credential: keep it out of logs.
        f.debug_struct("Rpc")
            .field("url", &self.url())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why an RPC call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The URL is not `http://HOST:PORT[/PATH]`.
    #[error("invalid rpc url {url:?}: expected http://host:port[/path]")]
    InvalidUrl {
        /// The rejected URL.
        url: String,
    },
    /// The cookie file could not be read (node not started, or a different datadir).
    #[error("could not read rpc cookie file {}", path.display())]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Nothing accepted the connection (node not running, or still binding its port).
    #[error("could not connect to bitcoind rpc at {host}")]
    Connect {
        /// `host:port`.
        host: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke or timed out mid-call.
    #[error("i/o error in rpc {method} to {host}")]
    Io {
        /// The method being called.
        method: String,
        /// `host:port`.
        host: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The answer was not HTTP carrying a JSON-RPC reply.
    #[error("invalid answer to rpc {method} (http status {status}): {detail}")]
    InvalidResponse {
        /// The method being called.
        method: String,
        /// The HTTP status, 0 if none could be read.
        status: u16,
        /// What was wrong, or the start of the body.
        detail: String,
    },
    /// bitcoind answered with a JSON-RPC error.
    #[error("rpc {method} failed with code {code}: {message}")]
    Node {
        /// The method being called.
        method: String,
        /// bitcoind's error code (e.g. -28 while warming up, -18 wallet not found).
        code: i64,
        /// bitcoind's message.
        message: String,
    },
}

impl RpcError {
    /// bitcoind's JSON-RPC error code, if the node answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Node { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl Rpc {
    /// An endpoint at `url` (`http://127.0.0.1:PORT`, optionally with a `/wallet/NAME` path),
    /// authenticated with the contents of bitcoind's cookie file (`__cookie__:PASSWORD`).
    ///
    /// The cookie changes at every node start, so build a new `Rpc` after a restart.
    pub fn new(url: &str, cookie_file: &Path) -> Result<Rpc, RpcError> {
        let cookie = std::fs::read_to_string(cookie_file).map_err(|source| RpcError::Cookie {
            path: cookie_file.to_path_buf(),
            source,
        })?;
        Rpc::with_credentials(url, cookie.trim())
    }

    /// An endpoint at `url` authenticated with `user:password` (HTTP Basic).
    pub fn with_credentials(url: &str, user_password: &str) -> Result<Rpc, RpcError> {
        let invalid = || RpcError::InvalidUrl {
            url: url.to_owned(),
        };
        let rest = url.strip_prefix("http://").ok_or_else(invalid)?;
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let port_ok = host
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if !port_ok || host.contains('@') {
            return Err(invalid());
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        Ok(Rpc {
            host: host.to_owned(),
            path: path.to_owned(),
            authorization: format!("Basic {encoded}"),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same node with the path `/wallet/NAME`, for wallet RPCs.
    pub fn wallet(&self, name: &str) -> Rpc {
        Rpc {
            path: format!("/wallet/{name}"),
            ..self.clone()
        }
    }

    /// Sets how long one call may take (default 120 s; mining many blocks can be slow).
    pub fn with_timeout(mut self, timeout: Duration) -> Rpc {
        self.timeout = timeout;
        self
    }

    /// The endpoint's URL, without credentials.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.host, self.path)
    }

    /// Calls `method` with `params` (a JSON array, or an object for named parameters) and
    /// returns the `result` member of the reply.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            path = self.path,
            host = self.host,
            auth = self.authorization,
            len = body.len(),
        );
        let raw = self.exchange(method, request.as_bytes())?;
        let (status, body) = parse_http(&raw).map_err(|detail| RpcError::InvalidResponse {
            method: method.to_owned(),
            status: 0,
            detail,
        })?;
        parse_reply(method, status, &body)
    }

    fn exchange(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, RpcError> {
        let connect_err = |source| RpcError::Connect {
            host: self.host.clone(),
            source,
        };
        let io_err = |source| RpcError::Io {
            method: method.to_owned(),
            host: self.host.clone(),
            source,
        };
        let addrs: Vec<_> = self.host.to_socket_addrs().map_err(connect_err)?.collect();
        let mut last = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let mut stream = stream.ok_or_else(|| connect_err(last))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .and_then(|()| stream.write_all(request))
            .map_err(io_err)?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .map_err(io_err)?;
        Ok(raw)
    }
}

/// Splits an HTTP/1.1 response into status and body (honouring Content-Length or chunking).
pub(crate) fn parse_http(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of http headers (connection closed early?)")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            length = Some(value.parse::<usize>().map_err(|_| "bad content-length")?);
        } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    if chunked {
        return dechunk(body).map(|b| (status, b));
    }
    match length {
        Some(n) if body.len() < n => Err(format!("body cut short: {} of {n} bytes", body.len())),
        Some(n) => Ok((status, body[..n].to_vec())),
        None => Ok((status, body.to_vec())),
    }
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("unterminated chunk size")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunk cut short".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Interprets a JSON-RPC 1.0 reply. bitcoind sends errors with HTTP 500/404 but a JSON body.
pub(crate) fn parse_reply(method: &str, status: u16, body: &[u8]) -> Result<Value, RpcError> {
    let invalid = |detail: String| RpcError::InvalidResponse {
        method: method.to_owned(),
        status,
        detail,
    };
    if status == 401 {
        return Err(invalid(
            "unauthorized: the cookie does not match this node".into(),
        ));
    }
    let mut reply: Value = serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(body).chars().take(200).collect();
        invalid(format!("body is not json ({e}): {start:?}"))
    })?;
    match reply.get("error") {
        None | Some(Value::Null) => {}
        Some(error) => {
            return Err(RpcError::Node {
                method: method.to_owned(),
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            })
        }
    }
    if status != 200 {
        return Err(invalid("error status without a json-rpc error".into()));
    }
    reply
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| invalid("reply has no result".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_split_into_host_and_path() {
        let rpc = Rpc::with_credentials("http://127.0.0.1:18443", "__cookie__:x");
        let Ok(rpc) = rpc else {
            panic!("valid url refused")
        };
        assert_eq!(rpc.url(), "http://127.0.0.1:18443/");
        assert_eq!(
            rpc.wallet("milagro").url(),
            "http://127.0.0.1:18443/wallet/milagro"
        );
        // base64("__cookie__:x")
        assert_eq!(rpc.authorization, "Basic X19jb29raWVfXzp4");
        assert!(!format!("{rpc:?}").contains("X19jb29r"));
        for bad in [
            "https://h:1",
            "http://h",
            "http://:1",
            "http://u:p@h:1",
            "http://h:99999",
        ] {
            assert!(Rpc::with_credentials(bad, "u:p").is_err(), "{bad}");
        }
    }

    #[test]
    fn content_length_and_chunked_bodies_parse() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_http(plain), Ok((200, b"hello".to_vec())));
        let chunked = b"HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_http(chunked), Ok((500, b"hello".to_vec())));
        assert!(parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello").is_err());
        assert!(parse_http(b"garbage").is_err());
    }

    #[test]
    fn replies_map_to_results_and_node_errors() {
        let ok = parse_reply(
            "getblockcount",
            200,
            br#"{"result":101,"error":null,"id":1}"#,
        );
        assert_eq!(ok.ok(), Some(json!(101)));
        let warm =
            br#"{"result":null,"error":{"code":-28,"message":"Loading block index..."},"id":1}"#;
        let err = parse_reply("getblockcount", 500, warm);
        let Err(err) = err else {
            panic!("error reply accepted")
        };
        assert_eq!(err.code(), Some(RPC_IN_WARMUP));
        assert_eq!(
            err.to_string(),
            "rpc getblockcount failed with code -28: Loading block index..."
        );
        let unauthorized = parse_reply("stop", 401, b"");
        assert!(matches!(
            unauthorized,
            Err(RpcError::InvalidResponse { status: 401, .. })
        ));
    }
}
