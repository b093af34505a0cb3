//! Enrolment credentials: a device maker's statement that one device key may enrol in one
//! tenant's group (`docs/adr/0011-enrolment-credentials-and-pay-after-sign.md` says why this shape).
//!
//! The maker registers one or more **enrolment keys** (secp256k1 public keys) on a group of
//! the TBS; only their public halves ever reach the TBS. A credential is the signature of
//! one of those keys over
//!
//! ```text
//! SHA-256( "milagro/enrolment-credential/v1" ‖ 0x00 ‖ len(tenant) (1) ‖ tenant
//!          ‖ len(group) (1) ‖ group ‖ device key (33, compressed SEC1) )
//! ```
//!
//! Who holds the enrolment key is the maker's choice, and both cases make the same
//! credential:
//! - **per-device credentials** (Azure DPS group enrolment with X.509, AWS "trusted
//!   user"): the key stays on the maker's provisioning station, which signs each device
//!   key at the factory ([`EnrolmentCredential::issue`]); the device stores the result;
//! - **a fleet claim key** (AWS fleet provisioning "by claim"): every device of a batch
//!   carries the same enrolment key and signs its own key when it first enrols. Cheaper to
//!   manufacture, but one extracted claim key enrols any key until the group drops it.
//!
//! A credential proves permission, not possession: the enrolment request around it carries
//! the device key's own fresh signature ([`crate::enrolment`]). It does not expire; the
//! maker withdraws every credential of a key by removing the key from the group.
//!
//! ```
//! use milagro_anchor::enrolment_credential::EnrolmentCredential;
//! use milagro_anchor::keys::SecretKey;
//!
//! let maker = SecretKey::generate(&mut rand_core::OsRng);
//! let device = SecretKey::generate(&mut rand_core::OsRng).public_key();
//! let credential = EnrolmentCredential::issue(&maker, "acme", "eu", &device)?;
//! let read = EnrolmentCredential::from_json(&credential.to_json())?;
//! read.check("acme", "eu", &device)?;
//! assert_eq!(read.issuer(), &maker.public_key());
//! # Ok::<(), milagro_anchor::enrolment_credential::CredentialError>(())
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::keys::{PublicKey, SecretKey, Signature};

/// The domain separator of a credential's signed digest.
pub const CREDENTIAL_DOMAIN: &[u8] = b"milagro/enrolment-credential/v1";

/// The only credential format version.
pub const CREDENTIAL_VERSION: u8 = 1;

/// Longest tenant or group name a credential names (the TBS's slugs are shorter).
pub const MAX_NAME_BYTES: usize = 64;

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Not the credential JSON of this version.
    #[error("malformed enrolment credential: {0}")]
    Malformed(String),
    /// A tenant or group name is empty or longer than [`MAX_NAME_BYTES`].
    #[error("invalid {0} name in an enrolment credential")]
    InvalidName(&'static str),
    /// The signature does not verify with the issuer's key.
    #[error("the enrolment credential's signature does not verify with its issuer key")]
    BadSignature,
    /// The credential is for another device, tenant or group.
    #[error("the enrolment credential is for {what} {named:?}, not {expected:?}")]
    NotFor {
        /// `device`, `tenant` or `group`.
        what: &'static str,
        /// What the credential names.
        named: String,
        /// What it was presented for.
        expected: String,
    },
}

/// One maker-signed permission for one device key to enrol in one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CredentialWire", into = "CredentialWire")]
pub struct EnrolmentCredential {
    tenant: String,
    group: String,
    device: PublicKey,
    issuer: PublicKey,
    signature: Signature,
}

/// The JSON form (`version` first, keys in this order).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialWire {
    version: u8,
    tenant: String,
    group: String,
    device: PublicKey,
    issuer: PublicKey,
    signature: Signature,
}

impl TryFrom<CredentialWire> for EnrolmentCredential {
    type Error = CredentialError;

    fn try_from(wire: CredentialWire) -> Result<Self, Self::Error> {
        if wire.version != CREDENTIAL_VERSION {
            return Err(CredentialError::Malformed(format!(
                "version {} (this build reads {CREDENTIAL_VERSION})",
                wire.version
            )));
        }
        let credential = Self {
            tenant: wire.tenant,
            group: wire.group,
            device: wire.device,
            issuer: wire.issuer,
            signature: wire.signature,
        };
        credential.verify()?;
        Ok(credential)
    }
}

impl From<EnrolmentCredential> for CredentialWire {
    fn from(credential: EnrolmentCredential) -> Self {
        Self {
            version: CREDENTIAL_VERSION,
            tenant: credential.tenant,
            group: credential.group,
            device: credential.device,
            issuer: credential.issuer,
            signature: credential.signature,
        }
    }
}

/// What an enrolment key signs to let `device` enrol in `tenant`'s `group` (the module
/// documentation gives the layout). Names longer than 255 bytes cannot be encoded; callers
/// check [`MAX_NAME_BYTES`] first.
pub fn credential_digest(tenant: &str, group: &str, device: &PublicKey) -> [u8; 32] {
    let length = |name: &str| [u8::try_from(name.len()).unwrap_or(u8::MAX)];
    Sha256::new()
        .chain_update(CREDENTIAL_DOMAIN)
        .chain_update([0])
        .chain_update(length(tenant))
        .chain_update(tenant.as_bytes())
        .chain_update(length(group))
        .chain_update(group.as_bytes())
        .chain_update(device.to_sec1())
        .finalize()
        .into()
}

