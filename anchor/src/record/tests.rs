use super::*;
use crate::anchor_tx::{build_anchor_tx, p2wpkh_script, FundingUtxo};
use crate::keys::SecretKey;
use bitcoin::hashes::Hash;
use bitcoin::{FeeRate, Witness};

fn key() -> SecretKey {
    SecretKey::from_bytes(&[0x42; 32]).unwrap()
}

fn signed(value: u64) -> Transaction {
    let funding = FundingUtxo {
        outpoint: OutPoint::new(Txid::from_byte_array([7; 32]), 1),
        value: Amount::from_sat(value),
    };
    let payload = Payload::new(RecordKind::BirthCertificate, Digest::sha256(b"bc"));
    build_anchor_tx(
        &key(),
        &funding,
        &payload,
        FeeRate::from_sat_per_vb_u32(1),
        None,
    )
    .unwrap()
    .tx
}

#[test]
fn the_shape_names_a_key_that_only_the_spent_output_can_confirm() {
    let tx = signed(20_000);
    let candidate = RecordCandidate::from_tx(&tx).unwrap();
    assert_eq!(candidate.claimed_signer(), key().public_key());
    assert_eq!(candidate.funding(), tx.input[0].previous_output);
    let mine = TxOut {
        value: Amount::from_sat(20_000),
        script_pubkey: p2wpkh_script(&key().public_key()),
    };
    let record = candidate.attribute(&tx, &mine).unwrap();
    assert_eq!(record.signer, key().public_key());
    assert_eq!(record, TxRecord::from_own_tx(&tx, mine.value).unwrap());
    // Another key's output, or a P2WSH of any script: not the key's output.
    let other = TxOut {
        script_pubkey: p2wpkh_script(&SecretKey::from_bytes(&[1; 32]).unwrap().public_key()),
        ..mine.clone()
    };
    let p2wsh = TxOut {
        script_pubkey: bitcoin::ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::hash(&[0x51])),
        ..mine.clone()
    };
    for spent in [other, p2wsh] {
        assert!(matches!(
            candidate.attribute(&tx, &spent),
            Err(NotARecord::NotTheKeysOutput { .. })
        ));
    }
    assert!(matches!(
        TxRecord::from_own_tx(&tx, Amount::from_sat(19_999)),
        Err(NotARecord::BadSignature(_))
    ));
}

#[test]
fn a_signature_that_does_not_commit_to_the_whole_transaction_is_no_record() {
    let mut tx = signed(20_000);
    let mut sig = tx.input[0].witness.nth(0).unwrap().to_vec();
    let key_bytes = tx.input[0].witness.nth(1).unwrap().to_vec();
    *sig.last_mut().unwrap() = 0x02; // SIGHASH_NONE: any OP_RETURN could be attached.
    tx.input[0].witness = Witness::from_slice(&[sig, key_bytes]);
    assert_eq!(
        RecordCandidate::from_tx(&tx),
        Err(NotARecord::NotSighashAll(0x02))
    );
}

#[test]
fn malformed_witnesses_are_typed_errors() {
    let mut tx = signed(20_000);
    tx.input[0].witness = Witness::from_slice(&[vec![0x30, 0x01]]);
    assert!(matches!(
        RecordCandidate::from_tx(&tx),
        Err(NotARecord::NotP2wpkh(_))
    ));
    tx.input[0].witness = Witness::from_slice(&[vec![0x30, 0x01, 0x01], vec![2; 33]]);
    assert!(matches!(
        RecordCandidate::from_tx(&tx),
        Err(NotARecord::NotP2wpkh(_))
    ));
    tx.input.clear();
    assert!(matches!(
        RecordCandidate::from_tx(&tx),
        Err(NotARecord::NotP2wpkh("no inputs"))
    ));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Any witness element or output script of a valid record replaced by arbitrary bytes,
    /// or any value changed: reading the shape and proving the signer never panic, and a
    /// record whose signature no longer commits to it is never attributed.
    #[test]
    fn a_mutated_record_is_a_typed_error_never_a_panic(
        element in 0usize..3,
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
        spent_value in 0u64..40_000,
    ) {
        let tx = signed(20_000);
        let spent = TxOut {
            value: Amount::from_sat(spent_value),
            script_pubkey: p2wpkh_script(&key().public_key()),
        };
        let mut mutated = tx.clone();
        match element {
            0 | 1 => {
                let mut items: Vec<Vec<u8>> = mutated.input[0].witness.to_vec();
                items[element] = bytes.clone();
                mutated.input[0].witness = Witness::from_slice(&items);
            }
            _ => mutated.output[0].script_pubkey = bytes.clone().into(),
        }
        if let Ok(candidate) = RecordCandidate::from_tx(&mutated) {
            if candidate.attribute(&mutated, &spent).is_ok() {
                // Only the untouched transaction, over the value it really spends, is
                // attributed.
                proptest::prop_assert_eq!(&mutated, &tx);
                proptest::prop_assert_eq!(spent_value, 20_000);
            }
        }
    }
}
