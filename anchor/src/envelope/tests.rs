//! Envelopes sealed to a public key: what opens, what is refused and why.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::keys::SecretKey;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

/// The TBS's key, a PAT's key, and an enrolment request the PAT sealed to the TBS.
fn enrolment() -> (SecretKey, SecretKey, SealedEnvelope) {
    let (tbs, pat) = (key(1), key(2));
    let sealed = seal(
        &mut rng(),
        &tbs.public_key(),
        Purpose::EnrolmentRequest,
        &SenderId::from_public_key(&pat.public_key()),
        b"birth certificate and instruction key",
    )
    .unwrap();
    (tbs, pat, sealed)
}

/// Offsets in the wire form of an envelope whose sender id is `sender_len` bytes long.
struct Layout {
    sender: usize,
    recipient: usize,
    ephemeral: usize,
    nonce: usize,
    ciphertext: usize,
}

fn layout(sender_len: usize) -> Layout {
    let sender = 3;
    let recipient = sender + sender_len;
    let ephemeral = recipient + 33;
    let nonce = ephemeral + 33;
    Layout {
        sender,
        recipient,
        ephemeral,
        nonce,
        ciphertext: nonce + 12,
    }
}

#[test]
fn an_envelope_opens_for_its_recipient_and_purpose_and_names_its_sender() {
    let (tbs, pat) = (key(1), key(2));
    for purpose in [
        Purpose::EnrolmentRequest,
        Purpose::SignedAnchorTx,
        Purpose::Instructions,
        Purpose::Message,
    ] {
        for sender in [
            SenderId::from_public_key(&pat.public_key()),
            SenderId::new(*b"tenant:acme/group:sensors").unwrap(),
        ] {
            let sealed = seal(&mut rng(), &tbs.public_key(), purpose, &sender, b"hi").unwrap();
            assert_eq!(sealed.purpose(), purpose);
            assert_eq!(sealed.sender(), &sender);
            assert_eq!(sealed.recipient(), &tbs.public_key());
            let opened = open(&tbs, purpose, &sealed).unwrap();
            assert_eq!(opened.sender, sender);
            assert_eq!(&opened.plaintext[..], b"hi");
        }
    }
}

#[test]
fn an_empty_plaintext_is_sealed_as_a_tag_alone() {
    let tbs = key(1);
    let sender = SenderId::new(*b"x").unwrap();
    let sealed = seal(
        &mut rng(),
        &tbs.public_key(),
        Purpose::Message,
        &sender,
        b"",
    )
    .unwrap();
    assert_eq!(sealed.to_bytes().len(), layout(1).ciphertext + 16);
    assert!(open(&tbs, Purpose::Message, &sealed)
        .unwrap()
        .plaintext
        .is_empty());
}

#[test]
fn the_wire_form_is_version_purpose_sender_recipient_ephemeral_nonce_ciphertext() {
    let (tbs, pat, sealed) = enrolment();
    let bytes = sealed.to_bytes();
    let at = layout(33);
    assert_eq!(bytes[0], 1, "version");
    assert_eq!(bytes[1], Purpose::EnrolmentRequest.as_u8());
    assert_eq!(bytes[2], 33, "sender length");
    assert_eq!(&bytes[at.sender..at.recipient], pat.public_key().to_sec1());
    assert_eq!(
        &bytes[at.recipient..at.ephemeral],
        tbs.public_key().to_sec1()
    );
    assert_eq!(&bytes[at.ephemeral..at.nonce], sealed.ephemeral_key());
    let plaintext_len = b"birth certificate and instruction key".len();
    assert_eq!(bytes.len() - at.ciphertext, plaintext_len + 16);
    assert_eq!(SealedEnvelope::from_bytes(&bytes).unwrap(), sealed);
}

