//! Checking the TBS against independent sources: Electrum servers for the best chain,
//! other registries (TBSes) for the records, and the most work this device has seen.
//!
//! One TBS alone decides what a device sees: it can withhold blocks or hide a record. A
//! device provisioned with [`ChainSources`] does not take its word alone:
//!
//! - **Headers.** Every chain the TBS serves is first checked under the consensus rules
//!   from the pinned checkpoint ([`crate::spv`]), then must carry at least the work of the
//!   best chain this device accepted before ([`ChainSeen`], kept in its state across
//!   restarts), and then each Electrum server must hold the same block at the lower of the
//!   two tips, with tips at most [`MAX_LAG`] blocks apart ([`milagro_electrum::CrossCheck`];
//!   a server behind the TBS is asked again for up to [`CATCH_UP`]).
//!   Any disagreement is a refusal naming both sources ([`Error::ChainDisagreement`]); a
//!   server that cannot be asked is a refusal too ([`Error::SourceUnavailable`]): a check
//!   that can be switched off by cutting a cable is no check.
//! - **Records.** Another registry is pinned by the digest of its Birth Certificate and
//!   checked like the TBS ([`verify_registry`]: digest, role, status, anchor by SPV). The
//!   peer directory ([`crate::peering::TbsDirectory`]) asks every registry for a peer's
//!   later certificates and takes the union.
//!
//! What it does not do: an Electrum server does not index `OP_RETURN` outputs, so it
//! confirms the chain and cannot reveal a hidden record (only another registry can); a
//! block above the lower tip (at most [`MAX_LAG`] of them) is the TBS's word alone.

use std::time::{Duration, Instant};

use milagro_anchor::birth_certificate::{BirthCertificate, Role, Status};
use milagro_anchor::digest::Digest;
use milagro_anchor::proof::{AnchorProof, HeaderChain as _, Headers, VerifiedAnchor};
use milagro_electrum::{CrossCheck, CrossCheckError, Disagreement, ElectrumSource, LocalChain};
use milagro_wire::service::AnchoredBirthCertificate;

use crate::error::{Error, Step};
use crate::http::ServiceClient;
use crate::spv::fetch_headers;
use crate::state::{ChainSeen, ChainSources, Device};

/// How far apart the TBS's tip and an Electrum server's may be (blocks found while the
/// two were asked, one after the other).
pub const MAX_LAG: u32 = 2;

/// How long an Electrum server that is behind the TBS is given to catch up (it has not
/// processed the newest blocks yet) before the disagreement stands.
pub const CATCH_UP: Duration = Duration::from_secs(5);

/// How long one Electrum server may take to connect or answer.
pub const ELECTRUM_TIMEOUT: Duration = Duration::from_secs(10);

/// A header chain the device accepted: checked from the checkpoint, with at least the work
/// of any chain accepted before, and agreed on by every Electrum source.
#[derive(Debug, Clone)]
pub struct CheckedChain {
    /// The headers.
    pub headers: Headers,
    /// What is remembered of it.
    pub seen: ChainSeen,
}

/// Checks `headers` (served by the TBS labelled `tbs`) against every Electrum server in
/// `electrum`, each on a connection of its own. Returns the labels of the sources that
/// agreed (the TBS's first).
pub fn cross_check(
    tbs: &str,
    headers: &Headers,
    electrum: &[String],
) -> Result<Vec<String>, Error> {
    let mut agreed = vec![tbs.to_owned()];
    let local = LocalChain {
        label: tbs,
        tip: headers.tip_height(),
        hash_at: |height: u32| {
            headers
                .header_at(height)
                .map(bitcoin::block::Header::block_hash)
        },
    };
    let policy = CrossCheck::new().with_max_lag(MAX_LAG);
    for url in electrum {
        let unavailable = |reason: String| Error::SourceUnavailable {
            label: url.clone(),
            reason,
        };
        let deadline = Instant::now() + CATCH_UP;
        loop {
            // A fresh connection per check: ElectrumX holds small answers up to a second on
            // a session that already sent a KiB (ADR 0006).
            let server = ElectrumSource::connect(url, ELECTRUM_TIMEOUT)
                .map_err(|e| unavailable(e.to_string()))?;
            match server.cross_check(&policy, &local) {
                Ok(_) => {
                    agreed.push(url.clone());
                    break;
                }
                Err(CrossCheckError::Disagree(Disagreement::Ahead { .. }))
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(CATCH_UP / 10);
                }
                Err(CrossCheckError::Disagree(disagreement)) => {
                    return Err(Error::ChainDisagreement(Box::new(disagreement)))
                }
                Err(e) => return Err(unavailable(e.to_string())),
            }
        }
    }
    Ok(agreed)
}

