//! `milagro idp bench --growth N`: what N sign-ins leave in the IdP's database, how code
//! exchanges fare with it, and what the sweep of expired rows ([`milagro_idp::sweep`])
//! takes back.
//!
//! Each sign-in is what the token endpoint stores for it: a code (issued, then used: the
//! tombstone kept until it expires), an access token and a refresh token, written through
//! the IdP's own store (no HTTP, no signature: those are not stored). The exchange rate
//! (concurrency 1, over HTTP, as the main bench measures it) and the size are taken after
//! N sign-ins with no sweep (what every IdP before the sweep did), after sweeps run as the
//! IdP's own sweeper runs them but with the clock moved on (past the codes' and access
//! tokens' lifetimes, then past the refresh tokens'), and after N more sign-ins with a
//! sweep after every tenth of them, the clock moved past everything each time (the steady
//! state of a long-running IdP: sled does not shrink its files, it reuses freed space).

use std::time::Instant;

use anyhow::{anyhow, Result};
use milagro_idp::authentication::Authenticated;
use milagro_idp::grants::{Authorization, TokenKind};
use milagro_idp::state::AppState;
use serde::Serialize;

use super::{exchange_all, CHALLENGE, REDIRECT};

/// The database at one point of the measurement.
#[derive(Debug, Serialize)]
pub(super) struct Snapshot {
    /// What was done before it.
    pub(super) after: &'static str,
    /// sled's size on disk, bytes.
    pub(super) size_on_disk: u64,
    /// Rows of the codes and tokens trees.
    pub(super) code_and_token_rows: usize,
    /// Code exchanges per second, concurrency 1.
    pub(super) exchanges_per_s: f64,
}

/// Grows the database by `sign_ins` and measures it ([`Snapshot`]s, in order).
pub(super) fn growth(
    state: &AppState,
    url: &str,
    (client_id, secret): (&str, &str),
    subject: &str,
    sign_ins: usize,
    probe: usize,
) -> Result<Vec<Snapshot>> {
    let snapshot = |after| -> Result<Snapshot> {
        let codes = mint(state, client_id, subject, probe)?;
        let start = Instant::now();
        exchange_all(url, client_id, secret, &codes)?;
        let exchanges_per_s = probe as f64 / start.elapsed().as_secs_f64();
        state.db.flush()?;
        let rows = |tree: &str| state.db.open_tree(tree).map(|t| t.len());
        Ok(Snapshot {
            after,
            size_on_disk: state.db.size_on_disk()?,
            code_and_token_rows: rows("codes")? + rows("tokens")?,
            exchanges_per_s,
        })
    };
    let mut snapshots = vec![snapshot("start")?];
    let now = milagro_service::unix_now();
    let tokens = state.config.tokens;
    sign_in(state, client_id, subject, sign_ins)?;
    snapshots.push(snapshot("sign-ins, no sweep")?);
    let sweep = |at: u64| -> Result<()> {
        // Passes of the sweeper's size until one finds nothing left to delete.
        while state
            .sweep
            .pass(at, milagro_idp::sweep::ROWS_PER_PASS)?
            .removed
            > 0
        {}
        Ok(())
    };
    sweep(now + tokens.access.max(tokens.code).as_secs() + 1)?;
    snapshots.push(snapshot("sweep past codes and access tokens")?);
    let past_everything = now + tokens.refresh.as_secs() + 3600 + 1;
    sweep(past_everything)?;
    snapshots.push(snapshot("sweep past refresh tokens")?);
    let tenth = sign_ins.div_ceil(10);
    let mut done = 0;
    while done < sign_ins {
        let batch = tenth.min(sign_ins - done);
        sign_in(state, client_id, subject, batch)?;
        sweep(past_everything)?;
        done += batch;
    }
    snapshots.push(snapshot("as many sign-ins again, swept")?);
    Ok(snapshots)
}

/// `count` sign-ins as the token endpoint stores them: a used code, an access token and
/// a refresh token each, of the lifetimes configured, from now.
fn sign_in(state: &AppState, client_id: &str, subject: &str, count: usize) -> Result<()> {
    let now = milagro_service::unix_now();
    let tokens = state.config.tokens;
    for _ in 0..count {
        let who = Authenticated::by_password(subject, now);
        let auth = Authorization::new(client_id, &who, "openid", None);
        let code = state
            .grants
            .issue_code(auth, REDIRECT, None, now + tokens.code.as_secs())
            .map_err(|e| anyhow!("{e}"))?;
        let auth = state
            .grants
            .redeem_code(&code, now, |_| Ok(()))
            .map_err(|e| anyhow!("{e}"))?;
        for (kind, lifetime) in [
            (TokenKind::Access, tokens.access),
            (TokenKind::Refresh, tokens.refresh),
        ] {
            state
                .grants
                .issue_token(kind, &auth, now + lifetime.as_secs())
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    Ok(())
}

/// `count` fresh codes of `client_id` with the bench's PKCE challenge.
fn mint(state: &AppState, client_id: &str, subject: &str, count: usize) -> Result<Vec<String>> {
    let now = milagro_service::unix_now();
    (0..count)
        .map(|_| {
            let who = Authenticated::by_password(subject, now);
            let auth = Authorization::new(client_id, &who, "openid profile", Some("n".into()));
            let code = state
                .grants
                .issue_code(auth, REDIRECT, Some(CHALLENGE.into()), now + 3600)
                .map_err(|e| anyhow!("{e}"))?;
            Ok(code.to_string())
        })
        .collect()
}
