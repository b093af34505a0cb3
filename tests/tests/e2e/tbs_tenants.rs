//! Tenants and device groups over the TBS's HTTP API: credentials, isolation, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_anchor::digest::Digest;
use milagro_tests::tenant_world::TenantWorld;
use serde_json::{json, Value};

fn group(name: &str, dta: &Digest) -> Value {
    json!({"name": name, "mode": "direct", "dtas": [{"birth_certificate": dta, "url": "https://dta1.milagro.test"}]})
}

#[test]
fn tenants_manage_their_groups_and_never_see_each_others() {
    let w = TenantWorld::start();
    let acme = w.tenant("acme");
    let globex = w.tenant("globex");
    let dta = w.anchored_dta("D-TA 1");

    let (status, saved) = w.api.call(
        "PUT",
        "/v1/tenants/acme/groups/eu",
        Some(&acme),
        Some(group("EU", &dta)),
    );
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        (saved["revision"].as_u64(), saved["tenant"].as_str()),
        (Some(1), Some("acme"))
    );
    let (status, again) = w.api.call(
        "PUT",
        "/v1/tenants/acme/groups/eu",
        Some(&acme),
        Some(group("EU (v2)", &dta)),
    );
    assert_eq!((status, again["revision"].as_u64()), (200, Some(2)));

    // Globex's token reaches nothing of Acme's: every call is the 404 of a missing tenant,
    // and Acme's group is unchanged afterwards.
    for (method, path, body) in [
        ("GET", "/v1/tenants/acme/groups", None),
        ("GET", "/v1/tenants/acme/groups/eu", None),
        (
            "PUT",
            "/v1/tenants/acme/groups/eu",
            Some(group("hijacked", &dta)),
        ),
        ("DELETE", "/v1/tenants/acme/groups/eu", None),
        ("POST", "/v1/tenants/acme/tokens", None),
    ] {
        let (status, body) = w.api.call(method, path, Some(&globex), body);
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    let (_, unchanged) = w
        .api
        .call("GET", "/v1/tenants/acme/groups/eu", Some(&acme), None);
    assert_eq!(unchanged, again);
    let (status, own) = w
        .api
        .call("GET", "/v1/tenants/globex/groups", Some(&globex), None);
    assert_eq!((status, own), (200, json!([])));

    // The operator reaches every tenant.
    let (status, groups) = w
        .api
        .call("GET", "/v1/tenants/acme/groups", w.admin(), None);
    assert_eq!((status, groups.as_array().map(Vec::len)), (200, Some(1)));
    let (status, tenants) = w.api.call("GET", "/v1/admin/tenants", w.admin(), None);
    assert_eq!(
        (status, tenants["tenants"].as_array().map(Vec::len)),
        (200, Some(2))
    );

    // A second token works; deleting the group makes it 404.
    let (status, issued) = w
        .api
        .call("POST", "/v1/tenants/acme/tokens", Some(&acme), None);
    assert_eq!(status, 201);
    let second = issued["token"].as_str().unwrap();
    let (status, _) = w
        .api
        .call("DELETE", "/v1/tenants/acme/groups/eu", Some(second), None);
    assert_eq!(status, 204);
    let (status, _) = w
        .api
        .call("GET", "/v1/tenants/acme/groups/eu", Some(&acme), None);
    assert_eq!(status, 404);
    drop(w.tbs);
}

#[test]
fn credentials_are_checked_before_anything_else() {
    let w = TenantWorld::start();
    let acme = w.tenant("acme");
    let (status, body) = w.api.call("GET", "/v1/admin/tenants", None, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let garbage = format!("mlgt_{}", "ab".repeat(32));
    for token in ["nonsense", garbage.as_str()] {
        let (status, _) = w
            .api
            .call("GET", "/v1/tenants/acme/groups", Some(token), None);
        assert_eq!(status, 401, "{token}");
    }
    let (status, body) = w.api.call(
        "POST",
        "/v1/admin/tenants",
        Some(&acme),
        Some(json!({"id": "mine", "name": "Mine"})),
    );
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    let (status, body) = w.api.call(
        "POST",
        "/v1/admin/tenants",
        w.admin(),
        Some(json!({"id": "acme", "name": "Again"})),
    );
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
}

#[test]
fn bad_group_input_is_a_400_and_changes_nothing() {
    let w = TenantWorld::start();
    let acme = w.tenant("acme");
    let dta = w.anchored_dta("D-TA 1");
    let unanchored = Digest::sha256(b"a D-TA nobody anchored");
    let cases = [
        ("/v1/tenants/acme/groups/eu", group("EU", &unanchored)),
        (
            "/v1/tenants/acme/groups/eu",
            json!({"name": "EU", "mode": "sometimes"}),
        ),
        (
            "/v1/tenants/acme/groups/eu",
            json!({"name": "", "mode": "direct"}),
        ),
        (
            "/v1/tenants/acme/groups/eu",
            json!({"name": "EU", "dtas": [{"birth_certificate": "zz", "url": "https://d"}]}),
        ),
        (
            "/v1/tenants/acme/groups/eu",
            json!({"name": "EU", "dtas": [{"birth_certificate": dta, "url": "ftp://d"}]}),
        ),
        (
            "/v1/tenants/acme/groups/eu",
            json!({"name": "EU", "extra": true}),
        ),
        ("/v1/tenants/acme/groups/Not_A_Slug", group("EU", &dta)),
        ("/v1/tenants/ACME/groups/eu", group("EU", &dta)),
    ];
    for (path, body) in cases {
        let (status, answer) = w.api.call("PUT", path, Some(&acme), Some(body.clone()));
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["error"], "bad_request");
    }
    let (status, answer) = w.api.call(
        "PUT",
        "/v1/tenants/acme/groups/eu",
        Some(&acme),
        Some(json!({"name": "x".repeat(70_000)})),
    );
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (status, groups) = w
        .api
        .call("GET", "/v1/tenants/acme/groups", Some(&acme), None);
    assert_eq!((status, groups), (200, json!([])));
}

#[test]
fn the_admin_page_is_served() {
    let w = TenantWorld::start();
    let (status, content_type, body) = w.api.send("GET", "/admin");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains("Create or update a group"));
}
