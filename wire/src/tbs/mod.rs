//! The TBS's API (`tbs/openapi.json`): its status and public registry ([`registry`]),
//! device enrolment ([`enrolment`]), the audit log of registrations ([`audit`]) and the
//! tenant API ([`tenants`]). Its Birth Certificate document is
//! [`crate::service::AnchoredBirthCertificate`], its errors [`crate::ErrorBody`].

pub mod audit;
pub mod enrolment;
pub mod registry;
pub mod tenants;
