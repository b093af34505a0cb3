//! The one Electrum call the runner needs: "what is your tip height?", over plain TCP.
//!
//! Electrum's protocol is JSON-RPC with one message per line. This is not a client (see
//! `milagro-electrum`); it only tells whether a server is up and how far it has synced.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Asks the server at `addr` for its tip height (`blockchain.headers.subscribe`), after the
/// `server.version` handshake. Any failure is returned as text, for the runner's error.
pub(crate) fn tip_height(addr: SocketAddr, timeout: Duration) -> Result<u32, String> {
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let requests = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"server.version","params":["milagro-regtest","1.4"]}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"blockchain.headers.subscribe","params":[]}"#,
        "\n",
    );
    (&stream)
        .write_all(requests.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(&stream).lines();
    // Notifications (no id) and the version answer come first; at most a few lines.
    for _ in 0..8 {
        let line = lines
            .next()
            .ok_or("connection closed")?
            .map_err(|e| e.to_string())?;
        let answer: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        if answer["id"] != 2 {
            continue;
        }
        return answer["result"]["height"]
            .as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| format!("no height in {line}"));
    }
    Err("no answer to blockchain.headers.subscribe".into())
}
