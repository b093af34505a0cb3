//! The background thread that follows the chain and keeps the TBS anchored.
//!
//! Every `poll_interval` it checks (once) that the node is on the configured network,
//! steps the [`Follower`] until the index reaches the node's tip (each step one atomic,
//! reorg-safe change set), publishes what it saw in [`SyncStatus`] and the metrics, and
//! then runs the [`AnchorKeeper`]. A failed poll (the node gone, restarting, or answering
//! errors) is logged and retried after a wait that doubles up to `max_backoff`; the HTTP
//! API meanwhile keeps serving the index as it stands. Failures of the anchoring step
//! back off on their own schedule, so an empty wallet never slows indexing down.
//!
//! The node is polled, not subscribed to: a ZMQ `hashblock` wake-up would only shorten the
//! delay before a new block is indexed, and the poll interval bounds that already.

use std::sync::Arc;
use std::time::Instant;

use bitcoin::Network;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainError;
use milagro_registry::follower::{Follower, StepReport, SyncError};
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::RecordStore;

use milagro_service::own_anchor::AnchorKeeper;
use milagro_service::sync::Backoff;
pub(crate) use milagro_service::sync::Shutdown;

use crate::audit::RegistrationLog as _;
use crate::identity::Identity;
use crate::state::{AnchorState, AppState};

/// Blocks per atomic index update.
const STEP_BLOCKS: u32 = 500;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("the node follows {found}, the configuration says {expected}: not indexing")]
    WrongNetwork { expected: Network, found: Network },
}

impl PollError {
    fn node_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Chain(ChainError::Unreachable(_))
                | Self::Sync(SyncError::Chain(ChainError::Unreachable(_)))
        )
    }
}

pub(crate) struct SyncLoop {
    follower: Follower<BitcoindRpc, Arc<RedbStore>>,
    keeper: AnchorKeeper<Identity>,
    state: AppState,
    shutdown: Arc<Shutdown>,
    network_checked: bool,
    poll: Backoff,
    anchoring: Backoff,
    next_anchoring: Instant,
    batching: Backoff,
    next_batching: Instant,
}

impl SyncLoop {
    pub(crate) fn new(node: BitcoindRpc, state: AppState, shutdown: Arc<Shutdown>) -> Self {
        let config = &state.config;
        let follower = Follower::new(node, state.store.clone(), config.sync.start_height);
        let keeper = AnchorKeeper::new(
            state.identity.clone(),
            state.own_anchor.clone(),
            &config.state_dir,
            config.anchoring.fee_rate,
            config.node.network,
        );
        let backoff = || Backoff::new(config.sync.poll_interval, config.sync.max_backoff);
        Self {
            follower,
            keeper,
            poll: backoff(),
            anchoring: backoff(),
            next_anchoring: Instant::now(),
            batching: backoff(),
            next_batching: Instant::now(),
            network_checked: false,
            shutdown,
            state,
        }
    }

    /// Polls until [`Shutdown::stop`].
    pub(crate) fn run(mut self) {
        tracing::info!(node = self.follower.chain().url(), "following the chain");
        loop {
            match self.poll_once() {
                Ok(caught_up) => {
                    self.poll.failures = 0;
                    if caught_up {
                        self.anchor();
                        self.watch_enrolments();
                        self.anchor_batches();
                        self.anchor_checkpoints();
                    }
                }
                Err(error) => self.poll_failed(&error),
            }
            if self.shutdown.wait(self.poll.delay()) {
                break;
            }
        }
        tracing::info!("chain follower stopped");
    }

    /// Steps the index to the node's tip; returns whether it got there.
    fn poll_once(&mut self) -> Result<bool, PollError> {
        let expected = self.state.config.node.network;
        if !self.network_checked {
            let found = self.follower.chain().network()?;
            if found != expected {
                return Err(PollError::WrongNetwork { expected, found });
            }
            self.network_checked = true;
        }
        loop {
            let report = self.follower.step(STEP_BLOCKS)?;
            self.publish(&report)?;
            if report.caught_up() {
                return Ok(true);
            }
            if self.shutdown.is_stopped() {
                return Ok(false);
            }
        }
    }

