//! What the D-TA issues, and the issuance log's entries.
//!
//! Every share the D-TA hands out is logged in its RFC 6962 log (checkpoints anchored by
//! [`milagro_service::chain_loop`]) as one 32-byte entry:
//!
//! ```text
//! entry           = SHA-256( "milagro-dta/issuance/v1" ‖ 0x00 ‖ kind (1 byte)
//!                          ‖ hashed identity (32 bytes) ‖ day (u32 big-endian) )
//! hashed identity = SHA-256( "milagro-dta/identity/v1" ‖ 0x00 ‖ identity )
//! ```
//!
//! `kind` is [`ShareKind`]'s byte; the identity is the M-Pin identity of a client share or
//! time permit, and the Birth Certificate digest of the authentication server of a server
//! share; `day` is the day of issuance (of validity, for a time permit). Only the hash of
//! the identity is logged: the log shows how many shares were issued when, and whoever
//! knows an identity can find its entries, nobody else. The entry is also the subject key
//! under which it is appended, so the same share issued again the same day is logged
//! once.

use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;
use milagro_mpin::{
    ClientSecretShare, Day, MasterShare, MpinError, MpinId, ServerSecretShare, TimePermitShare,
};

/// The domain separator of an issuance entry.
pub const ISSUANCE_DOMAIN: &[u8] = b"milagro-dta/issuance/v1";
/// The domain separator of a hashed identity.
pub const IDENTITY_DOMAIN: &[u8] = b"milagro-dta/identity/v1";

/// What was issued (the `kind` of the answer, [`milagro_wire::shares`]).
pub use milagro_wire::shares::ShareKind;

/// The byte of `kind` written in an issuance entry.
pub fn entry_byte(kind: ShareKind) -> u8 {
    match kind {
        ShareKind::Client => 1,
        ShareKind::TimePermit => 2,
        ShareKind::Server => 3,
    }
}

/// `SHA-256("milagro-dta/identity/v1" ‖ 0x00 ‖ identity)`.
pub fn hashed_identity(identity: &[u8]) -> Digest {
    let mut bytes = Vec::with_capacity(IDENTITY_DOMAIN.len() + 1 + identity.len());
    bytes.extend_from_slice(IDENTITY_DOMAIN);
    bytes.push(0);
    bytes.extend_from_slice(identity);
    Digest::sha256(&bytes)
}

/// The log entry of issuing `kind` to the identity hashed as `identity` on `day`.
pub fn issuance_entry(kind: ShareKind, identity: &Digest, day: Day) -> Digest {
    let mut bytes = Vec::with_capacity(ISSUANCE_DOMAIN.len() + 2 + 32 + 4);
    bytes.extend_from_slice(ISSUANCE_DOMAIN);
    bytes.push(0);
    bytes.push(entry_byte(kind));
    bytes.extend_from_slice(identity.as_bytes());
    bytes.extend_from_slice(&day.0.to_be_bytes());
    Digest::sha256(&bytes)
}

/// The M-Pin identity of user `subject` of IdP `issuer` on the device of key `pat_key`
/// ([`MpinId::of_device`], the one definition the verifiers share).
pub fn mpin_id(issuer: &str, subject: &str, pat_key: &PublicKey) -> Result<MpinId, MpinError> {
    MpinId::of_device(issuer, subject, &pat_key.to_sec1())
}

/// A client-secret share and the time-permit share of `day` for `id`, with the two
/// entries that log them.
pub fn client_shares(
    master: &MasterShare,
    id: &MpinId,
    day: Day,
) -> Result<(ClientSecretShare, TimePermitShare, [Digest; 2]), MpinError> {
    let hashed = hashed_identity(id.as_bytes());
    let entries = [
        issuance_entry(ShareKind::Client, &hashed, day),
        issuance_entry(ShareKind::TimePermit, &hashed, day),
    ];
    Ok((
        master.client_share(id)?,
        master.time_permit_share(id, day)?,
        entries,
    ))
}

/// The time-permit share of `day` for `id`, with the entry that logs it.
pub fn time_permit(
    master: &MasterShare,
    id: &MpinId,
    day: Day,
) -> Result<(TimePermitShare, Digest), MpinError> {
    let entry = issuance_entry(ShareKind::TimePermit, &hashed_identity(id.as_bytes()), day);
    Ok((master.time_permit_share(id, day)?, entry))
}

/// A server-secret share for the authentication server of Birth Certificate
/// `server_bc`, with the entry that logs it on `day`.
pub fn server_share(
    master: &MasterShare,
    server_bc: &Digest,
    day: Day,
) -> (ServerSecretShare, Digest) {
    let entry = issuance_entry(
        ShareKind::Server,
        &hashed_identity(server_bc.as_bytes()),
        day,
    );
    (master.server_share(), entry)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_is_the_documented_hash_of_the_hashed_identity() {
        let bc = Digest::sha256(b"auth server bc");
        let hashed = hashed_identity(bc.as_bytes());
        let mut identity = b"milagro-dta/identity/v1\0".to_vec();
        identity.extend_from_slice(bc.as_bytes());
        assert_eq!(hashed, Digest::sha256(&identity));

        let mut expected = b"milagro-dta/issuance/v1\0\x03".to_vec();
        expected.extend_from_slice(hashed.as_bytes());
        expected.extend_from_slice(&20_000u32.to_be_bytes());
        let master = MasterShare::generate(&mut rand_core::OsRng);
        let (share, entry) = server_share(&master, &bc, Day(20_000));
        assert_eq!(entry, Digest::sha256(&expected));
        assert_eq!(share, master.server_share());
        assert_ne!(server_share(&master, &bc, Day(20_001)).1, entry);
        assert_ne!(
            issuance_entry(ShareKind::Client, &hashed, Day(20_000)),
            entry
        );
    }

    #[test]
    fn the_mpin_id_binds_issuer_subject_and_device_key() {
        let key = milagro_anchor::keys::SecretKey::from_bytes(&[3; 32]).unwrap();
        let other = milagro_anchor::keys::SecretKey::from_bytes(&[4; 32]).unwrap();
        let id = mpin_id("https://idp.test", "alice", &key.public_key()).unwrap();
        let mut expected = b"milagro-dta/mpin-id/v1\0https://idp.test\0alice\0".to_vec();
        expected.extend_from_slice(&key.public_key().to_sec1());
        assert_eq!(
            id.as_bytes(),
            Digest::sha256(&expected).to_string().as_bytes()
        );
        for different in [
            mpin_id("https://idp.tes", "talice", &key.public_key()),
            mpin_id("https://idp.test", "bob", &key.public_key()),
            mpin_id("https://idp.test", "alice", &other.public_key()),
        ] {
            assert_ne!(different.unwrap(), id);
        }
        let master = MasterShare::generate(&mut rand_core::OsRng);
        let (client, permit, entries) = client_shares(&master, &id, Day(7)).unwrap();
        assert_eq!(client, master.client_share(&id).unwrap());
        assert_eq!(permit, master.time_permit_share(&id, Day(7)).unwrap());
        let hashed = hashed_identity(id.as_bytes());
        assert_eq!(
            entries[1],
            issuance_entry(ShareKind::TimePermit, &hashed, Day(7))
        );
    }
}
