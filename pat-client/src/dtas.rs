//! Where the device's D-TAs serve shares, and which client id their ID tokens need.
//!
//! The instructions name each D-TA by URL and Birth Certificate digest (verified by SPV).
//! Its `GET /v1/status` says where its share API listens (`share_api`) and which client
//! id it has at each IdP it trusts (`trusted_idps`). None of that needs trust: the share
//! API is reached over Milagro TLS, which admits the D-TA only by the digest the
//! instructions name, and a wrong client id only gets the device's ID token refused.

use std::sync::Arc;

use milagro_anchor::digest::Digest;
use milagro_anchor::instructions::ServiceAnchor;
use milagro_tls::{LocalIdentity, Options, PeerDirectory};
use milagro_wire::dta::Status;
use milagro_wire::shares::ClientShareRequest;

use crate::error::{Error, Step};
use crate::http::{ServiceClient, DEFAULT_REQUEST_TIMEOUT};
use crate::mpin_key::{request_permit, request_shares, DtaShares};
use milagro_http_client::Outbound;
use milagro_mpin::{MpinId, TimePermitShare};

/// A D-TA the device collects shares from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtaEndpoint {
    /// Its Birth Certificate digest (from the instructions).
    pub digest: Digest,
    /// Its base URL (from the instructions).
    pub url: String,
    /// Where its share API listens (`host:port`, from its status).
    pub share_api: String,
    /// `(issuer, client id)` of each IdP it trusts (from its status).
    pub client_ids: Vec<(String, String)>,
}

/// Asks the D-TA `service` names for its status. Refuses a status of another D-TA (the
/// instructions' URL is stale) or one whose share API does not serve yet. Its URL is
/// reached under the HTTP policy `outbound`.
pub fn locate(outbound: &Outbound, service: &ServiceAnchor) -> Result<DtaEndpoint, Error> {
    let client = ServiceClient::with_outbound(&service.url, outbound, DEFAULT_REQUEST_TIMEOUT)?;
    let status: Status = client
        .get(Step::LocateDtas, "/v1/status")?
        .read(Step::LocateDtas)?;
    if status.party.digest != service.birth_certificate {
        return Err(Error::unexpected(
            Step::LocateDtas,
            format!(
                "{} is d-ta {}, the instructions say {}",
                service.url, status.party.digest, service.birth_certificate
            ),
        ));
    }
    let share_api = status.share_api.ok_or_else(|| {
        Error::NotReady(format!(
            "the share api of d-ta {} does not serve yet (its anchor may not be confirmed)",
            service.birth_certificate
        ))
    })?;
    let client_ids = status
        .trusted_idps
        .into_iter()
        .map(|idp| (idp.issuer, idp.client_id))
        .collect();
    Ok(DtaEndpoint {
        digest: service.birth_certificate,
        url: service.url.clone(),
        share_api,
        client_ids,
    })
}

/// The client id every D-TA of `dtas` has at the IdP `issuer`: one login must satisfy
/// them all, so they must trust the issuer and agree on the id.
pub fn client_id_for(dtas: &[DtaEndpoint], issuer: &str) -> Result<String, Error> {
    let issuer = issuer.trim_end_matches('/');
    let mut agreed: Option<&str> = None;
    for dta in dtas {
        let id = dta
            .client_ids
            .iter()
            .find(|(trusted, _)| trusted.trim_end_matches('/') == issuer)
            .map(|(_, id)| id.as_str())
            .ok_or_else(|| {
                Error::NotReady(format!(
                    "d-ta {} does not trust the idp {issuer}",
                    dta.digest
                ))
            })?;
        match agreed {
            Some(other) if other != id => {
                return Err(Error::Unsupported(format!(
                    "the d-tas have different client ids at {issuer} ({other}, {id}); \
                     one login per d-ta is not supported"
                )))
            }
            _ => agreed = Some(id),
        }
    }
    agreed
        .map(str::to_owned)
        .ok_or_else(|| Error::NotReady("the instructions name no d-ta".into()))
}

/// Asks every D-TA of `dtas` for this device's shares over Milagro TLS with `request`
/// (its ID token, and the salt opening its nonce if it has one:
/// [`IdToken::share_request`](crate::idp_login::IdToken::share_request)), one after the
/// other; fails with the first refusal (naming the D-TA and its reason).
pub async fn collect_shares(
    identity: &LocalIdentity,
    dtas: &[DtaEndpoint],
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
    request: &ClientShareRequest,
) -> Result<Vec<DtaShares>, Error> {
    let mut shares = Vec::with_capacity(dtas.len());
    for dta in dtas {
        shares.push(
            request_shares(
                identity,
                dta.digest,
                &dta.share_api,
                directory.clone(),
                options,
                request,
            )
            .await?,
        );
    }
    Ok(shares)
}

/// Asks every D-TA of `dtas` for today's time-permit share of the identity it issued
/// this device ([`request_permit`]), one after the other; fails with the first refusal.
/// Each answer comes with the D-TA that gave it, as [`crate::mpin_key::MpinKey::renew_permit`]
/// takes them.
pub async fn collect_permits(
    identity: &LocalIdentity,
    dtas: &[DtaEndpoint],
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<Vec<(Digest, MpinId, TimePermitShare)>, Error> {
    let mut permits = Vec::with_capacity(dtas.len());
    for dta in dtas {
        let (id, share) = request_permit(
            identity,
            dta.digest,
            &dta.share_api,
            directory.clone(),
            options,
        )
        .await?;
        permits.push((dta.digest, id, share));
    }
    Ok(permits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dta(byte: u8, ids: &[(&str, &str)]) -> DtaEndpoint {
        DtaEndpoint {
            digest: Digest::from_bytes([byte; 32]),
            url: format!("http://dta{byte}"),
            share_api: "127.0.0.1:1".into(),
            client_ids: ids
                .iter()
                .map(|(i, c)| ((*i).to_owned(), (*c).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn one_login_must_satisfy_every_dta() {
        let both = [
            dta(1, &[("http://idp", "g")]),
            dta(2, &[("http://idp/", "g")]),
        ];
        assert_eq!(client_id_for(&both, "http://idp").unwrap(), "g");
        let differ = [
            dta(1, &[("http://idp", "a")]),
            dta(2, &[("http://idp", "b")]),
        ];
        assert!(matches!(
            client_id_for(&differ, "http://idp"),
            Err(Error::Unsupported(_))
        ));
        let untrusting = [
            dta(1, &[("http://idp", "g")]),
            dta(2, &[("http://other", "g")]),
        ];
        assert!(matches!(
            client_id_for(&untrusting, "http://idp"),
            Err(Error::NotReady(_))
        ));
        assert!(matches!(
            client_id_for(&[], "http://idp"),
            Err(Error::NotReady(_))
        ));
    }
}
