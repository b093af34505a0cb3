//! Device enrolment (`docs/enrolment.md`): the sealed requests, and what the TBS says of a
//! device's enrolment (`POST /v1/enrolments`, `/v1/enrolments/signed`,
//! `GET /v1/enrolments/{device}`, `/v1/enrolments/{device}/instructions`).
//!
//! Sealed things (the request, the signed anchor, the offer, the instructions) travel as
//! their base64url text (`milagro_anchor::envelope`); the receiver opens them.

use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};

/// The body of `POST /v1/enrolments` and `/v1/enrolments/signed`: one envelope sealed to
/// the TBS's `envelope` purpose key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedBody {
    /// The sealed envelope, base64url without padding (`SealedEnvelope`).
    pub envelope: String,
}

/// What the TBS says of a device's enrolment: the answer of `POST /v1/enrolments`,
/// `/v1/enrolments/signed` (`202`), `GET /v1/enrolments/{device}`, and the `202` of the
/// instructions route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentProgress {
    /// The device's tenant.
    pub tenant: String,
    /// The device's group.
    pub group: String,
    /// Where it stands, by its `status` member.
    #[serde(flatten)]
    pub stage: EnrolmentStage,
}

/// Where an enrolment stands (the `status` member and what goes with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum EnrolmentStage {
    /// Direct mode: an anchoring offer waits for the device's signature.
    Offered {
        /// The offer (its PSBT, the funding outpoint, the change script, the expiry)
        /// sealed under the device's instruction key, base64url (`SealedOffer`); only the
        /// device reads it.
        offer: String,
    },
    /// The offer lapsed unsigned; a new request gets a new offer.
    Expired {
        /// When it lapsed (Unix seconds).
        expired_at: u64,
    },
    /// Direct mode: the device's signed anchor was broadcast.
    Broadcast {
        /// The anchoring transaction.
        txid: String,
    },
    /// Batch mode: the device waits for the next batch.
    Queued,
    /// Batch mode: the device is in a batch whose root the TBS anchors.
    Batched(BatchPlace),
    /// The device's anchor is in the index (`GET /v1/enrolments/{device}` only).
    Confirmed {
        /// Direct mode: the device's own anchoring transaction.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        txid: Option<String>,
        /// Batch mode: the device's place in its batch.
        #[serde(flatten)]
        batch: Option<BatchPlace>,
        /// The height of the anchor's block.
        height: u32,
        /// Its confirmations at the index's tip.
        depth: u32,
    },
}

impl EnrolmentStage {
    /// Its `status` member (`offered`, `expired`, …), for people: a program matches on
    /// the variant.
    pub fn status(&self) -> &'static str {
        // The serde tag, spelled again for a `&str` without serializing; the tests check
        // that each spelling is the tag.
        match self {
            Self::Offered { .. } => "offered",
            Self::Expired { .. } => "expired",
            Self::Broadcast { .. } => "broadcast",
            Self::Queued => "queued",
            Self::Batched(_) => "batched",
            Self::Confirmed { .. } => "confirmed",
        }
    }
}

/// A batch-mode device's place in its batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPlace {
    /// The batch's sequence number.
    pub batch: u64,
    /// The device's position in it.
    pub index: u64,
    /// The batch root the TBS key anchors.
    pub root: Digest,
}

/// The `200` of `GET /v1/enrolments/{device}/instructions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstructionsAnswer {
    /// Always [`Ready::Ready`].
    pub status: Ready,
    /// The instructions' sequence: the group's revision (also sealed in them).
    pub sequence: u64,
    /// The instructions sealed under the device's instruction key, base64url without
    /// padding (`SealedInstructions`).
    pub instructions: String,
}

/// The `status` of [`InstructionsAnswer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    /// The instructions are there.
    Ready,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn round_trip(progress: &EnrolmentProgress, text: &str) {
        assert_eq!(serde_json::to_string(progress).unwrap(), text);
        let tag = format!(r#""status":"{}""#, progress.stage.status());
        assert!(text.contains(&tag), "{text}");
        let read: EnrolmentProgress = serde_json::from_str(text).unwrap();
        assert_eq!(&read, progress);
    }

    #[test]
    fn each_stage_reads_as_the_flat_object_the_tbs_documents() {
        let root = Digest::sha256(b"root");
        let progress = |stage| EnrolmentProgress {
            tenant: "acme".into(),
            group: "meters".into(),
            stage,
        };
        round_trip(
            &progress(EnrolmentStage::Offered {
                offer: "AQID".into(),
            }),
            r#"{"tenant":"acme","group":"meters","status":"offered","offer":"AQID"}"#,
        );
        round_trip(
            &progress(EnrolmentStage::Expired { expired_at: 9 }),
            r#"{"tenant":"acme","group":"meters","status":"expired","expired_at":9}"#,
        );
        round_trip(
            &progress(EnrolmentStage::Broadcast { txid: "ab".into() }),
            r#"{"tenant":"acme","group":"meters","status":"broadcast","txid":"ab"}"#,
        );
        round_trip(
            &progress(EnrolmentStage::Queued),
            r#"{"tenant":"acme","group":"meters","status":"queued"}"#,
        );
        round_trip(
            &progress(EnrolmentStage::Batched(BatchPlace {
                batch: 3,
                index: 1,
                root,
            })),
            &format!(
                r#"{{"tenant":"acme","group":"meters","status":"batched","batch":3,"index":1,"root":"{root}"}}"#
            ),
        );
        round_trip(
            &progress(EnrolmentStage::Confirmed {
                txid: Some("ab".into()),
                batch: None,
                height: 7,
                depth: 2,
            }),
            r#"{"tenant":"acme","group":"meters","status":"confirmed","txid":"ab","height":7,"depth":2}"#,
        );
        round_trip(
            &progress(EnrolmentStage::Confirmed {
                txid: None,
                batch: Some(BatchPlace {
                    batch: 3,
                    index: 1,
                    root,
                }),
                height: 7,
                depth: 2,
            }),
            &format!(
                r#"{{"tenant":"acme","group":"meters","status":"confirmed","batch":3,"index":1,"root":"{root}","height":7,"depth":2}}"#
            ),
        );
        let unknown = r#"{"tenant":"acme","group":"meters","status":"minted"}"#;
        assert!(serde_json::from_str::<EnrolmentProgress>(unknown).is_err());
        assert!(serde_json::from_str::<SealedBody>(r#"{"envelope":"x","more":1}"#).is_err());
    }
}
