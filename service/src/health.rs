//! `GET /healthz` and `GET /readyz`, the same for every service.
//!
//! - `/healthz` answers 200 while the process serves HTTP at all: what a supervisor or a
//!   container's `HEALTHCHECK` restarts on.
//! - `/readyz` answers 200 only when the service can do its job: the node is reachable,
//!   the index is at the node's tip, the service's own anchor is confirmed, and the peers
//!   it needs answer ([`Service::peer_checks`]: the authentication server's D-TA shares,
//!   the D-TA's share API); otherwise 503 with the same body, naming what failed
//!   ([`milagro_wire::health::Readiness`]). What a load balancer routes on.
//!
//! Both read only what the chain loop and the service already hold in memory: no node
//! call, no database read, so probing them costs nothing an attacker could multiply.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, Route};
use milagro_wire::health::{Readiness, ReadinessCheck};

use crate::own_anchor::AnchorState;
use crate::runtime::Service;

/// Where every service answers that its process is alive.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Where every service answers whether it is ready.
pub const READYZ_PATH: &str = "/readyz";

/// The route answering `GET /healthz`: `{"status": "alive"}`.
pub fn healthz_route() -> Route {
    web::get().to(|| async {
        HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "status": "alive" }))
    })
}

/// The route answering `GET /readyz` for the service `S`.
pub fn readyz_route<S: Service>() -> Route {
    web::get().to(|service: web::Data<S>| async move {
        let readiness = readiness(service.get_ref());
        let status = if readiness.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        HttpResponse::build(status)
            .insert_header(("Cache-Control", "no-store"))
            .json(readiness)
    })
}

/// What `/readyz` answers for `service` now.
pub fn readiness<S: Service>(service: &S) -> Readiness {
    let parts = service.chain_parts();
    let chain = parts.status.snapshot();
    let mut checks = Vec::new();
    checks.push(match (&chain.last_error, chain.node_height) {
        (None, Some(height)) if chain.node_reachable => {
            ReadinessCheck::new("node", true, format!("reachable, at height {height}"))
        }
        (Some(error), _) => ReadinessCheck::new("node", false, error.clone()),
        _ => ReadinessCheck::new("node", false, "not reached yet"),
    });
    checks.push(if chain.caught_up {
        ReadinessCheck::new("index", true, "at the node's tip")
    } else {
        ReadinessCheck::new("index", false, "catching up with the node")
    });
    let mut anchor_depth = None;
    checks.push(match parts.own_anchor.get() {
        AnchorState::Confirmed(served) => {
            let height = served.verified.height();
            let depth = chain
                .node_height
                .map_or(1, |tip| tip.saturating_sub(height).saturating_add(1));
            anchor_depth = Some(depth);
            ReadinessCheck::new(
                "anchor",
                true,
                format!("confirmed at height {height}, {depth} deep"),
            )
        }
        AnchorState::Pending { txid } => {
            ReadinessCheck::new("anchor", false, format!("{txid} waits for a block"))
        }
        AnchorState::None => {
            let detail = chain
                .anchor_error
                .clone()
                .unwrap_or_else(|| "not broadcast yet".to_owned());
            ReadinessCheck::new("anchor", false, detail)
        }
    });
    checks.extend(service.peer_checks());
    Readiness {
        ready: checks.iter().all(|check| check.ok),
        digest: parts.identity.digest(),
        role: parts.identity.role().to_string(),
        anchor_depth,
        checks,
    }
}
