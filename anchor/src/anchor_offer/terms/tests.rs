//! Sealed offer terms: only the device's instruction key opens them, nothing else opens as
//! them, and the device signs only the PSBT its terms pin.

use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Txid};
use rand_core::OsRng;

use super::*;
use crate::anchor_tx::{p2wpkh_script, FundingUtxo};
use crate::birth_certificate::{BcFields, Role, Status, VERSION};
use crate::envelope::{open_instructions, seal_instructions, EnvelopeError, SealedInstructions};
use crate::keys::SecretKey;
use crate::purpose_keys::PurposeKeys;

const EXPIRES_AT: u64 = 1_750_000_600;
const NOW: u64 = 1_750_000_000;

struct Parties {
    key: InstructionKey,
    tbs: PublicKey,
    device: SecretKey,
    bc: BirthCertificate,
}

fn parties() -> Parties {
    let device = SecretKey::from_bytes(&[1; 32]).unwrap();
    let fields = BcFields {
        version: VERSION,
        role: Role::Pat,
        name: "thermostat".into(),
        endpoints: vec![],
        created: 1_750_000_000,
        public_key: device.public_key(),
        status: Status::Active,
        previous: None,
        keys: PurposeKeys::none(),
    };
    Parties {
        key: InstructionKey::generate(&mut OsRng),
        tbs: SecretKey::from_bytes(&[2; 32]).unwrap().public_key(),
        bc: BirthCertificate::sign(fields, &device).unwrap(),
        device,
    }
}

fn funding() -> OutPoint {
    OutPoint::new(Txid::from_byte_array([9; 32]), 0)
}

fn change() -> ScriptBuf {
    p2wpkh_script(&SecretKey::from_bytes(&[0x77; 32]).unwrap().public_key())
}

fn mallory() -> ScriptBuf {
    p2wpkh_script(&SecretKey::from_bytes(&[0x66; 32]).unwrap().public_key())
}

/// The honest offer and its terms, as the TBS makes them.
fn honest(p: &Parties) -> (AnchorOffer, OfferTerms) {
    let utxo = FundingUtxo {
        outpoint: funding(),
        value: Amount::from_sat(1_000),
    };
    let offer =
        AnchorOffer::build(&p.bc, &utxo, change(), FeeRate::from_sat_per_vb_u32(2)).unwrap();
    let terms = OfferTerms::new(&offer, funding(), change(), EXPIRES_AT);
    (offer, terms)
}

fn seal(p: &Parties, terms: &OfferTerms) -> SealedOffer {
    terms
        .seal(&mut OsRng, &p.key, &p.tbs, &p.device.public_key())
        .unwrap()
}

fn open(p: &Parties, sealed: &SealedOffer) -> Result<OfferTerms, OfferError> {
    OfferTerms::open(&p.key, &p.tbs, &p.device.public_key(), sealed)
}

#[test]
fn sealed_terms_round_trip_and_the_device_signs_the_offer_they_pin() {
    let p = parties();
    let (built, terms) = honest(&p);
    let sealed = SealedOffer::from_base64(&seal(&p, &terms).to_base64()).unwrap();
    assert_eq!(sealed.expires_at(), EXPIRES_AT);
    let opened = open(&p, &sealed).unwrap();
    assert_eq!(opened, terms);
    assert_eq!(
        (opened.funding(), opened.change(), opened.expires_at()),
        (funding(), &change(), EXPIRES_AT)
    );
    let checked = opened.check(&p.bc, NOW).unwrap();
    assert_eq!(checked, built);
    assert!(built.accept(checked.sign(&p.device).unwrap()).is_ok());
}

#[test]
fn only_the_device_key_and_these_parties_open_the_terms() {
    let p = parties();
    let sealed = seal(&p, &honest(&p).1);
    let decrypt = Err(OfferError::Sealed(EnvelopeError::Decrypt));
    let other = InstructionKey::generate(&mut OsRng);
    assert_eq!(
        OfferTerms::open(&other, &p.tbs, &p.device.public_key(), &sealed),
        decrypt
    );
    // Another TBS, another device: the parties are bound.
    assert_eq!(
        OfferTerms::open(&p.key, &p.device.public_key(), &p.tbs, &sealed),
        decrypt
    );
}

