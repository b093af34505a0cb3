//! The TBS under bad input and a failing node: every error is a JSON 4xx (or an honest
//! 503 about the node), never a 500 or a panic, and the API keeps serving what it has.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use milagro_tbs::config::Config;
use milagro_tbs::{RunningTbs, Tbs};
use milagro_tests::{tbs_config, wait_until, Api, TcpRelay, TestNode};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);
const WELL_KNOWN: &str = "/.well-known/milagro/birth-certificate";

/// A TBS on `rpc_url`, waited on until its own certificate is served (mining one block).
fn anchored_tbs(node: &TestNode, rpc_url: &str, dir: &std::path::Path) -> (RunningTbs, Api) {
    let config = Config::parse(&tbs_config(rpc_url, &node.cookie(), dir)).unwrap();
    let tbs = Tbs::start(config).unwrap();
    let api = Api::documented(tbs.local_url(), milagro_tbs::api::OPENAPI_JSON);
    wait_until("the TBS anchor to be broadcast", PATIENCE, || {
        (api.ok("/v1/status")["anchor"]["state"] == "pending").then_some(())
    });
    node.mine(1);
    wait_until("the certificate to be served", PATIENCE, || {
        (api.get(WELL_KNOWN).0 == 200).then_some(())
    });
    (tbs, api)
}

fn assert_json_error(what: &str, status: u16, content_type: &str, body: &str) -> Value {
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {content_type}"
    );
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    assert!(
        json["error"].is_string() && json["error_description"].is_string(),
        "{what}: {json}"
    );
    assert_eq!(json.as_object().unwrap().len(), 2, "{what}: {json}");
    assert!((400..600).contains(&status), "{what}: {status}");
    json
}

#[test]
fn bad_inputs_get_json_client_errors_and_random_requests_never_a_server_error() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let (_tbs, api) = anchored_tbs(&node, &node.rpc_url(), dir.path());
    let hex64 = "ab".repeat(32);
    let cases = [
        ("GET", "/v1/records".to_owned(), 400, "bad_request"),
        ("GET", "/v1/records?digest=zz".into(), 400, "bad_request"),
        (
            "GET",
            format!("/v1/records?digest={hex64}&txid={hex64}"),
            400,
            "bad_request",
        ),
        (
            "GET",
            format!("/v1/records?digest={hex64}&digest={hex64}"),
            400,
            "bad_request",
        ),
        (
            "GET",
            format!("/v1/records?txid={}", &hex64[1..]),
            400,
            "bad_request",
        ),
        (
            "GET",
            format!("/v1/records?signer=04{hex64}"),
            400,
            "bad_request",
        ),
        (
            "GET",
            format!("/v1/records?colour=red&digest={hex64}"),
            400,
            "bad_request",
        ),
        (
            "GET",
            "/v1/records?digest=%ff%fe".into(),
            400,
            "bad_request",
        ),
        ("GET", "/v1/proofs/not-hex".into(), 400, "bad_request"),
        ("GET", format!("/v1/proofs/{hex64}ab"), 400, "bad_request"),
        ("GET", format!("/v1/proofs/{hex64}"), 404, "not_found"),
        ("GET", "/v1/proofs/".into(), 404, "not_found"),
        ("GET", "/v1/headers".into(), 400, "bad_request"),
        ("GET", "/v1/headers?from=-1".into(), 400, "bad_request"),
        ("GET", "/v1/headers?from=abc".into(), 400, "bad_request"),
        (
            "GET",
            "/v1/headers?from=4294967296".into(),
            400,
            "bad_request",
        ),
        (
            "GET",
            "/v1/headers?from=0&count=0".into(),
            400,
            "bad_request",
        ),
        (
            "GET",
            "/v1/headers?from=0&count=2001".into(),
            400,
            "bad_request",
        ),
        (
            "GET",
            "/v1/headers?from=0&count=1&count=2".into(),
            400,
            "bad_request",
        ),
        ("GET", "/nothing/here".into(), 404, "not_found"),
        ("POST", "/v1/status".into(), 405, "method_not_allowed"),
        ("DELETE", "/metrics".into(), 405, "method_not_allowed"),
        ("PUT", WELL_KNOWN.into(), 405, "method_not_allowed"),
    ];
    for (method, path, status, code) in cases {
        let what = format!("{method} {path}");
        let (got, content_type, body) = api.send(method, &path);
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(
            assert_json_error(&what, got, &content_type, &body)["error"],
            code
        );
    }
    // The biggest page is allowed.
    assert_eq!(
        api.ok("/v1/headers?from=0&count=2000")["headers"]
            .as_array()
            .unwrap()
            .len(),
        103
    );

    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..400 {
        let (method, path) = random.request();
        let (status, content_type, body) = api.send(method, &path);
        let what = format!("{method} {path}");
        assert!(status < 500, "{what}: {status} {body}");
        if status >= 400 && method != "HEAD" {
            assert_json_error(&what, status, &content_type, &body);
        }
        *statuses.entry(status).or_default() += 1;
    }
    // The generator reaches both answers and refusals.
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "{statuses:?}"
    );
}

