//! The device's M-Pin key: the shares every D-TA issued it, checked, summed, with the PIN
//! taken out, and stored as a token.
//!
//! Each D-TA of the device's group answers `POST /v1/shares/client` (over Milagro TLS)
//! with its client-secret share and today's time-permit share for the device's M-Pin
//! identity ([`DtaShares::from_json`]). [`MpinKey::assemble`] checks that every answer is
//! for the same identity and day and comes from a distinct D-TA, that every point is a
//! canonical point of BLS12-381's prime-order G1 subgroup, sums the shares and extracts
//! the PIN. Only the result is stored ([`MpinKey::save`], `mpin-key.json`, mode 0600):
//! the token (the client secret minus the PIN), the summed permit and which D-TAs
//! contributed; never a share and never the PIN.

use std::path::Path;
use std::sync::Arc;

use milagro_anchor::digest::Digest;
use milagro_mpin::{
    ClientSecret, ClientSecretShare, Day, MpinError, MpinId, Pin, TimePermit, TimePermitShare,
    Token, G1,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use milagro_tls::{LocalIdentity, Options, PeerDirectory};
/// What [`request_shares`] sends (re-exported: callers build it without the wire crate).
pub use milagro_wire::shares::ClientShareRequest;
use milagro_wire::shares::{ClientShareAnswer, NoOptions, PermitAnswer, PermitShare, ShareKind};
use milagro_wire::ErrorBody;

use crate::error::Error;
use crate::files;

/// File name of the stored key in the device's state directory.
pub const MPIN_KEY_FILE: &str = "mpin-key.json";

/// What one D-TA issued the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtaShares {
    /// The D-TA's Birth Certificate digest.
    pub dta: Digest,
    /// The identity the shares are for.
    pub id: MpinId,
    /// Its client-secret share.
    pub client: ClientSecretShare,
    /// Its time-permit share.
    pub permit: TimePermitShare,
}

/// The device's summed key, PIN removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpinKey {
    /// The M-Pin identity.
    pub id: MpinId,
    /// The client secret minus the PIN.
    pub token: Token,
    /// The summed time permit.
    pub permit: TimePermit,
    /// The D-TAs whose shares it sums.
    pub dtas: Vec<Digest>,
}

/// The stored form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MpinKeyWire {
    mpin_id: String,
    token: String,
    permit_day: u32,
    permit: String,
    dtas: Vec<Digest>,
}

fn bad(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::MpinShares(format!("{what}: {reason}"))
}

fn point(what: &str, hex_text: &str) -> Result<G1, Error> {
    let bytes = hex::decode(hex_text).map_err(|e| bad(what, e))?;
    G1::from_bytes(&bytes).map_err(|e| bad(what, e))
}

/// `body` read as the share API's answer `T` ([`milagro_wire::shares`]).
fn answer<T: serde::de::DeserializeOwned>(body: &Value, what: &str) -> Result<T, Error> {
    T::deserialize(body).map_err(|e| bad(what, e))
}

impl DtaShares {
    /// Reads a D-TA's answer, checking that it comes from `expected` (the D-TA the device
    /// asked) and that both points are valid G1 subgroup points.
    pub fn from_json(body: &Value, expected: Digest) -> Result<Self, Error> {
        let answer: ClientShareAnswer = answer(body, "client share answer")?;
        if answer.kind != ShareKind::Client {
            return Err(bad("kind", "not a client share answer"));
        }
        Ok(Self {
            dta: answer_from(answer.dta, expected)?,
            id: answer_id(&answer.mpin_id)?,
            client: ClientSecretShare(point("client_share", &answer.client_share)?),
            permit: answer_permit(&answer.time_permit)?,
        })
    }
}

/// The answering D-TA, which must be `expected`.
fn answer_from(dta: Digest, expected: Digest) -> Result<Digest, Error> {
    if dta != expected {
        return Err(bad("dta", format!("answered by {dta}, asked {expected}")));
    }
    Ok(dta)
}

