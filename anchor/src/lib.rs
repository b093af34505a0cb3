//! tmp
pub mod anchor_tx;
pub mod birth_certificate;
pub mod digest;
mod header_chain;
pub mod keys;
pub mod nonce;
pub mod payload;
pub mod proof;
pub mod record;
