//! Relying parties, registered dynamically (RFC 7591) and kept in the `clients` tree.
//!
//! [`ClientMetadata::parse`] reads a registration request and refuses what this IdP does
//! not do, with the RFC 7591 §3.2.2 codes: `invalid_redirect_uri` for a redirect URI that
//! is not absolute, has a fragment, or is plain `http` to anything but loopback;
//! `invalid_client_metadata` for anything else. Confidential clients
//! (`client_secret_basic`, the default, or `client_secret_post`) get a 256-bit secret,
//! shown once and stored as its SHA-256; public clients (`none`) get none and must use
//! PKCE. Redirect URIs are later compared byte for byte.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::oauth::OAuthError;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: no secret, PKCE required.
    None,
}

/// The grant types this IdP issues.
pub const GRANT_CODE: &str = "authorization_code";
/// Refresh tokens.
pub const GRANT_REFRESH: &str = "refresh_token";
/// RFC 8628.
pub const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The client identifier.
    pub client_id: String,
    /// SHA-256 of the secret (confidential clients).
    pub secret_sha256: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Token endpoint authentication.
    pub auth_method: AuthMethod,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Display name on the login page.
    pub client_name: Option<String>,
    /// When it was registered (Unix seconds).
    pub issued_at: u64,
}

impl Client {
    /// Whether `secret` is this client's, in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        let Some(stored) = &self.secret_sha256 else {
            return false;
        };
        let presented = hex::encode(Sha256::digest(secret.as_bytes()));
        stored.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// The metadata as RFC 7591 returns it (without the secret).
    pub fn metadata(&self) -> Value {
        let method = serde_json::to_value(self.auth_method).unwrap_or(Value::Null);
        let mut body = json!({
            "client_id": self.client_id,
            "client_id_issued_at": self.issued_at,
            "redirect_uris": self.redirect_uris,
            "token_endpoint_auth_method": method,
            "grant_types": self.grant_types,
            "response_types": if self.allows(GRANT_CODE) { json!(["code"]) } else { json!([]) },
        });
        if let Some(name) = &self.client_name {
            body["client_name"] = json!(name);
        }
        body
    }
}

/// A registration request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    redirect_uris: Vec<String>,
    auth_method: AuthMethod,
    grant_types: Vec<String>,
    client_name: Option<String>,
}

#[derive(Deserialize)]
struct RawMetadata {
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
}

fn bad_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_client_metadata", description)
}

impl ClientMetadata {
    /// Parses a registration request body (JSON; unknown members are ignored, as RFC 7591
    /// §2 allows).
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let raw: RawMetadata = serde_json::from_slice(body)
            .map_err(|e| bad_metadata(format!("the body is not client metadata JSON: {e}")))?;
        let grant_types = raw.grant_types.unwrap_or_else(|| vec![GRANT_CODE.into()]);
        if grant_types.is_empty() || grant_types.len() > 3 {
            return Err(bad_metadata("grant_types must name 1 to 3 grant types"));
        }
        for grant in &grant_types {
            if ![GRANT_CODE, GRANT_REFRESH, GRANT_DEVICE].contains(&grant.as_str()) {
                return Err(bad_metadata(format!(
                    "grant type {grant:?} is not supported"
                )));
            }
        }
        let wants_code = grant_types.iter().any(|g| g == GRANT_CODE);
        let response_types = raw.response_types.unwrap_or_else(|| {
            if wants_code {
                vec!["code".into()]
            } else {
                vec![]
            }
        });
        if response_types.iter().any(|r| r != "code") || wants_code == response_types.is_empty() {
            return Err(bad_metadata(
                "response_types is [\"code\"] with the authorization_code grant, [] without",
            ));
        }
        let redirect_uris = raw.redirect_uris.unwrap_or_default();
        if wants_code && redirect_uris.is_empty() {
            return Err(OAuthError::bad_request(
                "invalid_redirect_uri",
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        if redirect_uris.len() > 16 {
            return Err(OAuthError::bad_request(
                "invalid_redirect_uri",
                "at most 16 redirect URIs",
            ));
        }
        for uri in &redirect_uris {
            check_redirect_uri(uri)?;
        }
        let auth_method = match raw.token_endpoint_auth_method.as_deref() {
            None | Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
            Some("client_secret_post") => AuthMethod::ClientSecretPost,
            Some("none") => AuthMethod::None,
            Some(other) => {
                return Err(bad_metadata(format!(
                    "token_endpoint_auth_method {other:?} is not supported"
                )))
            }
        };
        if let Some(name) = &raw.client_name {
            if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
                return Err(bad_metadata("client_name is 1 to 128 characters"));
            }
        }
        Ok(Self {
            redirect_uris,
            auth_method,
            grant_types,
            client_name: raw.client_name,
        })
    }

    /// Makes the client: a fresh id and, for a confidential client, a fresh secret
    /// (returned once, alongside).
    pub fn register(self, now: u64) -> (Client, Option<Zeroizing<String>>) {
        let client_id = random_token(16).to_string();
        let secret = (self.auth_method != AuthMethod::None).then(|| random_token(32));
        let client = Client {
            client_id,
            secret_sha256: secret
                .as_ref()
                .map(|s| hex::encode(Sha256::digest(s.as_bytes()))),
            redirect_uris: self.redirect_uris,
            auth_method: self.auth_method,
            grant_types: self.grant_types,
            client_name: self.client_name,
            issued_at: now,
        };
        (client, secret)
    }
}

/// An absolute `https` URI, or `http` to a loopback host (RFC 8252 §7.3), without a
/// fragment or white space.
fn check_redirect_uri(uri: &str) -> Result<(), OAuthError> {
    let bad = |why: &str| {
        OAuthError::bad_request(
            "invalid_redirect_uri",
            format!("redirect URI {uri:?} {why}"),
        )
    };
    if uri.len() > 2048 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("is too long or has white space"));
    }
    if uri.contains('#') {
        return Err(bad("has a fragment"));
    }
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| bad("is not absolute"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority
        .rsplit_once(':')
        .filter(|(h, port)| !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h);
    if host.is_empty() || authority.contains('@') {
        return Err(bad("has no host, or has user information"));
    }
    match scheme {
        "https" => Ok(()),
        "http" if ["127.0.0.1", "[::1]", "localhost"].contains(&host) => Ok(()),
        _ => Err(bad("is neither https nor http to a loopback address")),
    }
}

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> Zeroizing<String> {
    let mut raw = Zeroizing::new(vec![0u8; bytes]);
    rand_core::OsRng.fill_bytes(&mut raw);
    Zeroizing::new(B64URL.encode(&*raw))
}

