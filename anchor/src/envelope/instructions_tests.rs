//! Instructions sealed under a PAT's key: what opens, what is refused, and the replay rule
//! left to the caller.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::keys::SecretKey;

fn public(byte: u8) -> PublicKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap().public_key()
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

const PLAINTEXT: &[u8] = b"{\"idp\":\"https://idp.example\",\"dtas\":[]}";

/// The PAT's key, the TBS's and PAT's public keys, and instructions number 7.
fn instructions() -> (InstructionKey, PublicKey, PublicKey, SealedInstructions) {
    let key = InstructionKey::from_bytes(&[0x42; 16]);
    let (tbs, pat) = (public(1), public(2));
    let sealed = seal_instructions(&mut rng(), &key, &tbs, &pat, 7, PLAINTEXT).unwrap();
    (key, tbs, pat, sealed)
}

#[test]
fn instructions_open_with_the_key_for_the_same_tbs_and_pat() {
    let (key, tbs, pat, sealed) = instructions();
    assert_eq!(sealed.sequence(), 7);
    let (sequence, plaintext) = open_instructions(&key, &tbs, &pat, &sealed).unwrap();
    assert_eq!(sequence, 7);
    assert_eq!(&plaintext[..], PLAINTEXT);
}

#[test]
fn the_wire_form_is_version_sequence_nonce_ciphertext() {
    let (_, _, _, sealed) = instructions();
    let bytes = sealed.to_bytes();
    assert_eq!(bytes[0], 1, "version");
    assert_eq!(bytes[1..9], 7u64.to_be_bytes());
    assert_eq!(bytes.len(), 1 + 8 + 12 + PLAINTEXT.len() + 16);
    assert_eq!(SealedInstructions::from_bytes(&bytes).unwrap(), sealed);
    let text = sealed.to_base64();
    assert_eq!(sealed.to_string(), text);
    assert_eq!(text.parse::<SealedInstructions>().unwrap(), sealed);
    let json = serde_json::to_string(&sealed).unwrap();
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(
        serde_json::from_str::<SealedInstructions>(&json).unwrap(),
        sealed
    );
}

#[test]
fn a_wrong_key_tbs_pat_or_order_cannot_open_them() {
    let (key, tbs, pat, sealed) = instructions();
    let other = public(3);
    let cases = [
        (
            "another key",
            InstructionKey::from_bytes(&[0x43; 16]),
            tbs,
            pat,
        ),
        ("another tbs", key.clone(), other, pat),
        ("another pat", key.clone(), tbs, other),
        ("tbs and pat swapped", key.clone(), pat, tbs),
    ];
    for (name, key, tbs, pat) in cases {
        assert_eq!(
            open_instructions(&key, &tbs, &pat, &sealed).unwrap_err(),
            EnvelopeError::Decrypt,
            "{name}"
        );
    }
}

#[test]
fn the_sequence_number_cannot_be_raised_or_lowered_in_transit() {
    let (key, tbs, pat, sealed) = instructions();
    for forged in [0u64, 6, 8, u64::MAX] {
        let mut bytes = sealed.to_bytes();
        bytes[1..9].copy_from_slice(&forged.to_be_bytes());
        let altered = SealedInstructions::from_bytes(&bytes).unwrap();
        assert_eq!(altered.sequence(), forged);
        assert_eq!(
            open_instructions(&key, &tbs, &pat, &altered).unwrap_err(),
            EnvelopeError::Decrypt,
            "sequence {forged}"
        );
    }
}

#[test]
fn every_byte_flipped_anywhere_is_refused_never_opened() {
    let (key, tbs, pat, sealed) = instructions();
    let bytes = sealed.to_bytes();
    for at in 0..bytes.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut altered = bytes.clone();
            altered[at] ^= mask;
            let outcome = SealedInstructions::from_bytes(&altered)
                .and_then(|s| open_instructions(&key, &tbs, &pat, &s));
            let expected = if at == 0 {
                EnvelopeError::UnknownVersion(1 ^ mask)
            } else {
                EnvelopeError::Decrypt
            };
            assert_eq!(outcome.unwrap_err(), expected, "byte {at} ^ {mask:#04x}");
        }
    }
}

#[test]
fn a_replay_opens_again_so_the_caller_refuses_any_sequence_not_above_the_last() {
    // The PAT's side of the rule, as the caller implements it.
    fn accept(
        last: &mut Option<u64>,
        key: &InstructionKey,
        tbs: &PublicKey,
        pat: &PublicKey,
        sealed: &SealedInstructions,
    ) -> Option<Vec<u8>> {
        let (sequence, plaintext) = open_instructions(key, tbs, pat, sealed).ok()?;
        if last.is_some_and(|last| sequence <= last) {
            return None;
        }
        *last = Some(sequence);
        Some(plaintext.to_vec())
    }
    let key = InstructionKey::from_bytes(&[0x42; 16]);
    let (tbs, pat) = (public(1), public(2));
    let mut rng = rng();
    let first = seal_instructions(&mut rng, &key, &tbs, &pat, 1, b"v1").unwrap();
    let second = seal_instructions(&mut rng, &key, &tbs, &pat, 2, b"v2").unwrap();

    assert!(open_instructions(&key, &tbs, &pat, &first).is_ok());
    assert!(
        open_instructions(&key, &tbs, &pat, &first).is_ok(),
        "no memory"
    );

    let mut last = None;
    assert_eq!(
        accept(&mut last, &key, &tbs, &pat, &first),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        accept(&mut last, &key, &tbs, &pat, &second),
        Some(b"v2".to_vec())
    );
    assert_eq!(accept(&mut last, &key, &tbs, &pat, &first), None, "older");
    assert_eq!(
        accept(&mut last, &key, &tbs, &pat, &second),
        None,
        "replayed"
    );
}