/// The identity an answer is for.
fn answer_id(mpin_id: &str) -> Result<MpinId, Error> {
    MpinId::new(mpin_id.as_bytes()).map_err(|e| bad("mpin_id", e))
}

/// The time-permit share of an answer, its point checked.
fn answer_permit(permit: &PermitShare) -> Result<TimePermitShare, Error> {
    Ok(TimePermitShare {
        day: Day(permit.day),
        point: point("time_permit.share", &permit.share)?,
    })
}

/// Asks the D-TA with Birth Certificate `dta`, whose share API listens at `addr`, for
/// this device's shares over Milagro TLS, proving its user with `request`: an ID token
/// issued by an IdP the D-TA trusts, for the D-TA's client id, and the salt opening its
/// nonce if a third-party provider issued it
/// ([`IdToken::share_request`](crate::idp_login::IdToken::share_request)). The answer is
/// checked ([`DtaShares::from_json`]); a refusal is an error carrying the D-TA's reason.
pub async fn request_shares(
    identity: &LocalIdentity,
    dta: Digest,
    addr: &str,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
    request: &ClientShareRequest,
) -> Result<DtaShares, Error> {
    let answer = call_share_api(
        identity,
        dta,
        addr,
        directory,
        options,
        "/v1/shares/client",
        request,
    )
    .await?;
    DtaShares::from_json(&answer, dta)
}

/// Asks the D-TA `dta` (share API at `addr`) for today's time-permit share of the identity
/// it issued this device's client share of: the device's anchored key is the proof, no
/// login needed. Returns that identity and the share, checked.
pub async fn request_permit(
    identity: &LocalIdentity,
    dta: Digest,
    addr: &str,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
) -> Result<(MpinId, TimePermitShare), Error> {
    let body = call_share_api(
        identity,
        dta,
        addr,
        directory,
        options,
        "/v1/shares/permit",
        &NoOptions {},
    )
    .await?;
    let answer: PermitAnswer = answer(&body, "time permit answer")?;
    if answer.kind != ShareKind::TimePermit {
        return Err(bad("kind", "not a time permit answer"));
    }
    answer_from(answer.dta, dta)?;
    Ok((
        answer_id(&answer.mpin_id)?,
        answer_permit(&answer.time_permit)?,
    ))
}

/// `POST path` with `body` to the share API of D-TA `dta` at `addr`, over a Milagro TLS
/// session that admits only that D-TA; the JSON answer of a 2xx, else an error with the
/// D-TA's reason.
async fn call_share_api(
    identity: &LocalIdentity,
    dta: Digest,
    addr: &str,
    directory: Arc<dyn PeerDirectory>,
    options: &Options,
    path: &str,
    body: &impl serde::Serialize,
) -> Result<Value, Error> {
    let failed =
        |what: &str, e: &dyn std::fmt::Display| bad(what, format!("d-ta {dta} at {addr}: {e}"));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| failed("connect", &e))?;
    tcp.set_nodelay(true).map_err(|e| failed("connect", &e))?;
    let session = milagro_tls::connect(tcp, identity, dta, directory, options)
        .await
        .map_err(|e| failed("milagro tls", &e))?;
    let request = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "dta")
        .header("content-type", "application/json")
        .body(bytes::Bytes::from(
            serde_json::to_vec(body).map_err(|e| failed("request", &e))?,
        ))
        .map_err(|e| failed("request", &e))?;
    let response = milagro_tls::http::send(session, request)
        .await
        .map_err(|e| failed("request", &e))?;
    if !response.status().is_success() {
        let reason = serde_json::from_slice::<ErrorBody>(response.body())
            .map_or_else(|_| "no reason given".to_owned(), |e| e.error_description);
        return Err(failed(
            "refused",
            &format!("{} {reason}", response.status().as_u16()),
        ));
    }
    Ok(serde_json::from_slice(response.body()).unwrap_or(Value::Null))
}

