//! What one client address or one tenant may ask of the enrolment API
//! ([`crate::config::EnrolmentConfig`]).
//!
//! The address limit is checked before anything costs (opening a sealed request is an
//! ECDH and a decryption), the tenant limit only once a request carries a valid credential
//! for that tenant's group: counting unauthenticated requests against a tenant would let
//! anyone lock its honest devices out. Both are windows of one minute with bounded memory
//! ([`milagro_service::attempts::FailureLimiter`]). Behind a reverse proxy every request
//! comes from the proxy's address: the address limit then applies to all clients together,
//! and the proxy should limit per client itself.

use std::net::IpAddr;

use milagro_service::attempts::{FailureLimiter, TooManyFailures};

use crate::config::EnrolmentConfig;
use crate::tenants::model::TenantId;

/// The window of both limits.
const WINDOW_SECS: u64 = 60;
/// Addresses tracked at once (the oldest window is forgotten past this).
const ADDRESSES_TRACKED: usize = 100_000;
/// Tenants tracked at once.
const TENANTS_TRACKED: usize = 10_000;

/// The enrolment API's rate limits.
#[derive(Debug)]
pub struct EnrolmentLimits {
    per_address: FailureLimiter<IpAddr>,
    per_tenant: FailureLimiter<TenantId>,
}

impl EnrolmentLimits {
    /// The limits `config` sets.
    pub fn new(config: &EnrolmentConfig) -> Self {
        Self {
            per_address: FailureLimiter::new(
                config.per_address_per_minute,
                WINDOW_SECS,
                ADDRESSES_TRACKED,
            ),
            per_tenant: FailureLimiter::new(
                config.per_tenant_per_minute,
                WINDOW_SECS,
                TENANTS_TRACKED,
            ),
        }
    }

    /// Counts one request from `address`; refused past the address limit.
    pub fn address(&self, address: IpAddr, now: u64) -> Result<(), TooManyFailures> {
        self.per_address.take(&address, now)
    }

    /// Counts one credentialed request for `tenant`; refused past the tenant limit.
    pub fn tenant(&self, tenant: &TenantId, now: u64) -> Result<(), TooManyFailures> {
        self.per_tenant.take(tenant, now)
    }
}
