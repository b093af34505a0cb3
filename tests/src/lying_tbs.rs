//! A TBS that lies by omission, as its operator could make it: an HTTP proxy in front of a
//! real TBS that forwards every `GET` unchanged, except that it drops every record of a
//! chosen key from `/v1/records` answers after the first (it hides that the key's
//! certificate was superseded).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::Value;

/// The proxy; stops when dropped.
pub struct LyingTbs {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LyingTbs {
    /// Serves on loopback in front of the TBS at `upstream` (`http://host:port`), hiding
    /// every record but the earliest one of each key from `/v1/records?signer=…`.
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, stopping) = (upstream.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for stream in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                if let Ok(stream) = stream {
                    // One request per connection: the answer says `Connection: close`.
                    let _ = serve(&client, &upstream, stream);
                }
            }
        });
        Self {
            url,
            stop,
            thread: Some(thread),
        }
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for LyingTbs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://")); // wakes accept
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    client: &reqwest::blocking::Client,
    upstream: &str,
    mut stream: TcpStream,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let answer = client
        .get(format!("{upstream}{path}"))
        .send()
        .map_err(std::io::Error::other)?;
    let status = answer.status().as_u16();
    let mut body = answer.text().map_err(std::io::Error::other)?;
    if path.starts_with("/v1/records?") {
        body = hide_later_records(&body);
    }
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Keeps only the earliest record in a `{"records": [...]}` answer.
fn hide_later_records(body: &str) -> String {
    let Ok(mut answer) = serde_json::from_str::<Value>(body) else {
        return body.to_owned();
    };
    if let Some(records) = answer.get_mut("records").and_then(Value::as_array_mut) {
        records.sort_by_key(|r| r.get("height").and_then(Value::as_u64));
        records.truncate(1);
    }
    answer.to_string()
}
