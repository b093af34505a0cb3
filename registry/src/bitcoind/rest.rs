//! Blocks over the node's REST interface: `GET /rest/block/<hash>.bin` (`-rest=1`).
//!
//! Why REST for blocks: `getblock` over JSON-RPC sends a block as hex inside JSON (twice
//! the bytes, then a JSON parse and a hex decode); REST sends the block's own bytes, which
//! [`crate::scan`] reads in place. REST needs no credentials: the node serves it
//! read-only on its RPC port.
//!
//! Why not the JSON-RPC client's transport (`bitreq`): it opens a connection per request
//! and reads a body one byte at a time through an iterator, a visible share of the node's
//! own serving time on a walk over every block. A GET on a kept-alive socket, answered with
//! a `Content-Length` (or chunked) body, is all this needs, so it is done here with `std`:
//! plain HTTP/1.1 to the node's RPC host and port, no TLS, no redirects, no proxies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::ControlFlow;
use std::time::Duration;

use bitcoin::BlockHash;

use crate::chain::ChainError;

/// The largest body accepted: a block is at most 4 MB serialized; this leaves room for
/// any test network's and refuses a runaway answer.
const MAX_BODY: usize = 32 << 20;
/// The longest status line or header line accepted.
const MAX_LINE: usize = 8 << 10;
/// At most this many header lines.
const MAX_HEADERS: usize = 100;

/// A kept-alive HTTP connection to the node's REST interface.
#[derive(Debug)]
pub(crate) struct RestClient {
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    timeout: Duration,
    connection: Option<BufReader<TcpStream>>,
}

