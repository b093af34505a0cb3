//! `status`: each party's role, name, URL, certificate digest, anchor depth, readiness
//! and restarts, from its `/readyz` and the supervisor's record; and the commands a
//! newcomer runs next.

use serde::Serialize;

use milagro_wire::health::Readiness;

use crate::layout::{NetworkDir, PartyRecord, Runner};
use crate::supervisor::SupervisorState;
use crate::NetworkError;

/// How the compose network's next steps start.
const COMPOSE: &str = "podman-compose -f deploy/container/compose.yaml";

/// What `status` reports (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct NetworkStatus {
    /// Each party.
    pub parties: Vec<PartyStatus>,
    /// What runs the parties.
    pub runner: Runner,
    /// The supervisor's process id, if it runs.
    pub supervisor: Option<u32>,
    /// The node's RPC URL, as the supervisor last saw it.
    pub node: Option<String>,
    /// The commands to run next (enrol a device, …).
    pub next_steps: Vec<String>,
}

/// One party.
#[derive(Debug, Clone, Serialize)]
pub struct PartyStatus {
    /// Its role.
    pub role: String,
    /// Its name in the network.
    pub name: String,
    /// Its base URL.
    pub url: String,
    /// Its Birth Certificate's digest.
    pub digest: String,
    /// Its anchor's confirmations, if confirmed.
    pub depth: Option<u32>,
    /// Whether its `/readyz` answered 200.
    pub ready: bool,
    /// Why not, if not (the failed checks, or why `/readyz` could not be asked).
    pub detail: Option<String>,
    /// Times the supervisor restarted it after it ended on its own.
    pub restarts: u32,
    /// How it last ended, if it did.
    pub last_exit: Option<String>,
}

/// The supervisor's pid, if its pid file names a live process.
pub fn supervisor_pid(dir: &NetworkDir) -> Option<u32> {
    let text = std::fs::read_to_string(dir.pid_file()).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    milagro_regtest::pid_alive(pid).then_some(pid)
}

/// `GET /readyz` of `party`: its answer (200 or 503), or why it could not be asked.
pub fn readiness(
    http: &reqwest::blocking::Client,
    party: &PartyRecord,
) -> Result<Readiness, String> {
    let response = http
        .get(format!("{}/readyz", party.url()))
        .send()
        .map_err(|e| format!("not answering: {e}"))?;
    response
        .json::<Readiness>()
        .map_err(|e| format!("/readyz is not a readiness answer: {e}"))
}

/// The status of the network of `dir`.
pub fn status(dir: &NetworkDir) -> Result<NetworkStatus, NetworkError> {
    let record = dir.read_record()?.ok_or_else(|| NetworkError::NotSetUp {
        dir: dir.root().to_path_buf(),
    })?;
    let supervisor = supervisor_pid(dir);
    let processes = SupervisorState::read(dir)?.unwrap_or_default();
    let http = crate::up::client()?;
    let parties = record
        .parties
        .iter()
        .map(|party| {
            let process = processes
                .parties
                .get(&party.name)
                .cloned()
                .unwrap_or_default();
            let (ready, depth, detail) = match readiness(&http, party) {
                Ok(r) => {
                    let failed: Vec<String> = r
                        .checks
                        .iter()
                        .filter(|c| !c.ok)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect();
                    (
                        r.ready,
                        r.anchor_depth,
                        (!failed.is_empty()).then(|| failed.join("; ")),
                    )
                }
                Err(why) => (false, None, Some(why)),
            };
            PartyStatus {
                role: party.role.clone(),
                name: party.name.clone(),
                url: party.url(),
                digest: party.digest.to_string(),
                depth,
                ready,
                detail,
                restarts: process.restarts,
                last_exit: process.last_exit,
            }
        })
        .collect();
    let mut next_steps = Vec::new();
    if let (Some(tbs), Some(tenant)) = (record.party("tbs"), &record.tenant) {
        next_steps.push(format!(
            "milagro pat enrol --tbs {} --tbs-digest {} --tenant {} --group {} --claim-key {} --network regtest --state ./my-device",
            tbs.url(),
            tbs.digest,
            tenant.tenant,
            tenant.group,
            dir.claim_key_file().display()
        ));
    }
    // Registering the device for a person: the local network sends no mail, so the
    // operator's activation code stands in for the e-mailed one.
    let prefix = match record.runner {
        Runner::Supervisor => "milagro".to_owned(),
        Runner::Containers => format!("{COMPOSE} exec tbs milagro"),
    };
    next_steps.push(format!(
        "{prefix} network activation-code --dir {} --email you@example.com",
        dir.root().display()
    ));
    next_steps.push(
        "milagro pat register --state ./my-device --email you@example.com   # type the activation code on the IdP's device page; PIN from MILAGRO_PIN or stdin"
            .to_owned(),
    );
    match record.runner {
        Runner::Supervisor => {
            next_steps.push(format!(
                "milagro network logs --dir {} PARTY",
                dir.root().display()
            ));
            next_steps.push(format!(
                "milagro network down --dir {}",
                dir.root().display()
            ));
        }
        Runner::Containers => {
            // The claim key is on the volume: the enrol command above names its path
            // in the containers.
            next_steps.push(format!("{COMPOSE} logs PARTY"));
            next_steps.push(format!("{COMPOSE} down"));
        }
    }
    Ok(NetworkStatus {
        parties,
        runner: record.runner,
        supervisor,
        node: (!processes.node.is_empty()).then_some(processes.node),
        next_steps,
    })
}

impl NetworkStatus {
    /// Whether every party is ready.
    pub fn all_ready(&self) -> bool {
        self.parties.iter().all(|p| p.ready)
    }

    /// The status as a table, for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<11} {:<10} {:<24} {:<16} {:>5}  {:<5} {:>8}\n",
            "ROLE", "NAME", "URL", "DIGEST", "DEPTH", "READY", "RESTARTS"
        );
        for p in &self.parties {
            out.push_str(&format!(
                "{:<11} {:<10} {:<24} {:<16} {:>5}  {:<5} {:>8}\n",
                p.role,
                p.name,
                p.url,
                format!("{}…", p.digest.get(..14).unwrap_or(&p.digest)),
                p.depth.map_or("-".to_owned(), |d| d.to_string()),
                if p.ready { "yes" } else { "no" },
                p.restarts,
            ));
            if let Some(detail) = &p.detail {
                out.push_str(&format!("    {}: {detail}\n", p.name));
            }
        }
        match (self.runner, self.supervisor) {
            (Runner::Containers, _) => out.push_str("each party runs in its own container"),
            (Runner::Supervisor, Some(pid)) => out.push_str(&format!("supervisor: pid {pid}")),
            (Runner::Supervisor, None) => {
                out.push_str("supervisor: not running (milagro network up starts it)")
            }
        }
        if let Some(node) = &self.node {
            out.push_str(&format!("; node {node}"));
        }
        out.push_str("\n\nnext:\n");
        for step in &self.next_steps {
            out.push_str(&format!("  {step}\n"));
        }
        out
    }
}
