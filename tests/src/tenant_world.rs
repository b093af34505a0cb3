//! A TBS whose operator holds an admin token, on its own regtest node: what the tenant API
//! tests (over HTTP and through the admin page) start from.

use std::time::Duration;

use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_registry::chain::ChainSource;
use milagro_tbs::config::Config;
use milagro_tbs::tenants::model::ApiToken;
use milagro_tbs::{RunningTbs, Tbs};
use milagro_wire::tbs::registry::Status;
use milagro_wire::tbs::tenants::{CreatedTenant, NewTenant};

use crate::{party, tbs_config, wait_until, Api, TestNode};

/// How long the fixture waits for the TBS to index a block.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A node, a TBS configured with an admin token, and a client of its API.
pub struct TenantWorld {
    /// The node.
    pub node: TestNode,
    /// The TBS (stopped when dropped).
    pub tbs: RunningTbs,
    /// A JSON client of the TBS.
    pub api: Api,
    /// The operator's admin token.
    pub admin: ApiToken,
    /// A temporary directory for the TBS state and anything else the test keeps.
    pub dir: tempfile::TempDir,
}

impl TenantWorld {
    /// Starts the node and the TBS (its own anchor is left pending: these tests do not need it).
    pub fn start() -> Self {
        let node = TestNode::start();
        let dir = tempfile::tempdir().unwrap();
        let admin = ApiToken::generate(&mut rand_core::OsRng);
        let text = format!(
            "{}\n[admin]\ntoken_sha256 = \"{}\"\n",
            tbs_config(&node.rpc_url(), &node.cookie(), &dir.path().join("s")),
            admin.hash()
        );
        let tbs = Tbs::start(Config::parse(&text).unwrap()).unwrap();
        let api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
        Self {
            node,
            tbs,
            api,
            admin,
            dir,
        }
    }

    /// The admin token, as `Api::call` takes it.
    pub fn admin(&self) -> Option<&str> {
        Some(self.admin.reveal())
    }

    /// Creates a tenant through the API; returns its token.
    pub fn tenant(&self, id: &str) -> String {
        let tenant = NewTenant {
            id: id.into(),
            name: id.to_uppercase(),
        };
        let created: CreatedTenant =
            self.api
                .exchange(("POST", "/v1/admin/tenants"), self.admin(), &tenant, 201);
        assert_eq!(created.tenant.id, id);
        created.token
    }

    /// Anchors a D-TA certificate and waits until the TBS has indexed it.
    pub fn anchored_dta(&self, name: &str) -> Digest {
        let (key, bc) = party(Role::Dta, name);
        self.node.anchor_bc(&key, &bc);
        self.node.mine(1);
        let tip = self.node.rpc.tip().unwrap();
        wait_until("the TBS to index the D-TA", PATIENCE, || {
            let status: Status = self.api.read("/v1/status");
            (status.index_hash == Some(tip.hash.to_string())).then_some(())
        });
        bc.digest()
    }
}