/// An HTTP answer: its status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl RestClient {
    /// A client for the node whose JSON-RPC URL is `rpc_url` (`http://host:port[/…]`);
    /// credentials in the URL are ignored, REST needs none.
    pub(crate) fn new(rpc_url: &str, timeout: Duration) -> Result<Self, ChainError> {
        let rest = rpc_url.strip_prefix("http://").ok_or_else(|| {
            ChainError::Unreachable(format!("rest needs a plain http:// rpc url, not {rpc_url}"))
        })?;
        let authority = rest.split('/').next().unwrap_or_default();
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        if authority.is_empty() {
            return Err(ChainError::Unreachable(format!("no host in {rpc_url}")));
        }
        Ok(Self {
            authority: authority.to_owned(),
            timeout,
            connection: None,
        })
    }

    /// The block `hash` as the node stores it.
    pub(crate) fn block(&mut self, hash: &BlockHash) -> Result<Vec<u8>, ChainError> {
        let path = block_path(hash);
        let answer = self.get(&path)?;
        self.block_answer(hash, &path, answer)
    }

    /// The blocks `hashes`, in order, each handed to `each` as soon as it is read, with
    /// the request for the next one already sent: the node serves a block while `each`
    /// works on the one before, on this one connection (one request outstanding at a
    /// time, so any HTTP/1.1 server answers it). Stops after the first error, or when
    /// `each` breaks (then the connection, with an answer still coming, is dropped).
    pub(crate) fn blocks(
        &mut self,
        hashes: &[BlockHash],
        each: &mut dyn FnMut(Result<Vec<u8>, ChainError>) -> ControlFlow<()>,
    ) {
        let mut sent = false;
        for (i, hash) in hashes.iter().enumerate() {
            let path = block_path(hash);
            // A request sent ahead whose answer does not come is asked again, as `get`
            // would ask once more on a fresh connection.
            let answer = match sent {
                true => self.receive().or_else(|_| {
                    self.connection = None;
                    self.get(&path)
                }),
                false => self.get(&path),
            };
            let failed = answer.is_err();
            sent = !failed
                && hashes
                    .get(i + 1)
                    .is_some_and(|next| self.send(&block_path(next)).is_ok());
            let block = answer.and_then(|answer| self.block_answer(hash, &path, answer));
            if each(block).is_break() || failed {
                if sent {
                    self.connection = None;
                }
                return;
            }
        }
    }

    /// What the node's answer to `GET path` (block `hash`) says.
    fn block_answer(
        &self,
        hash: &BlockHash,
        path: &str,
        answer: Answer,
    ) -> Result<Vec<u8>, ChainError> {
        match answer.status {
            200 => Ok(answer.body),
            // An unknown block is a 404 that says so; a node without `-rest=1` has no
            // handler for the path and answers an empty 404.
            404 if !answer.body.is_empty() => Err(ChainError::NotFound(format!(
                "block {hash}: {}",
                String::from_utf8_lossy(&answer.body).trim()
            ))),
            status @ (403 | 404) => Err(ChainError::RestDisabled {
                url: format!("http://{}{path}", self.authority),
                status,
            }),
            status => Err(ChainError::Unreachable(format!(
                "rest {path}: http {status}: {}",
                String::from_utf8_lossy(&answer.body).trim()
            ))),
        }
    }

    /// GETs `path`, on the kept-alive connection if there is one. A kept connection the
    /// node has closed meanwhile (its idle timeout) fails at once: then once more on a
    /// fresh one.
    fn get(&mut self, path: &str) -> Result<Answer, ChainError> {
        let reused = self.connection.is_some();
        match self.try_get(path) {
            Err(_) if reused => {
                self.connection = None;
                self.try_get(path)
            }
            other => other,
        }
        .map_err(|e| {
            self.connection = None;
            ChainError::Unreachable(format!("rest {path} at {}: {e}", self.authority))
        })
    }

    fn try_get(&mut self, path: &str) -> std::io::Result<Answer> {
        self.send(path)?;
        self.receive()
    }

    /// Sends `GET path`, on the kept-alive connection if there is one.
    fn send(&mut self, path: &str) -> std::io::Result<()> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(self.connect()?),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n\r\n",
            self.authority
        );
        connection.get_mut().write_all(request.as_bytes())
    }

    /// Reads the answer to the request [`Self::send`] sent last.
    fn receive(&mut self) -> std::io::Result<Answer> {
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))?;
        let (answer, keep_alive) = read_answer(connection)?;
        if !keep_alive {
            self.connection = None;
        }
        Ok(answer)
    }

    fn connect(&self) -> std::io::Result<BufReader<TcpStream>> {
        let address = self
            .authority
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("the host resolves to no address"))?;
        let stream = TcpStream::connect_timeout(&address, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        Ok(BufReader::with_capacity(64 << 10, stream))
    }
}

fn block_path(hash: &BlockHash) -> String {
    format!("/rest/block/{hash}.bin")
}

