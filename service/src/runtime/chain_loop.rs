//! The one background thread that follows the chain for a service.
//!
//! Every poll it checks (once) that the node is on the configured network, steps the
//! index to the node's tip (each step one atomic, reorg-safe change set), publishes what it
//! saw in [`ChainStatus`], and at the tip runs, in this order: the shared rule that anchors
//! the service's Birth Certificate once ([`crate::own_anchor`]), the service's own
//! [`ChainHooks::on_tip`] work (the TBS's enrolment and batch jobs), and the rule that
//! anchors the audit log's checkpoints ([`crate::audit::anchoring`]).
//!
//! A failed poll (the node gone, restarting, on the wrong network, or answering errors) is
//! logged and retried after a wait that doubles up to `max_backoff`; handlers meanwhile
//! serve what they have. A failing anchoring step backs off on its own schedule, so an
//! empty wallet never slows indexing down. The node adapter re-reads its cookie when the
//! node restarts, so a restarted node is picked up without restarting the service.
//!
//! The node is polled, not subscribed to: a ZMQ `hashblock` wake-up would only shorten the
//! delay before a new block is indexed, and the poll interval bounds that already.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bitcoin::{FeeRate, Network};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainError;
use milagro_registry::follower::{Follower, StepReport, SyncError};
use milagro_registry::redb_store::RedbStore;

use super::chain_status::ChainStatus;
use crate::audit::anchoring::{tick, Rules};
use crate::audit::Audit;
use crate::config::{AuditConfig, NodeConfig, SyncConfig};
use crate::identity::PartyIdentity;
use crate::own_anchor::{AnchorError, AnchorKeeper, OwnAnchor};
use crate::sync::{Backoff, Shutdown};

/// Blocks per atomic index update.
pub const STEP_BLOCKS: u32 = 500;

/// The index follower every service's loop drives: the node adapter over the service's
/// own record index.
pub type ChainFollower = Follower<BitcoindRpc, Arc<RedbStore>>;

/// What the loop works on: the service's identity, anchor, index and log, where it
/// publishes what it sees, and the configuration sections that say how.
#[derive(Debug, Clone)]
pub struct ChainParts {
    /// The service's identity (it signs anchors and checkpoints).
    pub identity: Arc<PartyIdentity>,
    /// Where its anchor stands (the loop writes it).
    pub own_anchor: Arc<OwnAnchor>,
    /// The chain index.
    pub index: Arc<RedbStore>,
    /// The audit log whose checkpoints are anchored.
    pub audit: Arc<Audit>,
    /// What the loop last saw of the node (the loop writes it).
    pub status: Arc<ChainStatus>,
    /// The state directory (the pending anchor file lives there).
    pub state_dir: PathBuf,
    /// `[node]`.
    pub node: NodeConfig,
    /// `[sync]`.
    pub sync: SyncConfig,
    /// `[audit]`.
    pub audit_config: AuditConfig,
    /// Fee rate of the anchoring transactions.
    pub fee_rate: FeeRate,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PollError {
    /// The node could not be asked, or answered an error.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Stepping the index failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The node follows another network than the configuration names: nothing is indexed
    /// or anchored (a regtest service pointed at a mainnet node must not spend its coins).
    #[error("the node follows {found}, the configuration says {expected}: not indexing")]
    WrongNetwork {
        /// The configured network.
        expected: Network,
        /// The node's.
        found: Network,
    },
}

impl PollError {
    /// Whether the node could not be reached at all (as opposed to answering).
    pub fn node_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Chain(ChainError::Unreachable(_))
                | Self::Sync(SyncError::Chain(ChainError::Unreachable(_)))
        )
    }
}

/// Whether the checkpoint rule may run after [`ChainHooks::on_tip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    /// Run it.
    Anchor,
    /// Not now (the service's log is not complete yet); the next poll tries again.
    Hold,
}

/// What a service adds to the shared loop. Every method has a default that does nothing,
/// so a service implements only what it has.
pub trait ChainHooks: Send + 'static {
    /// After each step of the index, also while catching up (for metrics).
    fn on_step(&mut self, _follower: &ChainFollower, _report: &StepReport) {}
    /// After each run of the own-anchor rule (it runs only at the node's tip).
    fn on_own_anchor(&mut self, _result: Result<(), &AnchorError>) {}
    /// At the node's tip, after the own-anchor rule and before the checkpoint rule: the
    /// service's own chain work. Failures are the hook's to log and retry.
    fn on_tip(&mut self, _follower: &ChainFollower) -> Checkpoints {
        Checkpoints::Anchor
    }
    /// After a failed poll.
    fn on_poll_failed(&mut self, _error: &PollError) {}
}

/// A service with no chain work of its own.
impl ChainHooks for () {}

/// The loop; [`ChainLoop::run`] until the shutdown flag is set.
pub struct ChainLoop<H> {
    follower: ChainFollower,
    keeper: AnchorKeeper<PartyIdentity>,
    parts: ChainParts,
    hooks: H,
    shutdown: Arc<Shutdown>,
    network_checked: bool,
    poll: Backoff,
    anchoring: Backoff,
    next_anchoring: Instant,
}

