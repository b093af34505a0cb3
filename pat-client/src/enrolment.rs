//! Enrolment, one type per protocol state (`docs/enrolment.md`). Each transition consumes
//! its state, so no step can be skipped or run twice, and persists what it learnt before
//! it returns (before it sends, where the TBS must not see something the device could
//! forget).
//!
//! ```text
//!  Provisioned ──verify_tbs──► TbsVerified ──request──► Offered ──sign_and_send──► Waiting
//!                                   │                                                │ poll / wait
//!                                   ├── the TBS already has our anchor ──────────────┤
//!                                   └── batch mode: queued for the next batch ───────┤
//!                                                                                     ▼
//!                                                                 Enrolled ◄─► refresh
//! ```

use std::time::{Duration, Instant};

use milagro_anchor::anchor_offer::{AnchorOffer, OfferTerms};
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::envelope::{SealedInstructions, SealedOffer};
use milagro_anchor::keys::PublicKey;
use milagro_anchor::proof::VerifiedAnchor;
use milagro_anchor::purpose_keys::KeyPurpose;
use milagro_wire::tbs::enrolment::{
    EnrolmentProgress, EnrolmentStage, InstructionsAnswer, SealedBody,
};

use crate::error::{Error, Step};
use crate::http::{Answer, ServiceClient};
use crate::instructions::{accept_instructions, Pending};
use crate::sources::{check_registry, device_chain, registry_clients, verify_registry};
use crate::state::{Device, Progress, StoredInstructions, TbsRecord};

/// A provisioned device that has not yet checked its TBS (or restarted before it sent
/// its anchor: checking again is cheap, and a new request is answered with the same
/// offer).
#[derive(Debug)]
pub struct Provisioned {
    pub(crate) device: Box<Device>,
}

/// The TBS's certificate has the provisioned digest and its anchor verified by SPV.
#[derive(Debug)]
pub struct TbsVerified {
    device: Box<Device>,
    tbs_key: PublicKey,
    anchor: VerifiedAnchor,
}

/// The TBS offered an anchoring transaction and the device checked it.
#[derive(Debug)]
pub struct Offered {
    device: Box<Device>,
    tbs_key: PublicKey,
    offer: Box<AnchorOffer>,
}

/// What the TBS answered an enrolment request with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Requested {
    /// An offer to check and sign.
    Offered(Offered),
    /// The TBS already broadcast this device's anchor (the device lost `state.json` after
    /// sending it): wait for the instructions.
    AlreadyBroadcast(Waiting),
    /// The group enrols in batch mode: the TBS anchors the device's certificate under its
    /// next batch root; wait for the instructions.
    Queued(Waiting),
}

/// The device's signed anchor is stored and with the TBS, or the device is queued for a
/// batch; instructions come once the anchor is confirmed deep enough.
#[derive(Debug)]
pub struct Waiting {
    pub(crate) device: Box<Device>,
    pub(crate) tbs_key: PublicKey,
}

/// One look at the instructions.
#[derive(Debug)]
#[non_exhaustive]
pub enum Poll {
    /// Verified and stored.
    Ready(Enrolled),
    /// Not yet (the TBS's progress report).
    NotYet(Waiting, Pending),
}

/// The device holds verified instructions.
#[derive(Debug)]
pub struct Enrolled {
    pub(crate) device: Box<Device>,
    pub(crate) tbs_key: PublicKey,
    /// The same as `device.instructions`, which holds it for the state file.
    pub(crate) stored: Box<StoredInstructions>,
}