/// The `clients` tree: client id → JSON [`Client`].
#[derive(Debug, Clone)]
pub struct ClientStore {
    tree: sled::Tree,
}

impl ClientStore {
    /// Opens the `clients` tree of `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            tree: db.open_tree("clients")?,
        })
    }

    /// Stores a new client durably.
    pub fn insert(&self, client: &Client) -> Result<(), OAuthError> {
        let json = serde_json::to_vec(client).map_err(OAuthError::internal)?;
        self.tree
            .insert(client.client_id.as_bytes(), json)
            .map_err(OAuthError::internal)?;
        self.tree.flush().map_err(OAuthError::internal)?;
        Ok(())
    }

    /// The client `client_id`, if registered.
    pub fn get(&self, client_id: &str) -> Result<Option<Client>, OAuthError> {
        if client_id.is_empty() || client_id.len() > 128 {
            return Ok(None);
        }
        self.tree
            .get(client_id.as_bytes())
            .map_err(OAuthError::internal)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(OAuthError::internal))
            .transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn code(body: &str) -> String {
        ClientMetadata::parse(body.as_bytes())
            .unwrap_err()
            .code()
            .to_owned()
    }

    #[test]
    fn registration_requests_are_checked_with_the_rfc_7591_codes() {
        let ok = ClientMetadata::parse(br#"{"redirect_uris":["https://rp.test/cb"]}"#).unwrap();
        let (client, secret) = ok.register(7);
        assert_eq!(client.auth_method, AuthMethod::ClientSecretBasic);
        assert!(client.secret_matches(&secret.unwrap()));
        assert!(!client.secret_matches("guess"));
        let public = br#"{"redirect_uris":["http://127.0.0.1:8080/cb"],"token_endpoint_auth_method":"none"}"#;
        let (client, secret) = ClientMetadata::parse(public).unwrap().register(7);
        assert!(secret.is_none() && client.secret_sha256.is_none());
        let device = br#"{"grant_types":["urn:ietf:params:oauth:grant-type:device_code"]}"#;
        assert!(ClientMetadata::parse(device).is_ok());

        assert_eq!(code("not json"), "invalid_client_metadata");
        assert_eq!(code(r#"{"redirect_uris":[]}"#), "invalid_redirect_uri");
        assert_eq!(
            code(r#"{"redirect_uris":["http://rp.test/cb"]}"#),
            "invalid_redirect_uri"
        );
        assert_eq!(
            code(r#"{"redirect_uris":["https://rp.test/cb#x"]}"#),
            "invalid_redirect_uri"
        );
        assert_eq!(
            code(r#"{"redirect_uris":["/relative"]}"#),
            "invalid_redirect_uri"
        );
        assert_eq!(
            code(r#"{"redirect_uris":["https://a/"],"grant_types":["implicit"]}"#),
            "invalid_client_metadata"
        );
        assert_eq!(
            code(
                r#"{"redirect_uris":["https://a/"],"token_endpoint_auth_method":"private_key_jwt"}"#
            ),
            "invalid_client_metadata"
        );
    }
}