#[test]
fn malformed_wire_forms_are_refused_with_the_field_at_fault() {
    use EnvelopeError::{ShortCiphertext, TooLarge, UnknownVersion};
    let (_, _, _, sealed) = instructions();
    let good = sealed.to_bytes();
    let cut = |len: usize| good[..len].to_vec();
    let truncated = |field| EnvelopeError::Truncated { field };
    let too_large = TooLarge {
        len: MAX_SEALED_LEN + 1,
        max: MAX_SEALED_LEN,
    };
    // One case per line: a table reads better than rustfmt's vertical tuples.
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, EnvelopeError)> = vec![
        ("empty", vec![], truncated("version")),
        ("version 2", [&[2][..], &good[1..]].concat(), UnknownVersion(2)),
        ("sequence cut", cut(8), truncated("sequence")),
        ("nonce cut", cut(20), truncated("nonce")),
        ("no ciphertext", cut(21), ShortCiphertext(0)),
        ("tag cut", cut(36), ShortCiphertext(15)),
        ("over 64 KiB", vec![1; MAX_SEALED_LEN + 1], too_large),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(
            SealedInstructions::from_bytes(&bytes),
            Err(expected),
            "{name}"
        );
    }
}

#[test]
fn sealing_refuses_what_would_exceed_the_size_limit() {
    let key = InstructionKey::from_bytes(&[0x42; 16]);
    let (tbs, pat) = (public(1), public(2));
    let largest = MAX_SEALED_LEN - (1 + 8 + 12 + 16);
    let sealed = seal_instructions(&mut rng(), &key, &tbs, &pat, 1, &vec![1; largest]).unwrap();
    assert_eq!(sealed.to_bytes().len(), MAX_SEALED_LEN);
    let read = SealedInstructions::from_base64(&sealed.to_base64()).unwrap();
    assert_eq!(
        open_instructions(&key, &tbs, &pat, &read).unwrap().1.len(),
        largest
    );
    assert_eq!(
        seal_instructions(&mut rng(), &key, &tbs, &pat, 1, &vec![1; largest + 1]),
        Err(EnvelopeError::TooLarge {
            len: MAX_SEALED_LEN + 1,
            max: MAX_SEALED_LEN
        })
    );
}

#[test]
fn an_instruction_key_travels_as_hex_or_base64url_and_is_never_printed() {
    let key = InstructionKey::generate(&mut rng());
    let bytes = key.to_bytes();
    assert_ne!(*bytes, [0; 16]);
    assert_eq!(key.to_hex().len(), 32);
    assert_eq!(key.to_base64().len(), 22);
    assert_eq!(
        *InstructionKey::from_hex(&key.to_hex()).unwrap().to_bytes(),
        *bytes
    );
    assert_eq!(
        *InstructionKey::from_base64(&key.to_base64())
            .unwrap()
            .to_bytes(),
        *bytes
    );
    assert_eq!(
        *InstructionKey::from_slice(&bytes[..]).unwrap().to_bytes(),
        *bytes
    );

    let json = serde_json::to_string(&key).unwrap();
    assert_eq!(json, format!("\"{}\"", &*key.to_base64()));
    let back: InstructionKey = serde_json::from_str(&json).unwrap();
    assert_eq!(*back.to_bytes(), *bytes);

    let shown = format!("{key:?}");
    assert_eq!(shown, "InstructionKey(<redacted>)");
    assert!(!shown.contains(&*key.to_hex()));
}

#[test]
fn an_instruction_key_is_exactly_16_bytes() {
    assert_eq!(
        InstructionKey::from_slice(&[0; 15]).unwrap_err(),
        EnvelopeError::InstructionKeyLength(15)
    );
    assert_eq!(
        InstructionKey::from_hex(&"ab".repeat(17)).unwrap_err(),
        EnvelopeError::InstructionKeyLength(17)
    );
    assert!(matches!(
        InstructionKey::from_hex(&"zz".repeat(16)),
        Err(EnvelopeError::Hex(_))
    ));
    assert_eq!(
        InstructionKey::from_base64("AAAA").unwrap_err(),
        EnvelopeError::InstructionKeyLength(3)
    );
    assert!(serde_json::from_str::<InstructionKey>("\"AAAA\"").is_err());
}
