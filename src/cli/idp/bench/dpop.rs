//! The cost DPoP adds to a device's login (ADR 0012), next to the secp256k1 (ES256K)
//! verification it is bounded by, in the same run: making a proof (one signature,
//! device side), checking one (base64, JSON, the signature, the claims, the thumbprint;
//! IdP side), and a key's RFC 7638 thumbprint (the D-TA's one extra step per client
//! share).

use std::time::Instant;

use milagro_anchor::digest::Digest;
use milagro_anchor::dpop::{self, Thumbprint};
use milagro_anchor::keys::SecretKey;
use serde::Serialize;

/// Microseconds per operation, one thread.
#[derive(Debug, Serialize)]
pub(super) struct DpopCosts {
    /// Making a proof.
    pub sign_us: f64,
    /// Checking a proof (the IdP's [`dpop::verify`]; the `jti` cache is not counted).
    pub verify_us: f64,
    /// A thumbprint of a key.
    pub thumbprint_us: f64,
    /// One ES256K signature check of a proof's signing input: the floor of `verify_us`.
    pub es256k_verify_us: f64,
}

/// Runs each operation for about `seconds`.
pub(super) fn dpop_costs(seconds: f64) -> DpopCosts {
    let key = SecretKey::generate(&mut rand_core::OsRng);
    let public = key.public_key();
    let uri = "http://127.0.0.1:8081/token";
    let request = dpop::Request {
        method: "POST",
        uri,
        access_token: None,
    };
    let now = milagro_service::unix_now();
    let proof = dpop::sign(&key, &request, "0123456789abcdef0123456789abcdef", now);
    let (input, _) = proof.rsplit_once('.').unwrap_or_default();
    let digest = Digest::sha256(input.as_bytes());
    let signature = key.sign_digest(&digest);
    DpopCosts {
        sign_us: per_op(seconds, || {
            dpop::sign(&key, &request, "0123456789abcdef0123456789abcdef", now)
        }),
        verify_us: per_op(seconds, || dpop::verify(&proof, &request, now).is_ok()),
        thumbprint_us: per_op(seconds, || Thumbprint::of(&public)),
        es256k_verify_us: per_op(seconds, || {
            public.verify_digest(&digest, &signature).is_ok()
        }),
    }
}

/// Microseconds per call of `op`, run for about `seconds`.
fn per_op<T>(seconds: f64, mut op: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..50 {
            std::hint::black_box(op());
        }
        count += 50;
    }
    start.elapsed().as_secs_f64() * 1e6 / count as f64
}