#[test]
fn text_forms_are_unpadded_base64url_and_round_trip() {
    let (_, _, sealed) = enrolment();
    let text = sealed.to_base64();
    assert!(text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(sealed.to_string(), text);
    assert_eq!(text.parse::<SealedEnvelope>().unwrap(), sealed);
    assert_eq!(SealedEnvelope::from_base64(&text).unwrap(), sealed);

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Body {
        envelope: SealedEnvelope,
    }
    let json = serde_json::to_string(&Body {
        envelope: sealed.clone(),
    })
    .unwrap();
    assert_eq!(json, format!("{{\"envelope\":\"{text}\"}}"));
    assert_eq!(
        serde_json::from_str::<Body>(&json).unwrap().envelope,
        sealed
    );
    assert!(serde_json::from_str::<Body>("{\"envelope\":\"AQ\"}").is_err());
}

#[test]
fn base64_must_be_canonical_unpadded_url_safe_and_bounded() {
    let (_, _, sealed) = enrolment();
    let text = sealed.to_base64();
    let padded = format!("{text}{}", "=".repeat((4 - text.len() % 4) % 4 + 4));
    let standard = text.replace('-', "+").replace('_', "/");
    assert_ne!(
        standard, text,
        "the vector must use the url-safe characters"
    );
    for bad in [padded, standard, format!(" {text}"), format!("{text}\n")] {
        assert!(matches!(
            SealedEnvelope::from_base64(&bad),
            Err(EnvelopeError::Base64(_))
        ));
    }
    let huge = "A".repeat(MAX_BASE64_LEN + 1);
    assert_eq!(
        SealedEnvelope::from_base64(&huge),
        Err(EnvelopeError::TooLarge {
            len: MAX_BASE64_LEN + 1,
            max: MAX_BASE64_LEN
        })
    );
}

#[test]
fn every_byte_flipped_anywhere_is_refused_never_opened() {
    let (tbs, _, sealed) = enrolment();
    let bytes = sealed.to_bytes();
    for at in 0..bytes.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut altered = bytes.clone();
            altered[at] ^= mask;
            let outcome = SealedEnvelope::from_bytes(&altered)
                .and_then(|e| open(&tbs, Purpose::EnrolmentRequest, &e));
            assert!(outcome.is_err(), "byte {at} ^ {mask:#04x} still opened");
        }
    }
}

#[test]
fn altering_the_secret_parts_says_only_cannot_open() {
    let (tbs, _, sealed) = enrolment();
    let bytes = sealed.to_bytes();
    let at = layout(33);
    // The sender, nonce, ciphertext and tag are bound only by the AEAD: one error for all.
    for index in (at.sender..at.recipient).chain(at.nonce..bytes.len()) {
        let mut altered = bytes.clone();
        altered[index] ^= 0x01;
        let envelope = SealedEnvelope::from_bytes(&altered).unwrap();
        assert_eq!(
            open(&tbs, Purpose::EnrolmentRequest, &envelope).unwrap_err(),
            EnvelopeError::Decrypt,
            "byte {index}"
        );
    }
}

#[test]
fn another_key_is_told_the_envelope_is_not_for_it() {
    let (tbs, _, sealed) = enrolment();
    assert_eq!(
        open(&key(9), Purpose::EnrolmentRequest, &sealed).unwrap_err(),
        EnvelopeError::WrongRecipient {
            found: tbs.public_key()
        }
    );
}

#[test]
fn an_envelope_readdressed_to_another_key_does_not_open_there() {
    let (_, _, sealed) = enrolment();
    let thief = key(9);
    let mut bytes = sealed.to_bytes();
    let at = layout(33);
    bytes[at.recipient..at.ephemeral].copy_from_slice(&thief.public_key().to_sec1());
    let readdressed = SealedEnvelope::from_bytes(&bytes).unwrap();
    assert_eq!(
        open(&thief, Purpose::EnrolmentRequest, &readdressed).unwrap_err(),
        EnvelopeError::Decrypt
    );
}

#[test]
fn an_envelope_opens_only_for_the_purpose_it_was_sealed_for() {
    let (tbs, _, sealed) = enrolment();
    assert_eq!(
        open(&tbs, Purpose::SignedAnchorTx, &sealed).unwrap_err(),
        EnvelopeError::WrongPurpose {
            expected: Purpose::SignedAnchorTx,
            found: Purpose::EnrolmentRequest
        }
    );
    // Rewriting the purpose byte to the one expected does not help: it is bound.
    let mut bytes = sealed.to_bytes();
    bytes[1] = Purpose::SignedAnchorTx.as_u8();
    let relabelled = SealedEnvelope::from_bytes(&bytes).unwrap();
    assert_eq!(
        open(&tbs, Purpose::SignedAnchorTx, &relabelled).unwrap_err(),
        EnvelopeError::Decrypt
    );
}

#[test]
fn the_claimed_sender_cannot_be_replaced_in_transit() {
    let (tbs, _, sealed) = enrolment();
    let bytes = sealed.to_bytes();
    let at = layout(33);
    let impostor = SenderId::new(*b"tenant:evil").unwrap();
    let mut forged = bytes[..2].to_vec();
    impostor.write_prefixed(&mut forged);
    forged.extend_from_slice(&bytes[at.recipient..]);
    let forged = SealedEnvelope::from_bytes(&forged).unwrap();
    assert_eq!(forged.sender(), &impostor);
    assert_eq!(
        open(&tbs, Purpose::EnrolmentRequest, &forged).unwrap_err(),
        EnvelopeError::Decrypt
    );
}

