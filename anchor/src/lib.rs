//! The pure domain of Milagro Trust: what gets anchored on Bitcoin, and how anyone checks it.
//!
//! Every party of the network (TBS, IdP, D-TA, PAT) publishes a signed
//! [`BirthCertificate`](birth_certificate::BirthCertificate) and anchors its SHA-256
//! [`Digest`](digest::Digest) in an `OP_RETURN` [`Payload`](payload::Payload), in a
//! transaction whose first input it signs with its own key
//! ([`build_anchor_tx`](anchor_tx::build_anchor_tx)). A verifier holding only block headers
//! checks an [`AnchorProof`](proof::AnchorProof) and receives a
//! [`VerifiedAnchor`](proof::VerifiedAnchor), the only way to obtain one.
//!
//! The main types, by module:
//!
//! - [`keys`]: secp256k1 keys and low-S ECDSA signatures (RFC 6979, deterministic);
//! - [`nonce`]: the recoverable nonce of an anchoring signature, `R = k·G` rebuilt from `r`
//!   by anyone and `k` re-derived by the signer, for ECDH/YAK over Bitcoin;
//! - [`birth_certificate`]: the document, RFC 8785 canonical JSON, strict parsing;
//! - [`purpose_keys`]: the keys a party derives from its anchored key for session tokens,
//!   checkpoint notes and envelopes, listed in its certificate (ADR 0013);
//! - [`payload`]: the 38-byte `OP_RETURN` codec (magic, version, record kind, digest);
//! - [`record`]: finding the record, its signer and nonce point in a transaction;
//! - [`anchor_tx`]: building and signing anchoring transactions;
//! - [`proof`]: SPV anchor proofs and header chains;
//! - [`audit_log`], [`checkpoint`], [`batch`]: RFC 6962 Merkle logs, C2SP signed
//!   checkpoints, and batch roots that anchor many digests in one output;
//! - [`envelope`]: ECIES envelopes to a party's key and AES-GCM instructions back;
//! - [`kex`]: ECDH and YAK over Bitcoin, key agreements between two anchored parties from
//!   their on-chain signatures' nonces, with session ids and key confirmation;
//! - [`signed_jwks`]: an IdP's JWK Set signed with its anchored key (ES256K,
//!   `jwk-set+jwt`), which relying parties check against its Birth Certificate;
//! - [`dpop`]: DPoP proofs (RFC 9449) by an anchored key and its RFC 7638 thumbprint,
//!   which binds an ID token to the device that holds the key;
//! - [`id_token_nonce`]: the `nonce` commitment that binds an ID token of any OpenID
//!   provider to the device's anchored key (ADR 0015);
//! - [`anchor_offer`], [`enrolment`]: the anchoring PSBT a TBS offers a device, checked
//!   and signed by it, the sealed messages of device enrolment, and the [`instructions`]
//!   a device verifies before it trusts them; [`funding_pool`]: the fan-out and device
//!   payment transactions that fund devices' anchors without a wallet call each.
//!
//! What this crate deliberately does not do: no network, no disk, no clock, no runtime.
//! Time and randomness are passed in, so every function here is deterministic given its
//! inputs and can be reused by servers, clients and tests alike. Chain access lives in
//! `milagro-registry`, servers in their own crates.
//!
//! ```
//! use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status, VERSION};
//! use milagro_anchor::keys::SecretKey;
//! use milagro_anchor::payload::{Payload, RecordKind};
//! use milagro_anchor::purpose_keys::{KeyPurpose, PurposeKeys};
//!
//! let key = SecretKey::generate(&mut rand_core::OsRng);
//! let fields = BcFields {
//!     version: VERSION,
//!     role: Role::Dta,
//!     name: "D-TA 1".into(),
//!     endpoints: vec!["https://dta1.example".into()],
//!     created: 1_750_000_000,
//!     public_key: key.public_key(),
//!     status: Status::Active,
//!     previous: None,
//!     // A D-TA signs checkpoints with a key of its own, derived from `key`.
//!     keys: PurposeKeys::derive(Role::Dta, &key)?,
//! };
//! let bc = BirthCertificate::sign(fields, &key)?;
//! assert_ne!(bc.purpose_key(KeyPurpose::Checkpoint)?, bc.public_key());
//! // Anyone can parse and check the document...
//! let parsed = BirthCertificate::parse(&bc.to_canonical_json())?;
//! assert_eq!(parsed.digest(), bc.digest());
//! // ...and this 40-byte script is what goes on chain.
//! let script = Payload::new(RecordKind::BirthCertificate, bc.digest()).to_script();
//! assert_eq!(script.len(), 40);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod anchor_offer;
pub mod anchor_tx;
pub mod audit_log;
pub mod batch;
pub mod birth_certificate;
pub mod checkpoint;
pub mod digest;
pub mod dpop;
pub mod enrolment;
pub mod enrolment_credential;
pub mod envelope;
pub mod funding_pool;
pub mod header_chain;
pub mod id_token_nonce;
pub mod instructions;
pub mod jws;
pub mod kex;
pub mod keys;
pub mod nonce;
pub mod payload;
pub mod proof;
pub mod purpose_keys;
pub mod record;
pub mod signed_jwks;