    fn publish(&self, report: &StepReport) -> Result<(), PollError> {
        let metrics = &self.state.metrics;
        let records = self
            .follower
            .store()
            .record_count()
            .map_err(SyncError::from)?;
        metrics
            .records
            .set(i64::try_from(records).unwrap_or(i64::MAX));
        metrics
            .index_height
            .set(report.tip.map_or(-1, |tip| i64::from(tip.height)));
        metrics.node_reachable.set(1);
        if report.blocks > 0 || report.rolled_back_from.is_some() {
            tracing::debug!(
                height = report.tip.map(|t| t.height),
                blocks = report.blocks,
                records = report.records,
                rolled_back_from = report.rolled_back_from,
                "indexed"
            );
        }
        self.state.sync.update(|s| {
            s.node_reachable = true;
            s.node_height = Some(report.chain_tip.height);
            s.caught_up = report.caught_up();
            s.last_error = None;
        });
        Ok(())
    }

    fn poll_failed(&mut self, error: &PollError) {
        self.poll.failures = self.poll.failures.saturating_add(1);
        let unreachable = error.node_unreachable();
        tracing::warn!(%error, retry_in_ms = u64::try_from(self.poll.delay().as_millis()).unwrap_or(u64::MAX), "polling the node failed");
        self.state.metrics.sync_errors.inc();
        if unreachable {
            self.state.metrics.node_reachable.set(0);
        }
        self.state.sync.update(|s| {
            s.sync_errors += 1;
            s.last_error = Some(error.to_string());
            if unreachable {
                s.node_reachable = false;
            }
        });
    }

    /// Re-sends device anchors a reorg dropped; failures are retried at the next poll.
    fn watch_enrolments(&self) {
        let node = self.follower.chain();
        if let Err(error) =
            crate::enrolment::watch(node, self.follower.store(), &self.state.enrolments)
        {
            tracing::warn!(%error, "watching enrolment anchors failed; will retry");
        }
    }

    /// Runs the funding pool's rule ([`crate::enrolment::pool`]) and the batch-mode rule
    /// ([`crate::enrolment::batching`]), unless a recent failure asks to wait.
    fn anchor_batches(&mut self) {
        if Instant::now() < self.next_batching {
            return;
        }
        let node = self.follower.chain();
        if let Err(error) = crate::enrolment::pool::tick(node, &self.state) {
            tracing::warn!(%error, "refilling the funding pool failed; will retry");
        }
        match crate::enrolment::batching::step(&self.follower, &self.state, STEP_BLOCKS) {
            Ok(()) => self.batching.failures = 0,
            Err(error) => {
                self.batching.failures = self.batching.failures.saturating_add(1);
                self.next_batching = Instant::now() + self.batching.delay();
                tracing::warn!(%error, "anchoring a batch of enrolments failed; will retry");
            }
        }
    }

    /// Logs registrations a crash left unlogged, then runs the checkpoint anchoring rule
    /// ([`milagro_service::audit::anchoring`]).
    fn anchor_checkpoints(&self) {
        let state = &self.state;
        if let Err(error) = state.audit.catch_up(&state.enrolments) {
            tracing::warn!(%error, "logging unlogged registrations failed; will retry");
            return;
        }
        let rules = milagro_service::audit::anchoring::Rules {
            audit: &state.audit,
            key: state.identity.secret_key(),
            checkpoint_key: state.identity.checkpoint_key(),
            own_anchor: &state.own_anchor,
            fee_rate: state.config.anchoring.fee_rate,
            interval: state.config.audit.checkpoint_interval,
            retry_base: state.config.sync.poll_interval,
            retry_cap: state.config.sync.max_backoff,
        };
        milagro_service::audit::anchoring::tick(&self.follower, &rules, STEP_BLOCKS);
    }

    /// Runs the anchoring rule, unless a recent failure asks to wait.
    fn anchor(&mut self) {
        if Instant::now() < self.next_anchoring {
            return;
        }
        let result = self.keeper.tick(&self.follower, STEP_BLOCKS);
        let anchored = matches!(self.state.own_anchor.get(), AnchorState::Confirmed(_));
        self.state.metrics.anchored.set(i64::from(anchored));
        match result {
            Ok(()) => {
                self.anchoring.failures = 0;
                self.state.sync.update(|s| s.anchor_error = None);
            }
            Err(error) => {
                self.anchoring.failures = self.anchoring.failures.saturating_add(1);
                self.next_anchoring = Instant::now() + self.anchoring.delay();
                tracing::warn!(%error, "anchoring the TBS birth certificate failed; will retry");
                if error.node_unreachable() {
                    self.state.metrics.node_reachable.set(0);
                }
                self.state.sync.update(|s| {
                    s.anchor_error = Some(error.to_string());
                    s.node_reachable &= !error.node_unreachable();
                });
            }
        }
    }
}