#[test]
fn parts_of_two_envelopes_cannot_be_mixed() {
    let (tbs, _, first) = enrolment();
    let second = seal(
        &mut ChaCha20Rng::from_seed([8; 32]),
        &tbs.public_key(),
        Purpose::EnrolmentRequest,
        first.sender(),
        b"birth certificate and instruction key",
    )
    .unwrap();
    let (a, b) = (first.to_bytes(), second.to_bytes());
    let at = layout(33);
    for range in [
        at.ephemeral..at.nonce,
        at.nonce..at.ciphertext,
        at.ciphertext..a.len(),
    ] {
        let mut mixed = a.clone();
        mixed[range.clone()].copy_from_slice(&b[range.clone()]);
        let mixed = SealedEnvelope::from_bytes(&mixed).unwrap();
        assert_eq!(
            open(&tbs, Purpose::EnrolmentRequest, &mixed).unwrap_err(),
            EnvelopeError::Decrypt,
            "{range:?} swapped"
        );
    }
}

#[test]
fn every_envelope_has_a_fresh_ephemeral_key_and_nonce() {
    let tbs = key(1);
    let sender = SenderId::new(*b"pat").unwrap();
    let mut rng = rng();
    let one = seal(
        &mut rng,
        &tbs.public_key(),
        Purpose::Message,
        &sender,
        b"same",
    )
    .unwrap();
    let two = seal(
        &mut rng,
        &tbs.public_key(),
        Purpose::Message,
        &sender,
        b"same",
    )
    .unwrap();
    assert_ne!(one.ephemeral_key(), two.ephemeral_key());
    assert_ne!(
        one.to_bytes()[layout(3).nonce..],
        two.to_bytes()[layout(3).nonce..]
    );
}

#[test]
fn appended_bytes_become_ciphertext_and_the_envelope_no_longer_opens() {
    let (tbs, _, sealed) = enrolment();
    let mut bytes = sealed.to_bytes();
    bytes.push(0);
    let longer = SealedEnvelope::from_bytes(&bytes).unwrap();
    assert_eq!(
        open(&tbs, Purpose::EnrolmentRequest, &longer).unwrap_err(),
        EnvelopeError::Decrypt
    );
}

#[test]
fn malformed_wire_forms_are_refused_with_the_field_at_fault() {
    use EnvelopeError::{ShortCiphertext, TooLarge, UnknownPurpose, UnknownVersion};
    let (_, _, sealed) = enrolment();
    let good = sealed.to_bytes();
    let at = layout(33);
    let cut = |len: usize| good[..len].to_vec();
    let byte_at = |index: usize, byte: u8| {
        let mut bytes = good.clone();
        bytes[index] = byte;
        bytes
    };
    let point_at = |offset: usize, point: &[u8; 33]| {
        let mut bytes = good.clone();
        bytes[offset..offset + 33].copy_from_slice(point);
        bytes
    };
    // x = 5 has no point on secp256k1 (x³ + 7 = 132 is not a square mod p).
    let mut off_curve = [0u8; 33];
    (off_curve[0], off_curve[32]) = (0x02, 5);
    let mut prefix_04 = off_curve;
    prefix_04[0] = 0x04;
    let truncated = |field| EnvelopeError::Truncated { field };
    let bad_point = |field| EnvelopeError::InvalidPoint { field };
    let too_large = TooLarge {
        len: MAX_SEALED_LEN + 1,
        max: MAX_SEALED_LEN,
    };
    // One case per line: a table reads better than rustfmt's vertical tuples.
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<u8>, EnvelopeError)> = vec![
        ("empty", vec![], truncated("version")),
        ("version 0", byte_at(0, 0), UnknownVersion(0)),
        ("version 2", byte_at(0, 2), UnknownVersion(2)),
        ("purpose 0", byte_at(1, 0), UnknownPurpose(0)),
        ("purpose 5", byte_at(1, 5), UnknownPurpose(5)),
        ("purpose 255", byte_at(1, 255), UnknownPurpose(255)),
        ("no purpose", cut(1), truncated("purpose")),
        ("no sender length", cut(2), truncated("sender length")),
        ("empty sender", byte_at(2, 0), EnvelopeError::SenderLength(0)),
        ("sender cut", cut(20), truncated("sender")),
        ("sender past the end", byte_at(2, 255), truncated("sender")),
        ("recipient cut", cut(at.recipient + 32), truncated("recipient key")),
        ("recipient off curve", point_at(at.recipient, &off_curve), bad_point("recipient")),
        ("recipient prefix 04", point_at(at.recipient, &prefix_04), bad_point("recipient")),
        ("recipient all zero", point_at(at.recipient, &[0; 33]), bad_point("recipient")),
        ("ephemeral cut", cut(at.nonce - 1), truncated("ephemeral key")),
        ("ephemeral off curve", point_at(at.ephemeral, &off_curve), bad_point("ephemeral")),
        ("ephemeral all zero", point_at(at.ephemeral, &[0; 33]), bad_point("ephemeral")),
        ("nonce cut", cut(at.ciphertext - 1), truncated("nonce")),
        ("no ciphertext", cut(at.ciphertext), ShortCiphertext(0)),
        ("tag cut", cut(at.ciphertext + 15), ShortCiphertext(15)),
        ("over 64 KiB", vec![1; MAX_SEALED_LEN + 1], too_large),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(SealedEnvelope::from_bytes(&bytes), Err(expected), "{name}");
    }
}

