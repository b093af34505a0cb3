#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;

use super::*;

const CHAINS: [Chain; 4] = [
    Chain::Regtest,
    Chain::Signet,
    Chain::Testnet4,
    Chain::Bitcoin,
];

fn digest(byte: u8) -> milagro_anchor::digest::Digest {
    hex::encode([byte; 32]).parse().unwrap()
}

/// A request with everything the role needs, on `chain`, in `dir`.
fn request(role: ServiceRole, chain: Chain, dir: &std::path::Path) -> InitRequest {
    let mut request = InitRequest::new(role, chain, dir.to_path_buf());
    request.public_url = Some(format!("https://{role}.example.org"));
    match role {
        ServiceRole::Authserver | ServiceRole::Idp => {
            request.dtas = vec![
                DtaPeer {
                    digest: digest(1),
                    share_api: "dta1.example.org:8092".into(),
                },
                DtaPeer {
                    digest: digest(2),
                    share_api: "dta2.example.org:8092".into(),
                },
            ]
        }
        ServiceRole::Dta => {
            request.trusted_idps = vec![TrustedIdp {
                issuer: "https://idp.example.org".into(),
                digest: digest(3),
                client_id: "dta1".into(),
            }];
            request.authservers = vec![digest(4)];
        }
        ServiceRole::Tbs => {}
    }
    request
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_role_on_every_network_gets_a_configuration_its_service_accepts() {
    for role in ServiceRole::ALL {
        for chain in CHAINS {
            let dir = tempfile::tempdir().unwrap();
            let made = init(&request(role, chain, dir.path()), dir.path(), 1_765_000_000)
                .unwrap_or_else(|e| panic!("{role} on {chain}: {e}"));
            let text = std::fs::read_to_string(&made.config_file).unwrap();
            accepted(role, &text).unwrap();
            assert!(text.contains(&format!("network = \"{chain}\"")), "{text}");
            assert!(text.contains(&format!(":{}\"", chain.rpc_port())), "{text}");
            assert!(!text.contains("example.com"), "{role} on {chain}: {text}");
            assert!(!text.contains("[tls]"), "no [tls] unless given: {text}");
            assert_eq!(mode(&made.state_dir), 0o700);
            assert_eq!(mode(&made.config_file), 0o600);
            assert!(made.state_dir.join(role.kind().key_file).exists());
            let prefix = if chain == Chain::Bitcoin {
                "bc1q"
            } else if chain == Chain::Regtest {
                "bcrt1q"
            } else {
                "tb1q"
            };
            assert!(
                made.key_address.to_string().starts_with(prefix),
                "{}",
                made.key_address
            );
            match made.admin_token {
                Some(token) => assert!(text.contains(&token.hash().to_string())),
                None => assert_eq!(role, ServiceRole::Dta),
            }
            if role == ServiceRole::Dta {
                let key = made.master_key_file.unwrap();
                assert_eq!(mode(&key), 0o600);
                assert_eq!(std::fs::read_to_string(&key).unwrap().len(), 64);
                assert!(
                    text.contains(&digest(3).to_string()) && text.contains(&digest(4).to_string())
                );
            }
            if matches!(role, ServiceRole::Authserver | ServiceRole::Idp) {
                assert!(
                    text.contains(&digest(1).to_string()) && text.contains(&digest(2).to_string())
                );
            }
            // Comments survive: the file explains itself.
            assert!(text.contains("# "), "{text}");
            let peer_depth = format!("min_peer_depth = {}", chain.min_peer_depth());
            if role != ServiceRole::Tbs {
                assert!(text.contains(&peer_depth), "{text}");
            }
            if role == ServiceRole::Idp {
                assert!(text.contains("[[mpin.dtas]]"), "{text}");
            }
        }
    }
}

#[test]
fn init_never_overwrites_a_service() {
    let dir = tempfile::tempdir().unwrap();
    let request = request(ServiceRole::Tbs, Chain::Regtest, dir.path());
    let first = init(&request, dir.path(), 1).unwrap();
    let before = std::fs::read(first.state_dir.join("birth-certificate.json")).unwrap();
    let refused = init(&request, dir.path(), 2).unwrap_err();
    assert!(matches!(refused, InitError::Exists { .. }), "{refused}");
    // A state directory alone (a config deleted by hand) is refused too.
    std::fs::remove_file(&first.config_file).unwrap();
    let refused = init(&request, dir.path(), 3).unwrap_err();
    assert!(refused.to_string().contains("state"), "{refused}");
    let after = std::fs::read(first.state_dir.join("birth-certificate.json")).unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_public_network_needs_a_public_url_and_an_auth_server_its_d_tas() {
    let dir = tempfile::tempdir().unwrap();
    let mut request = InitRequest::new(ServiceRole::Idp, Chain::Bitcoin, dir.path().into());
    let refused = init(&request, dir.path(), 1).unwrap_err();
    assert!(refused.to_string().contains("--public-url"), "{refused}");
    request.chain = Chain::Regtest;
    let made = init(&request, dir.path(), 1).unwrap();
    assert_eq!(made.public_url, "http://127.0.0.1:8081");
    // An IdP without --dta has no M-Pin sign-in, and its configuration says nothing of it.
    let text = std::fs::read_to_string(&made.config_file).unwrap();
    assert!(!text.contains("mpin"), "{text}");
    accepted(ServiceRole::Idp, &text).unwrap();
    let other = tempfile::tempdir().unwrap();
    let auth = InitRequest::new(ServiceRole::Authserver, Chain::Regtest, other.path().into());
    let refused = init(&auth, other.path(), 1).unwrap_err();
    assert!(refused.to_string().contains("--dta"), "{refused}");
    assert!(
        !other.path().join("state").exists(),
        "nothing written on a refusal"
    );
}

#[test]
fn tls_files_given_are_written_and_served_config_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut request = request(ServiceRole::Idp, Chain::Signet, dir.path());
    request.tls = Some(TlsFiles {
        cert: "/etc/milagro/fullchain.pem".into(),
        key: "/etc/milagro/privkey.pem".into(),
    });
    let made = init(&request, dir.path(), 1).unwrap();
    let text = std::fs::read_to_string(made.config_file).unwrap();
    assert!(
        text.contains("cert = \"/etc/milagro/fullchain.pem\""),
        "{text}"
    );
}
