//! What the IdP has issued: authorization codes, access and refresh tokens, and the
//! grants they descend from, in the `codes`, `tokens` and `revoked` trees.
//!
//! Codes and tokens are 256-bit random strings handed out once; only their SHA-256 is
//! stored, so a copy of the database lets nobody use them. Every code and token belongs
//! to one *grant* (one user's authorization of one client, a random id): revoking the
//! grant kills every token descending from it. That is how the specs' reuse rules are
//! kept: a code redeemed twice (RFC 6749 §4.1.2) and a refresh token used twice (refresh
//! tokens rotate at each use, RFC 9700 §4.14.2) revoke their grant. Every read-check-write
//! is one compare-and-swap (`update`), so two concurrent redemptions cannot both succeed.

use std::sync::Arc;

use milagro_anchor::dpop::Thumbprint;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::authentication::Authenticated;
use crate::clients::random_token;
use crate::group_flush::GroupFlush;
use crate::oauth::OAuthError;

/// What a user authorized: the root of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The grant's id (tokens of one grant are revoked together).
    pub grant_id: String,
    /// The client it was given to.
    pub client_id: String,
    /// The user's subject identifier.
    pub subject: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The client's nonce, echoed in the ID token.
    pub nonce: Option<String>,
    /// When the user authenticated (Unix seconds).
    pub auth_time: u64,
    /// How the user authenticated (RFC 8176 `amr`; rows written before read as none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The authentication context class satisfied (`acr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Granted through the device authorization grant (RFC 8628): the person approved
    /// this device's code on another screen. Only such a grant, bound to the device's key,
    /// may register that key as the person's device ([`crate::devices`]): a relying party
    /// that got tokens through a browser cannot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub device_grant: bool,
    /// The key the grant's tokens are bound to (RFC 9449): set when the grant was first
    /// redeemed with a DPoP proof, then needed for every later use (rows written before
    /// read as unbound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<Thumbprint>,
    /// The login session the grant was given in (its public `sid`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Authorization {
    /// A new grant of `scope` to `client_id` by the person `who`.
    pub fn new(client_id: &str, who: &Authenticated, scope: &str, nonce: Option<String>) -> Self {
        Self {
            grant_id: random_token(16).to_string(),
            client_id: client_id.to_owned(),
            subject: who.subject.clone(),
            scope: scope.to_owned(),
            nonce,
            auth_time: who.auth_time,
            amr: who.amr.clone(),
            acr: who.acr.clone(),
            device_grant: false,
            jkt: None,
            sid: None,
        }
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// An authorization code as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRow {
    /// What it grants.
    pub auth: Authorization,
    /// The redirect URI it was sent to (must be repeated exactly at the token endpoint).
    pub redirect_uri: String,
    /// The PKCE S256 challenge, if the client sent one.
    pub code_challenge: Option<String>,
    /// Expiry (Unix seconds).
    pub expires: u64,
    used: bool,
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A bearer access token.
    Access,
    /// A refresh token (single use: each use issues the next).
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRow {
    kind: TokenKind,
    auth: Authorization,
    expires: u64,
    used: bool,
}

/// Codes, tokens and revoked grants.
#[derive(Debug, Clone)]
pub struct Grants {
    codes: sled::Tree,
    tokens: sled::Tree,
    revoked: sled::Tree,
    /// How long a revoked grant is remembered: as long as any of its tokens may live.
    keep_revoked: u64,
    /// The flushes that make each change durable before it is answered.
    durable: Arc<GroupFlush>,
}

/// The stored key of a code or token: its SHA-256.
pub fn hashed(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Reads, checks and rewrites one JSON row atomically. `change` sees the row (or `None`)
/// and returns the row to write back (or `None` to leave it) and the answer; an error from
/// it aborts without writing. The write is a compare-and-swap against the bytes read: if
/// another writer changed the row meanwhile, `change` runs again on the new row, so two
/// concurrent redemptions of one code cannot both see it unused.
pub(crate) fn update<T, R>(
    tree: &sled::Tree,
    key: &[u8],
    change: impl Fn(Option<T>) -> Result<(Option<T>, R), OAuthError>,
) -> Result<R, OAuthError>
where
    T: Serialize + DeserializeOwned,
{
    loop {
        let read = tree.get(key).map_err(OAuthError::internal)?;
        let row = match &read {
            Some(bytes) => Some(serde_json::from_slice(bytes).map_err(OAuthError::internal)?),
            None => None,
        };
        let (write, answer) = change(row)?;
        let Some(write) = write else {
            return Ok(answer);
        };
        let json = serde_json::to_vec(&write).map_err(OAuthError::internal)?;
        match tree
            .compare_and_swap(key, read, Some(json))
            .map_err(OAuthError::internal)?
        {
            Ok(()) => return Ok(answer),
            // Changed since it was read: check the new row.
            Err(_) => continue,
        }
    }
}

/// Writes one JSON row (not yet durable: see [`Grants::flush`]).
fn put(tree: &sled::Tree, key: &[u8], row: &impl Serialize) -> Result<(), OAuthError> {
    let json = serde_json::to_vec(row).map_err(OAuthError::internal)?;
    tree.insert(key, json).map_err(OAuthError::internal)?;
    Ok(())
}

impl Grants {
    /// Opens the trees in `db`; a revoked grant is remembered `keep_revoked` seconds (the
    /// longest lifetime of a code or token), then swept ([`crate::sweep`]).
    pub fn open(db: &sled::Db, keep_revoked: u64) -> Result<Self, sled::Error> {
        let codes = db.open_tree("codes")?;
        Ok(Self {
            durable: Arc::new(GroupFlush::new(codes.clone())),
            codes,
            tokens: db.open_tree("tokens")?,
            revoked: db.open_tree("revoked")?,
            keep_revoked,
        })
    }

    /// Makes every change this thread made before durable (a flush shared with the
    /// writers waiting at the same time, [`GroupFlush`]).
    fn flush(&self) -> Result<(), OAuthError> {
        self.durable.flush().map_err(OAuthError::internal)
    }

    /// Issues a single-use code.
    pub fn issue_code(
        &self,
        auth: Authorization,
        redirect_uri: &str,
        code_challenge: Option<String>,
        expires: u64,
    ) -> Result<Zeroizing<String>, OAuthError> {
        let code = random_token(32);
        let row = CodeRow {
            auth,
            redirect_uri: redirect_uri.to_owned(),
            code_challenge,
            expires,
            used: false,
        };
        put(&self.codes, &hashed(&code), &row)?;
        self.flush()?;
        Ok(code)
    }

    /// Redeems `code` once: `check` (client, redirect URI, PKCE) runs on the stored row;
    /// whatever it says, the code is used up. A code used before revokes its grant.
    pub fn redeem_code(
        &self,
        code: &str,
        now: u64,
        check: impl Fn(&CodeRow) -> Result<(), OAuthError>,
    ) -> Result<Authorization, OAuthError> {
        let outcome = update(&self.codes, &hashed(code), |row: Option<CodeRow>| {
            let Some(mut row) = row else {
                return Err(OAuthError::invalid_grant("unknown authorization code"));
            };
            if row.used {
                return Ok((None, Err(row.auth.grant_id.clone())));
            }
            row.used = true;
            let verdict = if now >= row.expires {
                Err(OAuthError::invalid_grant(
                    "the authorization code has expired",
                ))
            } else {
                check(&row).map(|()| row.auth.clone())
            };
            Ok((Some(row), Ok(verdict)))
        })?;
        match outcome {
            Ok(verdict) => verdict,
            Err(grant_id) => {
                self.revoke_grant(&grant_id, now)?;
                tracing::warn!("an authorization code was used twice; its tokens are revoked");
                Err(OAuthError::invalid_grant(
                    "the authorization code was already used; tokens issued from it are revoked",
                ))
            }
        }
    }

    /// Issues a token of `kind` for `auth`, valid until `expires`.
    pub fn issue_token(
        &self,
        kind: TokenKind,
        auth: &Authorization,
        expires: u64,
    ) -> Result<Zeroizing<String>, OAuthError> {
        let [token] = self.issue_tokens(auth, [(kind, expires)])?;
        Ok(token)
    }

    /// Issues a token of each kind for `auth`, each valid until its expiry, made durable
    /// together (with any code this thread redeemed before: one flush for a whole
    /// exchange).
    pub fn issue_tokens<const N: usize>(
        &self,
        auth: &Authorization,
        tokens: [(TokenKind, u64); N],
    ) -> Result<[Zeroizing<String>; N], OAuthError> {
        let issued = tokens.map(|_| random_token(32));
        for (token, (kind, expires)) in issued.iter().zip(tokens) {
            let row = TokenRow {
                kind,
                auth: auth.clone(),
                expires,
                used: false,
            };
            put(&self.tokens, &hashed(token), &row)?;
        }
        self.flush()?;
        Ok(issued)
    }

    /// The authorization behind a valid access token.
    pub fn access(&self, token: &str, now: u64) -> Result<Authorization, OAuthError> {
        let row: Option<TokenRow> = self
            .tokens
            .get(hashed(token))
            .map_err(OAuthError::internal)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(OAuthError::internal))
            .transpose()?;
        match row {
            Some(row) if row.kind == TokenKind::Access && now < row.expires => {
                if self.is_revoked(&row.auth.grant_id)? {
                    Err(OAuthError::invalid_token("the access token was revoked"))
                } else {
                    Ok(row.auth)
                }
            }
            _ => Err(OAuthError::invalid_token(
                "the access token is unknown, expired or revoked",
            )),
        }
    }

    /// Uses a refresh token of `client_id` once. A used one revokes its grant. A token of
    /// a DPoP-bound grant needs `proved`, the thumbprint of a checked proof's key, to be
    /// the grant's: else `invalid_dpop_proof`, and the token is neither used nor counted as
    /// replayed (someone holding it without the key can neither use nor burn it).
    pub fn use_refresh(
        &self,
        token: &str,
        client_id: &str,
        proved: Option<&Thumbprint>,
        now: u64,
    ) -> Result<Authorization, OAuthError> {
        let outcome = update(&self.tokens, &hashed(token), |row: Option<TokenRow>| {
            let invalid = || OAuthError::invalid_grant("unknown or expired refresh token");
            let Some(mut row) = row.filter(|r| r.kind == TokenKind::Refresh) else {
                return Err(invalid());
            };
            if row.auth.client_id != client_id {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            if row.auth.jkt.is_some() && row.auth.jkt.as_ref() != proved {
                return Err(crate::dpop::invalid_proof(
                    "the refresh token is bound to a key: send a DPoP proof by it",
                ));
            }
            if row.used {
                return Ok((None, Err(row.auth.grant_id.clone())));
            }
            if now >= row.expires {
                return Err(invalid());
            }
            row.used = true;
            let auth = row.auth.clone();
            Ok((Some(row), Ok(auth)))
        })?;
        match outcome {
            Ok(auth) if self.is_revoked(&auth.grant_id)? => {
                Err(OAuthError::invalid_grant("the refresh token was revoked"))
            }
            Ok(auth) => Ok(auth),
            Err(grant_id) => {
                self.revoke_grant(&grant_id, now)?;
                tracing::warn!("a refresh token was used twice; its grant is revoked");
                Err(OAuthError::invalid_grant(
                    "the refresh token was already used; its grant is revoked",
                ))
            }
        }
    }

    /// RFC 7009: revokes `token` if it is `client_id`'s (a refresh token takes its whole
    /// grant with it); unknown tokens and other clients' tokens are silently ignored.
    pub fn revoke(&self, token: &str, client_id: &str, now: u64) -> Result<(), OAuthError> {
        let key = hashed(token);
        let Some(bytes) = self.tokens.get(key).map_err(OAuthError::internal)? else {
            return Ok(());
        };
        let row: TokenRow = serde_json::from_slice(&bytes).map_err(OAuthError::internal)?;
        if row.auth.client_id != client_id {
            return Ok(());
        }
        match row.kind {
            TokenKind::Refresh => self.revoke_grant(&row.auth.grant_id, now),
            TokenKind::Access => {
                self.tokens.remove(key).map_err(OAuthError::internal)?;
                self.flush()
            }
        }
    }

    /// Revokes every token of a grant, at `now`. The row holds when it may be forgotten
    /// (u64 big-endian): by then every token of the grant has expired.
    pub fn revoke_grant(&self, grant_id: &str, now: u64) -> Result<(), OAuthError> {
        let forget = now.saturating_add(self.keep_revoked).to_be_bytes();
        self.revoked
            .insert(grant_id.as_bytes(), &forget[..])
            .map_err(OAuthError::internal)?;
        self.flush()
    }

    fn is_revoked(&self, grant_id: &str) -> Result<bool, OAuthError> {
        self.revoked
            .contains_key(grant_id.as_bytes())
            .map_err(OAuthError::internal)
    }
}

#[cfg(test)]
mod tests;
