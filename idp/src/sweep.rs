//! Deleting what has expired: codes, access and refresh tokens, revoked grants, device
//! authorizations, login sessions and consents. Without it every sign-in left rows behind
//! for good, and the database (and each lookup in it) grew with every sign-in.
//!
//! A row is deleted only once nothing may still need it: a used code or refresh token is
//! kept (a tombstone) until it expires, because a second use before then must still be
//! recognised to revoke its grant (RFC 6749 §4.1.2, RFC 9700 §4.14.2); a revoked grant is
//! remembered until every token of it has expired ([`crate::grants::Grants::revoke_grant`]).
//!
//! [`Sweep::pass`] does bounded work: it looks at no more than `budget` rows of each
//! tree, resuming where the last pass stopped, so a pass never holds the chain loop (which
//! runs it, [`crate::Sweeper`]) for long, however large the database.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;

/// The trees whose rows are JSON with a top-level `expires` (Unix seconds).
const EXPIRING: [&str; 5] = ["codes", "tokens", "sessions", "consents", "devices"];

/// The tree of revoked grants (values: forget-after time, u64 big-endian).
const REVOKED: &str = "revoked";

/// The device tree's prefix of its user-code index rows (removed with their device row).
const USER_CODE_PREFIX: &[u8] = b"u\0";

/// Rows looked at per tree and pass by the IdP's own sweeper.
pub const ROWS_PER_PASS: usize = 2000;

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Rows looked at.
    pub scanned: usize,
    /// Rows deleted.
    pub removed: usize,
}

#[derive(Deserialize)]
struct Expiry {
    expires: u64,
    /// A device row's user code, whose index row goes with it.
    #[serde(default)]
    user_code: Option<String>,
}

/// The sweeper of one database.
#[derive(Debug)]
pub struct Sweep {
    trees: Vec<(&'static str, sled::Tree)>,
    /// Where the next pass resumes, per tree (after this key).
    cursors: Mutex<HashMap<&'static str, Vec<u8>>>,
    /// When a revoked grant written before revocations carried a time is forgotten:
    /// this long after the first pass that sees it.
    keep_legacy_revoked: u64,
}

impl Sweep {
    /// Opens the trees of `db`; `keep_revoked` is how long a revoked grant without a
    /// stored time (written by an older version) is still remembered.
    pub fn open(db: &sled::Db, keep_revoked: u64) -> Result<Self, sled::Error> {
        let mut trees = Vec::with_capacity(EXPIRING.len() + 1);
        for name in EXPIRING.into_iter().chain([REVOKED]) {
            trees.push((name, db.open_tree(name)?));
        }
        Ok(Self {
            trees,
            cursors: Mutex::new(HashMap::new()),
            keep_legacy_revoked: keep_revoked,
        })
    }

    /// Deletes what expired before `now` among the next `budget` rows of each tree.
    pub fn pass(&self, now: u64, budget: usize) -> Result<Swept, sled::Error> {
        let mut total = Swept::default();
        for (name, tree) in &self.trees {
            let start = self
                .cursors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(name)
                .cloned();
            let range = match &start {
                Some(after) => tree.range::<&[u8], _>((
                    std::ops::Bound::Excluded(after.as_slice()),
                    std::ops::Bound::Unbounded,
                )),
                None => tree.iter(),
            };
            let mut batch = sled::Batch::default();
            let mut last = None;
            let mut scanned = 0;
            let mut removed = 0;
            for row in range.take(budget) {
                let (key, value) = row?;
                scanned += 1;
                match self.verdict(name, &key, &value, now) {
                    Verdict::Keep => {}
                    Verdict::Remove(extra) => {
                        batch.remove(key.clone());
                        if let Some(extra) = extra {
                            batch.remove(extra);
                        }
                        removed += 1;
                    }
                    Verdict::Rewrite(value) => batch.insert(key.clone(), value),
                }
                last = Some(key.to_vec());
            }
            tree.apply_batch(batch)?;
            let mut cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
            // A short pass reached the end: the next one starts over.
            match last.filter(|_| scanned == budget) {
                Some(key) => cursors.insert(name, key),
                None => cursors.remove(name),
            };
            total.scanned += scanned;
            total.removed += removed;
        }
        Ok(total)
    }

