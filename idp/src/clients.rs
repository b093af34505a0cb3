//! Relying parties, registered dynamically (RFC 7591) and kept in the `clients` tree.
//!
//! [`ClientMetadata::parse`] reads a registration request. What this IdP does not do is
//! replaced or dropped, as RFC 7591 §2 allows, and the answer states what was registered:
//! grant types other than the three it issues (e.g. `implicit`) and response types other
//! than `code` are dropped (no grant type left: `authorization_code`), an unsupported
//! `token_endpoint_auth_method` becomes `client_secret_basic`, a malformed `client_name`
//! is dropped, unknown members are ignored. So mod_auth_openidc's request (which asks for
//! the implicit and hybrid flows too) registers a code-flow client. What would make the
//! client unsafe is refused with the RFC 7591 §3.2.2 codes: `invalid_redirect_uri` for a
//! redirect URI that is not absolute, has a fragment, or is plain `http` to anything but
//! loopback; `invalid_client_metadata` for a logout URI of the same faults or a body that
//! is not client metadata. Confidential clients
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
/// OpenID Connect CIBA (poll mode, [`crate::ciba`]).
pub const GRANT_CIBA: &str = "urn:openid:params:grant-type:ciba";

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
    /// Where a person may be sent after logging out at this IdP (RP-Initiated Logout
    /// 1.0 §3.1), compared byte for byte (rows written before read as none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the IdP POSTs a logout token when a session the client took part in ends
    /// (Back-Channel Logout 1.0 §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether the client needs `sid` in ID and logout tokens.
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
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
        if !self.post_logout_redirect_uris.is_empty() {
            body["post_logout_redirect_uris"] = json!(self.post_logout_redirect_uris);
        }
        if self.allows(GRANT_CIBA) {
            body["backchannel_token_delivery_mode"] = json!(crate::ciba::DELIVERY_POLL);
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            body["backchannel_logout_uri"] = json!(uri);
            body["backchannel_logout_session_required"] =
                json!(self.backchannel_logout_session_required);
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
    post_logout_redirect_uris: Vec<String>,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: bool,
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
    client_name: Option<String>,
    #[serde(default)]
    post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    backchannel_logout_uri: Option<String>,
    #[serde(default)]
    backchannel_logout_session_required: Option<bool>,
    #[serde(default)]
    backchannel_token_delivery_mode: Option<String>,
}

/// The grant types this IdP issues to a registered client.
const GRANTS: [&str; 4] = [GRANT_CODE, GRANT_REFRESH, GRANT_DEVICE, GRANT_CIBA];

/// The most redirect (or post-logout redirect) URIs a client may register.
const MAX_URIS: usize = 16;

fn bad_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::bad_request("invalid_client_metadata", description)
}

