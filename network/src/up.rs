//! `up`: sets the network up on its first run, starts the supervisor, and waits until
//! every party is ready. Each step checks what is already there, so `up` on a running
//! network only waits, and `up` after `down` resumes with the same keys and state.
//!
//! The first run, in order (the parties name each other's digests, and the D-TAs need
//! the client the IdP registers, so they are configured once the IdP runs):
//! 1. the node; every party's identity ([`milagro_init::prepare`]) on free loopback ports;
//!    the TBS's and the IdP's configurations; then `network.json`, the plan's commit
//!    point (a plan interrupted before it is made again: [`planned`]);
//! 2. the supervisor, which starts the node's miner and every configured party;
//! 3. once the IdP is ready: its device-grant client for the D-TAs; then the D-TAs'
//!    configurations (trusting that IdP, giving server shares to the auth server) and
//!    the auth server's (summing both D-TAs' shares);
//! 4. once all are ready: the TBS tenant `local` with group `devices`, naming both D-TAs
//!    and the IdP, and the claim key devices enrol with.
//!
//! Steps 1, 3 and 4 are also what `milagro network configure` runs for a compose file,
//! where each party has a container of its own and step 2 is the container engine's
//! ([`crate::compose`]).

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use milagro_init::{Chain, DtaPeer, InitRequest, ServiceRole, TrustedIdp};
use serde_json::{json, Value};

use crate::layout::{NetworkDir, NetworkRecord, PartyRecord, Runner, TenantRecord};
use crate::status::{self, NetworkStatus};
use crate::NetworkError;

/// The parties of a local network: name, role.
const PARTIES: [(&str, ServiceRole); 5] = [
    ("tbs", ServiceRole::Tbs),
    ("idp", ServiceRole::Idp),
    ("dta1", ServiceRole::Dta),
    ("dta2", ServiceRole::Dta),
    ("authserver", ServiceRole::Authserver),
];
/// The tenant and group devices enrol in.
pub const TENANT: &str = "local";
/// The group of [`TENANT`].
pub const GROUP: &str = "devices";
/// How often the services poll the node: fast, for a local chain.
const POLL_MS: u64 = 200;

/// Brings the network of `dir` up with `milagro` (this binary), waiting at most
/// `patience` for every party to be ready.
pub fn up(
    dir: &NetworkDir,
    milagro: &Path,
    patience: Duration,
) -> Result<NetworkStatus, NetworkError> {
    let deadline = Instant::now() + patience;
    prepare_dir(dir)?;
    let node = crate::node::start(dir)?;
    let record = planned(dir, &node, Runner::Supervisor)?;
    ensure_supervisor(dir, milagro)?;
    wire(dir, &node, record, deadline)?;
    status::status(dir)
}

/// Makes the network's directory (mode 0700) and its `logs/` and `parties/`.
pub(crate) fn prepare_dir(dir: &NetworkDir) -> Result<(), NetworkError> {
    milagro_service::files::create_private_dir(dir.root())
        .map_err(|e| NetworkError::File(e.to_string()))?;
    for sub in [dir.root().join("logs"), dir.root().join("parties")] {
        std::fs::create_dir_all(&sub).map_err(|e| NetworkError::io(&sub, e))?;
    }
    Ok(())
}

/// The network's record; on the first run (or after a first run that was interrupted
/// before it wrote the record), the plan of step 1 made afresh.
///
/// `network.json` is the plan's commit point, written atomically as its last act. Until
/// it exists nothing runs from `parties/` (the supervisor and `milagro network serve`
/// start a party only once the record names it), so nothing was anchored and no token
/// was handed out: what an interrupted plan left there is removed and planned again, on
/// new ports. Keeping it instead would pair identities whose certificates name the old
/// ports with configurations on the new ones, and `init` refuses a written configuration.
pub(crate) fn planned(
    dir: &NetworkDir,
    node: &milagro_regtest::NodeInfo,
    runner: Runner,
) -> Result<NetworkRecord, NetworkError> {
    if let Some(record) = dir.read_record()? {
        return Ok(record);
    }
    let parties = dir.root().join("parties");
    if std::fs::read_dir(&parties)
        .map_err(|e| NetworkError::io(&parties, e))?
        .next()
        .is_some()
    {
        tracing::warn!(dir = %parties.display(), "removing what an interrupted first run left");
        std::fs::remove_dir_all(&parties).map_err(|e| NetworkError::io(&parties, e))?;
        std::fs::create_dir_all(&parties).map_err(|e| NetworkError::io(&parties, e))?;
    }
    plan(dir, node, runner)
}