fn check_name(name: &str, what: &'static str) -> Result<(), CredentialError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(CredentialError::InvalidName(what));
    }
    Ok(())
}

impl EnrolmentCredential {
    /// Signs, with the enrolment key `issuer`, the permission for `device` to enrol in
    /// `tenant`'s `group`.
    pub fn issue(
        issuer: &SecretKey,
        tenant: &str,
        group: &str,
        device: &PublicKey,
    ) -> Result<Self, CredentialError> {
        check_name(tenant, "tenant")?;
        check_name(group, "group")?;
        Ok(Self {
            tenant: tenant.to_owned(),
            group: group.to_owned(),
            device: *device,
            issuer: issuer.public_key(),
            signature: issuer.sign_prehash(&credential_digest(tenant, group, device)),
        })
    }

    /// Whether the signature verifies with the issuer key for the names and device it
    /// carries (every parsed credential has passed this).
    pub fn verify(&self) -> Result<(), CredentialError> {
        check_name(&self.tenant, "tenant")?;
        check_name(&self.group, "group")?;
        let digest = credential_digest(&self.tenant, &self.group, &self.device);
        self.issuer
            .verify_prehash(&digest, &self.signature)
            .map_err(|_| CredentialError::BadSignature)
    }

    /// Whether the credential is for `device` in `tenant`'s `group`. Whether its issuer may
    /// sign for that group is the TBS's question (the group's enrolment keys).
    pub fn check(
        &self,
        tenant: &str,
        group: &str,
        device: &PublicKey,
    ) -> Result<(), CredentialError> {
        let differs = |what, named: &str, expected: &str| CredentialError::NotFor {
            what,
            named: named.chars().take(MAX_NAME_BYTES).collect(),
            expected: expected.chars().take(MAX_NAME_BYTES).collect(),
        };
        if self.device != *device {
            return Err(differs(
                "device",
                &self.device.to_string(),
                &device.to_string(),
            ));
        }
        if self.tenant != tenant {
            return Err(differs("tenant", &self.tenant, tenant));
        }
        if self.group != group {
            return Err(differs("group", &self.group, group));
        }
        Ok(())
    }

    /// The enrolment key that signed it.
    pub fn issuer(&self) -> &PublicKey {
        &self.issuer
    }

    /// The device key it lets enrol.
    pub fn device(&self) -> &PublicKey {
        &self.device
    }

    /// The tenant it names.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The group it names.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The JSON file a maker hands a device.
    pub fn to_json(&self) -> String {
        // A struct of strings and keys always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads and verifies a credential file.
    pub fn from_json(text: &str) -> Result<Self, CredentialError> {
        let wire: CredentialWire =
            serde_json::from_str(text).map_err(|e| CredentialError::Malformed(e.to_string()))?;
        Self::try_from(wire)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn keys() -> (SecretKey, PublicKey) {
        (
            SecretKey::generate(&mut OsRng),
            SecretKey::generate(&mut OsRng).public_key(),
        )
    }

    #[test]
    fn a_credential_round_trips_and_names_what_it_permits() {
        let (maker, device) = keys();
        let credential = EnrolmentCredential::issue(&maker, "acme", "eu", &device).unwrap();
        let read = EnrolmentCredential::from_json(&credential.to_json()).unwrap();
        assert_eq!(read, credential);
        read.check("acme", "eu", &device).unwrap();
        let other = SecretKey::generate(&mut OsRng).public_key();
        for (tenant, group, key, what) in [
            ("acme", "eu", &other, "device"),
            ("other", "eu", &device, "tenant"),
            ("acme", "us", &device, "group"),
        ] {
            match read.check(tenant, group, key) {
                Err(CredentialError::NotFor { what: got, .. }) => assert_eq!(got, what),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_changed_field_breaks_the_signature() {
        let (maker, device) = keys();
        let json = EnrolmentCredential::issue(&maker, "acme", "eu", &device)
            .unwrap()
            .to_json();
        let other = SecretKey::generate(&mut OsRng).public_key();
        for tampered in [
            json.replace("\"eu\"", "\"us\""),
            json.replace("\"acme\"", "\"acne\""),
            json.replace(&device.to_string(), &other.to_string()),
            json.replace(&maker.public_key().to_string(), &other.to_string()),
        ] {
            assert_ne!(tampered, json);
            assert_eq!(
                EnrolmentCredential::from_json(&tampered),
                Err(CredentialError::BadSignature),
                "{tampered}"
            );
        }
    }

    #[test]
    fn malformed_credentials_are_refused_with_a_reason() {
        let (maker, device) = keys();
        let json = EnrolmentCredential::issue(&maker, "acme", "eu", &device)
            .unwrap()
            .to_json();
        for bad in [
            json.replace("\"version\": 1", "\"version\": 2"),
            json.replace("\"version\": 1", "\"version\": 1, \"extra\": 0"),
            "{}".to_owned(),
            "not json".to_owned(),
        ] {
            assert!(matches!(
                EnrolmentCredential::from_json(&bad),
                Err(CredentialError::Malformed(_))
            ));
        }
        assert_eq!(
            EnrolmentCredential::issue(&maker, "", "eu", &device),
            Err(CredentialError::InvalidName("tenant"))
        );
    }
}
