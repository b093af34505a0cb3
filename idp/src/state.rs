//! What the HTTP handlers share, and the activity log's entries.

use std::net::IpAddr;
use std::sync::Arc;

use milagro_anchor::digest::Digest;
use milagro_registry::redb_store::RedbStore;
use milagro_service::attempts::FailureLimiter;
use milagro_service::audit::Audit;
use milagro_service::identity::PartyIdentity;
use milagro_service::own_anchor::OwnAnchor;
use milagro_service::peer_directory::IndexDirectory;
use milagro_service::work_gate::WorkGate;

use crate::backchannel::Notifier;
use crate::clients::ClientStore;
use crate::config::Config;
use crate::device_grants::DeviceGrants;
use crate::devices::Devices;
use crate::dpop::SeenProofs;
use crate::grants::Grants;
use crate::keys::KeyRing;
use crate::oauth::OAuthError;
use crate::sessions::{Consents, Sessions};
use crate::signin::MpinSignIn;
use crate::sweep::Sweep;
use crate::users::UserStore;

/// Everything a request handler may use. Cheap to clone (shared pointers and sled trees).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The IdP's anchored identity (role `idp`).
    pub identity: Arc<PartyIdentity>,
    /// Where its anchor stands (the chain loop writes it).
    pub own_anchor: Arc<OwnAnchor>,
    /// The chain index the anchor is found and checked in.
    pub index: Arc<RedbStore>,
    /// What the chain loop works on (the identity, anchor, index and log of this state).
    pub chain: milagro_service::runtime::ChainParts,
    /// The ID-token signing keys.
    pub keys: Arc<KeyRing>,
    /// The people who log in.
    pub users: Arc<dyn UserStore>,
    /// The queue every password check (`POST /login`, `POST /device`) goes through: at
    /// most one check per memory slot of the users' [`crate::passwords::Passwords`],
    /// [`crate::server::PASSWORD_CHECKS_QUEUED`] more waiting, 503 beyond.
    pub password_checks: Arc<WorkGate>,
    /// Registered relying parties.
    pub clients: ClientStore,
    /// Codes and tokens.
    pub grants: Grants,
    /// Device authorizations.
    pub devices: DeviceGrants,
    /// Each person's registered device.
    pub registered_devices: Devices,
    /// Failed device-code approvals per client address (`POST /device`).
    pub device_attempts: Arc<FailureLimiter<IpAddr>>,
    /// Registration without a password: codes, mail, their rate limits.
    pub enrolment: Arc<crate::enrolment_codes::Enrolment>,
    /// The DPoP proofs accepted recently (a `jti` counts once).
    pub seen_proofs: Arc<SeenProofs>,
    /// Login sessions.
    pub sessions: Sessions,
    /// People's consents to clients.
    pub consents: Consents,
    /// What deletes expired rows (run by the chain loop's hook).
    pub sweep: Arc<Sweep>,
    /// What tells clients of a logout (back-channel).
    pub notifier: Arc<Notifier>,
    /// The activity log.
    pub audit: Arc<Audit>,
    /// The service database (kept open while any handler runs).
    pub db: Arc<sled::Db>,
    /// M-Pin sign-in with the person's device (`[mpin]`); `None` without the section.
    pub mpin: Option<Arc<MpinSignIn>>,
    /// Where the D-TAs' anchors are looked up (the IdP's own index and node).
    pub directory: Arc<IndexDirectory>,
}

/// The domain separator of an activity log entry.
pub const AUTHENTICATION_DOMAIN: &[u8] = b"milagro-idp/authentication/v1";

/// The activity log entry of an authentication of `subject` during period `period`
/// (Unix time divided by the configured period):
///
/// ```text
/// SHA-256( "milagro-idp/authentication/v1" ‖ 0x00 ‖ len(subject) (1 byte) ‖ subject
///        ‖ period (u64 big-endian) )
/// ```
///
/// No raw identifier is logged, and one entry stands for every authentication of a user
/// within one period: the log shows that the user authenticated in that period, and only
/// the user (or the IdP) can say which entry is theirs.
pub fn authentication_entry(subject: &str, period: u64) -> Digest {
    let mut bytes = Vec::with_capacity(AUTHENTICATION_DOMAIN.len() + 2 + subject.len() + 8);
    bytes.extend_from_slice(AUTHENTICATION_DOMAIN);
    bytes.push(0);
    // Subjects are 22 base64url characters; the cap only guards the length prefix.
    bytes.push(u8::try_from(subject.len()).unwrap_or(u8::MAX));
    bytes.extend_from_slice(subject.as_bytes());
    bytes.extend_from_slice(&period.to_be_bytes());
    Digest::sha256(&bytes)
}

impl AppState {
    /// The address per-address limits count `req` under: its peer, or behind a trusted
    /// reverse proxy (`[proxy]`) the client it forwarded.
    pub(crate) fn client_ip(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        milagro_service::proxy::client_ip(req, &self.config.party.trusted_proxies)
    }

    /// Logs a successful authentication of `subject` at `now` (once per period).
    pub fn log_authentication(&self, subject: &str, now: u64) -> Result<(), OAuthError> {
        let period = now / self.config.audit_period.as_secs().max(1);
        let entry = authentication_entry(subject, period);
        let (index, new) = self
            .audit
            .append(entry.as_bytes(), &entry)
            .map_err(OAuthError::internal)?;
        if new {
            tracing::info!(%index, "authentication logged");
        }
        Ok(())
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.config.party.public_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_is_the_documented_hash() {
        let mut expected = b"milagro-idp/authentication/v1\0\x05alice".to_vec();
        expected.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(authentication_entry("alice", 7), Digest::sha256(&expected));
        assert_ne!(
            authentication_entry("alice", 8),
            authentication_entry("alice", 7)
        );
    }
}
