//! A TBS that lies by omission, as its operator could make it: an HTTP proxy in front of a
//! real TBS ([`OnPathProxy`]) that forwards every `GET` unchanged, except that it drops
//! every record of a chosen key from `/v1/records` answers after the first (it hides that
//! the key's certificate was superseded).

use milagro_wire::tbs::registry::Records;

use crate::on_path::OnPathProxy;

/// The proxy; stops when dropped.
pub struct LyingTbs(OnPathProxy);

impl LyingTbs {
    /// Serves on loopback in front of the TBS at `upstream` (`http://host:port`), hiding
    /// every record but the earliest one of each key from `/v1/records?signer=…`.
    pub fn start(upstream: &str) -> Self {
        Self(OnPathProxy::start(upstream, |path, mut answer| {
            if path.starts_with("/v1/records?") {
                answer.body = hide_later_records(&answer.body);
            }
            answer
        }))
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        self.0.url()
    }
}

/// Keeps only the earliest record in a `/v1/records` answer.
fn hide_later_records(body: &str) -> String {
    let Ok(mut answer) = serde_json::from_str::<Records>(body) else {
        return body.to_owned();
    };
    answer.records.sort_by_key(|r| r.height);
    answer.records.truncate(1);
    serde_json::to_string(&answer).unwrap_or_else(|_| body.to_owned())
}
