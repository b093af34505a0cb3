//! Comparing the chain a verifier holds with another source's: pure, no I/O.
//!
//! The rules, in order:
//!
//! 1. Compare the block hash at `min(local tip, remote tip)`. If the two differ, walk down
//!    until they agree and report a [`Disagreement::Fork`] at the lowest height that differs.
//! 2. If the remote tip is more than `max_lag` blocks above the local one, the local chain
//!    is [`Disagreement::Behind`]; if the local tip is more than `max_lag` above the remote
//!    one, it is [`Disagreement::Ahead`] (the remote source lags, or hides blocks).
//! 3. Otherwise the two agree on the block at the compared height: an [`Agreement`].
//!
//! The check holds no connection: when it needs remote headers it has not been given, it
//! says which ([`Outcome::Fetch`]) and the caller runs it again with them.
//! [`ElectrumSource::cross_check`](crate::ElectrumSource::cross_check) is that loop against a
//! live server.
//!
//! ```text
//!  local:   … ─ 100 ─ 101 ─ 102a ─ 103a            compared at 103 (the lower tip): differ;
//!  remote:  … ─ 100 ─ 101 ─ 102b ─ 103b ─ 104b     walk down: 102 differs, 101 agrees
//!                          └ Fork { height: 102, local: 102a, remote: 102b }
//! ```

use bitcoin::block::Header;
use bitcoin::BlockHash;

/// How far apart two tips may be and still agree, by default.
pub const DEFAULT_MAX_LAG: u32 = 2;
/// Most headers asked for in one walk-down step (an Electrum server's usual `max`).
const MAX_FETCH: u32 = 2016;
/// Fewest headers asked for in one walk-down step.
const MIN_FETCH: u32 = 8;

/// The cross-check's one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossCheck {
    max_lag: u32,
}

impl Default for CrossCheck {
    fn default() -> Self {
        Self {
            max_lag: DEFAULT_MAX_LAG,
        }
    }
}

/// What the local verifier holds: its tip height and its block hash at a height.
///
/// `hash_at` answers `None` where the verifier holds no block (below its first checkpoint,
/// above its tip).
#[derive(Debug, Clone, Copy)]
pub struct LocalChain<'a, F> {
    /// Names the local source in reports, e.g. `tbs https://tbs.example`.
    pub label: &'a str,
    /// The height of its tip.
    pub tip: u32,
    /// Its block hash at a height.
    pub hash_at: F,
}

/// What the remote source said: its tip height and a contiguous run of its headers.
#[derive(Debug, Clone, Copy)]
pub struct RemoteHeaders<'a> {
    /// Names the remote source in reports, e.g. `tcp://electrum.example:50001`.
    pub label: &'a str,
    /// The height of its tip.
    pub tip: u32,
    /// The height of `headers[0]`.
    pub start: u32,
    /// Headers at `start`, `start + 1`, …, each building on the one before (as
    /// [`decode::headers`](crate::decode::headers) checks).
    pub headers: &'a [Header],
}

impl RemoteHeaders<'_> {
    fn hash_at(&self, height: u32) -> Option<BlockHash> {
        let offset = usize::try_from(height.checked_sub(self.start)?).ok()?;
        self.headers.get(offset).map(Header::block_hash)
    }
}

/// The two sources compared, by label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The local source.
    pub local: String,
    /// The remote source.
    pub remote: String,
}

/// The two sources hold the same block at the compared height, and their tips are at most
/// `max_lag` apart. Only the cross-check makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    height: u32,
    hash: BlockHash,
    local: String,
    source: String,
    local_tip: u32,
    remote_tip: u32,
}

impl Agreement {
    /// The height compared: the lower of the two tips.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The block hash both hold there.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    /// The remote source that agreed (its label, e.g. the Electrum URL).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The local source's label.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The local tip's height.
    pub fn local_tip(&self) -> u32 {
        self.local_tip
    }

    /// The remote tip's height.
    pub fn remote_tip(&self) -> u32 {
        self.remote_tip
    }
}

