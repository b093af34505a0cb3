//! Properties: decoders never panic, both sides agree for any keys and context, and any
//! change to any message in transit makes the handshake fail.

use proptest::prelude::*;

use super::tests::{handshake, party};
use super::*;
use crate::keys::SecretKey;
use crate::nonce::NonceSecret;

/// One honest handshake between `initiator` and `responder`, with messages passing through
/// `in_transit`.
fn handshake_through(
    protocol: Protocol,
    (initiator, responder): (&LocalParty, &LocalParty),
    context: &SessionContext,
    seed: u8,
    in_transit: &dyn Fn(usize, &mut Vec<u8>),
) -> Result<(Established, Established), KexError> {
    let (i_sees, r_sees) = (responder.party(), initiator.party());
    handshake(
        protocol,
        seed,
        (initiator, &i_sees, context),
        (responder, &r_sees, context),
        in_transit,
    )
}

/// Wire lengths of hello, reply and finished.
fn lengths(protocol: Protocol) -> [usize; 3] {
    match protocol {
        Protocol::EcdhV1 => [ecdh::Hello::LEN, ecdh::Reply::LEN, Finished::LEN],
        Protocol::YakV1 => [yak::Hello::LEN, yak::Reply::LEN, Finished::LEN],
    }
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::EcdhV1), Just(Protocol::YakV1)]
}

/// A party with a random key, sighash and anchor.
fn any_party() -> impl Strategy<Value = LocalParty> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<u32>(),
    )
        .prop_filter_map("not a valid secret key", |(key, sighash, txid, input)| {
            let key = SecretKey::from_bytes(&key).ok()?;
            let signature = key.sign_prehash(&sighash);
            let nonce = NonceSecret::recompute(&key, &sighash, &signature).ok()?;
            let txid = <bitcoin::Txid as bitcoin::hashes::Hash>::from_byte_array(txid);
            Some(LocalParty::new(AnchorRef::new(txid, input), nonce))
        })
}

#[test]
fn every_single_bit_flip_in_any_message_fails_the_handshake() {
    let (alice, bob) = (party(1), party(2));
    let ctx = SessionContext::new(*b"x").unwrap();
    for protocol in [Protocol::EcdhV1, Protocol::YakV1] {
        handshake_through(protocol, (&alice, &bob), &ctx, 5, &|_, _| {}).unwrap();
        for (message, len) in lengths(protocol).into_iter().enumerate() {
            for byte in 0..len {
                for bit in [0x01u8, 0x80] {
                    let flip = |index: usize, bytes: &mut Vec<u8>| {
                        if index == message {
                            bytes[byte] ^= bit;
                        }
                    };
                    let result = handshake_through(protocol, (&alice, &bob), &ctx, 5, &flip);
                    assert!(result.is_err(), "{protocol}: message {message} byte {byte}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = ecdh::Hello::from_bytes(&bytes);
        let _ = ecdh::Reply::from_bytes(&bytes);
        let _ = yak::Hello::from_bytes(&bytes);
        let _ = yak::Reply::from_bytes(&bytes);
        let _ = Finished::from_bytes(&bytes);
    }

    #[test]
    fn decoders_never_panic_behind_a_valid_type_byte(
        kind in 0x11u8..=0x23,
        rest in prop::collection::vec(any::<u8>(), 0..140),
    ) {
        let bytes = [&[kind][..], &rest].concat();
        let _ = ecdh::Hello::from_bytes(&bytes);
        let _ = ecdh::Reply::from_bytes(&bytes);
        let _ = yak::Hello::from_bytes(&bytes);
        let _ = yak::Reply::from_bytes(&bytes);
        let _ = Finished::from_bytes(&bytes);
    }

    #[test]
    fn both_sides_agree_for_any_parties_and_context(
        protocol in protocol(),
        alice in any_party(),
        bob in any_party(),
        context in prop::collection::vec(any::<u8>(), 0..64),
        seed in any::<u8>(),
    ) {
        prop_assume!(!alice.party().overlaps(&bob.party()));
        let ctx = SessionContext::new(context).unwrap();
        let (mine, theirs) =
            handshake_through(protocol, (&alice, &bob), &ctx, seed, &|_, _| {}).unwrap();
        prop_assert_eq!(mine.key().as_bytes(), theirs.key().as_bytes());
        prop_assert_eq!(mine.session_id(), theirs.session_id());
        let ab = ecdh::agree(&alice, &bob.party(), &ctx).unwrap();
        let ba = ecdh::agree(&bob, &alice.party(), &ctx).unwrap();
        prop_assert_eq!(ab.as_bytes(), ba.as_bytes());
    }

    #[test]
    fn any_change_to_any_message_in_transit_fails(
        protocol in protocol(),
        message in 0usize..3,
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        seed in any::<u8>(),
    ) {
        let (alice, bob) = (party(3), party(4));
        let ctx = SessionContext::empty();
        let byte = position.index(lengths(protocol)[message]);
        let tamper = |index: usize, bytes: &mut Vec<u8>| {
            if index == message {
                bytes[byte] ^= mask;
            }
        };
        prop_assert!(handshake_through(protocol, (&alice, &bob), &ctx, seed, &tamper).is_err());
    }

    #[test]
    fn a_message_cut_short_or_extended_is_refused(
        protocol in protocol(),
        message in 0usize..3,
        extra in prop::collection::vec(any::<u8>(), 1..4),
        cut in 1usize..10,
    ) {
        let (alice, bob) = (party(5), party(6));
        let ctx = SessionContext::empty();
        let longer = |index: usize, bytes: &mut Vec<u8>| {
            if index == message {
                bytes.extend_from_slice(&extra);
            }
        };
        let shorter = |index: usize, bytes: &mut Vec<u8>| {
            if index == message {
                bytes.truncate(bytes.len() - cut);
            }
        };
        let is_malformed = |r: Result<_, KexError>| matches!(r, Err(KexError::Malformed { .. }));
        prop_assert!(is_malformed(handshake_through(protocol, (&alice, &bob), &ctx, 1, &longer)));
        prop_assert!(is_malformed(handshake_through(protocol, (&alice, &bob), &ctx, 1, &shorter)));
    }
}
