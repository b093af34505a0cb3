//! The header chain a device checks anchors against, built from what a TBS serves.
//!
//! The device knows one block itself: the checkpoint pinned for its network
//! ([`Checkpoint::pinned`]; genesis on regtest). It asks the TBS for the headers from a
//! little below it (the context the consensus rules need, authenticated by hash back from
//! the pinned block) and checks every header above it against the rules a full node
//! applies ([`Headers`]: linking, proof of work, difficulty retargeting, median time past,
//! at most two hours ahead of the device's clock), then that the chain's total work
//! reaches the network's minimum. A TBS can therefore serve no chain it did not mine with
//! real work on top of the real one. What this alone does not prove is that the chain is
//! the *best* one: a TBS may withhold newer blocks. An independent header source
//! (`milagro_electrum`) and the most work already seen ([`Headers::check_work`]) close
//! that gap.

use bitcoin::block::Header;
use bitcoin::Network;
use milagro_anchor::proof::{Checkpoint, HeaderChain as _, Headers};
use milagro_wire::tbs::registry as wire;

use crate::error::{Error, Step};
use crate::http::ServiceClient;

/// Headers per `/v1/headers` page (the TBS's maximum).
const PAGE: u32 = 2000;

/// Fetches every header from genesis to the TBS's tip and checks the chain.
pub fn fetch_headers(tbs: &ServiceClient, network: Network) -> Result<Headers, Error> {
    fetch_from(tbs, network, None)
}

/// Extends `chain` (built by [`fetch_headers`]) with the headers the TBS has above its
/// tip. Fails with [`Error::HeaderChain`] if they do not link to it: the TBS followed a
/// reorg below that tip, and the chain must be fetched again from genesis. A tip replaced
/// at the same height with nothing on top goes unnoticed until a block is added; a proof
/// in such a block does not verify against the chain (fetch again then).
pub fn extend_headers(
    tbs: &ServiceClient,
    network: Network,
    chain: Headers,
) -> Result<Headers, Error> {
    fetch_from(tbs, network, Some(chain))
}

fn fetch_from(
    tbs: &ServiceClient,
    network: Network,
    mut chain: Option<Headers>,
) -> Result<Headers, Error> {
    let step = Step::FetchHeaders;
    let checkpoint = Checkpoint::pinned(network);
    let mut from: u32 = match &chain {
        Some(chain) => chain
            .tip_height()
            .checked_add(1)
            .ok_or_else(|| Error::unexpected(step, "height overflow"))?,
        None => Headers::context_start(checkpoint.height),
    };
    let now = u32::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(u32::MAX);
    let context_len =
        usize::try_from(checkpoint.height - Headers::context_start(checkpoint.height))
            .map_err(|_| Error::unexpected(step, "height overflow"))?
            + 1;
    let mut context = Vec::with_capacity(if chain.is_some() { 0 } else { context_len });
    loop {
        let page = tbs.get(step, &format!("/v1/headers?from={from}&count={PAGE}"))?;
        let headers = page_headers(&page.read(step)?)?;
        let count = u32::try_from(headers.len())
            .ok()
            .filter(|&n| n <= PAGE)
            .ok_or_else(|| Error::unexpected(step, "more headers than asked for"))?;
        for header in headers {
            match chain.as_mut() {
                Some(chain) => chain.push_at(header, now)?,
                None => {
                    context.push(header);
                    if context.len() == context_len {
                        chain = Some(Headers::from_checkpoint(
                            network,
                            checkpoint,
                            std::mem::take(&mut context),
                        )?);
                    }
                }
            }
        }
        if count < PAGE {
            break;
        }
        from = from
            .checked_add(PAGE)
            .ok_or_else(|| Error::unexpected(step, "height overflow"))?;
    }
    let chain = chain.ok_or_else(|| {
        Error::Headers(format!(
            "the tbs serves no chain through the {network} checkpoint at height {} ({})",
            checkpoint.height, checkpoint.hash
        ))
    })?;
    chain.check_work(None)?;
    Ok(chain)
}

fn page_headers(page: &wire::Headers) -> Result<Vec<Header>, Error> {
    page.headers
        .iter()
        .map(|hex| {
            bitcoin::consensus::encode::deserialize_hex(hex).map_err(|e| {
                Error::unexpected(Step::FetchHeaders, format!("a malformed header: {e}"))
            })
        })
        .collect()
}
