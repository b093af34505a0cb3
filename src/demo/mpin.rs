//! The M-Pin part of `milagro demo`: two D-TAs, the demo's IdP and an authentication
//! server; a badge enrolled through the demo's TBS gets its key shares from both D-TAs and
//! logs in with its PIN, and the wrong PIN and a key from only one D-TA are refused.
//!
//! Every party anchors its own Birth Certificate. The D-TAs admit the badge, and the
//! authentication server admits the D-TAs, by those anchors over Milagro TLS; the badge
//! trusts the D-TAs and the IdP because its instructions (verified by SPV) name them.

use milagro_regtest::RegtestControls as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use milagro_anchor::digest::Digest;
use milagro_authserver::{AuthServer, RunningAuthServer};
use milagro_dta::{Dta, RunningDta};
use milagro_mpin::Pin;
use milagro_pat_client::authenticate::authenticate;
use milagro_pat_client::dtas::{client_id_for, collect_shares, locate};
use milagro_pat_client::idp_login::IdpLogin;
use milagro_pat_client::mpin_key::MpinKey;
use milagro_pat_client::Error as PatError;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_service::identity::PartyIdentity;
use milagro_tls::Options;
use milagro_wire::authserver::{self, SecretState};
use milagro_wire::dta;
use milagro_wire::login::SessionClaims;
use milagro_wire::service::AnchorStatus;
use milagro_wire::tbs::tenants::{EnrolmentMode, Group, GroupSpec, ServiceRef};
use serde::Serialize;

use crate::demo::idp::{free_port, DemoIdp};
use crate::demo::signin::SigninSummary;
use crate::demo::smtp::Mailbox;
use crate::demo::tbs::{call, DemoTbs};

pub(crate) const PATIENCE: Duration = Duration::from_secs(120);
/// The badge user's PIN, and the one a thief would try.
const PIN: u16 = 2468;
const WRONG_PIN: u16 = 1357;
/// The badge's person (the demo IdP lets addresses of this domain register themselves).
const EMAIL: &str = "dana@demo.milagro.test";

/// What the M-Pin part adds to the demo's summary.
#[derive(Debug, Serialize)]
pub struct MpinSummary {
    dtas: Vec<DtaSummary>,
    authserver: String,
    device: String,
    mpin_id: String,
    permit_day: u32,
    /// The login with the PIN: the session token's verified claims.
    login: SessionClaims,
    /// The server's error code for the wrong PIN.
    wrong_pin: String,
    /// The server's error code for a key summed from one D-TA's shares only.
    one_dta_key: String,
}

/// Where the demo's node is.
pub struct Chain<'a> {
    /// The node.
    pub node: &'a BitcoindRpc,
    /// Its RPC URL.
    pub rpc_url: &'a str,
    /// Its cookie file.
    pub cookie: &'a Path,
    /// The address mined to.
    pub miner: &'a str,
}

/// The `[node]` and `[sync]` sections every service of the demo shares.
fn node_sections(chain: &Chain<'_>) -> String {
    format!(
        "[node]\nrpc_url = {:?}\nrpc_cookie = {:?}\nnetwork = \"regtest\"\n[sync]\npoll_interval_ms = 100\n",
        chain.rpc_url, chain.cookie
    )
}

/// Starts D-TA `n` trusting `idp` (its issuer, digest and the group's client id) and
/// giving server shares to `authservers` (digests).
fn start_dta(
    chain: &Chain<'_>,
    dir: &Path,
    n: u8,
    idp: (&str, &str, &str),
    authservers: &[String],
) -> Result<RunningDta> {
    let key_file = dir.join(format!("dta{n}-master.key"));
    let mut sealing = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut sealing);
    std::fs::write(&key_file, hex::encode(sealing))?;
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let port = free_port()?;
    let (issuer, digest, client_id) = idp;
    let config = milagro_dta::config::Config::parse(&format!(
        r#"listen = "127.0.0.1:{port}"
tls_listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:{port}"
name = "Milagro demo D-TA {n}"
state_dir = {state:?}
min_peer_depth = 1
[master_key]
file = {key_file:?}
[[trusted_idps]]
issuer = {issuer:?}
bc_digest = {digest:?}
client_id = {client_id:?}
[shares]
authservers = {authservers:?}
{node}"#,
        state = dir.join(format!("dta{n}")),
        node = node_sections(chain),
    ))?;
    Ok(Dta::start(config)?)
}

const AUTHSERVER_NAME: &str = "Milagro demo authentication server";

