//! Decoding Electrum answers: the shapes servers send, the lies they could tell, and
//! properties over arbitrary input (nothing panics; every refusal is typed).

use bitcoin::block::{Header, Version};
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::hex::DisplayHex;
use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::decode::{self, DecodeError, MerkleAnswer, MAX_BRANCH};

fn headers(count: u32) -> Vec<Header> {
    let mut out: Vec<Header> = Vec::new();
    for nonce in 0..count {
        out.push(Header {
            version: Version::TWO,
            prev_blockhash: out
                .last()
                .map_or(BlockHash::all_zeros(), Header::block_hash),
            merkle_root: TxMerkleNode::all_zeros(),
            time: 1_700_000_000 + nonce,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce,
        });
    }
    out
}

fn hex(header: &Header) -> String {
    serialize(header).to_lower_hex_string()
}

#[test]
fn a_tip_decodes_with_its_height() {
    let header = headers(1)[0];
    let answer = json!({"height": 101, "hex": hex(&header)});
    assert_eq!(decode::tip(&answer), Ok((101, header)));
}

#[test]
fn a_tip_with_a_missing_or_wrong_field_is_refused() {
    let good = hex(&headers(1)[0]);
    for (answer, what) in [
        (json!({"hex": good}), "no height"),
        (json!({"height": -1, "hex": good}), "negative height"),
        (json!({"height": "7", "hex": good}), "height as text"),
        (json!({"height": 7}), "no hex"),
        (json!([7, good]), "an array"),
    ] {
        assert!(
            matches!(decode::tip(&answer), Err(DecodeError::Shape { .. })),
            "{what}"
        );
    }
    assert_eq!(
        decode::tip(&json!({"height": 1u64 << 32, "hex": good})),
        Err(DecodeError::Height(1 << 32))
    );
    let short = &good[..158];
    assert!(matches!(
        decode::tip(&json!({"height": 1, "hex": short})),
        Err(DecodeError::Hex {
            field: "hex",
            expected_digits: 160,
            ..
        })
    ));
    let not_hex = format!("zz{}", &good[2..]);
    assert!(matches!(
        decode::tip(&json!({"height": 1, "hex": not_hex})),
        Err(DecodeError::Hex { .. })
    ));
}

#[test]
fn headers_decode_in_both_protocol_formats() {
    let chain = headers(3);
    let concatenated: String = chain.iter().map(hex).collect();
    let v14 = json!({"count": 3, "hex": concatenated, "max": 2016});
    let v16 =
        json!({"count": 3, "headers": chain.iter().map(hex).collect::<Vec<_>>(), "max": 2016});
    assert_eq!(decode::headers(&v14, 10, 3), Ok(chain.clone()));
    assert_eq!(decode::headers(&v16, 10, 3), Ok(chain.clone()));
    // Fewer than asked is an answer (the server's tip, or its max); none too.
    assert_eq!(decode::headers(&v16, 10, 5).map(|h| h.len()), Ok(3));
    let none = json!({"count": 0, "hex": "", "max": 2016});
    assert_eq!(decode::headers(&none, 10, 5), Ok(Vec::new()));
}

#[test]
fn headers_that_are_too_many_miscounted_or_unlinked_are_refused() {
    let chain = headers(3);
    let list: Vec<String> = chain.iter().map(hex).collect();
    assert_eq!(
        decode::headers(&json!({"count": 3, "headers": list}), 0, 2),
        Err(DecodeError::Count {
            asked: 2,
            count: 3,
            held: 0
        })
    );
    assert_eq!(
        decode::headers(&json!({"count": 2, "headers": list}), 0, 5),
        Err(DecodeError::Count {
            asked: 5,
            count: 2,
            held: 3
        })
    );
    let swapped = vec![list[0].clone(), list[2].clone(), list[1].clone()];
    assert_eq!(
        decode::headers(&json!({"count": 3, "headers": swapped}), 100, 3),
        Err(DecodeError::Unlinked { height: 101 })
    );
    let concatenated: String = list.concat();
    assert!(matches!(
        decode::headers(&json!({"count": 2, "hex": concatenated}), 0, 3),
        Err(DecodeError::Hex {
            expected_digits: 320,
            ..
        })
    ));
    // Multi-byte characters of the right byte length must not be sliced mid-character.
    let wide = "é".repeat(80);
    assert!(matches!(
        decode::headers(&json!({"count": 1, "hex": wide}), 0, 1),
        Err(DecodeError::Hex { .. })
    ));
    assert_eq!(
        decode::headers(&json!({"count": 2, "headers": list[..2]}), u32::MAX, 2),
        Err(DecodeError::Height(u64::from(u32::MAX) + 1))
    );
}