impl MpinKey {
    /// Sums the shares of every D-TA and takes `pin` out. All answers must be for one
    /// identity and one day, from distinct D-TAs.
    pub fn assemble(shares: &[DtaShares], pin: Pin) -> Result<Self, Error> {
        let first = shares.first().ok_or_else(|| bad("shares", "none"))?;
        for (i, share) in shares.iter().enumerate() {
            if share.id != first.id {
                return Err(bad("mpin_id", "the d-tas issued for different identities"));
            }
            if shares[..i].iter().any(|s| s.dta == share.dta) {
                return Err(bad("dta", format!("{} answered twice", share.dta)));
            }
        }
        let mpin = |e: MpinError| bad("sum", e);
        let clients: Vec<_> = shares.iter().map(|s| s.client.clone()).collect();
        let permits: Vec<_> = shares.iter().map(|s| s.permit.clone()).collect();
        let token = ClientSecret::combine(&clients)
            .and_then(|secret| secret.extract_pin(&first.id, pin))
            .map_err(mpin)?;
        Ok(Self {
            id: first.id.clone(),
            token,
            permit: TimePermit::combine(&permits).map_err(mpin)?,
            dtas: shares.iter().map(|s| s.dta).collect(),
        })
    }

    /// Replaces the time permit with the sum of `permits`, one from each D-TA whose
    /// shares the key sums (as [`request_permit`] returns them): all for this identity and
    /// one day, none missing and none twice.
    pub fn renew_permit(
        &mut self,
        permits: &[(Digest, MpinId, TimePermitShare)],
    ) -> Result<(), Error> {
        for (i, (dta, id, _)) in permits.iter().enumerate() {
            if *id != self.id {
                return Err(bad(
                    "mpin_id",
                    format!("d-ta {dta} renewed another identity"),
                ));
            }
            if !self.dtas.contains(dta) || permits[..i].iter().any(|(d, _, _)| d == dta) {
                return Err(bad(
                    "dta",
                    format!("{dta} is not one of the key's d-tas, or answered twice"),
                ));
            }
        }
        if permits.len() != self.dtas.len() {
            return Err(bad(
                "dta",
                format!(
                    "{} of the key's {} d-tas renewed",
                    permits.len(),
                    self.dtas.len()
                ),
            ));
        }
        let shares: Vec<_> = permits.iter().map(|(_, _, share)| share.clone()).collect();
        self.permit = TimePermit::combine(&shares).map_err(|e| bad("sum", e))?;
        Ok(())
    }

    /// Stores the key in `dir` (atomically, mode 0600), replacing an older one.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let wire = MpinKeyWire {
            mpin_id: String::from_utf8_lossy(self.id.as_bytes()).into_owned(),
            token: hex::encode(self.token.to_bytes()),
            permit_day: self.permit.day().0,
            permit: hex::encode(self.permit.point().to_bytes()),
            dtas: self.dtas.clone(),
        };
        let path = dir.join(MPIN_KEY_FILE);
        let bytes = serde_json::to_vec_pretty(&wire).map_err(|e| Error::corrupt(&path, e))?;
        files::write_atomically(&path, &bytes)
    }

    /// The stored key, if any.
    pub fn load(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(MPIN_KEY_FILE);
        let Some(bytes) = files::read_secret(&path)? else {
            return Ok(None);
        };
        let corrupt = |e: &dyn std::fmt::Display| Error::corrupt(&path, e.to_string());
        let wire: MpinKeyWire = serde_json::from_slice(&bytes).map_err(|e| corrupt(&e))?;
        let decode = |text: &str| hex::decode(text).map_err(|e| corrupt(&e));
        let token = Token::from_bytes(&decode(&wire.token)?).map_err(|e| corrupt(&e))?;
        let permit = G1::from_bytes(&decode(&wire.permit)?).map_err(|e| corrupt(&e))?;
        Ok(Some(Self {
            id: MpinId::new(wire.mpin_id.as_bytes()).map_err(|e| corrupt(&e))?,
            token,
            permit: TimePermit::from_parts(Day(wire.permit_day), permit),
            dtas: wire.dtas,
        }))
    }
}

#[cfg(test)]
mod tests;
