//! The background thread that follows the chain and keeps the IdP anchored: it steps
//! the index to the node's tip, then runs the shared rules of
//! [`milagro_service::own_anchor`] (the Birth Certificate, once) and
//! [`milagro_service::audit::anchoring`] (the activity log's checkpoints). A failing
//! node is retried with a doubling wait; handlers meanwhile serve what they have.

use std::sync::Arc;
use std::time::Instant;

use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::follower::{Follower, SyncError};
use milagro_registry::sled_store::SledStore;
use milagro_service::audit::anchoring::{tick, Rules};
use milagro_service::identity::PartyIdentity;
use milagro_service::own_anchor::AnchorKeeper;
use milagro_service::sync::{Backoff, Shutdown};

use crate::state::AppState;

/// Blocks per atomic index update.
const STEP_BLOCKS: u32 = 500;

pub(crate) struct ChainLoop {
    follower: Follower<BitcoindRpc, Arc<SledStore>>,
    keeper: AnchorKeeper<PartyIdentity>,
    state: AppState,
    shutdown: Arc<Shutdown>,
    poll: Backoff,
    anchoring: Backoff,
    next_anchoring: Instant,
}

impl ChainLoop {
    pub(crate) fn new(node: BitcoindRpc, state: AppState, shutdown: Arc<Shutdown>) -> Self {
        let config = &state.config;
        let follower = Follower::new(node, state.index.clone(), config.sync.start_height);
        let keeper = AnchorKeeper::new(
            state.identity.clone(),
            state.own_anchor.clone(),
            &config.state_dir,
            config.fee_rate,
            config.node.network,
        );
        let backoff = Backoff::new(config.sync.poll_interval, config.sync.max_backoff);
        Self {
            follower,
            keeper,
            poll: backoff,
            anchoring: backoff,
            next_anchoring: Instant::now(),
            shutdown,
            state,
        }
    }

    /// Polls until [`Shutdown::stop`].
    pub(crate) fn run(mut self) {
        loop {
            match self.catch_up() {
                Ok(true) => {
                    self.poll.failures = 0;
                    self.anchor();
                    let config = &self.state.config;
                    let rules = Rules {
                        audit: &self.state.audit,
                        key: self.state.identity.secret_key(),
                        own_anchor: &self.state.own_anchor,
                        fee_rate: config.fee_rate,
                        interval: config.audit.checkpoint_interval,
                        retry_base: config.sync.poll_interval,
                        retry_cap: config.sync.max_backoff,
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
                tracing::warn!(%error, "anchoring the IdP birth certificate failed; will retry");
            }
        }
    }
}
