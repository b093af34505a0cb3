//! Properties: decoders never panic on any input, sealed messages always round-trip, and an
//! altered wire form never opens.

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::keys::SecretKey;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

fn purpose() -> impl Strategy<Value = Purpose> {
    prop_oneof![
        Just(Purpose::EnrolmentRequest),
        Just(Purpose::SignedAnchorTx),
        Just(Purpose::Instructions),
        Just(Purpose::Message),
    ]
}

fn sender() -> impl Strategy<Value = SenderId> {
    prop::collection::vec(any::<u8>(), 1..=255).prop_map(|bytes| SenderId::new(bytes).unwrap())
}

/// Random bytes, and random bytes behind a valid header so decoding gets past the first
/// fields.
fn wire_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (
            1u8..=4,
            1u8..=40,
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(purpose, len, rest)| {
                let mut bytes = vec![1, purpose, len];
                bytes.extend(rest);
                bytes
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn decoding_any_bytes_never_panics(bytes in wire_like()) {
        let (tbs, pat) = (key(1), key(2).public_key());
        // Whatever decodes is canonical (re-encodes to the same bytes), and does not open.
        if let Ok(envelope) = SealedEnvelope::from_bytes(&bytes) {
            prop_assert_eq!(envelope.to_bytes(), bytes.clone());
            prop_assert!(open(&tbs, envelope.purpose(), &envelope).is_err());
        }
        if let Ok(sealed) = SealedInstructions::from_bytes(&bytes) {
            prop_assert_eq!(sealed.to_bytes(), bytes.clone());
            let k = InstructionKey::from_bytes(&[0; 16]);
            prop_assert!(open_instructions(&k, &tbs.public_key(), &pat, &sealed).is_err());
        }
    }

    #[test]
    fn decoding_any_text_never_panics(text in "\\PC{0,200}", url in "[A-Za-z0-9_-]{0,200}") {
        for text in [&text, &url] {
            let _ = SealedEnvelope::from_base64(text);
            let _ = SealedInstructions::from_base64(text);
            let _ = InstructionKey::from_base64(text);
            let _ = InstructionKey::from_hex(text);
        }
    }

    #[test]
    fn any_plaintext_round_trips_through_an_envelope(
        seed in any::<[u8; 32]>(),
        purpose in purpose(),
        sender in sender(),
        plaintext in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let tbs = key(1);
        let mut rng = ChaCha20Rng::from_seed(seed);
        let sealed = seal(&mut rng, &tbs.public_key(), purpose, &sender, &plaintext).unwrap();
        let read = SealedEnvelope::from_base64(&sealed.to_base64()).unwrap();
        prop_assert_eq!(&read, &sealed);
        let opened = open(&tbs, purpose, &read).unwrap();
        prop_assert_eq!(opened.sender, sender);
        prop_assert_eq!(&opened.plaintext[..], &plaintext[..]);
    }

    #[test]
    fn any_plaintext_round_trips_as_instructions(
        seed in any::<[u8; 32]>(),
        key_bytes in any::<[u8; 16]>(),
        sequence in any::<u64>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let (tbs, pat) = (key(1).public_key(), key(2).public_key());
        let k = InstructionKey::from_bytes(&key_bytes);
        let mut rng = ChaCha20Rng::from_seed(seed);
        let sealed = seal_instructions(&mut rng, &k, &tbs, &pat, sequence, &plaintext).unwrap();
        let read = SealedInstructions::from_base64(&sealed.to_base64()).unwrap();
        let (seq, opened) = open_instructions(&k, &tbs, &pat, &read).unwrap();
        prop_assert_eq!(seq, sequence);
        prop_assert_eq!(&opened[..], &plaintext[..]);
    }

    #[test]
    fn an_altered_envelope_never_opens(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in 0usize..3,
        append in prop::collection::vec(any::<u8>(), 0..3),
    ) {
        let tbs = key(1);
        let sender = SenderId::new(*b"pat-1").unwrap();
        let sealed = seal(
            &mut ChaCha20Rng::from_seed([7; 32]),
            &tbs.public_key(),
            Purpose::Message,
            &sender,
            &plaintext,
        )
        .unwrap();
        let original = sealed.to_bytes();
        let mut bytes = original.clone();
        for (index, mask) in edits {
            let at = index.index(bytes.len());
            bytes[at] ^= mask;
        }
        bytes.truncate(bytes.len() - cut);
        bytes.extend(append);
        prop_assume!(bytes != original);
        let outcome = SealedEnvelope::from_bytes(&bytes)
            .and_then(|e| open(&tbs, Purpose::Message, &e));
        prop_assert!(outcome.is_err());
    }
}