impl<H: ChainHooks> ChainLoop<H> {
    /// A loop following the node of `parts.node`.
    pub fn new(parts: ChainParts, hooks: H, shutdown: Arc<Shutdown>) -> Self {
        let node = BitcoindRpc::with_cookie(&parts.node.rpc_url, &parts.node.rpc_cookie);
        let follower = Follower::new(node, parts.index.clone(), parts.sync.start_height);
        let keeper = AnchorKeeper::new(
            parts.identity.clone(),
            parts.own_anchor.clone(),
            &parts.state_dir,
            parts.fee_rate,
            parts.node.network,
        );
        let backoff = Backoff::new(parts.sync.poll_interval, parts.sync.max_backoff);
        Self {
            follower,
            keeper,
            hooks,
            poll: backoff,
            anchoring: backoff,
            next_anchoring: Instant::now(),
            network_checked: false,
            shutdown,
            parts,
        }
    }

    /// Polls until [`Shutdown::stop`].
    pub fn run(mut self) {
        let role = self.parts.identity.role();
        tracing::info!(%role, node = self.follower.chain().url(), "following the chain");
        loop {
            match self.catch_up() {
                Ok(true) => {
                    self.poll.failures = 0;
                    self.anchor();
                    if self.hooks.on_tip(&self.follower) == Checkpoints::Anchor {
                        self.anchor_checkpoints();
                    }
                }
                Ok(false) => {}
                Err(error) => self.poll_failed(&error),
            }
            if self.shutdown.wait(self.poll.delay()) {
                break;
            }
        }
        tracing::info!(%role, "chain follower stopped");
    }

    /// Steps the index to the node's tip; returns whether it got there.
    fn catch_up(&mut self) -> Result<bool, PollError> {
        if !self.network_checked {
            let expected = self.parts.node.network;
            let found = self.follower.chain().network()?;
            if found != expected {
                return Err(PollError::WrongNetwork { expected, found });
            }
            self.network_checked = true;
        }
        loop {
            let report = self.follower.step(STEP_BLOCKS)?;
            self.publish(&report);
            if report.caught_up() {
                return Ok(true);
            }
            if self.shutdown.is_stopped() {
                return Ok(false);
            }
        }
    }

    fn publish(&mut self, report: &StepReport) {
        if report.blocks > 0 || report.rolled_back_from.is_some() {
            tracing::debug!(
                height = report.tip.map(|t| t.height),
                blocks = report.blocks,
                records = report.records,
                rolled_back_from = report.rolled_back_from,
                "indexed"
            );
        }
        self.parts.status.update(|s| {
            s.node_reachable = true;
            s.node_height = Some(report.chain_tip.height);
            s.caught_up = report.caught_up();
            s.last_error = None;
        });
        self.hooks.on_step(&self.follower, report);
    }

    fn poll_failed(&mut self, error: &PollError) {
        self.poll.failures = self.poll.failures.saturating_add(1);
        let unreachable = error.node_unreachable();
        let retry_in_ms = u64::try_from(self.poll.delay().as_millis()).unwrap_or(u64::MAX);
        let role = self.parts.identity.role();
        tracing::warn!(%error, %role, retry_in_ms, "polling the node failed");
        self.parts.status.update(|s| {
            s.sync_errors += 1;
            s.last_error = Some(error.to_string());
            if unreachable {
                s.node_reachable = false;
            }
        });
        self.hooks.on_poll_failed(error);
    }

    /// Runs the own-anchor rule, unless a recent failure asks to wait.
    fn anchor(&mut self) {
        if Instant::now() < self.next_anchoring {
            return;
        }
        let result = self.keeper.tick(&self.follower, STEP_BLOCKS);
        match &result {
            Ok(()) => {
                self.anchoring.failures = 0;
                self.parts.status.update(|s| s.anchor_error = None);
            }
            Err(error) => {
                self.anchoring.failures = self.anchoring.failures.saturating_add(1);
                self.next_anchoring = Instant::now() + self.anchoring.delay();
                let role = self.parts.identity.role();
                tracing::warn!(%error, %role, "anchoring the birth certificate failed; will retry");
                self.parts.status.update(|s| {
                    s.anchor_error = Some(error.to_string());
                    s.node_reachable &= !error.node_unreachable();
                });
            }
        }
        self.hooks.on_own_anchor(result.as_ref().map(|_| ()));
    }

    /// Runs the checkpoint anchoring rule ([`crate::audit::anchoring`]).
    fn anchor_checkpoints(&self) {
        let parts = &self.parts;
        let rules = Rules {
            audit: &parts.audit,
            key: parts.identity.secret_key(),
            checkpoint_key: parts.identity.checkpoint_key(),
            own_anchor: &parts.own_anchor,
            fee_rate: parts.fee_rate,
            interval: parts.audit_config.checkpoint_interval,
            retry_base: parts.sync.poll_interval,
            retry_cap: parts.sync.max_backoff,
        };
        tick(&self.follower, &rules, STEP_BLOCKS);
    }
}

impl<H> std::fmt::Debug for ChainLoop<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainLoop")
            .field("identity", &self.parts.identity)
            .finish_non_exhaustive()
    }
}
