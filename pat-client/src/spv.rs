//! The header chain a device checks anchors against, built from what a TBS serves.
//!
//! The device knows one header itself: its network's genesis. Every further header must
//! link to the previous one and carry valid proof of work ([`Headers`] checks both), so a
//! TBS can only serve a chain it (or someone) mined. What this does not prove is that the
//! chain is the one with most work: a second, independent header source (Electrum) closes
//! that gap later.

use bitcoin::block::Header;
use bitcoin::Network;
use milagro_anchor::proof::{HeaderChain as _, Headers};
use serde_json::Value;

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
    let genesis = bitcoin::constants::genesis_block(network).header;
    let mut from: u32 = match &chain {
        Some(chain) => chain
            .tip_height()
            .checked_add(1)
            .ok_or_else(|| Error::unexpected(step, "height overflow"))?,
        None => 0,
    };
    loop {
        let page = tbs.get(step, &format!("/v1/headers?from={from}&count={PAGE}"))?;
        let headers = page_headers(&page.body)?;
        let count = u32::try_from(headers.len())
            .ok()
            .filter(|&n| n <= PAGE)
            .ok_or_else(|| Error::unexpected(step, "more headers than asked for"))?;
        for header in headers {
            match chain.as_mut() {
                Some(chain) => chain.push(header)?,
                None if header == genesis => chain = Some(Headers::new(network, 0, header)?),
                None => {
                    return Err(Error::Headers(format!(
                        "the tbs serves a chain that does not start at the {network} genesis \
                         block (its first header is {})",
                        header.block_hash()
                    )))
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
    chain.ok_or_else(|| Error::Headers("the tbs served no headers".into()))
}

fn page_headers(body: &Value) -> Result<Vec<Header>, Error> {
    let step = Step::FetchHeaders;
    body.get("headers")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::unexpected(step, "no headers array"))?
        .iter()
        .map(|h| {
            let hex = h
                .as_str()
                .ok_or_else(|| Error::unexpected(step, "a header that is not a string"))?;
            bitcoin::consensus::encode::deserialize_hex(hex)
                .map_err(|e| Error::unexpected(step, format!("a malformed header: {e}")))
        })
        .collect()
}
