//! Attack 3 of the chain-trust issue: one TBS decides what a device believes. Each test
//! makes a real TBS lie (withhold blocks, serve a proof from a branch the network left,
//! hide a superseding certificate), first shows that a device asking that TBS alone is
//! fooled, then that a device given independent sources (ElectrumX on a second node, a
//! second TBS pinned by its digest) refuses, naming the sources that disagree.
//! `docs/threat-model.md` maps each claim to its test here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bitcoin::Network;
use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status};
use milagro_pat_client::peering::TbsDirectory;
use milagro_pat_client::{ChainSources, RegistryPin, ServiceClient};
use milagro_registry::chain::ChainSource as _;
use milagro_regtest::ElectrumServer;
use milagro_tests::enrolment_world::{EnrolmentWorld, PATIENCE};
use milagro_tests::lying_tbs::LyingTbs;
use milagro_tests::{party, wait_until, TestNode};
use milagro_tls::{DirectoryError, PeerDirectory as _};

/// A directory asking only `tbs`, as a device without sources does.
fn tbs_alone(tbs: &str) -> TbsDirectory {
    TbsDirectory::new(ServiceClient::new(tbs).unwrap(), Network::Regtest)
}

/// A directory asking `tbs`, checked against `sources`.
fn with_sources(tbs: &str, sources: ChainSources) -> TbsDirectory {
    tbs_alone(tbs).with_sources(&sources).unwrap()
}

fn electrum(server: &ElectrumServer) -> ChainSources {
    ChainSources {
        electrum: vec![server.url()],
        registries: vec![],
    }
}

/// The TBS's node (the world's) and a second node following it, with ElectrumX on the
/// second: the independent header source a device is given.
fn world_with_electrum() -> (EnrolmentWorld, TestNode, ElectrumServer) {
    let w = EnrolmentWorld::start();
    let other = w.node().start_peer();
    let server = ElectrumServer::start(&other.rpc_url(), &other.cookie(), Network::Regtest)
        .expect("ElectrumX starts against the second node (installed on first use)");
    (w, other, server)
}

/// Mines `count` blocks on `node` (cut off from the TBS's) and waits until ElectrumX serves
/// its new tip.
fn mine_apart(node: &TestNode, server: &ElectrumServer, count: u32) -> u32 {
    node.mine(count);
    let tip = tip_height(node);
    server.wait_synced(tip, PATIENCE).unwrap();
    tip
}

fn tip_height(node: &TestNode) -> u32 {
    node.rpc.tip().unwrap().height
}

