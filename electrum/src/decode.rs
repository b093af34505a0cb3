//! Decoding an Electrum server's answers into typed values, without trusting them.
//!
//! Pure: each function takes the JSON `result` of one call and returns a typed value or a
//! [`DecodeError`] saying what was wrong; none panics, whatever the server sent (property
//! tested). Lengths are checked before anything is decoded, so a hostile answer cannot
//! make us allocate more than it already made the JSON parser hold.

use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::hex::FromHex;
use bitcoin::TxMerkleNode;
use serde_json::Value;

/// Hex digits of one serialized header (80 bytes).
const HEADER_HEX: usize = 160;
/// No block holds 2^32 transactions, so no Merkle branch is longer.
pub const MAX_BRANCH: usize = 32;

/// Why an answer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The JSON does not have the expected shape.
    #[error("expected {expected}, got {got}")]
    Shape {
        /// What was expected, e.g. `an object with height and hex`.
        expected: &'static str,
        /// The start of what came instead.
        got: String,
    },
    /// A hex field does not decode.
    #[error("{field} is not {expected_digits} hex digits: {detail}")]
    Hex {
        /// Which field.
        field: &'static str,
        /// How many hex digits it should have had.
        expected_digits: usize,
        /// What was wrong.
        detail: String,
    },
    /// A height does not fit a `u32`, or headers would run past the largest height.
    #[error("height {0} is out of range")]
    Height(u64),
    /// A count or position field does not fit.
    #[error("{field} {value} is out of range")]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The server sent more headers than asked, or a count that does not match them.
    #[error("asked for {asked} headers, the answer says {count} and holds {held}")]
    Count {
        /// How many were asked for.
        asked: u32,
        /// The answer's `count` field.
        count: u64,
        /// How many headers it holds.
        held: usize,
    },
    /// Consecutive headers do not link: the one at `height` does not build on the one below.
    #[error("the header at height {height} does not build on the header below it")]
    Unlinked {
        /// The height of the header that does not link.
        height: u32,
    },
    /// A Merkle branch longer than any block could need.
    #[error("a merkle branch of {0} hashes is longer than {MAX_BRANCH}")]
    BranchTooLong(usize),
    /// The position does not fit the branch: the path would leave the tree.
    #[error("position {pos} does not fit a merkle branch of {len} hashes")]
    Position {
        /// The answer's position.
        pos: u32,
        /// The branch's length.
        len: usize,
    },
}

/// The answer to `blockchain.transaction.get_merkle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleAnswer {
    /// The height the server says the transaction is at.
    pub block_height: u32,
    /// The transaction's index in its block.
    pub pos: u32,
    /// The sibling hashes from the leaf up to the root.
    pub branch: Vec<TxMerkleNode>,
}

/// One header from its 160 hex digits (an exact 80-byte consensus encoding).
pub fn header_hex(hex: &str, field: &'static str) -> Result<Header, DecodeError> {
    let bytes = <[u8; 80]>::from_hex(hex).map_err(|e| DecodeError::Hex {
        field,
        expected_digits: HEADER_HEX,
        detail: e.to_string(),
    })?;
    // 80 bytes always decode to a header: every field is fixed-size.
    bitcoin::consensus::deserialize(&bytes).map_err(|e| DecodeError::Hex {
        field,
        expected_digits: HEADER_HEX,
        detail: e.to_string(),
    })
}

/// The answer to `blockchain.headers.subscribe`: `{"height": H, "hex": HEADER}`.
pub fn tip(answer: &Value) -> Result<(u32, Header), DecodeError> {
    const EXPECTED: &str = "an object with height and hex";
    let height = height(field(answer, "height", EXPECTED)?, EXPECTED)?;
    let hex = string(field(answer, "hex", EXPECTED)?, EXPECTED)?;
    Ok((height, header_hex(hex, "hex")?))
}

/// The answer to `blockchain.block.header` without a checkpoint: the header's hex.
pub fn header(answer: &Value) -> Result<Header, DecodeError> {
    header_hex(string(answer, "a header's hex string")?, "header")
}

