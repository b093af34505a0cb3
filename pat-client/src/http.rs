//! A small blocking JSON client of one service: the TBS, and the IdP, D-TAs and
//! authentication server its instructions (or the operator) name.
//!
//! Nothing it returns is trusted: callers read every body as its `milagro_wire` type
//! ([`Answer::read`]), parse the text in it into checked values and verify every anchor by
//! SPV. It only makes transport failures and error answers into [`Error`]s naming the
//! step, the HTTP status and the error body's `error` code and description.

use std::io::Read as _;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use milagro_http_client::Outbound;
use milagro_wire::ErrorBody;

use crate::error::{Error, Step};

/// The largest answer body read (headers pages are about 330 KB).
const MAX_BODY_BYTES: u64 = 2 * 1024 * 1024;

/// How long one request may take, connection included, unless set otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one service, by its base URL.
///
/// Blocking (reqwest's blocking client runs its own small runtime): call it from plain
/// threads, not from inside an async runtime. Cloning is cheap and shares connections.
/// `https://` is verified against the system's roots or the CA bundle of its
/// [`Outbound`]; plain `http://` only to loopback unless that policy allows it
/// ([`milagro_http_client`]). [`ServiceClient::for_service`] makes the client of another
/// service (an IdP, a D-TA) with the same policy.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    base: String,
    client: reqwest::blocking::Client,
    outbound: Outbound,
    timeout: Duration,
}

/// A successful answer: its status (2xx) and JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The body read as the wire type `T`, or an [`Error::Unexpected`] of `step`.
    pub(crate) fn read<T: DeserializeOwned>(&self, step: Step) -> Result<T, Error> {
        T::deserialize(&self.body).map_err(|e| Error::unexpected(step, e))
    }
}

impl ServiceClient {
    /// A client of the service at `base` (`https://host[:port]` or, on loopback,
    /// `http://`; no trailing path needed), trusting the system's roots.
    pub fn new(base: &str) -> Result<Self, Error> {
        Self::with_timeout(base, DEFAULT_REQUEST_TIMEOUT)
    }

    /// The same, with a per-request timeout.
    pub fn with_timeout(base: &str, timeout: Duration) -> Result<Self, Error> {
        Self::with_outbound(base, &Outbound::system()?, timeout)
    }