#[test]
fn sealing_refuses_what_would_exceed_the_size_limit() {
    let tbs = key(1);
    let sender = SenderId::new(*b"s").unwrap();
    let largest = MAX_SEALED_LEN - layout(1).ciphertext - 16;
    let big = vec![0x5a; largest];
    let sealed = seal(
        &mut rng(),
        &tbs.public_key(),
        Purpose::Message,
        &sender,
        &big,
    )
    .unwrap();
    let bytes = sealed.to_bytes();
    assert_eq!(bytes.len(), MAX_SEALED_LEN);
    let read = SealedEnvelope::from_base64(&sealed.to_base64()).unwrap();
    assert_eq!(*open(&tbs, Purpose::Message, &read).unwrap().plaintext, big);
    assert_eq!(
        seal(
            &mut rng(),
            &tbs.public_key(),
            Purpose::Message,
            &sender,
            &vec![0; largest + 1]
        ),
        Err(EnvelopeError::TooLarge {
            len: MAX_SEALED_LEN + 1,
            max: MAX_SEALED_LEN
        })
    );
}

#[test]
fn purposes_are_numbered_as_documented_and_strict_on_decode() {
    for (byte, purpose) in [
        (1, Purpose::EnrolmentRequest),
        (2, Purpose::SignedAnchorTx),
        (3, Purpose::Instructions),
        (4, Purpose::Message),
    ] {
        assert_eq!(purpose.as_u8(), byte);
        assert_eq!(Purpose::try_from(byte), Ok(purpose));
    }
    for byte in [0, 5, 0x81, 255] {
        assert_eq!(
            Purpose::try_from(byte),
            Err(EnvelopeError::UnknownPurpose(byte))
        );
    }
}

#[test]
fn a_sender_id_is_one_to_255_bytes() {
    assert_eq!(SenderId::new(vec![]), Err(EnvelopeError::SenderLength(0)));
    assert_eq!(
        SenderId::new(vec![b'a'; 256]),
        Err(EnvelopeError::SenderLength(256))
    );
    assert_eq!(
        SenderId::new(vec![b'a'; 255]).unwrap().as_bytes().len(),
        255
    );
    let pat = key(2).public_key();
    let id = SenderId::from_public_key(&pat);
    assert_eq!(id.public_key(), Some(pat));
    assert_eq!(id.to_string(), pat.to_string());
    let tenant = SenderId::new(*b"tenant:acme").unwrap();
    assert_eq!(tenant.public_key(), None);
    assert_eq!(format!("{tenant:?}"), "SenderId(tenant:acme)");
}

#[test]
fn an_opened_envelope_does_not_print_its_plaintext() {
    let (tbs, _, sealed) = enrolment();
    let opened = open(&tbs, Purpose::EnrolmentRequest, &sealed).unwrap();
    let shown = format!("{opened:?} {sealed:?}");
    assert!(!shown.contains("birth"), "{shown}");
    assert!(shown.contains("<37 bytes>"), "{shown}");
}

#[test]
fn error_messages_are_lowercase_sentences() {
    let errors = [
        EnvelopeError::TooLarge { len: 2, max: 1 },
        EnvelopeError::Truncated { field: "nonce" },
        EnvelopeError::UnknownVersion(2),
        EnvelopeError::UnknownPurpose(9),
        EnvelopeError::SenderLength(0),
        EnvelopeError::InvalidPoint { field: "ephemeral" },
        EnvelopeError::ShortCiphertext(3),
        EnvelopeError::WrongPurpose {
            expected: Purpose::Message,
            found: Purpose::Instructions,
        },
        EnvelopeError::WrongRecipient {
            found: key(1).public_key(),
        },
        EnvelopeError::Decrypt,
        EnvelopeError::InstructionKeyLength(3),
        EnvelopeError::Internal("HKDF expansion"),
    ];
    for error in errors {
        let text = error.to_string();
        assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}
