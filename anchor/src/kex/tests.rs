//! Both protocols, both sides: agreement, the pair key, parties from real anchoring
//! transactions, redacted output; and the helpers the other key-agreement tests share.

/// A random source that hands out scripted bytes, so tests and vectors fix every choice.
pub(crate) struct ScriptedRng(Vec<u8>);

impl ScriptedRng {
    pub(crate) fn new(chunks: &[[u8; 32]]) -> Self {
        Self(chunks.concat())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl rand_core::RngCore for ScriptedRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for ScriptedRng {}

use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, FeeRate, OutPoint, Txid};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::anchor_tx::{anchor_nonce, build_anchor_tx, FundingUtxo};
use crate::digest::Digest;
use crate::keys::SecretKey;
use crate::nonce::NonceSecret;
use crate::payload::{Payload, RecordKind};
use crate::record::TxRecord;

/// A party whose anchoring signature is over a made-up sighash, at a made-up input.
pub(crate) fn party(seed: u8) -> LocalParty {
    let key = SecretKey::from_bytes(&[seed; 32]).unwrap();
    let sighash = [seed ^ 0x5a; 32];
    let signature = key.sign_prehash(&sighash);
    let nonce = NonceSecret::recompute(&key, &sighash, &signature).unwrap();
    LocalParty::new(
        AnchorRef::new(Txid::from_byte_array([seed; 32]), u32::from(seed)),
        nonce,
    )
}

pub(crate) fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn context(bytes: &[u8]) -> SessionContext {
    SessionContext::new(bytes).unwrap()
}

/// One side of a handshake: the party, who it believes the peer is, and its context.
pub(crate) type Side<'a> = (&'a LocalParty, &'a Party, &'a SessionContext);

/// One whole handshake of `protocol`, passing every message (0 hello, 1 reply, 2 finished)
/// through its wire form and `in_transit`; the honest parties compute everything else.
pub(crate) fn handshake(
    protocol: Protocol,
    seed: u8,
    (initiator, initiator_sees, initiator_context): Side<'_>,
    (responder, responder_sees, responder_context): Side<'_>,
    in_transit: &dyn Fn(usize, &mut Vec<u8>),
) -> Result<(Established, Established), KexError> {
    let mut rng = rng(seed);
    let carry = |index: usize, bytes: &[u8]| {
        let mut bytes = bytes.to_vec();
        in_transit(index, &mut bytes);
        bytes
    };
    let (i, r) = (
        (initiator, initiator_sees, initiator_context),
        (responder, responder_sees),
    );
    match protocol {
        Protocol::EcdhV1 => {
            let (state, hello) = ecdh::Initiator::start(&mut rng, i.0, i.1, i.2)?;
            let hello = ecdh::Hello::from_bytes(&carry(0, &hello.to_bytes()))?;
            let (theirs, reply) =
                ecdh::Responder::respond(&mut rng, r.0, r.1, responder_context, &hello)?;
            let reply = ecdh::Reply::from_bytes(&carry(1, &reply.to_bytes()))?;
            let (mine, finished) = state.finish(&reply)?;
            let finished = Finished::from_bytes(&carry(2, &finished.to_bytes()))?;
            Ok((mine, theirs.finish(&finished)?))
        }
        Protocol::YakV1 => {
            let (state, hello) = yak::Initiator::start(&mut rng, i.0, i.1, i.2)?;
            let hello = yak::Hello::from_bytes(&carry(0, &hello.to_bytes()))?;
            let (theirs, reply) =
                yak::Responder::respond(&mut rng, r.0, r.1, responder_context, &hello)?;
            let reply = yak::Reply::from_bytes(&carry(1, &reply.to_bytes()))?;
            let (mine, finished) = state.finish(&reply)?;
            let finished = Finished::from_bytes(&carry(2, &finished.to_bytes()))?;
            Ok((mine, theirs.finish(&finished)?))
        }
    }
}

pub(crate) fn run_ecdh(
    seed: u8,
    initiator: Side<'_>,
    responder: Side<'_>,
) -> Result<(Established, Established), KexError> {
    handshake(Protocol::EcdhV1, seed, initiator, responder, &|_, _| {})
}

pub(crate) fn run_yak(
    seed: u8,
    initiator: Side<'_>,
    responder: Side<'_>,
) -> Result<(Established, Established), KexError> {
    handshake(Protocol::YakV1, seed, initiator, responder, &|_, _| {})
}

fn assert_agreed(protocol: Protocol, (mine, theirs): &(Established, Established)) {
    assert_eq!(mine.key().as_bytes(), theirs.key().as_bytes());
    assert_eq!(mine.session_id(), theirs.session_id());
    assert_eq!((mine.protocol(), theirs.protocol()), (protocol, protocol));
    assert_eq!(
        (mine.role(), theirs.role()),
        (Role::Initiator, Role::Responder)
    );
    assert_eq!((mine.local(), mine.peer()), (theirs.peer(), theirs.local()));
    assert_ne!(mine.key().as_bytes(), &[0; 32]);
}

