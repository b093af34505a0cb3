//! `milagro pat approve --ciba`: a relying party asked the device's IdP to authenticate
//! the device's person without a browser (OpenID Connect CIBA); the device lists the
//! requests waiting for them (a DPoP proof by its anchored key), shows the client and the
//! binding message the relying party also shows, and approves one with the PIN (the two
//! M-Pin passes) or, with `--deny`, denies it. `--request-id` picks a request; without
//! it, the one that expires first. The PIN comes from `MILAGRO_PIN` or standard input, as
//! for every `pat` command.

use anyhow::{bail, Context as _, Result};
use clap::Args;
use milagro_pat_client::ciba::{approve as approve_request, deny, pending};
use milagro_pat_client::mpin_key::MpinKey;
use milagro_pat_client::Enrolled;
use serde_json::json;

use super::pat_mpin::read_pin;
use super::print_json;

/// The CIBA options of `milagro pat approve`.
#[derive(Debug, Args)]
pub struct CibaArgs {
    /// Approve a relying party's backchannel request (CIBA) waiting for this device's
    /// person, instead of a sign-in page's access number.
    #[arg(long)]
    pub ciba: bool,
    /// The request to act on (as listed); the one expiring first without it.
    #[arg(long, requires = "ciba")]
    pub request_id: Option<String>,
    /// Deny the request instead of approving it (no PIN needed).
    #[arg(long, requires = "ciba")]
    pub deny: bool,
}

/// Runs `milagro pat approve --ciba` at the device's IdP `idp_url`.
pub fn approve(args: &CibaArgs, enrolled: &Enrolled, key: &MpinKey, idp_url: &str) -> Result<()> {
    let server = crate::cli::service_client(idp_url)?;
    let device_key = enrolled.device().key();
    let requests = pending(&server, device_key, key)?;
    for request in &requests {
        eprintln!(
            "request {}: {} ({}) asks to sign you in, scope \"{}\", message \"{}\"; {} s left",
            request.request_id,
            request.client_name.as_deref().unwrap_or(&request.client_id),
            request.client_id,
            request.scope,
            request.binding_message.as_deref().unwrap_or(""),
            request.expires_in
        );
    }
    let chosen = match &args.request_id {
        Some(id) => requests
            .iter()
            .find(|request| &request.request_id == id)
            .with_context(|| format!("no request {id} waits for you at {idp_url}"))?,
        None => match requests.first() {
            Some(first) => first,
            None => bail!("no backchannel request waits for you at {idp_url}"),
        },
    };
    if args.deny {
        let denied = deny(&server, device_key, key, &chosen.request_id)?;
        eprintln!("denied: {} hears access_denied", denied.client_id);
        return print_json(&json!({
            "status": denied.status,
            "client_id": denied.client_id,
            "request_id": chosen.request_id,
        }));
    }
    let approved = approve_request(&server, key, read_pin()?, &chosen.request_id)?;
    eprintln!("approved: {} may now get your tokens", approved.client_id);
    print_json(&json!({
        "status": approved.status,
        "client_id": approved.client_id,
        "subject": approved.subject,
        "request_id": chosen.request_id,
        "binding_message": chosen.binding_message,
    }))
}
