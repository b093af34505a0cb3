//! An attacker on the path to a real server, as plain HTTP lets anyone be: a proxy on
//! loopback that forwards every `GET` and `POST` (with its JSON body) to the server and
//! hands each answer to a rewrite function before passing it on (it can change, replace or
//! keep it).
//!
//! One request per connection (the answer says `Connection: close`), bodies as text.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// An answer, as the server gave it or as the proxy sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// The proxy; stops when dropped.
pub struct OnPathProxy {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OnPathProxy {
    /// Serves on loopback in front of `upstream` (`http://host:port`, which need not listen
    /// yet), answering each `GET path` or `POST path` with `rewrite(path, the server's
    /// answer)`.
    pub fn start(
        upstream: &str,
        rewrite: impl Fn(&str, Answer) -> Answer + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, stopping) = (upstream.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let client = milagro_http_client::Outbound::system()
                .unwrap()
                .client()
                .unwrap();
            for stream in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve(&client, &upstream, &rewrite, stream);
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

impl Drop for OnPathProxy {
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
    rewrite: &impl Fn(&str, Answer) -> Answer,
    mut stream: TcpStream,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().map_err(std::io::Error::other)?;
            }
        }
    }
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("GET").to_owned();
    let path = words.next().unwrap_or("/").to_owned();
    let url = format!("{upstream}{path}");
    let request = if method == "POST" {
        let mut body = vec![0; content_length];
        std::io::Read::read_exact(&mut reader, &mut body)?;
        client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    } else {
        client.get(url)
    };
    let answer = request.send().map_err(std::io::Error::other)?;
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let body = answer.text().map_err(std::io::Error::other)?;
    let Answer {
        status,
        content_type,
        body,
    } = rewrite(
        &path,
        Answer {
            status,
            content_type,
            body,
        },
    );
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
