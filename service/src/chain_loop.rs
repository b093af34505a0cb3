//! The background thread of a service that anchors itself: it steps the index to the
//! node's tip, then runs the shared rules of [`crate::own_anchor`] (the Birth
//! Certificate, once) and [`crate::audit::anchoring`] (the audit log's checkpoints). A
//! failing node is retried with a doubling wait; handlers meanwhile serve what they have.
//!
//! A service builds a [`ChainLoop`] from its [`ChainParts`] and runs it on a worker thread
//! ([`crate::http::Running::spawn_worker`]) until its [`Shutdown`] is stopped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bitcoin::FeeRate;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::follower::{Follower, SyncError};
use milagro_registry::redb_store::RedbStore;

use crate::audit::anchoring::{tick, Rules};
use crate::audit::Audit;
use crate::config::{AuditConfig, NodeConfig, SyncConfig};
use crate::identity::PartyIdentity;
use crate::own_anchor::{AnchorKeeper, OwnAnchor};
use crate::sync::{Backoff, Shutdown};

/// Blocks per atomic index update.
pub const STEP_BLOCKS: u32 = 500;

/// What the loop works on: the service's identity, anchor, index and log, and the
/// configuration sections that say how.
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

/// The loop; [`ChainLoop::run`] until the shutdown flag is set.
pub struct ChainLoop {
    follower: Follower<BitcoindRpc, Arc<RedbStore>>,
    keeper: AnchorKeeper<PartyIdentity>,
    parts: ChainParts,
    shutdown: Arc<Shutdown>,
    poll: Backoff,
    anchoring: Backoff,
    next_anchoring: Instant,
}

impl ChainLoop {
    /// A loop following the node of `parts.node`.
    pub fn new(parts: ChainParts, shutdown: Arc<Shutdown>) -> Self {
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
            poll: backoff,
            anchoring: backoff,
            next_anchoring: Instant::now(),
            shutdown,
            parts,
        }
    }

    /// Polls until [`Shutdown::stop`].
    pub fn run(mut self) {
        loop {
            match self.catch_up() {
                Ok(true) => {
                    self.poll.failures = 0;
                    self.anchor();
                    let rules = Rules {
                        audit: &self.parts.audit,
                        key: self.parts.identity.secret_key(),
                        checkpoint_key: self.parts.identity.checkpoint_key(),
                        own_anchor: &self.parts.own_anchor,
                        fee_rate: self.parts.fee_rate,
                        interval: self.parts.audit_config.checkpoint_interval,
                        retry_base: self.parts.sync.poll_interval,
                        retry_cap: self.parts.sync.max_backoff,
                    };
                    tick(&self.follower, &rules, STEP_BLOCKS);
                }
                Ok(false) => {}
                Err(error) => {
                    self.poll.failures = self.poll.failures.saturating_add(1);
                    tracing::warn!(%error, "polling the node failed; will retry");
                }
            }
            if self.shutdown.wait(self.poll.delay()) {
                break;
            }
        }
    }

    /// Steps the index to the node's tip; returns whether it got there.
    fn catch_up(&mut self) -> Result<bool, SyncError> {
        loop {
            let report = self.follower.step(STEP_BLOCKS)?;
            if report.caught_up() {
                return Ok(true);
            }
            if self.shutdown.is_stopped() {
                return Ok(false);
            }
        }
    }

    fn anchor(&mut self) {
        if Instant::now() < self.next_anchoring {
            return;
        }
        match self.keeper.tick(&self.follower, STEP_BLOCKS) {
            Ok(()) => self.anchoring.failures = 0,
            Err(error) => {
                self.anchoring.failures = self.anchoring.failures.saturating_add(1);
                self.next_anchoring = Instant::now() + self.anchoring.delay();
                let role = self.parts.identity.role();
                tracing::warn!(%error, %role, "anchoring the birth certificate failed; will retry");
            }
        }
    }
}

impl std::fmt::Debug for ChainLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainLoop")
            .field("identity", &self.parts.identity)
            .finish_non_exhaustive()
    }
}