/// How the two sources disagree. Each names both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Disagreement {
    /// Different blocks at `height`. `height` is the first block of the fork when the local
    /// chain holds the block below it (where the two then agree); when it holds nothing
    /// lower, the fork starts at or below `height`.
    #[error("{} and {} fork at height {height}: {local} against {remote}", sources.local, sources.remote)]
    Fork {
        /// The two sources.
        sources: Sources,
        /// The lowest height seen to differ.
        height: u32,
        /// The local block there.
        local: BlockHash,
        /// The remote block there.
        remote: BlockHash,
    },
    /// The remote tip is more than `max_lag` blocks above the local one.
    #[error("{} is behind: its tip is at {local_tip}, {} is at {remote_tip}", sources.local, sources.remote)]
    Behind {
        /// The two sources.
        sources: Sources,
        /// The local tip's height.
        local_tip: u32,
        /// The remote tip's height.
        remote_tip: u32,
    },
    /// The local tip is more than `max_lag` blocks above the remote one.
    #[error("{} is ahead: its tip is at {local_tip}, {} is only at {remote_tip}", sources.local, sources.remote)]
    Ahead {
        /// The two sources.
        sources: Sources,
        /// The local tip's height.
        local_tip: u32,
        /// The remote tip's height.
        remote_tip: u32,
    },
    /// The local chain holds no block at the height the two would be compared at.
    #[error("{} holds no block at height {height} to compare with {}", sources.local, sources.remote)]
    NothingToCompare {
        /// The two sources.
        sources: Sources,
        /// The compared height.
        height: u32,
    },
}

/// What one pass of the cross-check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// They agree.
    Agree(Agreement),
    /// They disagree.
    Disagree(Disagreement),
    /// The remote headers given do not reach far enough: fetch `count` headers from height
    /// `from` and check again. Either they end just below the run already given (prepend
    /// them), or the run did not hold the compared height (replace it).
    Fetch {
        /// The first height needed.
        from: u32,
        /// How many.
        count: u32,
    },
}

impl CrossCheck {
    /// The default: tips at most [`DEFAULT_MAX_LAG`] blocks apart.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tips may be at most `max_lag` blocks apart.
    pub fn with_max_lag(self, max_lag: u32) -> Self {
        Self { max_lag }
    }

    /// How far apart the tips may be.
    pub fn max_lag(&self) -> u32 {
        self.max_lag
    }

    /// Compares `local` with `remote` (see the [module docs](self) for the rules).
    pub fn check<F>(&self, local: &LocalChain<'_, F>, remote: &RemoteHeaders<'_>) -> Outcome
    where
        F: Fn(u32) -> Option<BlockHash>,
    {
        let sources = || Sources {
            local: local.label.to_owned(),
            remote: remote.label.to_owned(),
        };
        let height = local.tip.min(remote.tip);
        let Some(local_hash) = (local.hash_at)(height) else {
            return Outcome::Disagree(Disagreement::NothingToCompare {
                sources: sources(),
                height,
            });
        };
        let Some(remote_hash) = remote.hash_at(height) else {
            return Outcome::Fetch {
                from: height,
                count: 1,
            };
        };
        if local_hash != remote_hash {
            return walk_down(local, remote, height, local_hash, remote_hash, sources);
        }
        if remote.tip - height > self.max_lag {
            return Outcome::Disagree(Disagreement::Behind {
                sources: sources(),
                local_tip: local.tip,
                remote_tip: remote.tip,
            });
        }
        if local.tip - height > self.max_lag {
            return Outcome::Disagree(Disagreement::Ahead {
                sources: sources(),
                local_tip: local.tip,
                remote_tip: remote.tip,
            });
        }
        Outcome::Agree(Agreement {
            height,
            hash: local_hash,
            local: local.label.to_owned(),
            source: remote.label.to_owned(),
            local_tip: local.tip,
            remote_tip: remote.tip,
        })
    }
}

/// From a height where the two differ, finds the lowest height that still differs.
fn walk_down<F>(
    local: &LocalChain<'_, F>,
    remote: &RemoteHeaders<'_>,
    differs_at: u32,
    local_hash: BlockHash,
    remote_hash: BlockHash,
    sources: impl Fn() -> Sources,
) -> Outcome
where
    F: Fn(u32) -> Option<BlockHash>,
{
    let mut fork = (differs_at, local_hash, remote_hash);
    while let Some(below) = fork.0.checked_sub(1) {
        let Some(local_below) = (local.hash_at)(below) else {
            break;
        };
        let Some(remote_below) = remote.hash_at(below) else {
            // Ask for more below the run, growing with what was needed so far.
            let have = u32::try_from(remote.headers.len()).unwrap_or(MAX_FETCH);
            let count = have.clamp(MIN_FETCH, MAX_FETCH).min(below + 1);
            return Outcome::Fetch {
                from: below + 1 - count,
                count,
            };
        };
        if local_below == remote_below {
            break;
        }
        fork = (below, local_below, remote_below);
    }
    let (height, local, remote) = fork;
    Outcome::Disagree(Disagreement::Fork {
        sources: sources(),
        height,
        local,
        remote,
    })
}
