//! Known answers: `tests/vectors/kex_v1.txt` pins every input, every intermediate value
//! and the exact bytes of one ECDH and one YAK handshake, so that another implementation can
//! check itself against this one.
//!
//! The values are computed twice: by the protocol code (driven by a scripted random source)
//! and from the formulas of the module docs, written out again here with `hkdf`, `hmac`
//! and `k256` directly; both must agree with each other and with the file.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash as _;
use bitcoin::Txid;
use hkdf::hmac::{Hmac, Mac};
use hkdf::Hkdf;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::PrimeField;
use k256::{AffinePoint, ProjectivePoint, Scalar, U256};
use sha2::Sha256;

use super::tests::ScriptedRng;
use super::wire::{encode_point, Items};
use super::*;
use crate::keys::SecretKey;
use crate::nonce::NonceSecret;

const VECTORS: &str = include_str!("../../tests/vectors/kex_v1.txt");

const CONTEXT: &[u8] = b"milagro kex v1 test vector";
/// Secret key, sighash (bytes 0xa0..=0xbf, 0xc0..=0xdf), txid as shown by RPCs (bytes
/// 0x00..=0x1f, 0x20..=0x3f), input index.
const INITIATOR: ([u8; 32], u8, u8, u32) = ([0x11; 32], 0xa0, 0x00, 0);
const RESPONDER: ([u8; 32], u8, u8, u32) = ([0x22; 32], 0xc0, 0x20, 1);
const ECDH_NONCES: [[u8; 32]; 2] = [[0x49; 32], [0x52; 32]];
/// `w_I, v_I, w_Rs, v_Rs`: the order in which the handshake draws them.
const YAK_SCALARS: [[u8; 32]; 4] = [[0x71; 32], [0x72; 32], [0x73; 32], [0x74; 32]];

/// `first, first + 1, …, first + 31`.
fn counting(first: u8) -> [u8; 32] {
    core::array::from_fn(|i| first.wrapping_add(i as u8))
}

type Values = Vec<(String, String)>;

/// `(name, value)` as owned strings.
fn entry(name: impl Into<String>, value: impl Into<String>) -> (String, String) {
    (name.into(), value.into())
}

/// A party of the vector, and its values.
fn vector_party(
    name: &'static str,
    (secret, sighash_start, txid_start, input): ([u8; 32], u8, u8, u32),
    values: &mut Values,
) -> LocalParty {
    let key = SecretKey::from_bytes(&secret).unwrap();
    let sighash = counting(sighash_start);
    let signature = key.sign_prehash(&sighash);
    let nonce = NonceSecret::recompute(&key, &sighash, &signature).unwrap();
    let mut txid_internal = counting(txid_start);
    txid_internal.reverse();
    let txid = Txid::from_byte_array(txid_internal);
    let local = LocalParty::new(AnchorRef::new(txid, input), nonce);
    let party = local.party();
    let prefixed = |field: &str| format!("{name}_{field}");
    values.extend([
        entry(prefixed("secret_key"), hex::encode(secret)),
        entry(prefixed("sighash"), hex::encode(sighash)),
        entry(prefixed("signature"), hex::encode(signature.to_compact())),
        entry(
            prefixed("nonce_secret"),
            hex::encode(local.nonce_scalar().to_bytes()),
        ),
        entry(
            prefixed("nonce_point"),
            hex::encode(party.nonce_point().to_sec1()),
        ),
        entry(prefixed("txid"), txid.to_string()),
        entry(prefixed("input"), input.to_string()),
        entry(prefixed("anchor"), hex::encode(party.anchor().to_bytes())),
        entry(prefixed("identity"), hex::encode(party.to_bytes())),
    ]);
    local
}