/// Accepts `headers` from `tbs` if they have at least `seen`'s work and every Electrum
/// server in `electrum` agrees with them.
pub fn accept(
    tbs: &ServiceClient,
    headers: Headers,
    seen: Option<&ChainSeen>,
    electrum: &[String],
) -> Result<CheckedChain, Error> {
    headers.check_work(seen.map(|s| s.work))?;
    let agreed_by = cross_check(tbs.base_url(), &headers, electrum)?;
    let seen = ChainSeen {
        height: headers.tip_height(),
        hash: headers.tip_hash(),
        work: headers.chain_work(),
        agreed_by,
    };
    Ok(CheckedChain { headers, seen })
}

/// The device's chain, fetched from its TBS from the checkpoint and accepted against its
/// sources and the best chain it saw.
pub(crate) fn device_chain(tbs: &ServiceClient, device: &Device) -> Result<CheckedChain, Error> {
    let headers = fetch_headers(tbs, device.provisioning.network)?;
    accept(
        tbs,
        headers,
        device.chain.as_ref(),
        &device.provisioning.sources.electrum,
    )
}

/// Fetches a registry's (a TBS's) Birth Certificate and checks it: the pinned `digest`,
/// role `tbs`, status `active`, and its anchor by SPV against `headers`.
pub fn verify_registry(
    registry: &ServiceClient,
    digest: Digest,
    headers: &Headers,
) -> Result<(BirthCertificate, VerifiedAnchor), Error> {
    let step = Step::FetchTbsCertificate;
    let served: AnchoredBirthCertificate = registry
        .get(step, "/.well-known/milagro/birth-certificate")?
        .read(step)?;
    let json =
        serde_json::to_vec(&served.birth_certificate).map_err(|e| Error::unexpected(step, e))?;
    let bc = BirthCertificate::parse(&json)?;
    if bc.digest() != digest {
        return Err(Error::TbsDigest {
            provisioned: digest,
            served: bc.digest(),
        });
    }
    if bc.role() != Role::Tbs || bc.status() != Status::Active {
        return Err(Error::TbsCertificate {
            role: bc.role(),
            status: bc.status(),
        });
    }
    let proof = AnchorProof::from_json(&served.anchor_proof).map_err(Error::TbsAnchor)?;
    let anchor = bc
        .verify_anchor(&proof, headers)
        .map_err(Error::TbsAnchor)?;
    Ok((bc, anchor))
}

/// Checks another registry's certificate against its pin ([`verify_registry`]); a failure
/// names the registry ([`Error::SourceUnavailable`]).
pub fn check_registry(
    registry: &ServiceClient,
    digest: Digest,
    headers: &Headers,
) -> Result<(), Error> {
    verify_registry(registry, digest, headers)
        .map(|_| ())
        .map_err(|e| Error::SourceUnavailable {
            label: registry.base_url().to_owned(),
            reason: e.to_string(),
        })
}

/// A client of each registry in `sources`, with its pinned digest, under the HTTP policy
/// of the client of the device's TBS.
pub fn registry_clients(
    tbs: &ServiceClient,
    sources: &ChainSources,
) -> Result<Vec<(ServiceClient, Digest)>, Error> {
    sources
        .registries
        .iter()
        .map(|pin| Ok((tbs.for_service(&pin.url)?, pin.digest)))
        .collect()
}

#[cfg(test)]
mod tests {
    use bitcoin::Network;
    use milagro_anchor::proof::HeaderChainError;

    use super::*;

    fn genesis_chain() -> Headers {
        let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
        Headers::from_headers(Network::Regtest, 0, vec![genesis]).unwrap()
    }

    #[test]
    fn a_chain_is_accepted_only_with_the_work_of_the_best_one_seen() {
        let tbs = ServiceClient::new("http://127.0.0.1:1").unwrap();
        let none: &[String] = &[];
        let first = accept(&tbs, genesis_chain(), None, none).unwrap();
        assert_eq!(first.seen.agreed_by, vec!["http://127.0.0.1:1".to_owned()]);
        assert_eq!(first.seen.work, genesis_chain().chain_work());
        // The same chain again: as much work as seen, accepted.
        accept(&tbs, genesis_chain(), Some(&first.seen), none).unwrap();
        // A device that saw more work (kept in its state) refuses it.
        let more = ChainSeen {
            work: first.seen.work + first.seen.work,
            ..first.seen
        };
        assert!(matches!(
            accept(&tbs, genesis_chain(), Some(&more), none),
            Err(Error::HeaderChain(
                HeaderChainError::InsufficientWork { .. }
            ))
        ));
    }
}