#[test]
fn an_offer_never_opens_as_instructions_nor_instructions_as_an_offer() {
    let p = parties();
    let device = p.device.public_key();
    let offer = seal(&p, &honest(&p).1);
    // Same key, parties and number; only the label differs.
    let as_instructions = SealedInstructions::from_bytes(&offer.to_bytes()).unwrap();
    assert_eq!(
        open_instructions(&p.key, &p.tbs, &device, &as_instructions).map(|_| ()),
        Err(EnvelopeError::Decrypt)
    );
    let plaintext = br#"{"psbt":"","funding":"","change":""}"#;
    let instructions =
        seal_instructions(&mut OsRng, &p.key, &p.tbs, &device, EXPIRES_AT, plaintext).unwrap();
    let as_offer = SealedOffer::from_bytes(&instructions.to_bytes()).unwrap();
    assert_eq!(
        open(&p, &as_offer),
        Err(OfferError::Sealed(EnvelopeError::Decrypt))
    );
}

#[test]
fn any_altered_byte_of_a_sealed_offer_is_refused() {
    let p = parties();
    let bytes = seal(&p, &honest(&p).1).to_bytes();
    for index in 0..bytes.len() {
        let mut altered = bytes.clone();
        altered[index] ^= 0x01;
        // A changed version byte no longer parses; any other change does not open (bytes
        // 1 to 8 are the expiry: moving it is refused too).
        if let Ok(sealed) = SealedOffer::from_bytes(&altered) {
            assert_eq!(
                open(&p, &sealed),
                Err(OfferError::Sealed(EnvelopeError::Decrypt)),
                "byte {index}"
            );
        }
    }
}

#[test]
fn a_psbt_spending_another_outpoint_than_the_sealed_funding_is_refused() {
    let p = parties();
    let (offer, _) = honest(&p);
    let elsewhere = OutPoint::new(Txid::from_byte_array([8; 32]), 1);
    let terms = OfferTerms::new(&offer, elsewhere, change(), EXPIRES_AT);
    let opened = open(&p, &seal(&p, &terms)).unwrap();
    assert_eq!(
        opened.check(&p.bc, NOW),
        Err(OfferError::FundingMismatch {
            sealed: elsewhere,
            psbt: funding()
        })
    );
}

#[test]
fn a_psbt_paying_its_change_elsewhere_than_the_sealed_script_is_refused() {
    let p = parties();
    let (offer, terms) = honest(&p);
    // The PSBT is swapped for one whose change goes to Mallory; the terms still say where
    // the TBS's change goes. Every other check of the offer passes.
    let mut psbt = Psbt::deserialize(&offer.to_psbt_bytes()).unwrap();
    psbt.unsigned_tx.output[1].script_pubkey = mallory();
    assert!(AnchorOffer::check(&psbt.serialize(), &p.bc).is_ok());
    let swapped = OfferTerms {
        psbt: psbt.serialize(),
        ..terms
    };
    let opened = open(&p, &seal(&p, &swapped)).unwrap();
    assert_eq!(
        opened.check(&p.bc, NOW),
        Err(OfferError::ChangeMismatch {
            sealed: change(),
            psbt: mallory()
        })
    );
}

#[test]
fn a_lapsed_offer_is_refused() {
    let p = parties();
    let opened = open(&p, &seal(&p, &honest(&p).1)).unwrap();
    assert!(opened.clone().check(&p.bc, EXPIRES_AT - 1).is_ok());
    assert_eq!(
        opened.check(&p.bc, EXPIRES_AT),
        Err(OfferError::Lapsed {
            expires_at: EXPIRES_AT,
            now: EXPIRES_AT
        })
    );
}

#[test]
fn terms_that_are_not_an_offer_are_refused() {
    let p = parties();
    let device = p.device.public_key();
    for plaintext in [
        &b"nope"[..],
        b"{}",
        br#"{"psbt":"","funding":"00:0","change":""}"#,
        br#"{"psbt":"","funding":"0909090909090909090909090909090909090909090909090909090909090909:0","change":"","extra":1}"#,
    ] {
        let sealed = seal_offer(&mut OsRng, &p.key, &p.tbs, &device, EXPIRES_AT, plaintext).unwrap();
        assert!(
            matches!(open(&p, &sealed), Err(OfferError::Terms(_))),
            "{}",
            String::from_utf8_lossy(plaintext)
        );
    }
    // Well-formed terms whose PSBT is not one.
    let plaintext = br#"{"psbt":"AAAA","funding":"0909090909090909090909090909090909090909090909090909090909090909:0","change":"0014"}"#;
    let sealed = seal_offer(&mut OsRng, &p.key, &p.tbs, &device, EXPIRES_AT, plaintext).unwrap();
    assert!(matches!(
        open(&p, &sealed).unwrap().check(&p.bc, NOW),
        Err(OfferError::Malformed(_))
    ));
}