/// The key schedule of the module docs, written out again.
fn schedule(protocol: Protocol, shared_x: &[u8], session_id: &[u8; 32]) -> [[u8; 32]; 4] {
    let hkdf = Hkdf::<Sha256>::new(Some(protocol.label().as_bytes()), shared_x);
    let expand = |label: &[u8]| {
        let mut out = [0u8; 32];
        let info = Items::new().item(label).item(session_id);
        hkdf.expand(info.as_bytes(), &mut out).unwrap();
        out
    };
    let session_key = expand(b"milagro/kex/v1 session key");
    let confirmation_key = expand(b"milagro/kex/v1 confirmation key");
    let tag = |label: &[u8]| -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&confirmation_key).unwrap();
        mac.update(Items::new().item(label).item(session_id).as_bytes());
        mac.finalize().into_bytes().into()
    };
    let responder_tag = tag(b"milagro/kex/v1 responder finished");
    let initiator_tag = tag(b"milagro/kex/v1 initiator finished");
    [session_key, confirmation_key, responder_tag, initiator_tag]
}

fn transcript(protocol: Protocol, parties: [&Party; 2], hello: &[u8], reply: &[u8]) -> Items {
    Items::new()
        .item(protocol.label().as_bytes())
        .item(CONTEXT)
        .item(&parties[0].to_bytes())
        .item(&parties[1].to_bytes())
        .item(hello)
        .item(&reply[..reply.len() - 32])
}

/// Every value of the vector file, computed here, section by section.
fn all_values() -> Vec<(&'static str, Values)> {
    let mut parties = Values::new();
    parties.push(entry("context", hex::encode(CONTEXT)));
    let initiator = vector_party("initiator", INITIATOR, &mut parties);
    let responder = vector_party("responder", RESPONDER, &mut parties);
    let ctx = SessionContext::new(CONTEXT).unwrap();
    vec![
        ("parties", parties),
        ("ecdh", ecdh_values(&initiator, &responder, &ctx)),
        ("yak", yak_values(&initiator, &responder, &ctx)),
    ]
}

fn ecdh_values(initiator: &LocalParty, responder: &LocalParty, ctx: &SessionContext) -> Values {
    let (i, r) = (initiator.party(), responder.party());
    let mut rng = ScriptedRng::new(&ECDH_NONCES);
    let (state, hello) = ecdh::Initiator::start(&mut rng, initiator, &r, ctx).unwrap();
    let (their_state, reply) =
        ecdh::Responder::respond(&mut rng, responder, &i, ctx, &hello).unwrap();
    let (mine, finished) = state.finish(&reply).unwrap();
    let theirs = their_state.finish(&finished).unwrap();
    assert!(rng.is_empty());
    assert_eq!(mine.key().as_bytes(), theirs.key().as_bytes());

    let shared = k256::ecdh::diffie_hellman(initiator.nonce_scalar(), r.nonce_point().as_affine());
    let shared_x: [u8; 32] = (*shared.raw_secret_bytes()).into();
    // The identities in bytewise order: the initiator's txid starts lower.
    let pair_id = Items::new()
        .item(ecdh::PAIR_LABEL.as_bytes())
        .item(CONTEXT)
        .item(&i.to_bytes())
        .item(&r.to_bytes())
        .sha256();
    assert!(i.to_bytes() < r.to_bytes());
    let mut pair_key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(ecdh::PAIR_LABEL.as_bytes()), &shared_x)
        .expand(
            Items::new()
                .item(b"milagro/kex/v1 pair key")
                .item(&pair_id)
                .as_bytes(),
            &mut pair_key,
        )
        .unwrap();
    assert_eq!(
        ecdh::agree(initiator, &r, ctx).unwrap().as_bytes(),
        &pair_key
    );

    let transcript = transcript(
        Protocol::EcdhV1,
        [&i, &r],
        &hello.to_bytes(),
        &reply.to_bytes(),
    );
    let session_id = transcript.sha256();
    let [session_key, confirmation_key, responder_tag, initiator_tag] =
        schedule(Protocol::EcdhV1, &shared_x, &session_id);
    assert_eq!(mine.session_id().as_bytes(), &session_id);
    assert_eq!(mine.key().as_bytes(), &session_key);
    assert_eq!(reply.to_bytes()[33..], responder_tag);
    assert_eq!(finished.to_bytes()[1..], initiator_tag);
    vec![
        entry("shared_x", hex::encode(shared_x)),
        entry("pair_id", hex::encode(pair_id)),
        entry("pair_key", hex::encode(pair_key)),
        entry("initiator_nonce", hex::encode(ECDH_NONCES[0])),
        entry("responder_nonce", hex::encode(ECDH_NONCES[1])),
        entry("hello", hex::encode(hello.to_bytes())),
        entry("transcript", hex::encode(transcript.as_bytes())),
        entry("session_id", hex::encode(session_id)),
        entry("session_key", hex::encode(session_key)),
        entry("confirmation_key", hex::encode(confirmation_key)),
        entry("responder_tag", hex::encode(responder_tag)),
        entry("reply", hex::encode(reply.to_bytes())),
        entry("initiator_tag", hex::encode(initiator_tag)),
        entry("finished", hex::encode(finished.to_bytes())),
    ]
}

