//! The `milagro` binary and HTTPS: `milagro tbs serve` with a `[tls]` section answers
//! over HTTPS with the test CA's certificate, survives SIGHUP (which would otherwise end
//! the process) by re-reading its certificate, and serves a renewed certificate without a
//! restart; `milagro pat enrol` reaches a TBS over HTTPS only with `--ca-bundle` naming
//! its CA, and refuses an off-loopback `http://` TBS.

use std::time::Duration;

use milagro_anchor::birth_certificate::Role;
use milagro_tests::enrolment_world::{EnrolmentWorld, WorldOptions};
use milagro_tests::https::{served_certificate, TestTls};
use milagro_tests::{tbs_config, wait_until, TestNode};

use crate::served::Served;

const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn the_binary_serves_https_and_reloads_its_certificate_on_sighup_without_a_restart() {
    let node = TestNode::start();
    let mut tls = TestTls::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tbs.toml");
    let text = format!(
        "{}\n{}",
        tbs_config(&node.rpc_url(), &node.cookie(), &dir.path().join("tbs")),
        tls.section()
    );
    std::fs::write(&config, text).unwrap();
    let mut served = Served::start("tbs", &config);
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let url = format!("{}/v1/status", served.url);
    assert_eq!(
        served_certificate(&tls.outbound(), &url).unwrap(),
        tls.leaf.der
    );

    // SIGHUP re-reads the files; the process goes on serving.
    served.hang_up();
    wait_until("the SIGHUP to be handled", PATIENCE, || {
        served
            .logged("SIGHUP: the TLS certificate is unchanged")
            .then_some(())
    });
    assert!(served.running(), "SIGHUP ended it");
    assert_eq!(
        served_certificate(&tls.outbound(), &url).unwrap(),
        tls.leaf.der
    );

    // A renewal followed by SIGHUP (as a renewal hook sends it) is served by the same
    // process. The file poll may see the files first; either way nothing restarts.
    let renewed = tls.renew(2);
    served.hang_up();
    wait_until("the renewed certificate to be served", PATIENCE, || {
        (served_certificate(&tls.outbound(), &url).unwrap() == renewed.der).then_some(())
    });
    assert!(served.logged("serving a new TLS certificate"));
    assert!(served.running());
    assert!(!served.logged("PRIVATE KEY"));
}

#[test]
fn pat_enrol_reaches_an_https_tbs_with_the_ca_bundle_only_and_refuses_plain_http_off_loopback() {
    let tls = TestTls::new();
    let w = EnrolmentWorld::start_with(&WorldOptions {
        extra_config: tls.section(),
        http: Some(tls.outbound()),
        ..WorldOptions::default()
    });
    let claim = w.maker_key_file().display().to_string();
    let dta = w.anchored(Role::Dta, "D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    let home = tempfile::tempdir().unwrap();
    let (url, digest) = (w.url(), w.tbs_digest.to_string());
    let state = home.path().join("pat").display().to_string();

    // The system's roots do not include the test CA: refused, naming the certificate.
    let args = super::pat::enrol_args(&url, &digest, "eu", &state, &claim);
    let refused = super::milagro(&args);
    assert!(!refused.status.success());
    assert!(
        super::stderr(&refused).contains("certificate"),
        "{}",
        super::stderr(&refused)
    );
    // An off-loopback plain http:// TBS: refused before any request.
    let plain = super::milagro(&super::pat::enrol_args(
        "http://tbs.milagro.test",
        &digest,
        "eu",
        &home.path().join("plain").display().to_string(),
        &claim,
    ));
    assert!(!plain.status.success());
    assert!(
        super::stderr(&plain).contains("plain http:// is allowed only to a loopback host"),
        "{}",
        super::stderr(&plain)
    );

    // With --ca-bundle it enrols.
    let bundle = tls.bundle().display().to_string();
    let mut args = args;
    args.extend(["--ca-bundle", &bundle]);
    let enrolled = super::pat::run_mining(&w, &args);
    assert!(enrolled.status.success(), "{}", super::stderr(&enrolled));
    let report = super::json(&enrolled);
    assert_eq!(report["status"], "enrolled", "{report}");
    assert_eq!(report["tbs"]["digest"], digest.as_str());
    assert_eq!(
        report["dtas"][0]["birth_certificate"],
        dta.digest().to_string()
    );
}