/// The answer to `blockchain.block.headers` asked from `from` for `asked` headers.
///
/// Takes both formats: protocol 1.4's `{"count": N, "hex": CONCATENATED, "max": M}` and
/// 1.6's `{"count": N, "headers": [HEX, …], "max": M}`. Returns at most `asked` headers (a
/// server sends fewer at its tip or above its `max`), each building on the one before.
pub fn headers(answer: &Value, from: u32, asked: u32) -> Result<Vec<Header>, DecodeError> {
    const EXPECTED: &str = "an object with count and hex or headers";
    let count_value = field(answer, "count", EXPECTED)?;
    let count = count_value
        .as_u64()
        .ok_or_else(|| shape(EXPECTED, count_value))?;
    let count_error = |held| DecodeError::Count { asked, count, held };
    if count > u64::from(asked) {
        return Err(count_error(0));
    }
    // `count <= asked`, a u32, so it fits a usize.
    let count_len = usize::try_from(count).map_err(|_| count_error(0))?;
    let headers = if let Some(list) = answer.get("headers") {
        let list = list
            .as_array()
            .ok_or_else(|| shape("headers as an array", list))?;
        if list.len() != count_len {
            return Err(count_error(list.len()));
        }
        list.iter()
            .map(|item| header_hex(string(item, "a header's hex string")?, "headers[]"))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let hex = string(field(answer, "hex", EXPECTED)?, EXPECTED)?;
        let expected_digits = count_len.saturating_mul(HEADER_HEX);
        if hex.len() != expected_digits || !hex.is_ascii() {
            return Err(DecodeError::Hex {
                field: "hex",
                expected_digits,
                detail: format!("{} bytes", hex.len()),
            });
        }
        hex.as_bytes()
            .chunks(HEADER_HEX)
            .map(|chunk| header_hex(std::str::from_utf8(chunk).unwrap_or_default(), "hex"))
            .collect::<Result<Vec<_>, _>>()?
    };
    check_linked(from, &headers)?;
    Ok(headers)
}

/// Checks that each header builds on the one before it; the first is at height `from`.
pub fn check_linked(from: u32, headers: &[Header]) -> Result<(), DecodeError> {
    let last_offset = u64::try_from(headers.len().saturating_sub(1)).unwrap_or(u64::MAX);
    if u64::from(from).saturating_add(last_offset) > u64::from(u32::MAX) {
        return Err(DecodeError::Height(
            u64::from(from).saturating_add(last_offset),
        ));
    }
    // Overflow was ruled out above (with two headers or more, `from < u32::MAX`).
    for (height, pair) in (from.saturating_add(1)..).zip(headers.windows(2)) {
        if pair[1].prev_blockhash != pair[0].block_hash() {
            return Err(DecodeError::Unlinked { height });
        }
    }
    Ok(())
}

/// The answer to `blockchain.transaction.get_merkle`:
/// `{"block_height": H, "merkle": [HASH, …], "pos": P}`, hashes in display (reversed) order.
pub fn merkle(answer: &Value) -> Result<MerkleAnswer, DecodeError> {
    const EXPECTED: &str = "an object with block_height, merkle and pos";
    let block_height = height(field(answer, "block_height", EXPECTED)?, EXPECTED)?;
    let pos_value = field(answer, "pos", EXPECTED)?;
    let pos_wide = pos_value
        .as_u64()
        .ok_or_else(|| shape(EXPECTED, pos_value))?;
    let pos = u32::try_from(pos_wide).map_err(|_| DecodeError::OutOfRange {
        field: "pos",
        value: pos_wide,
    })?;
    let list = field(answer, "merkle", EXPECTED)?;
    let list = list
        .as_array()
        .ok_or_else(|| shape("merkle as an array", list))?;
    if list.len() > MAX_BRANCH {
        return Err(DecodeError::BranchTooLong(list.len()));
    }
    // Leaving the tree: a position with a bit set above the branch's depth.
    if list.len() < 32 && pos >> list.len() != 0 {
        return Err(DecodeError::Position {
            pos,
            len: list.len(),
        });
    }
    let branch = list
        .iter()
        .map(|item| {
            let hex = string(item, "a hash's hex string")?;
            let bytes = <[u8; 32]>::from_hex(hex).map_err(|e| DecodeError::Hex {
                field: "merkle[]",
                expected_digits: 64,
                detail: e.to_string(),
            })?;
            // Display order is the reverse of the internal (hashing) order.
            let mut internal = bytes;
            internal.reverse();
            Ok(TxMerkleNode::from_byte_array(internal))
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    Ok(MerkleAnswer {
        block_height,
        pos,
        branch,
    })
}

fn field<'a>(
    value: &'a Value,
    name: &str,
    expected: &'static str,
) -> Result<&'a Value, DecodeError> {
    value.get(name).ok_or_else(|| shape(expected, value))
}

fn string<'a>(value: &'a Value, expected: &'static str) -> Result<&'a str, DecodeError> {
    value.as_str().ok_or_else(|| shape(expected, value))
}

fn height(value: &Value, expected: &'static str) -> Result<u32, DecodeError> {
    let wide = value.as_u64().ok_or_else(|| shape(expected, value))?;
    u32::try_from(wide).map_err(|_| DecodeError::Height(wide))
}

/// A shape error quoting at most 80 characters of what came.
fn shape(expected: &'static str, got: &Value) -> DecodeError {
    let mut got = got.to_string();
    if got.len() > 80 {
        let cut = (0..=80)
            .rev()
            .find(|&i| got.is_char_boundary(i))
            .unwrap_or(0);
        got.truncate(cut);
        got.push('…');
    }
    DecodeError::Shape { expected, got }
}
