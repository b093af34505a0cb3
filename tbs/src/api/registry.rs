//! The public, read-only registry API: records, anchor proofs, headers.

use std::str::FromStr;

use actix_web::{web, HttpRequest, HttpResponse};
use bitcoin::block::Header;
use bitcoin::consensus::encode;
use bitcoin::{BlockHash, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;
use milagro_anchor::nonce::NoncePoint;
use milagro_anchor::proof::{Expected, Headers};
use milagro_registry::chain::ChainSource;
use milagro_registry::proofs::anchor_proof;
use milagro_registry::store::{IndexedRecord, RecordStore};
use milagro_wire::tbs::registry::{self as wire, Proof, Record, Records};
use serde::Deserialize;

use super::{blocking, ApiError};
use crate::state::AppState;

/// Most headers one `/v1/headers` request returns.
pub const MAX_HEADERS: u32 = 2000;

/// The query of `/v1/records`: exactly one of the three.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsQuery {
    digest: Option<String>,
    txid: Option<String>,
    signer: Option<String>,
}

/// What `/v1/records` looks up, parsed.
enum Lookup {
    Digest(Digest),
    Txid(Txid),
    Signer(PublicKey),
}

impl Lookup {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let query = web::Query::<RecordsQuery>::from_query(query)
            .map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?
            .into_inner();
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            ApiError::BadRequest(format!("{what} is not valid: {e}"))
        };
        match (query.digest, query.txid, query.signer) {
            (Some(d), None, None) => Digest::from_str(&d)
                .map(Self::Digest)
                .map_err(|e| bad("digest (64 hex characters)", &e)),
            (None, Some(t), None) => parse_txid(&t).map(Self::Txid),
            (None, None, Some(s)) => PublicKey::from_str(&s)
                .map(Self::Signer)
                .map_err(|e| bad("signer (66 hex characters, compressed key)", &e)),
            _ => Err(ApiError::BadRequest(
                "give exactly one of digest, txid or signer".into(),
            )),
        }
    }
}

fn parse_txid(text: &str) -> Result<Txid, ApiError> {
    if text.len() != 64 {
        return Err(ApiError::BadRequest(
            "txid is not valid: 64 hex characters".into(),
        ));
    }
    Txid::from_str(text).map_err(|e| ApiError::BadRequest(format!("txid is not valid: {e}")))
}

/// `GET /v1/records?digest=|txid=|signer=`: the indexed records, oldest first.
pub(crate) async fn records(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let lookup = Lookup::parse(req.query_string())?;
    let records = blocking(&state, move |state| {
        let mut records = match lookup {
            Lookup::Digest(d) => state.store.by_digest(&d)?,
            Lookup::Txid(t) => state.store.by_txid(&t)?,
            Lookup::Signer(s) => state.store.by_signer(&s.compressed())?,
        };
        records.sort_by_key(|r| (r.height, r.txid, r.vout));
        Ok(records)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Records {
        records: records.iter().map(record).collect(),
    }))
}

/// An indexed record as the API shows it; its signature as its nonce point `R`, for ECDH
/// and YAK over Bitcoin (none if the signature has no valid one).
fn record(record: &IndexedRecord) -> Record {
    Record {
        kind: record.kind,
        digest: record.digest,
        txid: record.txid.to_string(),
        vout: record.vout,
        height: record.height,
        block_hash: record.block_hash.to_string(),
        signer: record.signer.to_string(),
        nonce_point: NoncePoint::from_signature(&record.signature)
            .ok()
            .map(|point| hex::encode(point.to_sec1())),
    }
}

