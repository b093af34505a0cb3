//! Tenants and device groups: the SaaS shape of the TBS.
//!
//! A tenant is an application developer or device maker. The operator (holding the admin
//! token) creates tenants; each tenant holds API tokens and manages its device groups,
//! attaching to each the D-TAs and IdP (by Birth Certificate digest and URL) its devices
//! must use. Tokens are stored only as SHA-256 hashes. Tenant data is reachable only
//! through a [`store::TenantScope`], which [`store::authorize`] makes from an authenticated
//! [`store::Principal`], so no code path can read one tenant's data with another's
//! credentials.

pub mod model;
pub mod store;
mod wire;

#[cfg(test)]
mod tests;
