//! The TBS's work in the shared chain loop ([`milagro_service::runtime`]): its metrics
//! follow every step, and at the node's tip it re-sends device anchors a reorg dropped,
//! keeps the funding pool filled, anchors batches of enrolments, and logs registrations a
//! crash left unlogged before the loop anchors the next audit checkpoint.
//!
//! The loop itself (network check, index, the TBS's own anchor, checkpoints, backoff) is
//! the one every service runs; failures here back off on their own schedule, so a failing
//! batch never slows indexing down.

use std::time::Instant;

use milagro_registry::follower::StepReport;
use milagro_registry::store::RecordStore;
use milagro_service::own_anchor::AnchorError;
use milagro_service::runtime::{ChainFollower, ChainHooks, Checkpoints, PollError, STEP_BLOCKS};
use milagro_service::sync::Backoff;

use crate::audit::RegistrationLog as _;
use crate::state::AppState;

/// The TBS's hooks: the handlers' state, and the backoff of its batch work.
pub struct TbsChainWork {
    state: AppState,
    batching: Backoff,
    next_batching: Instant,
}

impl TbsChainWork {
    pub(crate) fn new(state: AppState) -> Self {
        let sync = &state.config.party.sync;
        Self {
            batching: Backoff::new(sync.poll_interval, sync.max_backoff),
            next_batching: Instant::now(),
            state,
        }
    }

    /// Re-sends device anchors a reorg dropped; failures are retried at the next poll.
    fn watch_enrolments(&self, follower: &ChainFollower) {
        let node = follower.chain();
        if let Err(error) = crate::enrolment::watch(node, follower.store(), &self.state.enrolments)
        {
            tracing::warn!(%error, "watching enrolment anchors failed; will retry");
        }
    }

    /// Runs the funding pool's rule ([`crate::enrolment::pool`]) and the batch-mode rule
    /// ([`crate::enrolment::batching`]), unless a recent failure asks to wait.
    fn anchor_batches(&mut self, follower: &ChainFollower) {
        if Instant::now() < self.next_batching {
            return;
        }
        if let Err(error) = crate::enrolment::pool::tick(follower.chain(), &self.state) {
            tracing::warn!(%error, "refilling the funding pool failed; will retry");
        }
        match crate::enrolment::batching::step(follower, &self.state, STEP_BLOCKS) {
            Ok(()) => self.batching.failures = 0,
            Err(error) => {
                self.batching.failures = self.batching.failures.saturating_add(1);
                self.next_batching = Instant::now() + self.batching.delay();
                tracing::warn!(%error, "anchoring a batch of enrolments failed; will retry");
            }
        }
    }
}

impl ChainHooks for TbsChainWork {
    fn on_step(&mut self, follower: &ChainFollower, report: &StepReport) {
        let metrics = &self.state.metrics;
        match follower.store().record_count() {
            Ok(records) => {
                metrics
                    .records
                    .set(i64::try_from(records).unwrap_or(i64::MAX));
            }
            Err(error) => tracing::warn!(%error, "counting records for the metrics failed"),
        }
        metrics
            .index_height
            .set(report.tip.map_or(-1, |tip| i64::from(tip.height)));
        metrics.node_reachable.set(1);
    }

    fn on_own_anchor(&mut self, result: Result<(), &AnchorError>) {
        let metrics = &self.state.metrics;
        metrics
            .anchored
            .set(i64::from(self.state.own_anchor.is_confirmed()));
        if result.is_err_and(AnchorError::node_unreachable) {
            metrics.node_reachable.set(0);
        }
    }

    fn on_tip(&mut self, follower: &ChainFollower) -> Checkpoints {
        self.watch_enrolments(follower);
        self.anchor_batches(follower);
        // Registrations a crash left unlogged go into the log before its next checkpoint.
        match self.state.audit.catch_up(&self.state.enrolments) {
            Ok(_) => Checkpoints::Anchor,
            Err(error) => {
                tracing::warn!(%error, "logging unlogged registrations failed; will retry");
                Checkpoints::Hold
            }
        }
    }

    fn on_poll_failed(&mut self, error: &PollError) {
        self.state.metrics.sync_errors.inc();
        if error.node_unreachable() {
            self.state.metrics.node_reachable.set(0);
        }
    }
}
