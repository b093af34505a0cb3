//! The answer of `GET /readyz`, which every service serves (`/healthz` answers only that
//! the process is alive, with no body worth a type).

use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};

/// Whether a service is ready to serve, and why not: `200` with `ready: true` when every
/// check passed, `503` with `ready: false` otherwise (the same body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// The digest of the service's Birth Certificate (its identity).
    pub digest: Digest,
    /// Its role, as its Birth Certificate names it (`tbs`, `idp`, `dta`, `authserver`).
    pub role: String,
    /// Confirmations of its own anchor as its index sees them (`None`: not anchored yet).
    pub anchor_depth: Option<u32>,
    /// Each check, in a fixed order: `node`, `index`, `anchor`, then the service's peers.
    pub checks: Vec<ReadinessCheck>,
}

/// One check of [`Readiness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessCheck {
    /// What was checked (`node`, `index`, `anchor`, `share_api`, `server_secret`, …).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found, for a person (`at height 212`, `not yet confirmed`, …).
    pub detail: String,
}

impl ReadinessCheck {
    /// A check named `name` that passed (`ok`) or not, with `detail`.
    pub fn new(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        }
    }
}