/// Starts the authentication server on `port` (its identity already made in `state`),
/// fetching server shares from `dtas`.
fn start_authserver(
    chain: &Chain<'_>,
    state: &Path,
    port: u16,
    dtas: &[RunningDta],
) -> Result<RunningAuthServer> {
    let mut text = format!(
        r#"listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
name = {AUTHSERVER_NAME:?}
state_dir = {state:?}
min_peer_depth = 1
"#,
    );
    for dta in dtas {
        text.push_str(&format!(
            "[[dtas]]\nbc_digest = \"{}\"\nshare_api = \"{}\"\n",
            dta.state().identity.digest(),
            dta.state().share_listen
        ));
    }
    text.push_str(&node_sections(chain));
    Ok(AuthServer::start(
        milagro_authserver::config::Config::parse(&text)?,
    )?)
}

/// Two D-TAs trusting one IdP and an authentication server fetching their server shares,
/// all anchored and ready: what the demo's M-Pin part and `bench mfa` stand on.
pub(crate) struct MfaWorld {
    /// The D-TAs.
    pub dtas: Vec<RunningDta>,
    /// The authentication server, its server secret summed.
    pub authserver: RunningAuthServer,
    /// Its Birth Certificate digest.
    pub auth_digest: String,
    /// Each D-TA's digest, URL, share API and anchor, as JSON.
    pub dta_summaries: Vec<DtaSummary>,
}

/// A D-TA as the demo's summary shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DtaSummary {
    /// Its Birth Certificate digest.
    digest: Digest,
    /// Its public API.
    url: String,
    /// Where its share API serves (Milagro TLS).
    share_api: String,
    /// Its anchoring transaction.
    anchor_txid: Option<String>,
}

impl MfaWorld {
    /// Starts the D-TAs (in `dir/dta1`, `dir/dta2`) trusting `idp` (issuer, digest, the
    /// D-TAs' client id) and giving server shares to the authentication server (in
    /// `dir/authserver`) and to `also_authservers`, mines their anchors and waits until
    /// the server secret is summed.
    pub fn start(
        chain: &Chain<'_>,
        dir: &Path,
        idp: (&str, &str, &str),
        also_authservers: &[String],
    ) -> Result<Self> {
        let http = crate::cli::http_builder()?
            .timeout(Duration::from_secs(30))
            .build()?;
        let dta_status = |url: &str| call::<dta::Status>(http.get(format!("{url}/v1/status")));
        // The D-TAs must name the authentication server before it names them: its
        // identity is made first, and the server loads it when it starts.
        let auth_dir = dir.join("authserver");
        let auth_port = free_port()?;
        milagro_service::files::create_private_dir(&auth_dir)?;
        let auth_identity = PartyIdentity::load_or_create(
            milagro_authserver::KIND,
            &auth_dir,
            AUTHSERVER_NAME,
            &format!("http://127.0.0.1:{auth_port}"),
            milagro_service::unix_now(),
        )?;
        let auth_digest = auth_identity.digest().to_string();
        let mut authservers = vec![auth_digest.clone()];
        authservers.extend_from_slice(also_authservers);
        let dtas = (1..=2)
            .map(|n| start_dta(chain, dir, n, idp, &authservers))
            .collect::<Result<Vec<_>>>()?;
        let authserver = start_authserver(chain, &auth_dir, auth_port, &dtas)?;
        ensure!(
            authserver.state().identity.digest() == auth_identity.digest(),
            "the authentication server made another identity"
        );
        let auth_url = authserver.local_url();
        crate::demo::wait_for(PATIENCE, "the three anchors to be broadcast", || {
            let mut anchors = dtas
                .iter()
                .map(|d| Ok(dta_status(&d.local_url())?.party.anchor))
                .collect::<Result<Vec<_>>>()?;
            anchors.push(
                call::<authserver::Status>(http.get(format!("{auth_url}/v1/status")))?
                    .party
                    .anchor,
            );
            Ok(anchors
                .iter()
                .all(|anchor| matches!(anchor, AnchorStatus::Pending { .. }))
                .then_some(()))
        })?;
        chain.node.generate_to_address(1, chain.miner)?;
        let mut dta_summaries = Vec::new();
        for dta in &dtas {
            let url = dta.local_url();
            let (status, share_api) =
                crate::demo::wait_for(PATIENCE, "a D-TA's share API", || {
                    let status = dta_status(&url)?;
                    Ok(status
                        .share_api
                        .clone()
                        .map(|share_api| (status, share_api)))
                })?;
            let anchor_txid = match status.party.anchor {
                AnchorStatus::Pending { txid } | AnchorStatus::Confirmed { txid, .. } => Some(txid),
                AnchorStatus::None => None,
            };
            eprintln!(
                "    D-TA {}  anchored by {}, shares over milagro tls at {share_api}",
                status.party.digest,
                anchor_txid.as_deref().unwrap_or_default(),
            );
            dta_summaries.push(DtaSummary {
                digest: status.party.digest,
                url,
                share_api,
                anchor_txid,
            });
        }
        let ready = crate::demo::wait_for(
            PATIENCE,
            "the authentication server's server secret",
            || {
                let status: authserver::Status = call(http.get(format!("{auth_url}/v1/status")))?;
                Ok((status.server_secret.state == SecretState::Ready).then_some(status))
            },
        )?;
        eprintln!(
            "    authentication server {auth_digest}: the server-secret shares of {} D-TAs summed (each fetched over milagro tls)",
            ready.server_secret.dtas.len()
        );
        Ok(Self {
            dtas,
            authserver,
            auth_digest,
            dta_summaries,
        })
    }

