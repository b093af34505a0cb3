//! What the D-TA tests share: a D-TA configuration on the world's node, waiting for its
//! share API, and requests to it over Milagro TLS as an anchored party.

use std::path::Path;
use std::time::Duration;

use crate::enrolment_world::EnrolmentWorld;
use crate::tls_parties::{directory, runtime, TlsParty};
use crate::{wait_until, Api};
use milagro_dta::config::Config;
use milagro_dta::RunningDta;
use milagro_idp::RunningIdp;
use milagro_registry::chain::ChainSource as _;
use milagro_service::own_anchor::AnchorState;
use milagro_tls::{Options, TlsError};
use milagro_wire::service::AnchorStatus;
use serde_json::Value;

/// How long a D-TA test waits for anything (an anchor, a share API).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A D-TA on `w`'s node with the sealing key line `master_key` (`env = ...` or `file =
/// ...`) and `extra` TOML (e.g. `[[trusted_idps]]` tables) appended.
pub fn config(w: &EnrolmentWorld, state_dir: &Path, master_key: &str, extra: &str) -> Config {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
public_url = "https://dta1.milagro.test"
name = "D-TA 1"
state_dir = {state_dir:?}
[master_key]
{master_key}
[node]
rpc_url = {rpc:?}
rpc_cookie = {cookie:?}
network = "regtest"
[sync]
poll_interval_ms = 50
max_backoff_ms = 400
[audit]
checkpoint_interval_secs = 1
{extra}
"#,
        rpc = w.node().rpc_url(),
        cookie = w.node().cookie(),
    );
    Config::parse(&text).unwrap()
}

/// Writes a sealing key into an owner-only file in `dir`; returns the `[master_key]` line
/// naming it.
pub fn sealing_key_file(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let key_file = dir.join("sealing.key");
    std::fs::write(&key_file, hex::encode([9u8; 32])).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!("file = {key_file:?}")
}

/// The member every service's `/v1/status` has (a D-TA's or an auth server's: the rest,
/// which differs, is ignored).
#[derive(serde::Deserialize)]
struct Anchored {
    anchor: AnchorStatus,
}

/// Waits until every IdP of `idps` and every service at `status_urls` (a D-TA or an auth
/// server: its `/v1/status` reports its anchor) has broadcast its own anchor, so that the
/// next block confirms them all.
pub fn wait_for_anchors_broadcast(idps: &[&RunningIdp], status_urls: &[String]) {
    let system = milagro_http_client::Outbound::system().unwrap();
    wait_for_anchors_broadcast_over(&system, idps, status_urls);
}

/// The same, asking the services under `outbound` (services on HTTPS with a test CA).
pub fn wait_for_anchors_broadcast_over(
    outbound: &milagro_http_client::Outbound,
    idps: &[&RunningIdp],
    status_urls: &[String],
) {
    wait_until("the service anchors to be broadcast", PATIENCE, || {
        let idps_pending = idps
            .iter()
            .all(|idp| !matches!(idp.state().own_anchor.get(), AnchorState::None));
        let services_pending = status_urls.iter().all(|url| {
            let status: Anchored = Api::with_outbound(url.clone(), outbound).read("/v1/status");
            matches!(status.anchor, AnchorStatus::Pending { .. })
        });
        (idps_pending && services_pending).then_some(())
    });
}

/// Waits until the D-TA's index has the node's tip and its share API serves (its status
/// asked under the world's HTTP policy, so a D-TA on HTTPS with the world's CA too).
pub fn wait_for_share_api(w: &EnrolmentWorld, dta: &RunningDta) {
    let api = Api::with_outbound(dta.local_url(), &w.outbound)
        .with_document(milagro_dta::api::OPENAPI_JSON);
    let tip = w.node().rpc.tip().unwrap();
    wait_until(
        "the D-TA to index the tip and serve shares",
        PATIENCE,
        || {
            let status: milagro_wire::dta::Status = api.read("/v1/status");
            (status.party.index_hash == Some(tip.hash.to_string()) && status.share_api.is_some())
                .then_some(())
        },
    );
}