#[test]
fn the_api_keeps_serving_while_the_node_is_away_and_catches_up_when_it_returns() {
    let node = TestNode::start();
    let relay = TcpRelay::start(node.rpc_socket());
    let dir = tempfile::tempdir().unwrap();
    let (_tbs, api) = anchored_tbs(&node, &relay.url(), dir.path());
    let key = api.ok("/v1/status")["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let txid = api.ok(WELL_KNOWN)["txid"].as_str().unwrap().to_owned();

    relay.cut();
    let status = wait_until("the node to be seen as unreachable", PATIENCE, || {
        let status = api.ok("/v1/status");
        (status["node_reachable"] == false).then_some(status)
    });
    assert!(status["last_error"].is_string(), "{status}");
    assert!(status["sync_errors"].as_u64().unwrap() > 0, "{status}");
    // What the index holds is still served...
    assert_eq!(
        api.ok(&format!("/v1/records?signer={key}"))["records"][0]["txid"],
        txid
    );
    assert_eq!(api.ok(WELL_KNOWN)["txid"], txid);
    // ...and what needs the node says so.
    for path in [format!("/v1/proofs/{txid}"), "/v1/headers?from=0".into()] {
        let (code, body) = api.get(&path);
        assert_eq!(
            (code, body["error"].as_str()),
            (503, Some("node_unreachable")),
            "{body}"
        );
    }
    let (_, _, metrics) = api.send("GET", "/metrics");
    assert!(
        metrics.contains("milagro_tbs_node_reachable 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("milagro_tbs_sync_errors_total 0\n"),
        "{metrics}"
    );

    // The node moves on meanwhile, then comes back under the same URL.
    node.mine(2);
    relay.forward_to(node.rpc_socket());
    let status = wait_until("the TBS to catch up", PATIENCE, || {
        let status = api.ok("/v1/status");
        (status["node_reachable"] == true && status["index_height"] == 104).then_some(status)
    });
    assert!(status["last_error"].is_null(), "{status}");
    assert_eq!(api.ok(WELL_KNOWN)["depth"], 3);
    assert_eq!(api.ok(&format!("/v1/proofs/{txid}"))["depth"], 3);

    // The node dies for good: the API still answers.
    drop(node);
    wait_until("the node to be seen as gone", PATIENCE, || {
        (api.ok("/v1/status")["node_reachable"] == false).then_some(())
    });
    assert_eq!(
        api.ok(&format!("/v1/records?signer={key}"))["records"][0]["txid"],
        txid
    );
    assert_eq!(api.ok("/v1/status")["index_height"], 104);
}

/// A small deterministic generator of odd requests (xorshift64).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn text(&mut self) -> String {
        let len = self.next() % 70;
        (0..len)
            .map(|_| {
                self.pick(&[
                    "a", "f", "0", "9", "Z", "-", ".", "_", "~", "%25", "%00", "%ff", "%2F",
                    "%C3%A9", "..", "+", "%20", "ab", "00", "02",
                ])
            })
            .collect()
    }

    fn value(&mut self) -> String {
        match self.next() % 6 {
            0 => "ab".repeat(32),
            1 => format!("02{}", "cd".repeat(32)),
            2 => (self.next() % 300).to_string(),
            3 => format!("-{}", self.next()),
            4 => u64::MAX.to_string(),
            _ => self.text(),
        }
    }

    fn request(&mut self) -> (&'static str, String) {
        let method = self.pick(&["GET", "GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD"]);
        let mut path = self
            .pick(&[
                "/",
                "/v1/",
                "/v1/records",
                "/v1/proofs/",
                "/v1/headers",
                "/v1/status",
                "/metrics",
                "/openapi.json",
                "/.well-known/milagro/",
                WELL_KNOWN,
            ])
            .to_owned();
        if self.next().is_multiple_of(2) {
            path.push_str(&self.text());
        }
        let params = self.next() % 4;
        for i in 0..params {
            path.push(if i == 0 { '?' } else { '&' });
            path.push_str(self.pick(&["digest", "txid", "signer", "from", "count", "x", ""]));
            path.push('=');
            path.push_str(&self.value());
        }
        (method, path)
    }
}