    /// Stops every service.
    pub fn stop(self) {
        self.authserver.stop();
        for dta in self.dtas {
            dta.stop();
        }
    }

    /// The `[[mpin.dtas]]` tables of an IdP that sums these D-TAs' server shares.
    pub fn mpin_dtas(&self) -> String {
        self.dtas
            .iter()
            .map(|d| {
                format!(
                    "[[mpin.dtas]]\nbc_digest = \"{}\"\nshare_api = \"{}\"\n",
                    d.state().identity.digest(),
                    d.state().share_listen
                )
            })
            .collect()
    }
}

/// The server's error code of a refused login or sign-in.
pub(crate) fn refusal<T>(result: Result<T, PatError>) -> Result<String> {
    match result {
        Err(PatError::Server {
            code: Some(code), ..
        }) => Ok(code),
        Err(other) => Err(other.into()),
        Ok(_) => anyhow::bail!("the login was accepted"),
    }
}

/// Runs the M-Pin part with the demo's running TBS and IdP (restarted with `[mpin]` once
/// the D-TAs run; stopped at the end), the IdP's mail arriving in `mailbox`.
pub fn run(
    chain: &Chain<'_>,
    tbs: &DemoTbs,
    idp: DemoIdp,
    mailbox: &Mailbox,
) -> Result<(MpinSummary, SigninSummary)> {
    let dir = tbs.dir.path().join("mpin");
    std::fs::create_dir_all(&dir)?;
    let http = crate::cli::http_builder()?
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let issuer = idp.running.state().issuer().to_owned();
    let idp_digest = idp.running.state().identity.digest().to_string();

    crate::demo::step(
        "registering the D-TAs' one client at the IdP: public, device grant (RFC 8628)",
    );
    let client_id = crate::demo::idp::register_device_client(&http, &issuer)?;
    eprintln!("    client id {client_id}");

    crate::demo::step(
        "starting two D-TAs and an authentication server; each anchors its own Birth Certificate",
    );
    let world = MfaWorld::start(
        chain,
        &dir,
        (&issuer, &idp_digest, &client_id),
        std::slice::from_ref(&idp_digest),
    )?;
    crate::demo::step("the IdP's operator adds [mpin]: the IdP sums both D-TAs' server shares over milagro tls, as the authentication server does");
    let idp = idp.restart_with(&format!(
        "[mpin]\nmin_peer_depth = 1\n{}",
        world.mpin_dtas()
    ))?;
    let signin = idp
        .running
        .state()
        .mpin
        .clone()
        .context("the IdP has no [mpin]")?;
    crate::demo::wait_for(PATIENCE, "the IdP's server secret", || {
        Ok(signin.verifier.server_secret.secret().map(|_| ()))
    })?;
    let auth_digest = world.auth_digest.clone();
    let auth_url = world.authserver.local_url();
    let dta_summaries = world.dta_summaries.clone();
    crate::demo::step("group staff names both D-TAs and the IdP; badge-1 enrols through the TBS");
    let group = GroupSpec {
        name: "Staff badges".into(),
        mode: EnrolmentMode::Direct,
        dtas: dta_summaries
            .iter()
            .map(|d| ServiceRef {
                birth_certificate: d.digest,
                url: d.url.clone(),
            })
            .collect(),
        idp: Some(ServiceRef {
            birth_certificate: idp.running.state().identity.digest(),
            url: issuer.clone(),
        }),
        enrolment_keys: vec![tbs.maker.public_key().to_string()],
    };
    let _: Group = call(
        http.put(format!("{}/v1/tenants/acme/groups/staff", tbs.url))
            .bearer_auth(&tbs.tenant_token)
            .json(&group),
    )?;
    let mut enrolled = crate::demo::tbs::enrol_devices(
        chain.node,
        chain.miner,
        &tbs.url,
        tbs.digest,
        &tbs.sources,
        tbs.dir.path(),
        &tbs.maker,
        &[("badge-1", "staff")],
    )?;
    let (_, _, badge) = enrolled.pop().context("badge-1 did not enrol")?;
    let badge_dir = tbs.dir.path().join("badge-1");
    eprintln!(
        "    badge-1 key {}: instructions name {} D-TAs and the IdP, all verified by SPV",
        badge.device().public_key(),
        badge.instructions().instructions.dtas.len()
    );

    crate::demo::step("badge-1's person registers it at the IdP without a password (device grant): the badge shows a code, the person proves their e-mail address");
    let instructions = &badge.instructions().instructions;
    let outbound = crate::cli::outbound()?;
    let located = instructions
        .dtas
        .iter()
        .map(|dta| locate(&outbound, dta))
        .collect::<Result<Vec<_>, _>>()?;
    let idp_anchor = instructions
        .idp
        .as_ref()
        .context("no idp in the instructions")?;
    let login = IdpLogin::discover(
        &crate::cli::outbound()?,
        idp_anchor,
        &client_id_for(&located, &idp_anchor.url)?,
    )?;
    let pending = login.start()?;
    eprintln!(
        "    open {} and enter {}",
        pending.verification_uri(),
        pending.user_code()
    );
    crate::demo::signin::prove_email(&http, &issuer, mailbox, (pending.user_code(), EMAIL), 0)?;
    let id_token = pending.wait(badge.device().key())?;
    eprintln!("    approved; an id token for the D-TAs' client id, and badge-1 is the person's registered device");

    crate::demo::step("badge-1 collects a share from each D-TA over milagro tls, checks and sums them, and takes its PIN out");
    let (identity, directory) = crate::cli::pat_tls::device_parts(badge.device())?;
    let options = Options {
        min_depth: 1,
        ..Options::default()
    };
    let shares = crate::cli::pat_tls::runtime()?.block_on(collect_shares(
        &identity,
        &located,
        directory,
        &options,
        &id_token.share_request(),
    ))?;
    let key = MpinKey::assemble(&shares, Pin::new(PIN)?)?;
    key.save(&badge_dir)?;
    let mpin_id = String::from_utf8_lossy(key.id.as_bytes()).into_owned();
    eprintln!(
        "    m-pin id {mpin_id}: token and day-{} permit stored, no share and no PIN",
        key.permit.day().0
    );

    crate::demo::step("badge-1 logs in at the authentication server with its PIN (zero knowledge)");
    let auth = crate::cli::service_client(&auth_url)?;
    let session = authenticate(&auth, &key, Pin::new(PIN)?)?;
    let claims: SessionClaims = call(
        http.get(format!("{auth_url}/v1/session"))
            .bearer_auth(&session.token),
    )?;
    ensure!(
        claims.sub == mpin_id,
        "the session is not badge-1's: {claims:?}"
    );
    eprintln!(
        "    session token signed by the server's session key: {}",
        serde_json::to_string(&claims)?
    );

    crate::demo::step("a wrong PIN, and a key with only D-TA 1's shares, are refused");
    let wrong_pin = refusal(authenticate(&auth, &key, Pin::new(WRONG_PIN)?))?;
    eprintln!("    wrong PIN: {wrong_pin}");
    let half_key = MpinKey::assemble(&shares[..1], Pin::new(PIN)?)?;
    let one_dta_key = refusal(authenticate(&auth, &half_key, Pin::new(PIN)?))?;
    eprintln!("    one D-TA's shares: {one_dta_key}");

    let signed_in = crate::demo::signin::rp_signs_in(&http, &issuer, &key, (PIN, WRONG_PIN))?;
    world.stop();
    idp.running.stop();
    let mpin = MpinSummary {
        dtas: dta_summaries,
        authserver: auth_digest,
        device: badge.device().public_key().to_string(),
        mpin_id,
        permit_day: key.permit.day().0,
        login: claims,
        wrong_pin,
        one_dta_key,
    };
    Ok((mpin, signed_in))
}
