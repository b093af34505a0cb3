//! The D-TA's share API (`POST /v1/shares/server`, `/v1/shares/client`,
//! `/v1/shares/permit`, over Milagro TLS; `dta/share-openapi.json`).

use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};

/// What a share answer carries, named by its `kind` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareKind {
    /// A server-secret share `s·Q` (an authentication server's).
    Server,
    /// A client-secret share and today's time permit (a device's).
    Client,
    /// Today's time permit alone (a device renewing it).
    TimePermit,
}

/// The body of `POST /v1/shares/server` and `/v1/shares/permit`: no options yet (an empty
/// body reads as `{}`). A field is refused, so that a client expecting an option the D-TA
/// ignores finds out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// `POST /v1/shares/client`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientShareRequest {
    /// An ID token of a trusted IdP whose audience is the D-TA.
    pub id_token: String,
    /// For a third-party (`web_pki`) IdP: the salt that opens the token's `nonce`, a
    /// commitment to the device's key (ADR 0015). Not a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_salt: Option<String>,
}

/// A time-permit share: `s·H(day ‖ H(ID))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitShare {
    /// The day (days since the Unix epoch) it is valid on.
    pub day: u32,
    /// The G1 point, compressed, hex.
    pub share: String,
}

/// The answer to `POST /v1/shares/server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerShareAnswer {
    /// [`ShareKind::Server`].
    pub kind: ShareKind,
    /// The G2 point `s·Q`, compressed, hex.
    pub share: String,
    /// The answering D-TA's Birth Certificate digest.
    pub dta: Digest,
    /// The day it was issued.
    pub day: u32,
}

/// The answer to `POST /v1/shares/client`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientShareAnswer {
    /// [`ShareKind::Client`].
    pub kind: ShareKind,
    /// The M-Pin identity the shares are for (issuer, subject and device key, as text).
    pub mpin_id: String,
    /// The client-secret share `s·H(ID)`, compressed G1, hex.
    pub client_share: String,
    /// Today's time-permit share.
    pub time_permit: PermitShare,
    /// The answering D-TA's Birth Certificate digest.
    pub dta: Digest,
}

/// The answer to `POST /v1/shares/permit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitAnswer {
    /// [`ShareKind::TimePermit`].
    pub kind: ShareKind,
    /// The M-Pin identity the permit is for.
    pub mpin_id: String,
    /// Today's time-permit share.
    pub time_permit: PermitShare,
    /// The answering D-TA's Birth Certificate digest.
    pub dta: Digest,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_read_what_the_share_api_documents_and_requests_refuse_unknown_fields() {
        let dta = Digest::sha256(b"dta");
        let text = format!(
            r#"{{"kind":"client","mpin_id":"id","client_share":"02ab","time_permit":{{"day":20000,"share":"03cd"}},"dta":"{dta}"}}"#
        );
        let answer: ClientShareAnswer = serde_json::from_str(&text).unwrap();
        assert_eq!(answer.kind, ShareKind::Client);
        assert_eq!(answer.time_permit.day, 20_000);
        assert_eq!(answer.dta, dta);
        assert_eq!(serde_json::to_string(&answer).unwrap(), text);
        // A field a newer D-TA adds does not break an older device; a request with a
        // field the D-TA does not know is refused.
        let extra = text.replacen("{", r#"{"extra":1,"#, 1);
        assert_eq!(
            serde_json::from_str::<ClientShareAnswer>(&extra).unwrap(),
            answer
        );
        let request = r#"{"id_token":"t","scope":"more"}"#;
        assert!(serde_json::from_str::<ClientShareRequest>(request).is_err());
        let wrong_kind = text.replace(r#""kind":"client""#, r#""kind":"minted""#);
        assert!(serde_json::from_str::<ClientShareAnswer>(&wrong_kind).is_err());
        assert_eq!(
            serde_json::to_string(&ShareKind::TimePermit).unwrap(),
            r#""time_permit""#
        );
    }
}