/// Steps 3 and 4, each done only if not done yet: the IdP's client for the D-TAs, the
/// D-TAs' and the auth server's configurations, the TBS tenant; waiting (until
/// `deadline`) for the parties each step needs ready, and at last for all of them.
pub(crate) fn wire(
    dir: &NetworkDir,
    node: &milagro_regtest::NodeInfo,
    mut record: NetworkRecord,
    deadline: Instant,
) -> Result<(), NetworkError> {
    let http = client()?;
    let idp = party(&record, "idp")?.clone();
    // The IdP's M-Pin server secret waits for the D-TAs, which wait for the client
    // registered here: only that check may still fail now.
    wait_ready_but(&http, &[&idp], deadline, &[SERVER_SECRET_CHECK])?;
    if record.idp_client_id.is_none() {
        record.idp_client_id = Some(register_client(&http, &idp, &record)?);
        dir.write_record(&record)?;
    }
    configure_peers(dir, node, &record)?;
    let all: Vec<&PartyRecord> = record.parties.iter().collect();
    wait_ready(&http, &all, deadline)?;
    if record.tenant.is_none() {
        record.tenant = Some(create_tenant(dir, &http, &record)?);
        dir.write_record(&record)?;
    }
    Ok(())
}

/// The first run's step 1: identities, ports, the TBS's and IdP's configurations; the
/// record last (see [`planned`]).
fn plan(
    dir: &NetworkDir,
    node: &milagro_regtest::NodeInfo,
    runner: Runner,
) -> Result<NetworkRecord, NetworkError> {
    let ports = free_ports(7)?;
    let mut next = ports.into_iter();
    let mut take = || {
        next.next()
            .ok_or_else(|| NetworkError::Setup("no free port".into()))
    };
    let now = unix_now();
    let mut record = NetworkRecord {
        parties: Vec::new(),
        tbs_admin_token: None,
        idp_admin_token: None,
        idp_registration_token: None,
        idp_client_id: None,
        tenant: None,
        runner,
    };
    let mut idp = None;
    for (name, role) in PARTIES {
        let listen = take()?;
        let share_listen = (role == ServiceRole::Dta).then(&mut take).transpose()?;
        let request = request(dir, node, name, role, listen, share_listen);
        let prepared = milagro_init::resume(&request, now)?;
        record.parties.push(PartyRecord {
            name: name.to_owned(),
            role: role.name().to_owned(),
            listen,
            share_listen,
            digest: prepared.digest,
        });
        match role {
            ServiceRole::Tbs => {
                let made = milagro_init::finish(prepared, &request, Path::new(""))?;
                record.tbs_admin_token = made.admin_token.map(|t| t.reveal().to_owned());
            }
            // Written once every D-TA's digest and share address is known: its [mpin].
            ServiceRole::Idp => idp = Some((prepared, request)),
            _ => {}
        }
    }
    let (prepared, mut request) =
        idp.ok_or_else(|| NetworkError::Setup("the plan has no idp".into()))?;
    request.dtas = dta_peers(&record.parties.iter().collect::<Vec<_>>());
    let made = milagro_init::finish(prepared, &request, Path::new(""))?;
    record.idp_admin_token = made.admin_token.map(|t| t.reveal().to_owned());
    record.idp_registration_token = made.registration_token.map(|t| t.reveal().to_owned());
    dir.write_record(&record)?;
    Ok(record)
}

/// What `init` is asked for party `name`.
fn request(
    dir: &NetworkDir,
    node: &milagro_regtest::NodeInfo,
    name: &str,
    role: ServiceRole,
    listen: SocketAddr,
    share_listen: Option<SocketAddr>,
) -> InitRequest {
    InitRequest {
        name: Some(format!("Local {name}")),
        listen: Some(listen),
        rpc_url: Some(node.rpc_url.clone()),
        rpc_cookie: Some(node.cookie_file.clone()),
        poll_interval_ms: Some(POLL_MS),
        share_listen,
        ..InitRequest::new(role, Chain::Regtest, dir.party_dir(name))
    }
}

