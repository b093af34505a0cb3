//! What a service's chain loop last saw of the node: the one place handlers (`/v1/status`,
//! readiness) read it from. The loop is its only writer.

use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use serde::Serialize;

/// The chain loop's view of the node, shared with the handlers.
#[derive(Debug, Default)]
pub struct ChainStatus(RwLock<ChainSnapshot>);

/// A copy of [`ChainStatus`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainSnapshot {
    /// Whether the last poll reached the node.
    pub node_reachable: bool,
    /// The node's tip height at the last successful poll.
    pub node_height: Option<u32>,
    /// Whether the index had reached the node's tip at the last successful poll.
    pub caught_up: bool,
    /// The last poll's error, if it failed.
    pub last_error: Option<String>,
    /// Failed polls since start.
    pub sync_errors: u64,
    /// The last failure of the service's own anchoring, if the latest attempt failed.
    pub anchor_error: Option<String>,
}

impl ChainStatus {
    /// The current snapshot.
    pub fn snapshot(&self) -> ChainSnapshot {
        self.read().clone()
    }

    /// Applies `change` (the chain loop's writes).
    pub(crate) fn update(&self, change: impl FnOnce(&mut ChainSnapshot)) {
        change(&mut self.0.write().unwrap_or_else(PoisonError::into_inner));
    }

    fn read(&self) -> RwLockReadGuard<'_, ChainSnapshot> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }
}
