//! Known answers: `tests/vectors/envelope_v1.txt` pins every intermediate value and the exact
//! bytes of one envelope and one set of instructions, so that another implementation can
//! check itself against this one.

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::ecies::{derive_key, seal_with};
use super::instructions::{associated_data, seal_instructions_with};
use super::*;
use crate::keys::SecretKey;

const VECTORS: &str = include_str!("../../tests/vectors/envelope_v1.txt");

/// The vector file as `section.name → value`.
fn vectors() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    for line in VECTORS.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (name, value) = line.split_once(" = ").unwrap();
        out.insert(format!("{section}.{name}"), value.to_owned());
    }
    out
}

fn hex_of(vectors: &BTreeMap<String, String>, name: &str) -> Vec<u8> {
    hex::decode(&vectors[name]).unwrap()
}

const RNG_SEED: [u8; 32] = [7; 32];
const TBS_SECRET: [u8; 32] = [0x11; 32];
const PAT_SECRET: [u8; 32] = [0x22; 32];
const ENVELOPE_PLAINTEXT: &[u8] = b"{\"bc\":\"...\",\"instruction_key\":\"...\"}";
const INSTRUCTIONS_PLAINTEXT: &[u8] = b"{\"idp\":\"https://idp.example\"}";
const SEQUENCE: u64 = 42;

/// Every value of the envelope vector, computed here, in file order.
fn envelope_values() -> Vec<(&'static str, String)> {
    let tbs = SecretKey::from_bytes(&TBS_SECRET).unwrap();
    let pat = SecretKey::from_bytes(&PAT_SECRET).unwrap();
    let sender = SenderId::from_public_key(&pat.public_key());
    let purpose = Purpose::EnrolmentRequest;
    let mut rng = ChaCha20Rng::from_seed(RNG_SEED);
    let sealed = seal(
        &mut rng,
        &tbs.public_key(),
        purpose,
        &sender,
        ENVELOPE_PLAINTEXT,
    )
    .unwrap();

    // The same envelope from its explicit random choices: the rng draws the ephemeral
    // scalar first (k256's `SecretKey::random`), then the nonce.
    let mut rng = ChaCha20Rng::from_seed(RNG_SEED);
    let ephemeral = k256::SecretKey::random(&mut rng);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let again = seal_with(
        &ephemeral,
        nonce,
        &tbs.public_key(),
        purpose,
        &sender,
        ENVELOPE_PLAINTEXT,
    )
    .unwrap();
    assert_eq!(again, sealed);
    assert_eq!(
        ephemeral.public_key().to_sec1_bytes()[..],
        sealed.ephemeral_key()
    );

    let tbs_point = k256::PublicKey::from_sec1_bytes(&tbs.public_key().to_sec1()).unwrap();
    let shared = k256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), tbs_point.as_affine());
    let mut info = sealed.ephemeral_key().to_vec();
    info.extend_from_slice(&tbs.public_key().to_sec1());
    info.push(purpose.as_u8());
    let key = derive_key(
        shared.raw_secret_bytes(),
        &sealed.ephemeral_key(),
        &tbs.public_key(),
        purpose,
    )
    .unwrap();
    vec![
        ("rng_seed", hex::encode(RNG_SEED)),
        ("recipient_secret", hex::encode(TBS_SECRET)),
        ("recipient_public", hex::encode(tbs.public_key().to_sec1())),
        ("sender", hex::encode(sender.as_bytes())),
        ("purpose", hex::encode([purpose.as_u8()])),
        ("plaintext", hex::encode(ENVELOPE_PLAINTEXT)),
        ("ephemeral_secret", hex::encode(ephemeral.to_bytes())),
        ("ephemeral_public", hex::encode(sealed.ephemeral_key())),
        ("shared_x", hex::encode(shared.raw_secret_bytes())),
        ("hkdf_salt", hex::encode(b"milagro/ecies/v1")),
        ("hkdf_info", hex::encode(info)),
        ("aes256_key", hex::encode(*key)),
        ("nonce", hex::encode(nonce)),
        ("associated_data", hex::encode(sealed.associated_data())),
        ("wire", hex::encode(sealed.to_bytes())),
        ("base64", sealed.to_base64()),
    ]
}

