//! The benchmarks behind `milagro bench`, one module per thing measured.
//!
//! Every figure is printed next to the raw cost that bounds it (the node serving blocks,
//! one ECDSA verify, one SHA-256), so a regression shows as a ratio moving, whatever the
//! machine. Timing is plain [`std::time::Instant`]; see [`stats`] for how runs are repeated
//! and summarised.
//!
//! - [`fixture`]: the regtest chain the registry benchmarks read (setup, timed apart);
//! - [`sync`]: registry sync vs `bitcoind` alone, with the extract and store parts;
//! - [`bc_verify`]: Birth Certificate verify latency vs a bare ECDSA verify.

pub mod bc_verify;
pub mod fixture;
pub mod stats;
pub mod sync;
