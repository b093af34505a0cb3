//! What a device (PAT) enrols against in tests: a real TBS over HTTP on a real regtest
//! node, its own anchor confirmed and its funding pool filled, tenant `acme` created with
//! the admin API, a device maker whose enrolment key every group lists, and helpers to
//! anchor D-TAs and IdPs, set device groups, provision devices with credentials and mine
//! blocks the TBS has indexed. With
//! [`WorldOptions::restartable`] the node keeps its data directory and the TBS reaches it
//! through a [`TcpRelay`], so a test can restart the node under a running TBS.

use std::time::Duration;

use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::digest::Digest;
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_registry::chain::ChainSource;
use milagro_tbs::config::Config;
use milagro_tbs::tenants::model::ApiToken;
use milagro_tbs::{RunningTbs, Tbs};
use milagro_wire::service::AnchorStatus;
use milagro_wire::tbs::registry::Status;
use milagro_wire::tbs::tenants::{
    CreatedTenant, EnrolmentMode, Group, GroupSpec, NewTenant, ServiceRef,
};
use rand_core::OsRng;

use crate::{party, tbs_config, wait_until, Api, TcpRelay, TestNode};

/// Whether the TBS at `api` has broadcast its own anchor, not yet confirmed.
fn anchor_pending(api: &Api) -> bool {
    let status: Status = api.read("/v1/status");
    matches!(status.anchor, AnchorStatus::Pending { .. })
}

/// How long a fixture waits for the TBS to catch up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How to start an [`EnrolmentWorld`].
#[derive(Debug, Clone, Default)]
pub struct WorldOptions {
    /// TOML sections added to the TBS configuration (before `[admin]`), e.g.
    /// `"[anchoring]\nbatch_interval_secs = 2\n"`.
    pub extra_config: String,
    /// Keep the node's data directory and reach it through a relay, so that
    /// [`EnrolmentWorld::restart_node`] works.
    pub restartable: bool,
    /// The HTTP policy of the world's own client of the TBS (a test CA, for a TBS with a
    /// `[tls]` section in `extra_config`); default: the system's roots.
    pub http: Option<milagro_http_client::Outbound>,
}

/// A running TBS with tenant `acme`, on its own regtest node.
pub struct EnrolmentWorld {
    /// The TBS (stopped when dropped; declared first so that it stops before the node).
    pub tbs: RunningTbs,
    node: Option<TestNode>,
    relay: Option<TcpRelay>,
    /// A JSON client of the TBS.
    pub api: Api,
    /// The TBS's Birth Certificate digest: what devices are provisioned with.
    pub tbs_digest: Digest,
    /// The bearer token of tenant `acme`.
    pub tenant_token: String,
    /// The device maker's enrolment key, listed on every group [`Self::put_group_at`]
    /// saves.
    pub maker: SecretKey,
    /// The HTTP policy of the world's clients ([`WorldOptions::http`]).
    pub outbound: milagro_http_client::Outbound,
    dir: tempfile::TempDir,
}

impl EnrolmentWorld {
    /// Starts a node and a TBS, confirms the TBS's anchor and creates tenant `acme`.
    pub fn start() -> Self {
        Self::start_with(&WorldOptions::default())
    }

