//! The consensus rules a header must meet in its place in the chain, as Bitcoin Core's
//! `GetNextWorkRequired` and `ContextualCheckBlockHeader` state them (`src/pow.cpp`,
//! `src/validation.cpp`): the difficulty bits it must carry, its earliest and latest time.
//!
//! Each function answers from the headers held below the new one, oldest first, and says
//! [`None`] when the headers it needs are not held (a chain that starts at a header the
//! party trusts for another reason, e.g. its own node); a chain from a pinned checkpoint
//! always holds them ([`super::Headers::from_checkpoint`]).

use bitcoin::block::Header;
use bitcoin::consensus::Params;
use bitcoin::CompactTarget;

/// Blocks per difficulty period.
pub const PERIOD: u32 = 2016;
/// How far in the future a header's time may be (Core's `MAX_FUTURE_BLOCK_TIME`).
pub const MAX_FUTURE_SECS: u32 = 2 * 60 * 60;
/// How far a period's first block may go back in time on testnet4 (BIP 94).
pub const MAX_TIMEWARP_SECS: u32 = 600;
/// Headers whose median time a new header must pass.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// The first height of the difficulty period that holds `height`.
pub fn period_start(height: u32) -> u32 {
    height - height % PERIOD
}

/// The bits the header at `held_top_height + 1` with time `time` must carry, given the
/// held headers `held` (the last is at `held_top_height`).
pub fn next_bits(
    params: &Params,
    bip94: bool,
    held: &[Header],
    held_top_height: u32,
    time: u32,
) -> Option<CompactTarget> {
    let last = held.last()?;
    let height = held_top_height.checked_add(1)?;
    let at = |h: u32| -> Option<&Header> {
        let offset = held_top_height.checked_sub(h)?;
        held.len()
            .checked_sub(1 + usize::try_from(offset).ok()?)
            .map(|i| &held[i])
    };
    let limit = params.max_attainable_target.to_compact_lossy();
    if !height.is_multiple_of(PERIOD) {
        if !params.allow_min_difficulty_blocks {
            return Some(last.bits);
        }
        // Testnet rule: a block more than twice the spacing after the last may be mined
        // at the easiest target; otherwise it carries the last bits that were not that.
        let spacing = u32::try_from(params.pow_target_spacing).ok()?;
        if time > last.time.saturating_add(2 * spacing) {
            return Some(limit);
        }
        let mut h = held_top_height;
        loop {
            let header = at(h)?;
            if h.is_multiple_of(PERIOD) || header.bits != limit {
                return Some(header.bits);
            }
            h = h.checked_sub(1)?;
        }
    }
    if params.no_pow_retargeting {
        return Some(last.bits);
    }
    let first = at(height.checked_sub(PERIOD)?)?;
    let base = if bip94 { first.bits } else { last.bits };
    let timespan = u64::from(last.time.saturating_sub(first.time));
    Some(CompactTarget::from_next_work_required(
        base, timespan, params,
    ))
}

/// The median time of the last [`MEDIAN_TIME_SPAN`] held headers, which a new header's
/// time must exceed; near genesis (`held` from height 0) the median of those there are.
pub fn median_time_past(held: &[Header], held_from_genesis: bool) -> Option<u32> {
    if held.len() < MEDIAN_TIME_SPAN && !held_from_genesis {
        return None;
    }
    let mut times: Vec<u32> = held
        .iter()
        .rev()
        .take(MEDIAN_TIME_SPAN)
        .map(|h| h.time)
        .collect();
    times.sort_unstable();
    times.get(times.len() / 2).copied()
}