fn unavailable(answer: Result<milagro_tls::Standing, DirectoryError>) -> String {
    match answer {
        Err(DirectoryError::Unavailable(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A TBS whose node stopped following the network (cut off, or its operator withholding
/// blocks) serves a chain behind the Electrum server's: the device refuses it, naming the
/// TBS and the server and both tips; once the TBS catches up, the same lookup succeeds.
#[test]
fn a_tbs_whose_tip_is_behind_the_electrum_servers_is_reported_naming_both() {
    let (w, other, server) = world_with_electrum();
    let (key, bc) = party(Role::Dta, "D-TA");
    let txid = w.node().anchor_bc(&key, &bc);
    w.mine(1);
    other.wait_for_tip_of(w.node());
    server.wait_synced(tip_height(&other), PATIENCE).unwrap();
    let checked = with_sources(&w.url(), electrum(&server));
    let standing = checked.standing(txid).unwrap();
    assert_eq!(standing.anchor.digest(), bc.digest());
    let seen = checked.chain_seen().unwrap();
    assert_eq!(seen.agreed_by, vec![w.url(), server.url()]);

    // The TBS's node is cut off; the network finds three blocks it does not have.
    other.set_network_active(false);
    let tbs_tip = tip_height(w.node());
    let network_tip = mine_apart(&other, &server, 3);

    // The TBS alone: nothing looks wrong (its chain is valid, only old).
    tbs_alone(&w.url()).standing(txid).unwrap();
    // With the Electrum server: refused, naming both sources and both tips.
    let message = unavailable(with_sources(&w.url(), electrum(&server)).standing(txid));
    for needle in [
        w.url(),
        server.url(),
        format!("{tbs_tip}"),
        format!("{network_tip}"),
        "behind".into(),
    ] {
        assert!(message.contains(&needle), "{needle:?} in {message}");
    }

    // Connected again, the TBS catches up and the same device agrees with it.
    other.set_network_active(true);
    w.node().wait_for_tip_of(&other);
    wait_until("the TBS to index the network's tip", PATIENCE, || {
        with_sources(&w.url(), electrum(&server))
            .standing(txid)
            .ok()
    });
}

/// A TBS on a branch the network left serves a proof of an anchor that is in no block of
/// the best chain: alone it is believed; against the Electrum server the fork is refused,
/// naming both sources and the height; once the TBS follows the reorg the anchor is gone.
#[test]
fn a_tbs_serving_a_proof_from_a_reorged_away_branch_is_caught() {
    let (w, other, server) = world_with_electrum();
    other.set_network_active(false);
    let fork_height = tip_height(w.node()) + 1;

    // On the TBS's side of the partition a certificate is anchored and mined...
    let (key, bc) = party(Role::Idp, "IdP");
    let txid = w.node().anchor_bc(&key, &bc);
    w.mine(1);
    // ... while the network's side finds a longer branch without it.
    mine_apart(&other, &server, 2);

    // The TBS alone: the anchor verifies, one confirmation deep.
    let fooled = tbs_alone(&w.url()).standing(txid).unwrap();
    assert_eq!(fooled.anchor.height(), fork_height);
    // With the Electrum server: refused at the fork, naming both sources.
    let message = unavailable(with_sources(&w.url(), electrum(&server)).standing(txid));
    for needle in [
        w.url(),
        server.url(),
        format!("fork at height {fork_height}"),
    ] {
        assert!(message.contains(&needle), "{needle:?} in {message}");
    }

    // Reconnected, the TBS's node reorganises onto the network's branch: the anchor is
    // in no block any more, and every source agrees on that.
    other.set_network_active(true);
    w.node().wait_for_tip_of(&other);
    let gone = wait_until(
        "the TBS to follow the reorg",
        PATIENCE,
        || match with_sources(&w.url(), electrum(&server)).standing(txid) {
            Err(DirectoryError::NotAnchored(gone)) => Some(gone),
            _ => None,
        },
    );
    assert_eq!(gone, txid);
}

/// A TBS hides that a peer's key declared its certificate compromised (it drops the later
/// record from `/v1/records`): a device asking it alone still admits the peer; a device
/// also asking a second TBS, pinned by its digest, finds the superseding certificate.
/// A second registry serving another certificate than its pin is refused.
#[test]
fn a_tbs_hiding_a_superseding_certificate_is_caught_by_a_second_registry() {
    let w = EnrolmentWorld::start();
    let (second, second_digest) = w.second_tbs("second-tbs");
    let liar = LyingTbs::start(&w.url());

    let (key, bc) = party(Role::Dta, "D-TA");
    let txid = w.node().anchor_bc(&key, &bc);
    w.mine(1);
    let fields = BcFields {
        status: Status::Compromised,
        previous: Some(bc.digest()),
        ..bc.fields().clone()
    };
    let compromised = BirthCertificate::sign(fields, &key).unwrap();
    let notice = w.node().anchor_bc(&key, &compromised);
    w.mine(1);
    wait_until("the second TBS to index the notice", PATIENCE, || {
        (tbs_alone(&second.local_url())
            .standing(txid)
            .ok()?
            .superseded_by
            == Some(notice))
        .then_some(())
    });

    // The honest TBS alone sees the notice; the lying one alone hides it.
    assert_eq!(
        tbs_alone(&w.url()).standing(txid).unwrap().superseded_by,
        Some(notice)
    );
    assert_eq!(
        tbs_alone(liar.url()).standing(txid).unwrap().superseded_by,
        None,
        "the attack is real: the lying TBS hides the notice"
    );

    // The liar plus the second registry: the union decides.
    let pinned = |digest| ChainSources {
        electrum: vec![],
        registries: vec![RegistryPin {
            url: second.local_url(),
            digest,
        }],
    };
    let standing = with_sources(liar.url(), pinned(second_digest))
        .standing(txid)
        .unwrap();
    assert_eq!(standing.superseded_by, Some(notice));

    // A registry that does not serve the certificate it is pinned to is not asked.
    let message = unavailable(with_sources(liar.url(), pinned(bc.digest())).standing(txid));
    assert!(
        message.contains(&second.local_url()) && message.contains(&bc.digest().to_string()),
        "{message}"
    );
    drop(second);
}

/// An Electrum server a device was given but cannot reach is a refusal, naming it: the
/// check cannot be switched off by cutting a cable.
#[test]
fn a_directory_given_sources_needs_every_one_of_them() {
    let w = EnrolmentWorld::start();
    let (key, bc) = party(Role::Dta, "D-TA");
    let txid = w.node().anchor_bc(&key, &bc);
    w.mine(1);
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", closed.local_addr().unwrap());
    drop(closed);
    let sources = ChainSources {
        electrum: vec![url.clone()],
        registries: vec![],
    };
    let message = unavailable(with_sources(&w.url(), sources).standing(txid));
    assert!(message.contains(&url), "{message}");
}
