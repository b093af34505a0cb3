//! A bare JSON-RPC POST and a bare REST walk over a `TcpStream`: the node's own serving
//! time.
//!
//! The workspace's client (`jsonrpc` over `bitreq`) opens a connection per request and reads
//! the response byte by byte, then parses the JSON; at tens of megabytes per batch that is
//! a visible share of "fetching blocks". To show what `bitcoind` alone costs, this sends the
//! same request bodies with one `write_all` and reads the answer with one `read_to_end`,
//! parsing nothing but the status line. [`RawRest`] GETs every block's `.bin` over one
//! kept-alive connection and drops the bytes: what the node needs to serve a block walk
//! over REST. Benchmark use only: no TLS, no redirects, no chunked encoding (the node sends
//! a `Content-Length`). [`read_head`] also reads `bench token`'s answers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::path::Path;

use anyhow::{ensure, Context, Result};
use bitcoin::BlockHash;

/// The node's RPC endpoint and its `Authorization` header value.
#[derive(Debug, Clone)]
pub struct RawRpc {
    socket: SocketAddrV4,
    authorization: String,
}

impl RawRpc {
    /// An endpoint authenticating with the node's cookie file.
    pub fn new(socket: SocketAddrV4, cookie_file: &Path) -> Result<Self> {
        let cookie = std::fs::read_to_string(cookie_file)
            .with_context(|| format!("cannot read {}", cookie_file.display()))?;
        Ok(Self {
            socket,
            authorization: format!("Basic {}", STANDARD.encode(cookie.trim().as_bytes())),
        })
    }

    /// POSTs `body` and reads the whole answer; returns its size in bytes.
    pub fn post(&self, body: &[u8]) -> Result<usize> {
        let mut stream = TcpStream::connect(self.socket)?;
        stream.set_nodelay(true)?;
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.socket,
            self.authorization,
            body.len()
        );
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);
        stream.write_all(&request)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        ensure!(
            answer.starts_with(b"HTTP/1.1 200"),
            "the node answered {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        );
        Ok(answer.len())
    }
}

/// A JSON-RPC batch body calling `method` once per parameter list.
pub fn batch_body(method: &str, params: &[serde_json::Value]) -> Result<Vec<u8>> {
    let calls: Vec<serde_json::Value> = params
        .iter()
        .enumerate()
        .map(|(id, params)| serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
        .collect();
    Ok(serde_json::to_vec(&calls)?)
}

/// The node's REST endpoint (no credentials: REST has none).
#[derive(Debug, Clone, Copy)]
pub struct RawRest {
    socket: SocketAddrV4,
}

impl RawRest {
    /// The REST interface on the node's RPC socket.
    pub fn new(socket: SocketAddrV4) -> Self {
        Self { socket }
    }

    /// GETs `/rest/block/<hash>.bin` for every hash, in order, on one kept-alive
    /// connection, reading each body into the same buffer; returns the bytes served.
    pub fn walk(&self, hashes: &[BlockHash]) -> Result<usize> {
        let stream = TcpStream::connect(self.socket)?;
        stream.set_nodelay(true)?;
        let mut reader = BufReader::with_capacity(64 << 10, stream);
        let mut body = Vec::new();
        let mut line = String::new();
        let mut total = 0;
        for hash in hashes {
            let request = format!(
                "GET /rest/block/{hash}.bin HTTP/1.1\r\nHost: {}\r\n\r\n",
                self.socket
            );
            reader.get_mut().write_all(request.as_bytes())?;
            let (status, length) = read_head(&mut reader, &mut line)?;
            ensure!(
                status.starts_with("HTTP/1.1 200"),
                "the node answered {status:?}"
            );
            let length = length.context("a REST answer without Content-Length")?;
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
            total += length;
        }
        Ok(total)
    }
}

/// Reads the head of an HTTP/1.1 answer from `reader` (`line` is a buffer to reuse): its
/// status line and its `Content-Length`, if it has one.
pub fn read_head(reader: &mut impl BufRead, line: &mut String) -> Result<(String, Option<usize>)> {
    line.clear();
    reader.read_line(line)?;
    let status = line.trim_end().to_owned();
    let mut length = None;
    loop {
        line.clear();
        reader.read_line(line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
    }
    Ok((status, length))
}
