//! The plan of a first run, interrupted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_anchor::digest::Digest;
use milagro_init::ServiceRole;
use milagro_regtest::NodeInfo;

use crate::layout::{NetworkDir, Runner};
use crate::up::{planned, prepare_dir};

/// A node that is never asked anything: planning only writes its URL and cookie path
/// into the configurations.
fn node(dir: &NetworkDir) -> NodeInfo {
    NodeInfo {
        datadir: dir.node_dir(),
        rpc_url: "http://127.0.0.1:9".into(),
        rpc_port: 9,
        p2p_port: 10,
        cookie_file: dir.node_dir().join("regtest/.cookie"),
        wallet: milagro_regtest::WALLET.into(),
        pid: 0,
    }
}

/// The digest of the Birth Certificate in party `name`'s state.
fn certificate_digest(dir: &NetworkDir, name: &str) -> Digest {
    let path = dir
        .party_dir(name)
        .join("state")
        .join(milagro_service::identity::BC_FILE);
    let bytes = std::fs::read(&path).unwrap();
    milagro_anchor::birth_certificate::BirthCertificate::parse(&bytes)
        .unwrap()
        .digest()
}

#[test]
fn a_first_run_interrupted_before_it_wrote_the_record_is_planned_again_from_scratch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = NetworkDir::new(tmp.path());
    prepare_dir(&dir).unwrap();
    let node = node(&dir);
    planned(&dir, &node, Runner::Supervisor).unwrap();
    // Interrupted after the TBS's and the IdP's configurations, before network.json:
    // what the first run left, less its commit point.
    std::fs::remove_file(dir.record_file()).unwrap();
    let tbs_config = milagro_init::config_path(&dir.party_dir("tbs"), ServiceRole::Tbs);
    assert!(tbs_config.exists());

    let record =
        planned(&dir, &node, Runner::Supervisor).expect("a plan that never ran is made again");

    assert_eq!(dir.read_record().unwrap().unwrap().parties, record.parties);
    assert!(record.tbs_admin_token.is_some() && record.idp_registration_token.is_some());
    for party in &record.parties {
        // Each identity is the one the record pins, and its configuration listens where
        // the record (and so the certificate's URL) says.
        assert_eq!(
            certificate_digest(&dir, &party.name),
            party.digest,
            "{}",
            party.name
        );
        let role = party.service_role().unwrap();
        let config = milagro_init::config_path(&dir.party_dir(&party.name), role);
        if matches!(role, ServiceRole::Tbs | ServiceRole::Idp) {
            let text = std::fs::read_to_string(&config).unwrap();
            assert!(text.contains(&party.listen.to_string()), "{text}");
        } else {
            // Written only once the IdP runs (step 3).
            assert!(!config.exists());
        }
    }
    // Planned already: the record is kept as it is.
    let kept = planned(&dir, &node, Runner::Supervisor).unwrap();
    assert_eq!(kept.parties, record.parties);
}