/// Every value of the instructions vector, computed here, in file order.
fn instructions_values() -> Vec<(&'static str, String)> {
    let tbs = SecretKey::from_bytes(&TBS_SECRET).unwrap().public_key();
    let pat = SecretKey::from_bytes(&PAT_SECRET).unwrap().public_key();
    // A fresh rng with the same seed: the key is drawn first (16 bytes), then the nonce.
    let mut rng = ChaCha20Rng::from_seed(RNG_SEED);
    let key = InstructionKey::generate(&mut rng);
    let sealed =
        seal_instructions(&mut rng, &key, &tbs, &pat, SEQUENCE, INSTRUCTIONS_PLAINTEXT).unwrap();
    let mut rng = ChaCha20Rng::from_seed(RNG_SEED);
    let mut key_bytes = [0u8; 16];
    rng.fill_bytes(&mut key_bytes);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    assert_eq!(*key.to_bytes(), key_bytes);
    let again =
        seal_instructions_with(nonce, &key, &tbs, &pat, SEQUENCE, INSTRUCTIONS_PLAINTEXT).unwrap();
    assert_eq!(again, sealed);
    vec![
        ("rng_seed", hex::encode(RNG_SEED)),
        ("instruction_key", hex::encode(*key.to_bytes())),
        ("tbs_public", hex::encode(tbs.to_sec1())),
        ("pat_public", hex::encode(pat.to_sec1())),
        ("sequence", SEQUENCE.to_string()),
        ("plaintext", hex::encode(INSTRUCTIONS_PLAINTEXT)),
        ("nonce", hex::encode(nonce)),
        (
            "associated_data",
            hex::encode(associated_data(&tbs, &pat, SEQUENCE)),
        ),
        ("wire", hex::encode(sealed.to_bytes())),
        ("base64", sealed.to_base64()),
    ]
}

#[test]
fn the_envelope_vector_is_reproduced_value_by_value() {
    let file = vectors();
    for (name, value) in envelope_values() {
        assert_eq!(file[&format!("envelope.{name}")], value, "envelope.{name}");
    }
}

#[test]
fn the_instructions_vector_is_reproduced_value_by_value() {
    let file = vectors();
    for (name, value) in instructions_values() {
        assert_eq!(
            file[&format!("instructions.{name}")],
            value,
            "instructions.{name}"
        );
    }
}

#[test]
fn the_vector_envelope_opens_with_the_recipient_key_alone() {
    let file = vectors();
    let secret: [u8; 32] = hex_of(&file, "envelope.recipient_secret")
        .try_into()
        .unwrap();
    let tbs = SecretKey::from_bytes(&secret).unwrap();
    let sealed = SealedEnvelope::from_bytes(&hex_of(&file, "envelope.wire")).unwrap();
    assert_eq!(
        SealedEnvelope::from_base64(&file["envelope.base64"]).unwrap(),
        sealed
    );
    let opened = open(&tbs, Purpose::EnrolmentRequest, &sealed).unwrap();
    assert_eq!(opened.sender.as_bytes(), hex_of(&file, "envelope.sender"));
    assert_eq!(*opened.plaintext, hex_of(&file, "envelope.plaintext"));
}

#[test]
fn the_vector_instructions_open_with_the_key_alone() {
    let file = vectors();
    let key = InstructionKey::from_hex(&file["instructions.instruction_key"]).unwrap();
    let tbs = PublicKey::from_sec1(&hex_of(&file, "instructions.tbs_public")).unwrap();
    let pat = PublicKey::from_sec1(&hex_of(&file, "instructions.pat_public")).unwrap();
    let sealed = SealedInstructions::from_base64(&file["instructions.base64"]).unwrap();
    assert_eq!(
        SealedInstructions::from_bytes(&hex_of(&file, "instructions.wire")).unwrap(),
        sealed
    );
    let (sequence, plaintext) = open_instructions(&key, &tbs, &pat, &sealed).unwrap();
    assert_eq!(sequence.to_string(), file["instructions.sequence"]);
    assert_eq!(*plaintext, hex_of(&file, "instructions.plaintext"));
}

/// Regenerates the values of the vector file (only if the construction changes on purpose,
/// which also means a new wire version): `cargo test -p milagro-anchor print_vectors --
/// --ignored --nocapture`.
#[test]
#[ignore = "prints the vector values for regeneration"]
fn print_vectors() {
    for (section, values) in [
        ("envelope", envelope_values()),
        ("instructions", instructions_values()),
    ] {
        println!("[{section}]");
        for (name, value) in values {
            println!("{name} = {value}");
        }
        println!();
    }
}
