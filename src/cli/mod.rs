//! Subcommands, one module each.

pub mod bc;
pub mod bench;
pub mod dta;
pub mod idp;
pub mod pat;
pub mod pat_tls;
pub mod registry;
pub mod regtest;
pub mod tbs;

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
