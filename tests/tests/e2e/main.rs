//! The cross-crate end-to-end tests, against real processes (a regtest `bitcoind`, the
//! services on loopback, real relying parties): one test binary, so the suite links the
//! workspace once instead of once per file. Each module is one capability's
//! specification; what they share is in the `milagro-tests` library (`tests/src/`).
//!
//! `tests/tests/exhaustion.rs` stays a binary of its own: it measures the memory of the
//! process the IdP runs in, which the other tests would share here.

mod anchoring;
mod authserver_login;
mod chain_sources;
mod chain_trust;
mod device_registration;
mod device_third_party_login;
mod dpop_binding;
mod dta_client_shares;
mod dta_shares;
mod electrum_source;
mod https;
mod https_mpin_login;
mod idp_apache;
mod idp_code_kill;
mod idp_device;
mod idp_dpop;
mod idp_keys;
mod idp_login_page;
mod idp_negative;
mod idp_node_rp;
mod idp_oidc;
mod idp_sessions;
mod jwks_mitm;
mod key_separation;
mod milagro_tls;
mod openapi_conformance;
mod passwordless_registration;
mod passwords_off;
mod pat_client;
mod proxy_limits;
mod readiness;
mod service_runtime;
mod tbs_admin_page;
mod tbs_audit;
mod tbs_batch;
mod tbs_coin_drain;
mod tbs_enrolment;
mod tbs_funding_pool;
mod tbs_identity;
mod tbs_offer_pinning;
mod tbs_registry_api;
mod tbs_robustness;
mod tbs_tenants;
mod third_party_idp;
mod wire_documents;