#[test]
fn a_merkle_answer_decodes_hashes_from_display_order() {
    let node = TxMerkleNode::hash(b"sibling");
    let answer = json!({"block_height": 7, "merkle": [node.to_string()], "pos": 1});
    assert_eq!(
        decode::merkle(&answer),
        Ok(MerkleAnswer {
            block_height: 7,
            pos: 1,
            branch: vec![node],
        })
    );
}

#[test]
fn a_merkle_answer_that_leaves_the_tree_is_refused() {
    let node = TxMerkleNode::all_zeros().to_string();
    assert_eq!(
        decode::merkle(&json!({"block_height": 7, "merkle": [node], "pos": 2})),
        Err(DecodeError::Position { pos: 2, len: 1 })
    );
    assert_eq!(
        decode::merkle(&json!({"block_height": 7, "merkle": [], "pos": 1})),
        Err(DecodeError::Position { pos: 1, len: 0 })
    );
    let long = vec![node.clone(); MAX_BRANCH + 1];
    assert_eq!(
        decode::merkle(&json!({"block_height": 7, "merkle": long, "pos": 0})),
        Err(DecodeError::BranchTooLong(MAX_BRANCH + 1))
    );
    assert_eq!(
        decode::merkle(&json!({"block_height": 7, "merkle": [], "pos": 1u64 << 32})),
        Err(DecodeError::OutOfRange {
            field: "pos",
            value: 1 << 32
        })
    );
    assert!(matches!(
        decode::merkle(&json!({"block_height": 7, "merkle": ["00"], "pos": 0})),
        Err(DecodeError::Hex {
            field: "merkle[]",
            ..
        })
    ));
}

#[test]
fn shape_errors_quote_a_bounded_prefix_of_the_answer() {
    let huge = json!("é".repeat(10_000));
    let Err(DecodeError::Shape { got, .. }) = decode::tip(&huge) else {
        panic!("expected a shape error")
    };
    assert!(got.len() <= 84, "{}", got.len());
}

/// Any JSON value, with object keys drawn mostly from the fields the decoders read, so the
/// generator reaches deep into them.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("height".to_owned()),
        Just("hex".to_owned()),
        Just("count".to_owned()),
        Just("headers".to_owned()),
        Just("block_height".to_owned()),
        Just("merkle".to_owned()),
        Just("pos".to_owned()),
        "[a-z]{1,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..5).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[0-9a-fA-F]{0,400}".prop_map(Value::from),
        ".{0,200}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics_any_decoder(answer in any_json(), from: u32, asked: u32) {
        let _ = decode::tip(&answer);
        let _ = decode::header(&answer);
        let _ = decode::headers(&answer, from, asked);
        if let Ok(answer) = decode::merkle(&answer) {
            prop_assert!(answer.branch.len() <= MAX_BRANCH);
        }
    }

    #[test]
    fn arbitrary_text_as_a_header_is_a_typed_error_unless_it_is_80_bytes_of_hex(text in ".{0,200}|[0-9a-f]{150,170}") {
        match decode::header_hex(&text, "hex") {
            Ok(header) => prop_assert_eq!(serialize(&header).to_lower_hex_string(), text.to_lowercase()),
            Err(DecodeError::Hex { field: "hex", expected_digits: 160, .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }

    #[test]
    fn any_80_bytes_round_trip_and_other_lengths_do_not(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = bytes.to_lower_hex_string();
        let decoded = decode::header_hex(&text, "hex");
        if bytes.len() == 80 {
            prop_assert_eq!(decoded.map(|h| serialize(&h)), Ok(bytes));
        } else {
            let is_hex_error = matches!(decoded, Err(DecodeError::Hex { .. }));
            prop_assert!(is_hex_error);
        }
    }

    #[test]
    fn a_linked_run_with_one_header_changed_is_refused_or_still_linked(
        count in 2u32..12,
        index in 0usize..12,
        nonce: u32,
    ) {
        let mut chain = headers(count);
        let index = index % chain.len();
        chain[index].nonce = nonce;
        let answer = json!({"count": count, "headers": chain.iter().map(hex).collect::<Vec<_>>()});
        match decode::headers(&answer, 50, count) {
            Ok(decoded) => prop_assert_eq!(decoded, chain),
            // Only the header above a changed one can fail to link.
            Err(DecodeError::Unlinked { height }) => prop_assert_eq!(height, 50 + index as u32 + 1),
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }
}