impl Provisioned {
    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Fetches the TBS's certificate and checks it: the provisioned digest, role `tbs`,
    /// status `active`, and its anchor by SPV against headers checked from the network's
    /// pinned checkpoint and against the device's sources; each other registry's
    /// certificate is checked the same way against its pin. Stores the verified
    /// certificate and the chain.
    pub fn verify_tbs(mut self, tbs: &ServiceClient) -> Result<TbsVerified, Error> {
        let chain = device_chain(tbs, &self.device)?;
        let (bc, anchor) =
            verify_registry(tbs, self.device.provisioning.tbs_digest, &chain.headers)?;
        // The other registries are asked only when a peer is looked up; a wrong pin is
        // better found now than at the first lookup.
        for (registry, digest) in registry_clients(tbs, &self.device.provisioning.sources)? {
            check_registry(&registry, digest, &chain.headers)?;
        }
        self.device.chain = Some(chain.seen);
        let tbs_key = *bc.public_key();
        // Sealing needs the certificate's envelope key; a certificate without one is
        // refused now rather than at the first envelope.
        bc.purpose_key(KeyPurpose::Envelope)
            .map_err(Error::TbsEnvelopeKey)?;
        self.device.tbs = Some(TbsRecord {
            bc,
            anchor_txid: anchor.txid(),
            anchor_height: anchor.height(),
        });
        self.device.save()?;
        Ok(TbsVerified {
            device: self.device,
            tbs_key,
            anchor,
        })
    }
}

impl TbsVerified {
    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The TBS's verified anchor (its depth is as of the headers just fetched).
    pub fn tbs_anchor(&self) -> &VerifiedAnchor {
        &self.anchor
    }

    /// Seals an enrolment request (certificate, instruction key, the maker's credential
    /// naming tenant and group, a fresh nonce, the time now, and the device key's proof of
    /// possession over all of them and the TBS key) to the TBS key, sends it, opens the
    /// offer it gets back (sealed under the device's instruction key) and checks it
    /// ([`OfferTerms::check`]: its key, its digest, the fee, the sealed funding outpoint and
    /// change script, the expiry). A TBS answering `429` or `503` is an error here
    /// ([`Self::request_patiently`] waits and asks again).
    pub fn request(self, tbs: &ServiceClient) -> Result<Requested, Error> {
        self.request_patiently(tbs, Duration::ZERO)
    }

    /// [`Self::request`], but while the TBS answers `429` or `503` with `Retry-After` (a
    /// rate limit, or no pool coin free yet), waits as told and asks again with a fresh
    /// request, for at most `patience`.
    pub fn request_patiently(
        mut self,
        tbs: &ServiceClient,
        patience: Duration,
    ) -> Result<Requested, Error> {
        let step = Step::RequestEnrolment;
        let rng = &mut rand_core::OsRng;
        let credential = self
            .device
            .credential
            .clone()
            .ok_or_else(|| Error::NoCredential(self.device.dir.clone()))?;
        let envelope_key = envelope_key(&self.device)?;
        let started = Instant::now();
        let answer = loop {
            let request = EnrolmentRequest::new(
                rng,
                &self.device.key,
                self.device.bc.clone(),
                self.device.instruction_key.clone(),
                credential.clone(),
                &envelope_key,
                unix_now(),
            )?;
            let body = SealedBody {
                envelope: request.seal(rng, &envelope_key)?.to_base64(),
            };
            match tbs.post(step, "/v1/enrolments", &body) {
                Err(Error::Server {
                    status: 429 | 503,
                    retry_after_secs: Some(wait),
                    ..
                }) if started.elapsed() + Duration::from_secs(wait) <= patience => {
                    std::thread::sleep(Duration::from_secs(wait.max(1)));
                }
                answer => break answer?,
            }
        };
        let progress: EnrolmentProgress = answer.read(step)?;
        match progress.stage {
            EnrolmentStage::Offered { offer } => {
                // Sealed under our instruction key: nobody else read it, and a PSBT swapped
                // on the way does not open or does not match the terms sealed with it.
                let sealed = SealedOffer::from_base64(&offer)
                    .map_err(|e| Error::unexpected(step, format!("offer: {e}")))?;
                let offer = OfferTerms::open_checked(
                    &self.device.instruction_key,
                    &self.tbs_key,
                    &self.device.bc,
                    &sealed,
                    unix_now(),
                )?;
                Ok(Requested::Offered(Offered {
                    device: self.device,
                    tbs_key: self.tbs_key,
                    offer: Box::new(offer),
                }))
            }
            EnrolmentStage::Broadcast { txid }
            | EnrolmentStage::Confirmed {
                txid: Some(txid), ..
            } => {
                let txid = txid
                    .parse()
                    .map_err(|e| Error::unexpected(step, format!("txid: {e}")))?;
                self.device.progress = Some(Progress::Direct {
                    txid,
                    tx: None,
                    funding: None,
                });
                self.device.save()?;
                Ok(Requested::AlreadyBroadcast(Waiting {
                    device: self.device,
                    tbs_key: self.tbs_key,
                }))
            }
            EnrolmentStage::Queued
            | EnrolmentStage::Batched(_)
            | EnrolmentStage::Confirmed { batch: Some(_), .. } => {
                self.device.progress = Some(Progress::Batch);
                self.device.save()?;
                Ok(Requested::Queued(Waiting {
                    device: self.device,
                    tbs_key: self.tbs_key,
                }))
            }
            other => Err(Error::unexpected(
                step,
                format!("status {:?}", other.status()),
            )),
        }
    }
}