    /// A client of the service at `base` under the HTTP policy `outbound` (a CA bundle,
    /// plain HTTP allowed or not).
    pub fn with_outbound(
        base: &str,
        outbound: &Outbound,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let base = base.trim_end_matches('/');
        outbound.check_url(base)?;
        let client = outbound
            .builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Unsupported(format!("cannot build an http client: {e}")))?;
        Ok(Self {
            base: base.to_owned(),
            client,
            outbound: outbound.clone(),
            timeout,
        })
    }

    /// A client of another service at `base`, with this client's policy and timeout.
    pub fn for_service(&self, base: &str) -> Result<Self, Error> {
        Self::with_outbound(base, &self.outbound, self.timeout)
    }

    /// The HTTP policy this client follows.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET path`; a 2xx answer with a JSON body, or an error.
    pub(crate) fn get(&self, step: Step, path: &str) -> Result<Answer, Error> {
        self.get_with(step, path, &[])
    }

    /// `GET path` with extra `headers` (a DPoP proof).
    pub(crate) fn get_with(
        &self,
        step: Step,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, Error> {
        let request = headers
            .iter()
            .fold(self.client.get(self.url(path)), |request, (name, value)| {
                request.header(*name, *value)
            });
        self.send(step, request, path)
    }

    /// `POST path` with a JSON body.
    pub(crate) fn post(
        &self,
        step: Step,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Answer, Error> {
        self.post_with(step, path, &[], body)
    }

    /// `POST path` with a JSON body and extra `headers` (an access token, a DPoP proof).
    pub(crate) fn post_with(
        &self,
        step: Step,
        path: &str,
        headers: &[(&str, &str)],
        body: &impl Serialize,
    ) -> Result<Answer, Error> {
        let body = serde_json::to_string(body).map_err(|e| Error::unexpected(step, e))?;
        let request = self
            .client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let request = headers.iter().fold(request, |request, (name, value)| {
            request.header(*name, *value)
        });
        self.send(step, request, path)
    }

    /// `POST path` with an `application/x-www-form-urlencoded` body (OAuth endpoints).
    pub(crate) fn post_form(
        &self,
        step: Step,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<Answer, Error> {
        self.post_form_with(step, path, &[], form)
    }

    /// `POST path` with a form body and extra `headers` (a DPoP proof).
    pub(crate) fn post_form_with(
        &self,
        step: Step,
        path: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Result<Answer, Error> {
        let body = form
            .iter()
            .map(|(key, value)| format!("{}={}", form_encode(key), form_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .client
            .post(self.url(path))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let request = headers.iter().fold(request, |request, (name, value)| {
            request.header(*name, *value)
        });
        self.send(step, request, path)
    }

    /// The path of `url` under this client's base, if it is under it.
    pub(crate) fn path_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix(&self.base)
            .filter(|path| path.starts_with('/'))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(
        &self,
        step: Step,
        request: reqwest::blocking::RequestBuilder,
        path: &str,
    ) -> Result<Answer, Error> {
        let transport = |source: Box<dyn std::error::Error + Send + Sync>| Error::Http {
            step,
            url: self.url(path),
            source,
        };
        let response = request.send().map_err(|e| transport(e.into()))?;
        let status = response.status().as_u16();
        let retry_after_secs = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok());
        let mut bytes = Vec::new();
        response
            .take(MAX_BODY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| transport(e.into()))?;
        if bytes.len() as u64 > MAX_BODY_BYTES {
            return Err(Error::unexpected(
                step,
                format!("an answer above {MAX_BODY_BYTES} bytes"),
            ));
        }
        if !(200..300).contains(&status) {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(error) => (Some(error.error), error.error_description),
                Err(_) => (
                    None,
                    String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                ),
            };
            return Err(Error::Server {
                step,
                url: self.url(path),
                status,
                code,
                message,
                retry_after_secs,
            });
        }
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        let body = body.ok_or_else(|| Error::unexpected(step, "a body that is not JSON"))?;
        Ok(Answer { status, body })
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_plain_http_to_loopback_are_accepted() {
        assert!(ServiceClient::new("http://127.0.0.1:1").is_ok());
        assert!(ServiceClient::new("https://tbs.example").is_ok());
        assert!(matches!(
            ServiceClient::new("http://tbs.example"),
            Err(Error::Transport(
                milagro_http_client::ClientError::PlainHttpRefused { .. }
            ))
        ));
        for bad in ["", "http://", "ftp://x", "127.0.0.1:80"] {
            assert!(ServiceClient::new(bad).is_err(), "{bad}");
        }
        let tbs = ServiceClient::new("https://tbs.example").unwrap();
        assert!(tbs.for_service("https://idp.example").is_ok());
        assert!(tbs.for_service("http://idp.example").is_err());
        assert_eq!(
            ServiceClient::new("https://h:1/").unwrap().base_url(),
            "https://h:1"
        );
    }

    #[test]
    fn form_values_are_percent_encoded_and_paths_stay_under_the_base() {
        assert_eq!(form_encode("a b&c=d/é~"), "a%20b%26c%3Dd%2F%C3%A9~");
        let client = ServiceClient::new("https://idp:1").unwrap();
        assert_eq!(client.path_of("https://idp:1/token"), Some("/token"));
        assert_eq!(client.path_of("https://idp:12/token"), None);
        assert_eq!(client.path_of("https://evil/token"), None);
    }

    #[test]
    fn an_unreachable_tbs_is_an_http_error_naming_the_step() {
        // A port that was just free: nothing listens there any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let client = ServiceClient::with_timeout(&url, Duration::from_secs(2)).unwrap();
        let error = client
            .get(Step::FetchHeaders, "/v1/headers?from=0")
            .unwrap_err();
        assert!(matches!(error, Error::Http { .. }), "{error}");
        assert!(
            error.to_string().starts_with("fetching headers: "),
            "{error}"
        );
    }
}
