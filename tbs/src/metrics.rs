//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `milagro_tbs_http_requests_total{route,method,status}` | counter | requests answered, by route pattern (`unmatched` for unknown paths) |
//! | `milagro_tbs_index_height` | gauge | height of the last indexed block (-1 before the first) |
//! | `milagro_tbs_records` | gauge | Milagro records in the index |
//! | `milagro_tbs_node_reachable` | gauge | 1 if the last poll reached the node |
//! | `milagro_tbs_sync_errors_total` | counter | failed polls of the node |
//! | `milagro_tbs_anchored` | gauge | 1 once the TBS's own Birth Certificate is anchored |

use std::fmt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: String,
}

/// The TBS's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    pub(crate) index_height: Gauge,
    pub(crate) records: Gauge,
    pub(crate) node_reachable: Gauge,
    pub(crate) sync_errors: Counter,
    pub(crate) anchored: Gauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("milagro_tbs");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            http_requests.clone(),
        );
        let index_height = Gauge::default();
        index_height.set(-1);
        registry.register(
            "index_height",
            "Height of the last indexed block",
            index_height.clone(),
        );
        let records = Gauge::default();
        registry.register("records", "Milagro records in the index", records.clone());
        let node_reachable = Gauge::default();
        registry.register(
            "node_reachable",
            "1 if the last poll reached the node",
            node_reachable.clone(),
        );
        let sync_errors = Counter::default();
        registry.register(
            "sync_errors",
            "Failed polls of the node",
            sync_errors.clone(),
        );
        let anchored = Gauge::default();
        registry.register(
            "anchored",
            "1 once the TBS's own Birth Certificate is anchored",
            anchored.clone(),
        );
        Self {
            registry,
            http_requests,
            index_height,
            records,
            node_reachable,
            sync_errors,
            anchored,
        }
    }

    /// Counts one answered request. `route` is the matched pattern, not the raw path, so
    /// the number of series stays bounded whatever clients send.
    pub fn observe_request(&self, route: Option<String>, method: &str, status: u16) {
        let method = match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            _ => "other",
        };
        self.http_requests
            .get_or_create(&RequestLabels {
                route: route.unwrap_or_else(|| "unmatched".into()),
                method,
                status: status.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_pattern_and_gauges_are_exported() {
        let metrics = Metrics::new();
        metrics.observe_request(Some("/v1/proofs/{txid}".into()), "GET", 404);
        metrics.observe_request(Some("/v1/proofs/{txid}".into()), "GET", 404);
        metrics.observe_request(None, "BREW", 404);
        metrics.records.set(3);
        let text = metrics.encode().unwrap();
        assert!(text.contains(
            "milagro_tbs_http_requests_total{route=\"/v1/proofs/{txid}\",method=\"GET\",status=\"404\"} 2"
        ), "{text}");
        assert!(
            text.contains("route=\"unmatched\",method=\"other\""),
            "{text}"
        );
        assert!(text.contains("milagro_tbs_records 3"), "{text}");
        assert!(text.contains("milagro_tbs_index_height -1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