impl ClientMetadata {
    /// Parses a registration request body (JSON; unknown members are ignored, as RFC 7591
    /// §2 allows).
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let raw: RawMetadata = serde_json::from_slice(body)
            .map_err(|e| bad_metadata(format!("the body is not client metadata JSON: {e}")))?;
        // RFC 7591 §2: the server may replace or drop what it does not support; the
        // answer says what was registered.
        let mut grant_types: Vec<String> = Vec::new();
        for grant in raw.grant_types.unwrap_or_default() {
            if GRANTS.contains(&grant.as_str()) && !grant_types.contains(&grant) {
                grant_types.push(grant);
            }
        }
        if grant_types.is_empty() {
            grant_types.push(GRANT_CODE.into());
        }
        // `response_types` is not read: it follows from the grant types (`code` with the
        // code grant, none without), whatever hybrid or implicit flows were asked for.
        let wants_code = grant_types.iter().any(|g| g == GRANT_CODE);
        let redirect_uris = raw.redirect_uris.unwrap_or_default();
        if wants_code && redirect_uris.is_empty() {
            return Err(OAuthError::bad_request(
                "invalid_redirect_uri",
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        if redirect_uris.len() > MAX_URIS {
            return Err(OAuthError::bad_request(
                "invalid_redirect_uri",
                "at most 16 redirect URIs",
            ));
        }
        for uri in &redirect_uris {
            check_redirect_uri(uri)?;
        }
        let post_logout_redirect_uris = raw.post_logout_redirect_uris.unwrap_or_default();
        if post_logout_redirect_uris.len() > MAX_URIS {
            return Err(bad_metadata("at most 16 post_logout_redirect_uris"));
        }
        // Logout URIs are where the IdP sends people (post-logout) or its own requests
        // (back-channel): the same rules as redirect URIs, so neither reaches plain http
        // beyond loopback.
        for uri in post_logout_redirect_uris
            .iter()
            .chain(raw.backchannel_logout_uri.iter())
        {
            check_redirect_uri(uri).map_err(|e| bad_metadata(e.description().to_owned()))?;
        }
        let auth_method = match raw.token_endpoint_auth_method.as_deref() {
            Some("client_secret_post") => AuthMethod::ClientSecretPost,
            Some("none") => AuthMethod::None,
            _ => AuthMethod::ClientSecretBasic,
        };
        if grant_types.iter().any(|g| g == GRANT_CIBA) {
            check_ciba(raw.backchannel_token_delivery_mode.as_deref(), auth_method)?;
        }
        let client_name = raw.client_name.filter(|name| {
            !name.is_empty() && name.chars().count() <= 128 && !name.chars().any(char::is_control)
        });
        Ok(Self {
            redirect_uris,
            auth_method,
            grant_types,
            client_name,
            post_logout_redirect_uris,
            backchannel_logout_session_required: raw.backchannel_logout_uri.is_some()
                && raw.backchannel_logout_session_required.unwrap_or(false),
            backchannel_logout_uri: raw.backchannel_logout_uri,
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
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
        };
        (client, secret)
    }
}

/// A client of the CIBA grant (CIBA §4) polls (`ping` and `push` would wait for
/// notifications this IdP never sends, so they are refused rather than replaced) and
/// authenticates (§7.1: the request names a person whose device it alerts).
fn check_ciba(mode: Option<&str>, auth_method: AuthMethod) -> Result<(), OAuthError> {
    if mode != Some(crate::ciba::DELIVERY_POLL) {
        return Err(bad_metadata(format!(
            "the CIBA grant needs backchannel_token_delivery_mode \"poll\" (the only mode \
             served), not {mode:?}"
        )));
    }
    if auth_method == AuthMethod::None {
        return Err(bad_metadata(
            "the CIBA grant needs a client that authenticates (client_secret_basic or \
             client_secret_post)",
        ));
    }
    Ok(())
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

        let ciba = |mode: &str, method: &str| {
            format!(
                r#"{{"grant_types":["{GRANT_CIBA}"],"backchannel_token_delivery_mode":{mode},
                "token_endpoint_auth_method":"{method}"}}"#
            )
        };
        let (client, _) = ClientMetadata::parse(ciba("\"poll\"", "client_secret_basic").as_bytes())
            .unwrap()
            .register(7);
        assert_eq!(client.grant_types, [GRANT_CIBA]);
        assert_eq!(client.metadata()["backchannel_token_delivery_mode"], "poll");
        for refused in [
            ciba("\"ping\"", "client_secret_basic"),
            ciba("\"push\"", "client_secret_post"),
            ciba("null", "client_secret_basic"),
            ciba("\"poll\"", "none"),
        ] {
            assert_eq!(code(&refused), "invalid_client_metadata", "{refused}");
        }

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
            code(r#"{"redirect_uris":["https://a/"],"post_logout_redirect_uris":["http://a/"]}"#),
            "invalid_client_metadata"
        );
        assert_eq!(
            code(r#"{"redirect_uris":["https://a/"],"backchannel_logout_uri":"https://a/#x"}"#),
            "invalid_client_metadata"
        );
    }

    /// What mod_auth_openidc 2.4.12 (Debian bookworm) sends, from its
    /// `oidc_metadata_client_register`: every flow it knows, the implicit grant, and
    /// members this IdP has no use for.
    const MOD_AUTH_OPENIDC_BODY: &str = r#"{
        "client_name": "mod_auth_openidc",
        "redirect_uris": ["https://rp.test/protected/redirect_uri"],
        "response_types": ["code", "id_token", "id_token token", "code id_token",
                           "code token", "code id_token token"],
        "grant_types": ["authorization_code", "implicit", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "contacts": ["ops@rp.test"],
        "initiate_login_uri": "https://rp.test/protected/redirect_uri",
        "frontchannel_logout_uri": "https://rp.test/protected/redirect_uri?logout=get",
        "backchannel_logout_uri": "https://rp.test/protected/redirect_uri?logout=backchannel",
        "post_logout_redirect_uris": ["https://rp.test/loggedout.html"]
    }"#;

    #[test]
    fn unsupported_metadata_is_replaced_or_dropped_not_refused() {
        let (client, _) = ClientMetadata::parse(MOD_AUTH_OPENIDC_BODY.as_bytes())
            .unwrap()
            .register(7);
        assert_eq!(client.grant_types, [GRANT_CODE, GRANT_REFRESH]);
        let answer = client.metadata();
        assert_eq!(answer["response_types"], json!(["code"]));
        assert_eq!(answer["grant_types"], json!([GRANT_CODE, GRANT_REFRESH]));
        assert_eq!(
            answer["backchannel_logout_uri"],
            "https://rp.test/protected/redirect_uri?logout=backchannel"
        );
        assert_eq!(
            client.post_logout_redirect_uris,
            ["https://rp.test/loggedout.html"]
        );
        assert!(answer.get("frontchannel_logout_uri").is_none());
        // Only the implicit grant: replaced by the code grant; an unknown client
        // authentication method by the default.
        let implicit = r#"{"redirect_uris":["https://a/"],"grant_types":["implicit"],
            "token_endpoint_auth_method":"private_key_jwt","client_name":""}"#;
        let (client, secret) = ClientMetadata::parse(implicit.as_bytes())
            .unwrap()
            .register(7);
        assert_eq!(client.grant_types, [GRANT_CODE]);
        assert_eq!(client.auth_method, AuthMethod::ClientSecretBasic);
        assert!(secret.is_some() && client.client_name.is_none());
    }
}