/// `W = w·G`, the challenge and the response of one proof, written out again.
fn proof_values(
    name: &'static str,
    [w, v]: [[u8; 32]; 2],
    prover: &Party,
    other_info: &[u8],
    values: &mut Values,
) -> (Scalar, AffinePoint, [u8; 65]) {
    let scalar = |bytes: [u8; 32]| Option::<Scalar>::from(Scalar::from_repr(bytes.into())).unwrap();
    let (w, v) = (scalar(w), scalar(v));
    let ephemeral = (ProjectivePoint::GENERATOR * w).to_affine();
    let commitment = (ProjectivePoint::GENERATOR * v).to_affine();
    let hash = Items::new()
        .item(&encode_point(&AffinePoint::GENERATOR))
        .item(&encode_point(&commitment))
        .item(&encode_point(&ephemeral))
        .item(&prover.to_bytes())
        .item(other_info)
        .sha256();
    let c = <Scalar as Reduce<U256>>::reduce_bytes(&hash.into());
    let response = v - c * w;
    let mut proof = [0u8; 65];
    proof[..33].copy_from_slice(&encode_point(&commitment));
    proof[33..].copy_from_slice(&response.to_bytes());
    let prefixed = |field: &str| format!("{name}_{field}");
    values.extend([
        entry(prefixed("w"), hex::encode(w.to_bytes())),
        entry(prefixed("ephemeral"), hex::encode(encode_point(&ephemeral))),
        entry(prefixed("proof_v"), hex::encode(v.to_bytes())),
        entry(prefixed("other_info"), hex::encode(other_info)),
        entry(prefixed("challenge"), hex::encode(c.to_bytes())),
        entry(prefixed("proof"), hex::encode(proof)),
    ]);
    (w, ephemeral, proof)
}

