//! `milagro pat login --provider ISSUER`: the device's user logs in at a third-party OpenID
//! provider the D-TAs trust by web PKI (ADR 0015) instead of the anchored IdP its
//! instructions name: discovery over verified HTTPS (`--ca-bundle`, else the system's
//! roots), the device authorization grant with a nonce committing to the device's key,
//! the token checked (`milagro_pat_client::third_party_login`). The provider is remembered
//! in the state directory once a login there succeeded, so that `pat login` alone goes
//! there again; `--instructed-idp` forgets it.

use anyhow::Result;
use milagro_pat_client::dtas::{client_id_for, DtaEndpoint};
use milagro_pat_client::idp_login::IdToken;
use milagro_pat_client::third_party_login::{RememberedProvider, ThirdPartyLogin};
use milagro_pat_client::Enrolled;

/// The provider this login goes to: `provider` if given, none if `instructed_idp` (and
/// the remembered one is forgotten), else the remembered one, if any.
pub(super) fn chosen(
    state: &std::path::Path,
    provider: Option<String>,
    instructed_idp: bool,
) -> Result<Option<RememberedProvider>> {
    Ok(match (provider, instructed_idp) {
        (Some(issuer), _) => Some(RememberedProvider { issuer }),
        (None, true) => {
            RememberedProvider::forget(state)?;
            None
        }
        (None, false) => RememberedProvider::load(state)?,
    })
}

/// Logs the user of `enrolled` in at `provider` for the client id the D-TAs `dtas` agree
/// on there (each must trust it), waiting while they approve the code shown; remembers
/// the provider.
pub(super) fn log_in(
    enrolled: &Enrolled,
    dtas: &[DtaEndpoint],
    provider: &RememberedProvider,
) -> Result<IdToken> {
    let client_id = client_id_for(dtas, &provider.issuer)?;
    let login = ThirdPartyLogin::discover(&super::outbound()?, &provider.issuer, &client_id)?;
    let pending = login.start(&enrolled.device().key().public_key())?;
    eprintln!(
        "to approve this device at {}, open {} and enter the code {}",
        login.issuer(),
        pending.verification_uri(),
        pending.user_code()
    );
    let token = pending.wait()?;
    provider.save(enrolled.device().dir())?;
    Ok(token)
}
