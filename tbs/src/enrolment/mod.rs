//! Device enrolment, direct mode: the TBS side of `docs/enrolment.md`.
//!
//! A device's sealed [`EnrolmentRequest`] is opened and checked (self-signed `pat`
//! certificate, recent, an existing group), the TBS wallet signs — but does not broadcast —
//! a small payment to the device's key, and the device is offered the PSBT of the
//! anchoring transaction spending it ([`AnchorOffer`]). When the device sends its signed
//! transaction back, the TBS checks it is the offer signed by the device and broadcasts the
//! payment and the anchor together. Every transition is written (one sled transaction)
//! before its side effect, so a crash leaves a row the device's retry or the TBS resumes
//! from; the anchoring transaction is fixed once signed, so nothing is anchored twice.
//!
//! Not here yet (see `docs/enrolment.md`): instructions once the anchor confirms,
//! re-broadcast after a reorg, batch mode, the audit log.

mod store;

pub use store::{Enrolment, EnrolmentState, EnrolmentStore, EnrolmentStoreError, Replay};
