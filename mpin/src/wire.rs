//! The login's messages as JSON, shared by the authentication server and the PAT.
//!
//! Points are their canonical compressed encodings and scalars their 48 big-endian bytes,
//! both as lowercase hex; an identity is its text (the D-TAs issue text identities).
//! Reading a message back ([`CommitRequest::commitment`], [`ChallengeAnswer::challenge`],
//! [`ProveRequest::proof`]) checks every point as [`G1::from_bytes`] does, so a server
//! never computes with a point off the subgroup.
//!
//! | step | request | answer |
//! |---|---|---|
//! | commit | [`CommitRequest`] `{"mpin_id", "day", "u"}` | [`ChallengeAnswer`] `{"login_id", "challenge", "expires_in"}` |
//! | prove | [`ProveRequest`] `{"login_id", "v"}` | the server's session answer |

use serde::{Deserialize, Serialize};

use crate::{Challenge, Commitment, Day, MpinError, MpinId, Proof, Scalar, G1};

/// Pass 1, client → server: who, the permit's day, and `U`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// The identity, as text.
    pub mpin_id: String,
    /// The day of the client's time permit (days since the Unix epoch).
    pub day: u32,
    /// `U`, hex.
    pub u: String,
}

/// Pass 1's answer, server → client: the challenge `y` and the handle of the pending
/// login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeAnswer {
    /// The server's handle of this login (opaque to the client).
    pub login_id: String,
    /// `y`, hex.
    pub challenge: String,
    /// Seconds the server waits for the proof.
    pub expires_in: u64,
}

/// Pass 2, client → server: the proof `V` for the pending login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProveRequest {
    /// The handle from [`ChallengeAnswer`].
    pub login_id: String,
    /// `V`, hex.
    pub v: String,
}

fn point(what: &'static str, text: &str) -> Result<G1, MpinError> {
    let bytes = hex::decode(text).map_err(|_| MpinError::Point(what))?;
    G1::from_bytes(&bytes)
}

impl CommitRequest {
    /// The message carrying `commitment`.
    pub fn new(commitment: &Commitment) -> Self {
        Self {
            mpin_id: String::from_utf8_lossy(commitment.id.as_bytes()).into_owned(),
            day: commitment.day.0,
            u: hex::encode(commitment.u.to_bytes()),
        }
    }

    /// The commitment it carries, every part checked.
    pub fn commitment(&self) -> Result<Commitment, MpinError> {
        Ok(Commitment {
            id: MpinId::new(self.mpin_id.as_bytes())?,
            day: Day(self.day),
            u: point("u is not hex", &self.u)?,
        })
    }
}

impl ChallengeAnswer {
    /// The message carrying `challenge` for the login `login_id`.
    pub fn new(login_id: String, challenge: &Challenge, expires_in: u64) -> Self {
        Self {
            login_id,
            challenge: hex::encode(&challenge.0.to_bytes()[..]),
            expires_in,
        }
    }

    /// The challenge it carries: a scalar in `1..r`.
    pub fn challenge(&self) -> Result<Challenge, MpinError> {
        let bytes = zeroize::Zeroizing::new(
            hex::decode(&self.challenge)
                .map_err(|_| MpinError::Scalar("the challenge is not hex"))?,
        );
        Scalar::from_bytes(&bytes).map(Challenge)
    }
}

impl ProveRequest {
    /// The message carrying `proof` for the login `login_id`.
    pub fn new(login_id: String, proof: &Proof) -> Self {
        Self {
            login_id,
            v: hex::encode(proof.0.to_bytes()),
        }
    }

    /// The proof it carries, checked.
    pub fn proof(&self) -> Result<Proof, MpinError> {
        point("v is not hex", &self.v).map(Proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ClientAwaitingChallenge, ClientSecret, MasterShare, Pin, ServerAwaitingProof, ServerSecret,
        TimePermit,
    };

    #[test]
    fn a_login_survives_the_wire_and_bad_points_do_not() {
        let mut rng = rand_core::OsRng;
        let authority = MasterShare::generate(&mut rng);
        let id = MpinId::new("0123abcd").unwrap();
        let today = Day(20_500);
        let secret = ClientSecret::combine(&[authority.client_share(&id).unwrap()]).unwrap();
        let permit =
            TimePermit::combine(&[authority.time_permit_share(&id, today).unwrap()]).unwrap();
        let server = ServerSecret::combine(&[authority.server_share()]).unwrap();
        let pin = Pin::new(42).unwrap();
        let token = secret.extract_pin(&id, pin).unwrap();

        let (client, commitment) =
            ClientAwaitingChallenge::start(&mut rng, &id, &token, pin, &permit).unwrap();
        let commit: CommitRequest =
            serde_json::from_str(&serde_json::to_string(&CommitRequest::new(&commitment)).unwrap())
                .unwrap();
        let (pending, challenge) =
            ServerAwaitingProof::challenge(&mut rng, commit.commitment().unwrap(), today).unwrap();
        let answer = ChallengeAnswer::new("l1".into(), &challenge, 60);
        let proof = client.prove(&answer.challenge().unwrap()).unwrap();
        let prove = ProveRequest::new("l1".into(), &proof);
        assert_eq!(
            pending.verify(&prove.proof().unwrap(), &server).unwrap().id,
            id
        );

        let mut bad = commit.clone();
        bad.u = "zz".into();
        assert!(matches!(bad.commitment(), Err(MpinError::Point(_))));
        bad.u = hex::encode([2u8; crate::points::G1_LEN]);
        assert!(matches!(bad.commitment(), Err(MpinError::Point(_))));
        bad = commit;
        bad.mpin_id = String::new();
        assert!(matches!(bad.commitment(), Err(MpinError::Identity(0))));
        let zero = ChallengeAnswer {
            challenge: "00".repeat(crate::points::SCALAR_LEN),
            ..answer
        };
        assert!(matches!(zero.challenge(), Err(MpinError::Scalar(_))));
        assert!(
            serde_json::from_str::<ProveRequest>(r#"{"login_id":"x","v":"00","w":1}"#).is_err()
        );
    }
}