    /// The same, with `options`.
    pub fn start_with(options: &WorldOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (node, relay) = if options.restartable {
            let node = TestNode::start_persistent(&dir.path().join("node"), &[]);
            let relay = TcpRelay::start(node.rpc_socket());
            (node, Some(relay))
        } else {
            (TestNode::start(), None)
        };
        let rpc_url = relay.as_ref().map_or_else(|| node.rpc_url(), TcpRelay::url);
        let admin = ApiToken::generate(&mut OsRng);
        let text = format!(
            "{}\n{}\n[admin]\ntoken_sha256 = \"{}\"\n",
            tbs_config(&rpc_url, &node.cookie(), &dir.path().join("tbs")),
            options.extra_config,
            admin.hash()
        );
        let tbs = Tbs::start(Config::parse(&text).unwrap()).unwrap();
        let outbound = match &options.http {
            Some(outbound) => outbound.clone(),
            None => milagro_http_client::Outbound::system().unwrap(),
        };
        let api = Api::with_outbound(tbs.local_url(), &outbound)
            .with_document(milagro_tbs::api::OPENAPI_JSON);
        let tbs_digest = tbs.state().identity.digest();
        wait_until("the TBS anchor to be broadcast", PATIENCE, || {
            anchor_pending(&api).then_some(())
        });
        node.mine(1);
        wait_until("the TBS certificate to be served", PATIENCE, || {
            (api.get("/.well-known/milagro/birth-certificate").0 == 200).then_some(())
        });
        let tenant = NewTenant {
            id: "acme".into(),
            name: "Acme".into(),
        };
        let created: CreatedTenant = api.exchange(
            ("POST", "/v1/admin/tenants"),
            Some(admin.reveal()),
            &tenant,
            201,
        );
        let tenant_token = created.token;
        let world = Self {
            node: Some(node),
            relay,
            tbs,
            api,
            tbs_digest,
            tenant_token,
            maker: SecretKey::generate(&mut OsRng),
            outbound,
            dir,
        };
        // Offers are paid only from confirmed pool coins.
        world.mine_while_waiting("the funding pool to fill", || {
            (world.status().funding_pool.free > 0).then_some(())
        });
        world
    }

    /// A device provisioned in `dir` for group `group` and enrolled through the TBS by
    /// the device library ([`milagro_pat_client::enrol`], under the world's HTTP policy),
    /// while the test mines what it broadcasts.
    pub fn enrolled_device(
        &self,
        dir: &std::path::Path,
        group: &str,
    ) -> milagro_pat_client::Enrolled {
        let provisioning = milagro_pat_client::Provisioning {
            tbs_url: self.url(),
            tbs_digest: self.tbs_digest,
            tenant: "acme".into(),
            group: group.into(),
            network: bitcoin::Network::Regtest,
            sources: Default::default(),
        };
        let stage = self.provision(dir, provisioning, None);
        let tbs = milagro_pat_client::ServiceClient::with_outbound(
            &self.url(),
            &self.outbound,
            milagro_pat_client::DEFAULT_REQUEST_TIMEOUT,
        )
        .unwrap();
        let wait = milagro_pat_client::WaitOptions {
            timeout: PATIENCE,
            interval: Duration::from_millis(50),
        };
        let enrolling =
            std::thread::spawn(move || milagro_pat_client::enrol(stage, &tbs, &wait, |_| {}));
        self.mine_while_waiting("the device to be enrolled", || {
            enrolling.is_finished().then_some(())
        });
        enrolling.join().unwrap().unwrap()
    }

    /// The maker's credential letting `device` enrol in group `group` of `acme`.
    pub fn credential(&self, device: &PublicKey, group: &str) -> EnrolmentCredential {
        EnrolmentCredential::issue(&self.maker, "acme", group, device).unwrap()
    }

    /// Provisions a device in `dir` ([`milagro_pat_client::provision`]) and installs the
    /// maker's credential for its key and group.
    pub fn provision(
        &self,
        dir: &std::path::Path,
        provisioning: milagro_pat_client::Provisioning,
        name: Option<&str>,
    ) -> milagro_pat_client::Stage {
        let group = provisioning.group.clone();
        let stage = milagro_pat_client::provision(dir, provisioning, name).unwrap();
        let credential = self.credential(&stage.device().public_key(), &group);
        milagro_pat_client::install_credential(dir, credential).unwrap()
    }

    /// The maker's enrolment key in a file (hex), for `milagro pat enrol --claim-key`.
    pub fn maker_key_file(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("maker.key");
        std::fs::write(&path, self.maker.to_hex().as_bytes()).unwrap();
        path
    }

    /// The node.
    pub fn node(&self) -> &TestNode {
        self.node.as_ref().expect("a running node")
    }

    /// Stops the node and starts it again on the same data directory with `args` (the
    /// TBS keeps running and reaches the new node through the relay). Needs
    /// [`WorldOptions::restartable`].
    pub fn restart_node(&mut self, args: &[&str]) {
        let relay = self.relay.as_ref().expect("a restartable world");
        let datadir = self.dir.path().join("node");
        self.node = None; // stops the node and waits for it
        let node = TestNode::start_persistent(&datadir, args);
        relay.forward_to(node.rpc_socket());
        self.node = Some(node);
    }