fn invalid(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// Reads one HTTP/1.1 answer; returns it and whether the connection stays open.
fn read_answer(reader: &mut impl BufRead) -> std::io::Result<(Answer, bool)> {
    let status_line = read_line(reader)?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("not an http status line: {status_line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = !status_line.starts_with("HTTP/1.0");
    for _ in 0..MAX_HEADERS {
        let line = read_line(reader)?;
        if line.is_empty() {
            let body = match (length, chunked) {
                (_, true) => read_chunked(reader)?,
                (Some(length), false) => read_exactly(reader, length)?,
                (None, false) => {
                    keep_alive = false;
                    read_to_close(reader)?
                }
            };
            return Ok((Answer { status, body }, keep_alive));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(format!("malformed header {line:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid(format!("bad content-length {value:?}")))?,
                );
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    Err(invalid("too many headers"))
}

/// One CRLF-terminated line, without the CRLF; refuses lines over [`MAX_LINE`].
fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    let read = reader.take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if line.pop() != Some(b'\n') {
        return Err(invalid("header line too long or cut"));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("header line is not utf-8"))
}

fn read_exactly(reader: &mut impl Read, length: usize) -> std::io::Result<Vec<u8>> {
    if length > MAX_BODY {
        return Err(invalid(format!("a {length}-byte answer is too large")));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader)?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(invalid("a chunked answer is too large"));
        }
        body.extend(read_exactly(reader, size)?);
        if !read_line(reader)?.is_empty() {
            return Err(invalid("a chunk is longer than its size"));
        }
    }
}

fn read_to_close(reader: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    reader.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
    if body.len() > MAX_BODY {
        return Err(invalid("an answer without length is too large"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(bytes: &[u8]) -> std::io::Result<(Answer, bool)> {
        read_answer(&mut BufReader::new(bytes))
    }

    #[test]
    fn a_content_length_answer_keeps_the_connection() {
        let (a, keep) = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA").unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), keep),
            (200, &b"abc"[..], true)
        );
    }

    #[test]
    fn a_chunked_answer_is_joined() {
        let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x\r\nc\r\n0\r\n\r\n";
        let (a, keep) = answer(bytes).unwrap();
        assert_eq!((a.body.as_slice(), keep), (&b"abc"[..], true));
    }

    #[test]
    fn an_answer_without_length_reads_to_close() {
        let (a, keep) = answer(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nnope").unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), keep),
            (404, &b"nope"[..], false)
        );
    }

    #[test]
    fn malformed_answers_are_errors() {
        for bytes in [
            &b""[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(
                answer(bytes).is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    /// A node that answers every `GET` with the block's path as its body, and counts the
    /// requests it has read.
    fn echo_node() -> (String, std::sync::Arc<std::sync::Mutex<usize>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(0));
        let counter = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut path = String::new();
                    while let Ok(line) = read_line(&mut reader) {
                        if line.is_empty() {
                            break;
                        }
                        if let Some(rest) = line.strip_prefix("GET ") {
                            path = rest.split(' ').next().unwrap().to_owned();
                        }
                    }
                    if path.is_empty() {
                        break;
                    }
                    *counter.lock().unwrap() += 1;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
                        path.len()
                    );
                    // A client that broke off has closed its end: serve the next one.
                    if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (url, asked)
    }

    #[test]
    fn the_next_block_is_asked_for_before_the_last_one_is_handed_over() {
        let (url, asked) = echo_node();
        let mut client = RestClient::new(&url, Duration::from_secs(5)).unwrap();
        let hashes: Vec<BlockHash> = (0..3u8)
            .map(|i| bitcoin::hashes::Hash::from_byte_array([i; 32]))
            .collect();
        let mut seen = Vec::new();
        client.blocks(&hashes, &mut |block| {
            let handed = seen.len();
            seen.push(String::from_utf8(block.unwrap()).unwrap());
            // While block `handed` is worked on, the node already has the next request.
            let wanted = (handed + 2).min(hashes.len());
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while *asked.lock().unwrap() < wanted && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(*asked.lock().unwrap(), wanted);
            ControlFlow::Continue(())
        });
        let expected: Vec<String> = hashes.iter().map(block_path).collect();
        assert_eq!(seen, expected);
        // Breaking off drops the connection with its answer still coming; the client
        // reads on over a fresh one.
        let mut first = None;
        client.blocks(&hashes, &mut |block| {
            first = Some(block.unwrap());
            ControlFlow::Break(())
        });
        assert_eq!(first, Some(block_path(&hashes[0]).into_bytes()));
        assert_eq!(
            client.block(&hashes[2]).unwrap(),
            block_path(&hashes[2]).into_bytes()
        );
    }

    #[test]
    fn the_authority_comes_from_the_rpc_url() {
        let client = RestClient::new("http://u:p@127.0.0.1:18443/wallet/w", Duration::ZERO);
        assert_eq!(client.unwrap().authority, "127.0.0.1:18443");
        assert!(RestClient::new("https://node:8332", Duration::ZERO).is_err());
        assert!(RestClient::new("http:///x", Duration::ZERO).is_err());
    }
}