impl Offered {
    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The checked offer.
    pub fn offer(&self) -> &AnchorOffer {
        &self.offer
    }

    /// Signs the anchoring transaction with the device key (its own signature goes on
    /// chain), stores it, then sends it sealed to the TBS, which broadcasts it.
    pub fn sign_and_send(mut self, tbs: &ServiceClient) -> Result<Waiting, Error> {
        let tx = self.offer.sign(&self.device.key)?;
        let txid = tx.compute_txid();
        // Stored first: a crash after this line resumes at `Waiting` and sends it again.
        self.device.progress = Some(Progress::Direct {
            txid,
            tx: Some(tx.clone()),
            funding: Some(self.offer.funding_value()),
        });
        self.device.save()?;
        let mut broadcast = Waiting {
            device: self.device,
            tbs_key: self.tbs_key,
        };
        broadcast.send_signed(tbs, tx)?;
        Ok(broadcast)
    }
}

impl Waiting {
    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The device's anchoring transaction (for a batch member, its batch's, once known).
    pub fn txid(&self) -> Option<bitcoin::Txid> {
        self.device.anchor_txid()
    }

    fn send_signed(&mut self, tbs: &ServiceClient, tx: bitcoin::Transaction) -> Result<(), Error> {
        let step = Step::SendSignedAnchor;
        let txid = tx.compute_txid();
        let signed = SignedAnchor {
            device: self.device.public_key(),
            tx,
        };
        let body = SealedBody {
            envelope: signed
                .seal(&mut rand_core::OsRng, &envelope_key(&self.device)?)?
                .to_base64(),
        };
        let answer = match tbs.post(step, "/v1/enrolments/signed", &body) {
            Err(Error::Server { status: 410, .. }) => return Err(self.forget_lapsed_offer()),
            answer => answer?,
        };
        let progress: EnrolmentProgress = answer.read(step)?;
        let reported = match progress.stage {
            EnrolmentStage::Broadcast { txid }
            | EnrolmentStage::Confirmed {
                txid: Some(txid), ..
            } => txid,
            other => {
                return Err(Error::unexpected(
                    step,
                    format!("status {:?} without a txid", other.status()),
                ))
            }
        };
        if reported != txid.to_string() {
            return Err(Error::unexpected(
                step,
                format!("the tbs broadcast {reported}, the device signed {txid}"),
            ));
        }
        Ok(())
    }

    /// Asks once for the instructions. When the TBS still has only the offer (the device
    /// stored its signature but stopped before the TBS got it), sends the signature again.
    pub fn poll(mut self, tbs: &ServiceClient) -> Result<Poll, Error> {
        let step = Step::FetchInstructions;
        let answer = tbs.get(step, &instructions_path(&self.device.public_key()))?;
        if answer.status != 200 {
            let pending = Pending::from_answer(&answer)?;
            if pending.status == "expired" {
                return Err(self.forget_lapsed_offer());
            }
            if pending.status == "offered" {
                if let Some(tx) = self.device.signed_anchor() {
                    self.send_signed(tbs, tx.clone())?;
                }
            }
            return Ok(Poll::NotYet(self, pending));
        }
        let sealed = sealed_instructions(&answer)?;
        let accepted = accept_instructions(&self.device, &self.tbs_key, tbs, &sealed)?;
        if let (Some(Progress::Direct { tx, .. }), Some(device_tx)) =
            (self.device.progress.as_mut(), accepted.device_tx)
        {
            tx.get_or_insert(device_tx);
        }
        self.device.instructions = Some(accepted.stored.clone());
        self.device.chain = Some(accepted.chain);
        self.device.save()?;
        Ok(Poll::Ready(Enrolled {
            device: self.device,
            tbs_key: self.tbs_key,
            stored: Box::new(accepted.stored),
        }))
    }

    /// The TBS let this device's offer lapse: its signature of that offer will never be
    /// broadcast. Forgets it (the device is back at [`Provisioned`], and a new request
    /// gets a new offer) and says so.
    fn forget_lapsed_offer(&mut self) -> Error {
        self.device.progress = None;
        match self.device.save() {
            Ok(()) => Error::OfferExpired,
            Err(error) => error,
        }
    }

    /// Polls every `interval` until the instructions are ready, at most `timeout`;
    /// `on_pending` sees each progress report.
    pub fn wait(
        self,
        tbs: &ServiceClient,
        timeout: Duration,
        interval: Duration,
        mut on_pending: impl FnMut(&Pending),
    ) -> Result<Enrolled, Error> {
        let started = Instant::now();
        let mut waiting = self;
        loop {
            match waiting.poll(tbs)? {
                Poll::Ready(enrolled) => return Ok(enrolled),
                Poll::NotYet(broadcast, pending) => {
                    on_pending(&pending);
                    if started.elapsed() + interval > timeout {
                        return Err(Error::Timeout {
                            step: Step::FetchInstructions,
                            waited_secs: started.elapsed().as_secs(),
                            last_status: pending.status,
                        });
                    }
                    std::thread::sleep(interval);
                    waiting = broadcast;
                }
            }
        }
    }
}