/// Sends `method path` with a JSON `body` to the D-TA as `who`; status and JSON body.
pub fn call(
    w: &EnrolmentWorld,
    dta: &RunningDta,
    who: &TlsParty,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(u16, Value), TlsError> {
    let response = send(w, dta, who, (method, path), "application/json", body)?;
    let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    Ok((response.status().as_u16(), json))
}

/// Sends `method path` with `body` of `content_type` to the D-TA as `who`; the whole
/// response.
pub fn send(
    w: &EnrolmentWorld,
    dta: &RunningDta,
    who: &TlsParty,
    (method, path): (&str, &str),
    content_type: &str,
    body: Vec<u8>,
) -> Result<http::Response<bytes::Bytes>, TlsError> {
    let (addr, digest) = (dta.state().share_listen, dta.state().identity.digest());
    let options = Options::default();
    // The TBS client is blocking: made outside the runtime, used on its blocking threads.
    let directory = directory(w);
    runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let session = milagro_tls::connect(tcp, &who.identity, digest, directory, &options).await?;
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "dta1.milagro.test")
            .header("content-type", content_type)
            .body(bytes::Bytes::from(body))
            .unwrap();
        Ok(milagro_tls::http::send(session, request).await.unwrap())
    })
}

/// Sends each `(method, path, body)` of `requests` to the D-TA as `who`, one after another
/// over one Milagro TLS session kept alive (one handshake for all); their statuses and
/// JSON bodies.
pub fn call_on_one_session(
    w: &EnrolmentWorld,
    dta: &RunningDta,
    who: &TlsParty,
    requests: &[(&str, &str, Vec<u8>)],
) -> Result<Vec<(u16, Value)>, TlsError> {
    let (addr, digest) = (dta.state().share_listen, dta.state().identity.digest());
    let directory = directory(w);
    runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let options = Options::default();
        let session = milagro_tls::connect(tcp, &who.identity, digest, directory, &options).await?;
        let mut connection = milagro_tls::http::Connection::open(session).await.unwrap();
        let mut answers = Vec::new();
        for (method, path, body) in requests {
            let request = http::Request::builder()
                .method(*method)
                .uri(*path)
                .header("host", "dta1.milagro.test")
                .header("content-type", "application/json")
                .body(bytes::Bytes::from(body.clone()))
                .unwrap();
            let response = connection.send(request).await.unwrap();
            let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
            answers.push((response.status().as_u16(), json));
        }
        assert!(!connection.is_closed(), "the D-TA closed the session");
        Ok(answers)
    })
}

/// The configuration of D-TA number `n` on `w`'s node, in `dir/dta{n}`, its share sealed
/// with a key file of its own (mode 0600), and `extra` TOML appended.
pub fn numbered_config(w: &EnrolmentWorld, dir: &Path, n: u8, extra: &str) -> Config {
    use std::os::unix::fs::PermissionsExt as _;
    let key_file = dir.join(format!("sealing-{n}.key"));
    std::fs::write(&key_file, hex::encode([n; 32])).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let state = dir.join(format!("dta{n}"));
    config(w, &state, &format!("file = {key_file:?}"), extra)
}

/// What the PAT `pat` gets from each of `dtas` for `id_token`, through the library a
/// device uses (`milagro_pat_client::mpin_key::request_shares`).
pub fn pat_shares(
    w: &EnrolmentWorld,
    pat: &TlsParty,
    dtas: &[&RunningDta],
    id_token: &str,
) -> Vec<milagro_pat_client::mpin_key::DtaShares> {
    let directory = directory(w);
    let options = Options::default();
    // An anchored IdP's token: bound by `cnf.jkt`, no nonce to open.
    let request = milagro_pat_client::mpin_key::ClientShareRequest {
        id_token: id_token.to_owned(),
        nonce_salt: None,
    };
    runtime().block_on(async {
        let mut shares = Vec::new();
        for dta in dtas {
            let addr = dta.state().share_listen.to_string();
            let digest = dta.state().identity.digest();
            let shared = milagro_pat_client::mpin_key::request_shares(
                &pat.identity,
                digest,
                &addr,
                directory.clone(),
                &options,
                &request,
            );
            shares.push(shared.await.unwrap());
        }
        shares
    })
}

/// The `[[dtas]]` tables of an authentication server's configuration naming `dtas`.
pub fn authserver_peers(dtas: &[&RunningDta]) -> String {
    dtas.iter()
        .map(|d| {
            format!(
                "[[dtas]]\nbc_digest = \"{}\"\nshare_api = \"{}\"\n",
                d.state().identity.digest(),
                d.state().share_listen
            )
        })
        .collect()
}