    fn verdict(&self, tree: &str, key: &[u8], value: &[u8], now: u64) -> Verdict {
        if tree == REVOKED {
            return match <[u8; 8]>::try_from(value) {
                Ok(forget) if u64::from_be_bytes(forget) <= now => Verdict::Remove(None),
                Ok(_) => Verdict::Keep,
                Err(_) => Verdict::Rewrite(
                    now.saturating_add(self.keep_legacy_revoked)
                        .to_be_bytes()
                        .to_vec(),
                ),
            };
        }
        if key.starts_with(USER_CODE_PREFIX) {
            return Verdict::Keep;
        }
        match serde_json::from_slice::<Expiry>(value) {
            Ok(row) if row.expires <= now => Verdict::Remove(
                row.user_code
                    .filter(|_| tree == "devices")
                    .map(|code| [USER_CODE_PREFIX, code.as_bytes()].concat()),
            ),
            // Live, or a row this sweeper does not understand: kept, never guessed at.
            _ => Verdict::Keep,
        }
    }
}

enum Verdict {
    Keep,
    /// Delete the row (and this other row of the same tree).
    Remove(Option<Vec<u8>>),
    Rewrite(Vec<u8>),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::authentication::Authenticated;
    use crate::device_grants::DeviceGrants;
    use crate::grants::{Authorization, Grants, TokenKind};
    use crate::sessions::Sessions;

    fn auth() -> Authorization {
        Authorization::new(
            "client",
            &Authenticated::by_password("sub", 10),
            "openid",
            None,
        )
    }

    fn rows(db: &sled::Db) -> usize {
        EXPIRING
            .iter()
            .chain([&REVOKED])
            .map(|name| db.open_tree(name).unwrap().len())
            .sum()
    }

    #[test]
    fn expired_rows_go_and_tombstones_stay_until_they_expire() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let grants = Grants::open(&db, 500).unwrap();
        let devices = DeviceGrants::open(&db).unwrap();
        let sessions = Sessions::open(&db).unwrap();
        let sweep = Sweep::open(&db, 500).unwrap();
        // The clock is the `now` passed in: a code until 100, tokens until 200 and 1000,
        // a device authorization until 100 (two rows), a session until 300.
        let code = grants
            .issue_code(auth(), "https://rp/cb", None, 100)
            .unwrap();
        let granted = grants.redeem_code(&code, 50, |_| Ok(())).unwrap();
        grants
            .issue_token(TokenKind::Access, &granted, 200)
            .unwrap();
        grants
            .issue_token(TokenKind::Refresh, &granted, 1000)
            .unwrap();
        devices.start("client", "openid", 100, 5).unwrap();
        let (_id, _) = sessions
            .create(&Authenticated::by_password("sub", 10), "client", 300)
            .unwrap();
        assert_eq!(rows(&db), 6);

        // Before the code expires, its used row stays: a second use still revokes.
        assert_eq!(sweep.pass(99, 100).unwrap().removed, 0);
        assert!(grants.redeem_code(&code, 99, |_| Ok(())).is_err());
        assert_eq!(rows(&db), 7, "the replay revoked the grant");
        // Expired at 100: the code and the device rows (both) go.
        assert_eq!(sweep.pass(100, 100).unwrap().removed, 2);
        assert_eq!(rows(&db), 4);
        assert_eq!(sweep.pass(300, 100).unwrap().removed, 2, "access, session");
        // The revocation is remembered until 99 + 500, the refresh token until 1000.
        assert_eq!(sweep.pass(598, 100).unwrap().removed, 0);
        assert_eq!(sweep.pass(599, 100).unwrap().removed, 1);
        assert_eq!(sweep.pass(1000, 100).unwrap().removed, 1);
        assert_eq!(rows(&db), 0);
    }

    #[test]
    fn a_pass_looks_at_no_more_than_its_budget_and_the_next_resumes() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let grants = Grants::open(&db, 500).unwrap();
        let sweep = Sweep::open(&db, 500).unwrap();
        for _ in 0..5 {
            grants.issue_token(TokenKind::Access, &auth(), 10).unwrap();
        }
        let first = sweep.pass(20, 2).unwrap();
        assert_eq!((first.scanned, first.removed), (2, 2));
        assert_eq!(sweep.pass(20, 2).unwrap().removed, 2);
        assert_eq!(sweep.pass(20, 2).unwrap().removed, 1);
        assert_eq!(rows(&db), 0);
        // A revocation of an older version (no time) is given one, then forgotten.
        db.open_tree(REVOKED).unwrap().insert("g", &[][..]).unwrap();
        assert_eq!(sweep.pass(20, 2).unwrap().removed, 0);
        assert_eq!(sweep.pass(519, 2).unwrap().removed, 0);
        assert_eq!(sweep.pass(520, 2).unwrap().removed, 1);
    }
}