impl Enrolled {
    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The stored, verified instructions.
    pub fn instructions(&self) -> &StoredInstructions {
        &self.stored
    }
}

/// `/v1/enrolments/{device}/instructions`
pub(crate) fn instructions_path(device: &PublicKey) -> String {
    format!("/v1/enrolments/{device}/instructions")
}

/// The sealed instructions of a `200` answer.
pub(crate) fn sealed_instructions(answer: &Answer) -> Result<SealedInstructions, Error> {
    let step = Step::FetchInstructions;
    let body: InstructionsAnswer = answer.read(step)?;
    let sealed = SealedInstructions::from_base64(&body.instructions)
        .map_err(|e| Error::unexpected(step, format!("instructions: {e}")))?;
    if body.sequence != sealed.sequence() {
        return Err(Error::unexpected(
            step,
            "the sequence does not match the sealed one",
        ));
    }
    Ok(sealed)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The key the device seals to: the `envelope` key the TBS's verified certificate lists,
/// never its anchored key (ADR 0013).
fn envelope_key(device: &Device) -> Result<PublicKey, Error> {
    let tbs = device
        .tbs
        .as_ref()
        .ok_or_else(|| Error::NotReady("the tbs certificate is not verified yet".into()))?;
    tbs.bc
        .purpose_key(KeyPurpose::Envelope)
        .copied()
        .map_err(Error::TbsEnvelopeKey)
}