    /// The TBS's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        self.tbs.local_url()
    }

    /// Mines `count` blocks and waits until the TBS has indexed the new tip.
    pub fn mine(&self, count: u32) {
        self.node().mine(count);
        let tip = self.node().rpc.tip().unwrap();
        wait_until("the TBS to index the tip", PATIENCE, || {
            (self.status().index_hash == Some(tip.hash.to_string())).then_some(())
        });
    }

    /// Starts another TBS on the same node (another operator's registry), its own
    /// certificate anchored, confirmed and served; returns it with its certificate digest.
    pub fn second_tbs(&self, name: &str) -> (RunningTbs, Digest) {
        let text = tbs_config(
            &self.node().rpc_url(),
            &self.node().cookie(),
            &self.dir.path().join(name),
        );
        let tbs = Tbs::start(Config::parse(&text).unwrap()).unwrap();
        let api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
        wait_until("the second TBS's anchor to be broadcast", PATIENCE, || {
            anchor_pending(&api).then_some(())
        });
        self.mine(1);
        wait_until(
            "the second TBS's certificate to be served",
            PATIENCE,
            || (api.get("/.well-known/milagro/birth-certificate").0 == 200).then_some(()),
        );
        let digest = tbs.state().identity.digest();
        (tbs, digest)
    }

    /// Anchors a party's certificate with its own key, confirmed and indexed.
    pub fn anchored(&self, role: Role, name: &str) -> BirthCertificate {
        let (key, bc) = party(role, name);
        self.node().anchor_bc(&key, &bc);
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
        self.put_group_in_mode(group, EnrolmentMode::Direct, dtas, idp)
    }

    /// The same in `mode`.
    pub fn put_group_in_mode(
        &self,
        group: &str,
        mode: EnrolmentMode,
        dtas: &[&BirthCertificate],
        idp: &BirthCertificate,
    ) -> u64 {
        let at = |host: String| format!("https://{host}.milagro.test");
        let dtas: Vec<_> = dtas
            .iter()
            .enumerate()
            .map(|(i, bc)| (bc.digest(), at(format!("dta{i}"))))
            .collect();
        self.put_group_at(group, mode, &dtas, (idp.digest(), at("idp".into())))
    }

    /// Creates or replaces group `group` of `acme` in `mode` with D-TAs and an IdP given
    /// as (Birth Certificate digest, URL); returns its revision.
    pub fn put_group_at(
        &self,
        group: &str,
        mode: EnrolmentMode,
        dtas: &[(milagro_anchor::digest::Digest, String)],
        idp: (milagro_anchor::digest::Digest, String),
    ) -> u64 {
        let service = |(digest, url): &(milagro_anchor::digest::Digest, String)| ServiceRef {
            birth_certificate: *digest,
            url: url.clone(),
        };
        let spec = GroupSpec {
            name: group.into(),
            mode,
            dtas: dtas.iter().map(service).collect(),
            idp: Some(service(&idp)),
            enrolment_keys: vec![self.maker.public_key().to_string()],
        };
        let saved: Group = self.api.exchange(
            ("PUT", &format!("/v1/tenants/acme/groups/{group}")),
            Some(&self.tenant_token),
            &spec,
            200,
        );
        saved.revision
    }

    /// Creates or replaces the direct-mode group `group` naming the running `dtas` at
    /// their local URLs and the IdP `idp` (digest, issuer); returns its revision.
    pub fn put_group_of(
        &self,
        group: &str,
        dtas: &[milagro_dta::RunningDta],
        idp: (milagro_anchor::digest::Digest, String),
    ) -> u64 {
        let services: Vec<_> = dtas
            .iter()
            .map(|d| (d.state().identity.digest(), d.local_url()))
            .collect();
        self.put_group_at(group, EnrolmentMode::Direct, &services, idp)
    }

    /// The TBS's `/v1/status`.
    pub fn status(&self) -> Status {
        self.api.read("/v1/status")
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
            let mempool: Vec<String> = self.node().rpc.call("getrawmempool", &[]).unwrap();
            if !mempool.is_empty() {
                self.node().mine(1);
            }
            done()
        })
    }
}
