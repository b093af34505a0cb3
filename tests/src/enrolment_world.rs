//! What a device (PAT) enrols against in tests: a real TBS over HTTP on a real regtest
//! node, its own anchor confirmed, tenant `acme` created with the admin API, and helpers
//! to anchor D-TAs and IdPs, set device groups and mine blocks the TBS has indexed.

use std::time::Duration;

use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::digest::Digest;
use milagro_registry::chain::ChainSource;
use milagro_tbs::config::Config;
use milagro_tbs::tenants::model::ApiToken;
use milagro_tbs::{RunningTbs, Tbs};
use rand_core::OsRng;
use serde_json::{json, Value};

use crate::{party, tbs_config, wait_until, Api, TestNode};

/// How long a fixture waits for the TBS to catch up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running TBS with tenant `acme`, on its own regtest node.
pub struct EnrolmentWorld {
    /// The node.
    pub node: TestNode,
    /// The TBS (stopped when dropped).
    pub tbs: RunningTbs,
    /// A JSON client of the TBS.
    pub api: Api,
    /// The TBS's Birth Certificate digest: what devices are provisioned with.
    pub tbs_digest: Digest,
    /// The bearer token of tenant `acme`.
    pub tenant_token: String,
    _dir: tempfile::TempDir,
}

impl EnrolmentWorld {
    /// Starts a node and a TBS, confirms the TBS's anchor and creates tenant `acme`.
    pub fn start() -> Self {
        let node = TestNode::start();
        let dir = tempfile::tempdir().unwrap();
        let admin = ApiToken::generate(&mut OsRng);
        let text = format!(
            "{}\n[admin]\ntoken_sha256 = \"{}\"\n",
            tbs_config(&node.rpc_url(), &node.cookie(), &dir.path().join("tbs")),
            admin.hash()
        );
        let tbs = Tbs::start(Config::parse(&text).unwrap()).unwrap();
        let api = Api::new(tbs.local_url());
        let tbs_digest = tbs.state().identity.digest();
        wait_until("the TBS anchor to be broadcast", PATIENCE, || {
            (api.ok("/v1/status")["anchor"]["state"] == "pending").then_some(())
        });
        node.mine(1);
        wait_until("the TBS certificate to be served", PATIENCE, || {
            (api.get("/.well-known/milagro/birth-certificate").0 == 200).then_some(())
        });
        let (status, created) = api.call(
            "POST",
            "/v1/admin/tenants",
            Some(admin.reveal()),
            Some(json!({"id": "acme", "name": "Acme"})),
        );
        assert_eq!(status, 201, "{created}");
        let tenant_token = created["token"].as_str().unwrap().to_owned();
        Self {
            node,
            tbs,
            api,
            tbs_digest,
            tenant_token,
            _dir: dir,
        }
    }

    /// The TBS's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        self.tbs.local_url()
    }

    /// Mines `count` blocks and waits until the TBS has indexed the new tip.
    pub fn mine(&self, count: u32) {
        self.node.mine(count);
        let tip = self.node.rpc.tip().unwrap();
        wait_until("the TBS to index the tip", PATIENCE, || {
            (self.api.ok("/v1/status")["index_hash"] == tip.hash.to_string()).then_some(())
        });
    }

    /// Anchors a party's certificate with its own key, confirmed and indexed.
    pub fn anchored(&self, role: Role, name: &str) -> BirthCertificate {
        let (key, bc) = party(role, name);
        self.node.anchor_bc(&key, &bc);
        self.mine(1);
        bc
    }

    /// Creates or replaces group `group` of `acme` (direct mode) with these D-TAs
    /// (`https://dta<i>.milagro.test`) and IdP (`https://idp.milagro.test`); returns its
    /// revision.
    pub fn put_group(
        &self,
        group: &str,
        dtas: &[&BirthCertificate],
        idp: &BirthCertificate,
    ) -> u64 {
        let service = |bc: &BirthCertificate, host: &str| json!({"birth_certificate": bc.digest(), "url": format!("https://{host}.milagro.test")});
        let dtas: Vec<Value> = dtas
            .iter()
            .enumerate()
            .map(|(i, bc)| service(bc, &format!("dta{i}")))
            .collect();
        let body =
            json!({"name": group, "mode": "direct", "dtas": dtas, "idp": service(idp, "idp")});
        let (status, saved) = self.api.call(
            "PUT",
            &format!("/v1/tenants/acme/groups/{group}"),
            Some(&self.tenant_token),
            Some(body),
        );
        assert_eq!(status, 200, "{saved}");
        saved["revision"].as_u64().unwrap()
    }

    /// The TBS's request counter for one route, method and status (`/metrics`).
    pub fn requests(&self, route: &str, method: &str, status: u16) -> u64 {
        let (_, _, text) = self.api.send("GET", "/metrics");
        let series = format!(
            "milagro_tbs_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} "
        );
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    /// Mines a block whenever the node's mempool holds a transaction, until `done`
    /// returns `Some`: how a test confirms anchors while a device waits for them.
    pub fn mine_while_waiting<T>(&self, what: &str, mut done: impl FnMut() -> Option<T>) -> T {
        wait_until(what, PATIENCE, || {
            let mempool: Vec<String> = self.node.rpc.call("getrawmempool", &[]).unwrap();
            if !mempool.is_empty() {
                self.node.mine(1);
            }
            done()
        })
    }
}