/// Step 3: the D-TAs' and the auth server's configurations, if not written yet.
fn configure_peers(
    dir: &NetworkDir,
    node: &milagro_regtest::NodeInfo,
    record: &NetworkRecord,
) -> Result<(), NetworkError> {
    let idp = party(record, "idp")?;
    let auth = party(record, "authserver")?;
    let client_id = record
        .idp_client_id
        .clone()
        .ok_or_else(|| NetworkError::Setup("the idp has no client for the d-tas yet".into()))?;
    let dtas: Vec<&PartyRecord> = record.parties.iter().filter(|p| p.role == "dta").collect();
    let now = unix_now();
    for party in record
        .parties
        .iter()
        .filter(|p| p.role == "dta" || p.role == "authserver")
    {
        let role = party
            .service_role()
            .ok_or_else(|| NetworkError::Setup(format!("unknown role {}", party.role)))?;
        let party_dir = dir.party_dir(&party.name);
        if milagro_init::config_path(&party_dir, role).exists() {
            continue;
        }
        let mut request = request(
            dir,
            node,
            &party.name,
            role,
            party.listen,
            party.share_listen,
        );
        if role == ServiceRole::Dta {
            request.trusted_idps = vec![TrustedIdp {
                issuer: idp.url(),
                digest: idp.digest,
                client_id: client_id.clone(),
            }];
            // The IdP verifies M-Pin sign-ins with the same server secret.
            request.authservers = vec![auth.digest, idp.digest];
        } else {
            request.dtas = dta_peers(&dtas);
        }
        let prepared = milagro_init::resume(&request, now)?;
        milagro_init::finish(prepared, &request, Path::new(""))?;
    }
    Ok(())
}

/// The D-TAs among `parties`, as a service that sums their server shares names them.
fn dta_peers(parties: &[&PartyRecord]) -> Vec<DtaPeer> {
    parties
        .iter()
        .filter(|p| p.role == "dta")
        .filter_map(|dta| {
            dta.share_listen.map(|share| DtaPeer {
                digest: dta.digest,
                share_api: share.to_string(),
            })
        })
        .collect()
}