/// `GET /v1/proofs/{txid}`: the self-contained anchor proof of an indexed record.
///
/// The proof is checked here (record, Merkle path, header of its block) before it is
/// served, so a node that serves garbage shows up as an error, not as a bad proof.
/// Clients still verify it themselves against headers they trust.
pub(crate) async fn proof(
    state: web::Data<AppState>,
    txid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let txid = parse_txid(&txid)?;
    let body = blocking(&state, move |state| {
        let record: IndexedRecord = state
            .store
            .by_txid(&txid)?
            .into_iter()
            .min_by_key(|r| r.vout)
            .ok_or_else(|| ApiError::NotFound(format!("no record in transaction {txid}")))?;
        let proof = anchor_proof(&*state.node, &record)?;
        let header = state.node.header(&record.block_hash)?;
        let chain = Headers::new(state.config.party.node.network, record.height, header)
            .map_err(|e| ApiError::Node(format!("block {}: {e}", record.block_hash)))?;
        let expected = Expected {
            kind: record.kind,
            digest: record.digest,
            signer: Some(record.signer.to_public_key().map_err(|e| {
                ApiError::Node(format!("the signer indexed for {txid} is no key: {e}"))
            })?),
        };
        let verified = proof.verify(&expected, &chain).map_err(|e| {
            ApiError::Node(format!("the node's proof of {txid} does not verify: {e}"))
        })?;
        let depth = record.depth_in(state.store.as_ref())?;
        Ok(Proof {
            txid: verified.txid().to_string(),
            vout: verified.vout(),
            kind: verified.kind(),
            digest: verified.digest(),
            signer: verified.signer().to_string(),
            height: record.height,
            block_hash: verified.block_hash().to_string(),
            depth,
            anchor_proof: proof.to_json(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// The query of `/v1/headers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadersQuery {
    from: u32,
    count: Option<u32>,
}

/// `GET /v1/headers?from=H&count=N`: up to N (≤ 2000, default 2000) consecutive headers of
/// the node's active chain from height H, hex-encoded; empty when H is above the tip.
pub(crate) async fn headers(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<HeadersQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?
        .into_inner();
    let count = query.count.unwrap_or(MAX_HEADERS);
    if !(1..=MAX_HEADERS).contains(&count) {
        return Err(ApiError::BadRequest(format!(
            "count must be between 1 and {MAX_HEADERS}"
        )));
    }
    let from = query.from;
    let body = blocking(&state, move |state| {
        let tip = state.node.tip()?;
        let last = tip.height.min(from.saturating_add(count - 1));
        let heights: Vec<u32> = (from..=last).collect();
        let hashes: Vec<BlockHash> = state
            .node
            .block_hashes(&heights)?
            .into_iter()
            .map_while(|hash| hash)
            .collect();
        let headers = state.node.headers(&hashes)?;
        check_linked(&hashes, &headers)?;
        Ok(wire::Headers {
            from,
            tip_height: tip.height,
            tip_hash: tip.hash.to_string(),
            headers: headers.iter().map(encode::serialize_hex).collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Each header must be the one asked for and build on the previous one: otherwise the
/// node reorganised between the two batched reads.
fn check_linked(hashes: &[BlockHash], headers: &[Header]) -> Result<(), ApiError> {
    let moved = || ApiError::ChainMoved("the chain changed while reading headers; retry".into());
    if hashes.len() != headers.len() {
        return Err(moved());
    }
    for (i, (hash, header)) in hashes.iter().zip(headers).enumerate() {
        if header.block_hash() != *hash {
            return Err(moved());
        }
        if let Some(previous) = i.checked_sub(1).and_then(|p| hashes.get(p)) {
            if header.prev_blockhash != *previous {
                return Err(moved());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_needs_exactly_one_valid_key() {
        let digest = "ab".repeat(32);
        assert!(matches!(
            Lookup::parse(&format!("digest={digest}")),
            Ok(Lookup::Digest(_))
        ));
        assert!(matches!(
            Lookup::parse(&format!("txid={digest}")),
            Ok(Lookup::Txid(_))
        ));
        let bad = [
            String::new(),
            format!("digest={digest}&txid={digest}"),
            format!("digest={digest}&digest={digest}"),
            "digest=zz".into(),
            format!("digest={digest}&color=red"),
            "signer=02".into(),
            format!("txid={digest}00"),
            "digest=%ff%fe".into(),
        ];
        for query in bad {
            assert!(
                matches!(Lookup::parse(&query), Err(ApiError::BadRequest(_))),
                "{query}"
            );
        }
    }
}
