//! The admin page (`GET /admin`) used in headless Chromium as a person would: type a
//! tenant's token, load the groups, create a group, attach an anchored D-TA, see it listed,
//! and see a clear error for a D-TA that is not anchored. The API confirms each change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use milagro_anchor::digest::Digest;
use milagro_tests::tenant_world::TenantWorld;
use milagro_tests::webdriver::{ensure_chromium, ChromeDriver, Session};
use serde_json::{json, Value};

/// How long the page may take to show the answer to a click.
const PAGE: Duration = Duration::from_secs(15);
const DTA_URL: &str = "https://dta1.milagro.test";

/// Group `id` of tenant `acme`, read through the API.
fn group(w: &TenantWorld, token: &str, id: &str) -> Value {
    let (status, group) = w.api.call(
        "GET",
        &format!("/v1/tenants/acme/groups/{id}"),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{group}");
    group
}

/// Types into the input with CSS id `id`, replacing what it held.
fn fill(page: &Session, id: &str, text: &str) {
    let input = page.find(&format!("#{id}")).unwrap();
    input.clear().unwrap();
    input.send_keys(text).unwrap();
}

fn click(page: &Session, id: &str) {
    page.find(&format!("#{id}")).unwrap().click().unwrap();
}

/// Waits until the status line says `text`, styled as success (`ok`) or failure (`error`).
fn wait_for_status(page: &Session, class: &str, text: &str) {
    page.wait_for(&format!("status {class:?} saying {text:?}"), PAGE, |page| {
        let status = page.find("#status").ok()?;
        let shown = (status.text().ok()?, status.attribute("class").ok()??);
        (shown.0.contains(text) && shown.1 == class).then_some(())
    });
}

/// The cells of the table row of group `id`, once the page shows a row whose revision
/// (last cell) is `revision`.
fn wait_for_row(page: &Session, id: &str, revision: u64) -> Vec<String> {
    page.wait_for(
        &format!("the row of {id} at revision {revision}"),
        PAGE,
        |page| {
            let cells = page.texts(&format!("#groups tbody tr[data-group='{id}'] td"))?;
            (cells.last() == Some(&revision.to_string())).then_some(cells)
        },
    )
}

#[test]
fn a_tenant_creates_a_group_and_attaches_a_dta_in_the_admin_page() {
    ensure_chromium();
    let w = TenantWorld::start();
    let acme = w.tenant("acme");
    let dta = w.anchored_dta("D-TA 1");
    let unanchored = Digest::sha256(b"a D-TA nobody anchored");

    let driver = ChromeDriver::start(w.dir.path());
    let page = driver.session(&w.dir.path().join("chromium-profile"));
    page.goto(&format!("{}/admin", w.tbs.local_url()));

    // Credentials, then the (empty) list of groups.
    fill(&page, "token", &acme);
    fill(&page, "tenant", "acme");
    click(&page, "load-groups");
    wait_for_status(&page, "ok", "0 groups loaded");
    assert_eq!(page.texts("#groups tbody tr"), Some(vec![]));

    // A new group appears in the table.
    fill(&page, "group-id", "eu-thermostats");
    fill(&page, "group-name", "EU thermostats");
    click(&page, "save-group");
    wait_for_status(&page, "ok", "group eu-thermostats saved");
    let row = wait_for_row(&page, "eu-thermostats", 1);
    assert_eq!(
        row,
        [
            "eu-thermostats",
            "EU thermostats",
            "direct",
            "—",
            "—",
            "none: nobody enrols",
            "1"
        ],
        "the new group's row"
    );

    // Attaching the anchored D-TA lists it in the group's row, at revision 2 ...
    fill(&page, "dta-digest", &dta.to_string());
    fill(&page, "dta-url", DTA_URL);
    click(&page, "attach-dta");
    wait_for_status(&page, "ok", "D-TA attached to eu-thermostats");
    let row = wait_for_row(&page, "eu-thermostats", 2);
    let listed = &row[3];
    assert!(
        listed.contains(DTA_URL) && listed.contains(&dta.to_string()[..12]),
        "the D-TA cell shows its URL and digest: {row:?}"
    );
    // ... and the TBS really holds it.
    let saved = group(&w, &acme, "eu-thermostats");
    assert_eq!(saved["revision"], 2);
    assert_eq!(saved["name"], "EU thermostats");
    assert_eq!(
        saved["dtas"],
        json!([{"birth_certificate": dta.to_string(), "url": DTA_URL}])
    );

    // A digest nobody anchored is refused: the status says why, and nothing changes.
    fill(&page, "dta-digest", &unanchored.to_string());
    fill(&page, "dta-url", "https://dta2.milagro.test");
    click(&page, "attach-dta");
    wait_for_status(&page, "error", "is not anchored on chain");
    let status = page.find("#status").unwrap().text().unwrap();
    assert!(status.contains(&unanchored.to_string()), "{status}");
    assert_eq!(wait_for_row(&page, "eu-thermostats", 2), row);
    assert_eq!(group(&w, &acme, "eu-thermostats"), saved);

    // The maker's enrolment key: added, shown, kept by later saves, and removed again.
    let maker = milagro_anchor::keys::SecretKey::generate(&mut rand_core::OsRng).public_key();
    fill(&page, "enrolment-key", &maker.to_string());
    click(&page, "add-key");
    wait_for_status(&page, "ok", "enrolment key added to eu-thermostats");
    let row = wait_for_row(&page, "eu-thermostats", 3);
    assert!(row[5].contains(&maker.to_string()[..16]), "{row:?}");
    let saved = group(&w, &acme, "eu-thermostats");
    assert_eq!(saved["enrolment_keys"], json!([maker.to_string()]));
    assert_eq!(
        saved["dtas"].as_array().map(Vec::len),
        Some(1),
        "the D-TA stays"
    );
    fill(&page, "enrolment-key", "02zz");
    click(&page, "add-key");
    wait_for_status(&page, "error", "66 hex characters");
    fill(&page, "enrolment-key", &maker.to_string());
    click(&page, "remove-key");
    wait_for_status(&page, "ok", "enrolment key removed from eu-thermostats");
    wait_for_row(&page, "eu-thermostats", 4);
    assert_eq!(
        group(&w, &acme, "eu-thermostats")["enrolment_keys"],
        json!([])
    );

    let png = page.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tbs_admin_page.png");
    std::fs::write(&shot, png).unwrap();
    eprintln!("screenshot: {}", shot.display());
    page.close();
}