/// Starts the supervisor unless it runs.
fn ensure_supervisor(dir: &NetworkDir, milagro: &Path) -> Result<(), NetworkError> {
    if let Some(pid) = status::supervisor_pid(dir) {
        tracing::debug!(pid, "the supervisor runs");
        return Ok(());
    }
    let (log, err) = dir.open_log("supervisor")?;
    let mut command = Command::new(milagro);
    command
        .args(["network", "supervise", "--dir"])
        .arg(dir.root())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    // Its own process group: a Ctrl-C at the terminal that ran `up` does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command.spawn().map_err(|e| NetworkError::io(milagro, e))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while status::supervisor_pid(dir).is_none() {
        if Instant::now() > deadline {
            return Err(NetworkError::Setup(format!(
                "the supervisor did not start; see {}",
                dir.log_file("supervisor").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Registers the D-TAs' public device-grant client at the IdP.
fn register_client(
    http: &reqwest::blocking::Client,
    idp: &PartyRecord,
    record: &NetworkRecord,
) -> Result<String, NetworkError> {
    let token = record.idp_registration_token.clone().unwrap_or_default();
    let answer = send(
        http.post(format!("{}/register", idp.url()))
            .bearer_auth(token)
            .json(&json!({
                "client_name": "Local D-TAs",
                "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
                "token_endpoint_auth_method": "none",
            })),
        "registering the d-tas' client at the idp",
    )?;
    answer["client_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| NetworkError::Setup(format!("the idp registered no client_id: {answer}")))
}

/// Step 4: the tenant, its group and the claim key.
fn create_tenant(
    dir: &NetworkDir,
    http: &reqwest::blocking::Client,
    record: &NetworkRecord,
) -> Result<TenantRecord, NetworkError> {
    let tbs = party(record, "tbs")?;
    let (claim, _) = milagro_service::files::load_or_create_key(&dir.claim_key_file())
        .map_err(|e| NetworkError::File(e.to_string()))?;
    let admin = record.tbs_admin_token.clone().unwrap_or_default();
    let created = send(
        http.post(format!("{}/v1/admin/tenants", tbs.url()))
            .bearer_auth(&admin)
            .json(&json!({"id": TENANT, "name": "Local devices"})),
        "creating the tenant at the tbs",
    )?;
    let token = created["token"]
        .as_str()
        .ok_or_else(|| NetworkError::Setup(format!("no tenant token in {created}")))?;
    let service = |p: &PartyRecord| json!({"birth_certificate": p.digest, "url": p.url()});
    let dtas: Vec<Value> = record
        .parties
        .iter()
        .filter(|p| p.role == "dta")
        .map(service)
        .collect();
    send(
        http.put(format!("{}/v1/tenants/{TENANT}/groups/{GROUP}", tbs.url()))
            .bearer_auth(token)
            .json(&json!({
                "name": "Local devices",
                "mode": "direct",
                "dtas": dtas,
                "idp": service(party(record, "idp")?),
                "enrolment_keys": [claim.public_key()],
            })),
        "creating the group at the tbs",
    )?;
    Ok(TenantRecord {
        tenant: TENANT.to_owned(),
        group: GROUP.to_owned(),
    })
}

/// Waits until every one of `parties` answers `/readyz` with 200.
fn wait_ready(
    http: &reqwest::blocking::Client,
    parties: &[&PartyRecord],
    deadline: Instant,
) -> Result<(), NetworkError> {
    wait_ready_but(http, parties, deadline, &[])
}

/// The readiness check of a service's M-Pin server secret.
const SERVER_SECRET_CHECK: &str = "server_secret";

/// [`wait_ready`], except that the checks named in `but` may still fail.
fn wait_ready_but(
    http: &reqwest::blocking::Client,
    parties: &[&PartyRecord],
    deadline: Instant,
    but: &[&str],
) -> Result<(), NetworkError> {
    for party in parties {
        loop {
            let readiness = status::readiness(http, party);
            let ready = readiness.as_ref().is_ok_and(|r| {
                r.ready
                    || r.checks
                        .iter()
                        .all(|c| c.ok || but.contains(&c.name.as_str()))
            });
            if ready {
                break;
            }
            if Instant::now() > deadline {
                let why = match readiness {
                    Ok(r) => r
                        .checks
                        .into_iter()
                        .filter(|c| !c.ok)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect::<Vec<_>>()
                        .join("; "),
                    Err(e) => e,
                };
                return Err(NetworkError::NotReady {
                    party: party.name.clone(),
                    why,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

pub(crate) fn send(
    request: reqwest::blocking::RequestBuilder,
    what: &str,
) -> Result<Value, NetworkError> {
    let response = request
        .send()
        .map_err(|e| NetworkError::Setup(format!("{what}: {e}")))?;
    let status = response.status();
    let body: Value = response
        .json()
        .map_err(|e| NetworkError::Setup(format!("{what}: {status}, not json: {e}")))?;
    if !status.is_success() {
        return Err(NetworkError::Setup(format!("{what}: {status} {body}")));
    }
    Ok(body)
}

pub(crate) fn client() -> Result<reqwest::blocking::Client, NetworkError> {
    milagro_http_client::Outbound::system()
        .map_err(|e| NetworkError::Setup(e.to_string()))?
        .builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| NetworkError::Setup(e.to_string()))
}

pub(crate) fn party<'a>(
    record: &'a NetworkRecord,
    name: &str,
) -> Result<&'a PartyRecord, NetworkError> {
    record
        .party(name)
        .ok_or_else(|| NetworkError::Setup(format!("network.json names no party {name}")))
}

/// `count` distinct free loopback addresses (all bound until all are known).
fn free_ports(count: usize) -> Result<Vec<SocketAddr>, NetworkError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NetworkError::io(Path::new("127.0.0.1"), e))?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map_err(|e| NetworkError::io(Path::new("127.0.0.1"), e))
        })
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