#[test]
fn both_protocols_agree_on_both_sides_with_a_fresh_key_per_session() {
    let (alice, bob) = (party(1), party(2));
    let ctx = context(b"exporter");
    let a = (&alice, &bob.party(), &ctx);
    let b = (&bob, &alice.party(), &ctx);
    let ecdh_1 = run_ecdh(1, a, b).unwrap();
    let ecdh_2 = run_ecdh(2, a, b).unwrap();
    let yak_1 = run_yak(1, a, b).unwrap();
    let yak_2 = run_yak(2, a, b).unwrap();
    assert_agreed(Protocol::EcdhV1, &ecdh_1);
    assert_agreed(Protocol::EcdhV1, &ecdh_2);
    assert_agreed(Protocol::YakV1, &yak_1);
    assert_agreed(Protocol::YakV1, &yak_2);
    let keys = [&ecdh_1, &ecdh_2, &yak_1, &yak_2].map(|s| *s.0.key().as_bytes());
    let ids = [&ecdh_1, &ecdh_2, &yak_1, &yak_2].map(|s| s.0.session_id());
    for i in 0..4 {
        for j in 0..i {
            assert_ne!(keys[i], keys[j]);
            assert_ne!(ids[i], ids[j]);
        }
    }
}

#[test]
fn the_pair_key_is_symmetric_and_bound_to_the_pair_and_context() {
    let (alice, bob, carol) = (party(1), party(2), party(3));
    let ctx = context(b"purpose");
    let ab = ecdh::agree(&alice, &bob.party(), &ctx).unwrap();
    let ba = ecdh::agree(&bob, &alice.party(), &ctx).unwrap();
    assert_eq!(ab.as_bytes(), ba.as_bytes());
    let ac = ecdh::agree(&alice, &carol.party(), &ctx).unwrap();
    assert_ne!(ab.as_bytes(), ac.as_bytes());
    let other = ecdh::agree(&alice, &bob.party(), &context(b"other")).unwrap();
    assert_ne!(ab.as_bytes(), other.as_bytes());
    // The same nonce under another anchor is another identity, hence another key.
    let moved = Party::new(
        AnchorRef::new(bob.party().anchor().txid(), 9),
        bob.party().nonce_point(),
    );
    let moved = ecdh::agree(&alice, &moved, &ctx).unwrap();
    assert_ne!(ab.as_bytes(), moved.as_bytes());
}

#[test]
fn a_party_cannot_agree_with_itself() {
    let alice = party(1);
    let me = alice.party();
    let ctx = SessionContext::empty();
    let mut rng = rng(1);
    assert_eq!(
        ecdh::agree(&alice, &me, &ctx).unwrap_err(),
        KexError::SelfSession
    );
    assert_eq!(
        ecdh::Initiator::start(&mut rng, &alice, &me, &ctx).unwrap_err(),
        KexError::SelfSession
    );
    assert_eq!(
        yak::Initiator::start(&mut rng, &alice, &me, &ctx).unwrap_err(),
        KexError::SelfSession
    );
    let copied = Party::new(AnchorRef::new(Txid::all_zeros(), 0), me.nonce_point());
    assert_eq!(
        ecdh::agree(&alice, &copied, &ctx).unwrap_err(),
        KexError::SelfSession
    );
    assert!(SessionContext::new(vec![0; 1025]).is_err());
    assert!(SessionContext::new(vec![0; 1024]).is_ok());
}

#[test]
fn real_anchoring_transactions_give_the_parties_and_their_nonces() {
    let anchor = |seed: u8| {
        let key = SecretKey::from_bytes(&[seed; 32]).unwrap();
        let funding = FundingUtxo {
            outpoint: OutPoint::new(Txid::from_byte_array([seed; 32]), 1),
            value: Amount::from_sat(10_000),
        };
        let payload = Payload::new(RecordKind::BirthCertificate, Digest::sha256(&[seed]));
        let tx = build_anchor_tx(
            &key,
            &funding,
            &payload,
            FeeRate::from_sat_per_vb_u32(2),
            None,
        )
        .unwrap()
        .tx;
        let nonce = anchor_nonce(&key, &tx, funding.value).unwrap();
        (TxRecord::from_own_tx(&tx, funding.value).unwrap(), nonce)
    };
    let (alice_record, alice_nonce) = anchor(1);
    let (bob_record, bob_nonce) = anchor(2);
    let (_, wrong_nonce) = anchor(3);
    assert_eq!(
        LocalParty::from_record(&alice_record, wrong_nonce).unwrap_err(),
        KexError::NonceMismatch
    );
    let alice = LocalParty::from_record(&alice_record, alice_nonce).unwrap();
    let bob = LocalParty::from_record(&bob_record, bob_nonce).unwrap();
    assert_eq!(alice.party(), Party::from_record(&alice_record).unwrap());
    assert_eq!(alice.party().anchor(), AnchorRef::new(alice_record.txid, 0));
    let ctx = SessionContext::empty();
    let alice_seen = Party::from_record(&alice_record).unwrap();
    let bob_seen = Party::from_record(&bob_record).unwrap();
    let sessions = run_yak(1, (&alice, &bob_seen, &ctx), (&bob, &alice_seen, &ctx)).unwrap();
    assert_agreed(Protocol::YakV1, &sessions);
}

#[test]
fn nothing_secret_is_printed() {
    let (alice, bob) = (party(1), party(2));
    let ctx = SessionContext::empty();
    let (mine, _) = run_yak(
        1,
        (&alice, &bob.party(), &ctx),
        (&bob, &alice.party(), &ctx),
    )
    .unwrap();
    let key = hex::encode(mine.key().as_bytes());
    let k = hex::encode(alice.nonce_scalar().to_bytes());
    let mut rng = rng(1);
    let (state, _) = yak::Initiator::start(&mut rng, &alice, &bob.party(), &ctx).unwrap();
    for text in [
        format!("{mine:?}"),
        format!("{alice:?}"),
        format!("{state:?}"),
    ] {
        assert!(!text.contains(&key) && !text.contains(&k), "{text}");
    }
}
