//! The cryptography a TBS runs per enrolment, timed single-threaded: the real calls its
//! handlers make, and the bare primitives they are made of.
//!
//! Per enrolment the TBS opens two envelopes (the request, then the signed anchor: each
//! one ECDH on secp256k1 with `k256`, HKDF-SHA256 and an AES-256-GCM decrypt), checks four
//! ECDSA signatures with libsecp256k1 (the certificate's self-signature, the device key's
//! proof of possession, the maker's enrolment credential, and the device's input
//! signature in [`AnchorOffer::accept`]), signs one (the pool coin's payment to the device
//! key) and seals the offer to the device's instruction key (AES-128-GCM, a few hundred
//! bytes: [`OfferTerms`]).

use std::hint::black_box;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use anyhow::{anyhow, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bitcoin::consensus::encode;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{ecdsa, Message, Secp256k1};
use bitcoin::{FeeRate, OutPoint, Txid};
use k256::elliptic_curve::point::AffineCoordinates;
use milagro_anchor::anchor_offer::{AnchorOffer, OfferTerms};
use milagro_anchor::anchor_tx::{p2wpkh_script, single_anchor_funding, FundingUtxo};
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::envelope::{open, InstructionKey, Purpose, SealedEnvelope};
use milagro_anchor::funding_pool::{build_device_payment, pool_coin_value};
use milagro_anchor::keys::{PublicKey, SecretKey};
use rand_core::{OsRng, RngCore};
use serde::Serialize;

use super::stats::{latency, Latency};
use super::tbs_world::{party, unix_now, GROUP, TENANT};

/// Associated data of an envelope: label (19 bytes), purpose, sender length, three keys.
const ENVELOPE_AD_BYTES: usize = 19 + 1 + 1 + 3 * 33;

/// Everything this module measures; every latency over `calls` calls.
#[derive(Debug, Clone, Serialize)]
pub struct CryptoReport {
    /// Plaintext bytes of the sealed enrolment request.
    pub request_plaintext_bytes: usize,
    /// Plaintext bytes of the sealed signed anchor.
    pub signed_anchor_plaintext_bytes: usize,
    /// `EnrolmentRequest::open`: envelope, JSON, certificate parse and verify, checks.
    pub request_open: Latency,
    /// `SignedAnchor::open`: envelope, JSON, transaction decode.
    pub signed_anchor_open: Latency,
    /// `envelope::open` of the request alone (ECDH + HKDF + AES-GCM).
    pub envelope_open_request: Latency,
    /// `envelope::open` of the signed anchor alone.
    pub envelope_open_signed_anchor: Latency,
    /// Bare ECDH: one `k256` scalar multiplication and the x coordinate.
    pub ecdh: Latency,
    /// `SecretKey::public_key` of the TBS key: `envelope::open` derives it on every call
    /// to check the envelope's recipient (a fixed-base scalar multiplication).
    pub public_key_derivation: Latency,
    /// Bare AES-256-GCM decrypt of the request's ciphertext size.
    pub aes_gcm_decrypt_request: Latency,
    /// Bare AES-256-GCM decrypt of the signed anchor's ciphertext size.
    pub aes_gcm_decrypt_signed_anchor: Latency,
    /// Bare ECDSA verify with libsecp256k1.
    pub ecdsa_verify: Latency,
    /// ECDSA verifies per enrolment.
    pub ecdsa_verifies_per_enrolment: usize,
    /// Bare ECDSA sign with libsecp256k1 (the pool payment's one input).
    pub ecdsa_sign: Latency,
    /// 2 ECDH + both AES-GCM decrypts + the ECDSA verifies + one ECDSA sign, p50s summed:
    /// the raw cryptography of one enrolment.
    pub raw_sum_us: f64,
    /// Every computation the TBS handlers run on one enrolment, without storage, node or
    /// HTTP: open the request, sign the pool coin's payment to the device, build the offer
    /// (PSBT, base64) and seal it to the device, open the signed anchor, re-read the
    /// certificate, check the offer and accept the signature.
    pub tbs_pure_path: Latency,
}

/// What the TBS receives from one device, made once.
struct Sample {
    tbs: SecretKey,
    tbs_public: PublicKey,
    pool: SecretKey,
    coin: FundingUtxo,
    fee_rate: FeeRate,
    created: u64,
    request: SealedEnvelope,
    bc: BirthCertificate,
    bc_json: Vec<u8>,
    change: bitcoin::ScriptBuf,
    psbt: Vec<u8>,
    signed: SealedEnvelope,
}

fn sample() -> Result<Sample> {
    let tbs = SecretKey::generate(&mut OsRng);
    let (key, bc) = party(Role::Pat, "bench device", "")?;
    let created = unix_now();
    let request = EnrolmentRequest::new(
        &mut OsRng,
        &key,
        bc.clone(),
        InstructionKey::generate(&mut OsRng),
        EnrolmentCredential::issue(
            &SecretKey::generate(&mut OsRng),
            TENANT,
            GROUP,
            &key.public_key(),
        )?,
        &tbs.public_key(),
        created,
    )?
    .seal(&mut OsRng, &tbs.public_key())?;
    let fee_rate = FeeRate::from_sat_per_vb_u32(2);
    let mut txid = [0u8; 32];
    OsRng.fill_bytes(&mut txid);
    let coin = FundingUtxo {
        outpoint: OutPoint::new(Txid::from_byte_array(txid), 1),
        value: pool_coin_value(fee_rate).ok_or_else(|| anyhow!("fee rate overflow"))?,
    };
    let pool = SecretKey::generate(&mut OsRng);
    let change = p2wpkh_script(&pool.public_key());
    let payment = build_device_payment(&pool, &coin, &key.public_key(), fee_rate)?;
    let offer = AnchorOffer::build(
        &bc,
        &device_funding(&payment, fee_rate)?,
        change.clone(),
        fee_rate,
    )?;
    let signed = SignedAnchor {
        device: key.public_key(),
        tx: offer.sign(&key)?,
    }
    .seal(&mut OsRng, &tbs.public_key())?;
    Ok(Sample {
        tbs_public: tbs.public_key(),
        tbs,
        pool,
        coin,
        fee_rate,
        created,
        request,
        bc_json: bc.to_canonical_json(),
        bc,
        change,
        psbt: offer.to_psbt_bytes(),
        signed,
    })
}

/// Measures each figure over `calls` calls (plus `calls / 10` warm-up calls).
pub fn measure(calls: usize) -> Result<CryptoReport> {
    let s = sample()?;
    let request_plaintext_bytes = open(&s.tbs, Purpose::EnrolmentRequest, &s.request)?
        .plaintext
        .len();
    let signed_anchor_plaintext_bytes = open(&s.tbs, Purpose::SignedAnchorTx, &s.signed)?
        .plaintext
        .len();

    let request_open = latency(calls, || {
        black_box(EnrolmentRequest::open(
            &s.tbs,
            black_box(&s.request),
            s.created,
        )?);
        Ok(())
    })?;
    let signed_anchor_open = latency(calls, || {
        black_box(SignedAnchor::open(&s.tbs, black_box(&s.signed))?);
        Ok(())
    })?;
    let envelope_open_request = latency(calls, || {
        black_box(open(
            &s.tbs,
            Purpose::EnrolmentRequest,
            black_box(&s.request),
        )?);
        Ok(())
    })?;
    let envelope_open_signed_anchor = latency(calls, || {
        black_box(open(&s.tbs, Purpose::SignedAnchorTx, black_box(&s.signed))?);
        Ok(())
    })?;

    let scalar = k256::NonZeroScalar::random(&mut OsRng);
    let point = k256::SecretKey::random(&mut OsRng)
        .public_key()
        .to_projective();
    let ecdh = latency(calls, || {
        let shared = (black_box(point) * *black_box(scalar)).to_affine();
        black_box(shared.x());
        Ok(())
    })?;
    let public_key_derivation = latency(calls, || {
        black_box(black_box(&s.tbs).public_key());
        Ok(())
    })?;
    let aes_gcm_decrypt_request = aes_gcm_decrypt(calls, request_plaintext_bytes)?;
    let aes_gcm_decrypt_signed_anchor = aes_gcm_decrypt(calls, signed_anchor_plaintext_bytes)?;
    let ecdsa_verify = libsecp256k1_verify(calls)?;

    let ecdsa_sign = libsecp256k1_sign(calls)?;

    let tbs_pure_path = latency(calls, || {
        let request = EnrolmentRequest::open(&s.tbs, &s.request, s.created)?;
        let payment = build_device_payment(&s.pool, &s.coin, request.device(), s.fee_rate)?;
        let funding = device_funding(&payment, s.fee_rate)?;
        let offer = AnchorOffer::build(
            &request.birth_certificate,
            &funding,
            s.change.clone(),
            s.fee_rate,
        )?;
        black_box(encode::serialize_hex(&payment));
        black_box(STANDARD.encode(offer.to_psbt_bytes()));
        let terms = OfferTerms::new(&offer, funding.outpoint, s.change.clone(), s.created + 600);
        black_box(terms.seal(
            &mut OsRng,
            &request.instruction_key,
            &s.tbs_public,
            request.device(),
        )?);
        let signed = SignedAnchor::open(&s.tbs, &s.signed)?;
        let bc = BirthCertificate::parse(&s.bc_json)?;
        let offer = AnchorOffer::check(&s.psbt, &bc)?;
        black_box(offer.accept(signed.tx)?);
        Ok(())
    })?;
    black_box(&s.bc);

    // The certificate's self-signature, the proof of possession, the enrolment credential
    // and the signed anchor.
    let ecdsa_verifies_per_enrolment = 4;
    let raw_sum_us = 2.0 * ecdh.p50_us
        + aes_gcm_decrypt_request.p50_us
        + aes_gcm_decrypt_signed_anchor.p50_us
        + ecdsa_verifies_per_enrolment as f64 * ecdsa_verify.p50_us
        + ecdsa_sign.p50_us;
    Ok(CryptoReport {
        request_plaintext_bytes,
        signed_anchor_plaintext_bytes,
        request_open,
        signed_anchor_open,
        envelope_open_request,
        envelope_open_signed_anchor,
        ecdh,
        public_key_derivation,
        aes_gcm_decrypt_request,
        aes_gcm_decrypt_signed_anchor,
        ecdsa_verify,
        ecdsa_verifies_per_enrolment,
        ecdsa_sign,
        raw_sum_us,
        tbs_pure_path,
    })
}

/// AES-256-GCM decrypt of `bytes` bytes with an envelope-sized AD, from a copy of the
/// ciphertext as `envelope::open` makes one.
fn aes_gcm_decrypt(calls: usize, bytes: usize) -> Result<Latency> {
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    let mut ad = vec![0u8; ENVELOPE_AD_BYTES];
    let mut ciphertext = vec![0u8; bytes];
    for buffer in [
        &mut key[..],
        &mut nonce[..],
        &mut ad[..],
        &mut ciphertext[..],
    ] {
        OsRng.fill_bytes(buffer);
    }
    let cipher = Aes256Gcm::new((&key).into());
    let tag = cipher
        .encrypt_in_place_detached((&nonce).into(), &ad, &mut ciphertext)
        .map_err(|_| anyhow!("AES-256-GCM encryption failed"))?;
    latency(calls, || {
        let mut plaintext = black_box(&ciphertext).to_vec();
        Aes256Gcm::new((&key).into())
            .decrypt_in_place_detached((&nonce).into(), &ad, &mut plaintext, &tag)
            .map_err(|_| anyhow!("AES-256-GCM decryption failed"))?;
        black_box(plaintext);
        Ok(())
    })
}

/// One bare ECDSA verify with libsecp256k1 (key and signature already parsed).
fn libsecp256k1_verify(calls: usize) -> Result<Latency> {
    let key = SecretKey::generate(&mut OsRng);
    let mut prehash = [0u8; 32];
    OsRng.fill_bytes(&mut prehash);
    let signature = ecdsa::Signature::from_compact(&key.sign_prehash(&prehash).to_compact())?;
    let public = key.public_key().to_bitcoin().0;
    let secp = Secp256k1::verification_only();
    let message = Message::from_digest(prehash);
    latency(calls, || {
        secp.verify_ecdsa(black_box(&message), black_box(&signature), &public)?;
        Ok(())
    })
}

/// The device's funding: output 0 of the pool's payment, worth one anchor's funding.
fn device_funding(payment: &bitcoin::Transaction, fee_rate: FeeRate) -> Result<FundingUtxo> {
    Ok(FundingUtxo {
        outpoint: OutPoint::new(payment.compute_txid(), 0),
        value: single_anchor_funding(fee_rate).ok_or_else(|| anyhow!("fee rate overflow"))?,
    })
}

/// One bare ECDSA sign with libsecp256k1 (RFC 6979 nonce, low S), the key already parsed.
fn libsecp256k1_sign(calls: usize) -> Result<Latency> {
    let mut secret = [0u8; 32];
    let mut prehash = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    OsRng.fill_bytes(&mut prehash);
    let key = bitcoin::secp256k1::SecretKey::from_slice(&secret)?;
    let secp = Secp256k1::signing_only();
    let message = Message::from_digest(prehash);
    latency(calls, || {
        black_box(secp.sign_ecdsa(black_box(&message), &key));
        Ok(())
    })
}