fn yak_values(initiator: &LocalParty, responder: &LocalParty, ctx: &SessionContext) -> Values {
    let (i, r) = (initiator.party(), responder.party());
    let mut rng = ScriptedRng::new(&YAK_SCALARS);
    let (state, hello) = yak::Initiator::start(&mut rng, initiator, &r, ctx).unwrap();
    let (their_state, reply) =
        yak::Responder::respond(&mut rng, responder, &i, ctx, &hello).unwrap();
    let (mine, finished) = state.finish(&reply).unwrap();
    let theirs = their_state.finish(&finished).unwrap();
    assert!(rng.is_empty());
    assert_eq!(mine.key().as_bytes(), theirs.key().as_bytes());

    let label = Protocol::YakV1.label().as_bytes();
    let mut values = Values::new();
    let info_i = Items::new()
        .item(label)
        .item(CONTEXT)
        .item(&[1])
        .item(&r.to_bytes());
    let (w_i, _, proof_i) = proof_values(
        "initiator",
        [YAK_SCALARS[0], YAK_SCALARS[1]],
        &i,
        info_i.as_bytes(),
        &mut values,
    );
    assert_eq!(hello.to_bytes()[34..], proof_i);
    values.push(entry("hello", hex::encode(hello.to_bytes())));
    let info_r = Items::new()
        .item(label)
        .item(CONTEXT)
        .item(&[2])
        .item(&i.to_bytes())
        .item(&hello.to_bytes());
    let (_, w_r_point, proof_r) = proof_values(
        "responder",
        [YAK_SCALARS[2], YAK_SCALARS[3]],
        &r,
        info_r.as_bytes(),
        &mut values,
    );
    assert_eq!(reply.to_bytes()[34..99], proof_r);

    let sum = **initiator.nonce_scalar() + w_i;
    let point = ProjectivePoint::from(*r.nonce_point().as_affine()) + w_r_point;
    let shared_x: [u8; 32] = encode_point(&(point * sum).to_affine())[1..]
        .try_into()
        .unwrap();
    let transcript = transcript(
        Protocol::YakV1,
        [&i, &r],
        &hello.to_bytes(),
        &reply.to_bytes(),
    );
    let session_id = transcript.sha256();
    let [session_key, confirmation_key, responder_tag, initiator_tag] =
        schedule(Protocol::YakV1, &shared_x, &session_id);
    assert_eq!(mine.session_id().as_bytes(), &session_id);
    assert_eq!(mine.key().as_bytes(), &session_key);
    assert_eq!(reply.to_bytes()[99..], responder_tag);
    assert_eq!(finished.to_bytes()[1..], initiator_tag);
    values.extend([
        entry("shared_x", hex::encode(shared_x)),
        entry("transcript", hex::encode(transcript.as_bytes())),
        entry("session_id", hex::encode(session_id)),
        entry("session_key", hex::encode(session_key)),
        entry("confirmation_key", hex::encode(confirmation_key)),
        entry("responder_tag", hex::encode(responder_tag)),
        entry("reply", hex::encode(reply.to_bytes())),
        entry("initiator_tag", hex::encode(initiator_tag)),
        entry("finished", hex::encode(finished.to_bytes())),
    ]);
    values
}

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

#[test]
fn the_kex_vectors_are_reproduced_value_by_value() {
    let file = vectors();
    let mut count = 0;
    for (section, values) in all_values() {
        for (name, value) in values {
            let key = format!("{section}.{name}");
            assert_eq!(file.get(&key), Some(&value), "{key}");
            count += 1;
        }
    }
    assert_eq!(
        count,
        file.len(),
        "the file has values this test does not check"
    );
}

#[test]
fn the_vector_messages_complete_a_handshake_with_the_responder_alone() {
    // A responder that only reads the file's hello and finished reaches the same key.
    let file = vectors();
    let mut values = Values::new();
    let initiator = vector_party("initiator", INITIATOR, &mut values).party();
    let responder = vector_party("responder", RESPONDER, &mut values);
    let ctx = SessionContext::new(CONTEXT).unwrap();
    let bytes = |name: &str| hex::decode(&file[name]).unwrap();
    let mut rng = ScriptedRng::new(&YAK_SCALARS[2..]);
    let hello = yak::Hello::from_bytes(&bytes("yak.hello")).unwrap();
    let (state, reply) =
        yak::Responder::respond(&mut rng, &responder, &initiator, &ctx, &hello).unwrap();
    assert_eq!(reply.to_bytes().to_vec(), bytes("yak.reply"));
    let session = state
        .finish(&Finished::from_bytes(&bytes("yak.finished")).unwrap())
        .unwrap();
    assert_eq!(session.key().as_bytes().to_vec(), bytes("yak.session_key"));
}

/// Regenerates the values of the vector file (only if the construction changes on purpose,
/// which also means a new protocol version): `cargo test -p milagro-anchor
/// print_kex_vectors -- --ignored --nocapture`.
#[test]
#[ignore = "prints the vector values for regeneration"]
fn print_kex_vectors() {
    for (section, values) in all_values() {
        println!("[{section}]");
        for (name, value) in values {
            println!("{name} = {value}");
        }
        println!();
    }
}
