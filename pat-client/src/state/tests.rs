use std::os::unix::fs::PermissionsExt as _;

use bitcoin::Network;
use milagro_anchor::digest::Digest;
use milagro_anchor::purpose_keys::PurposeKeys;

use super::*;

fn provisioning() -> Provisioning {
    Provisioning {
        tbs_url: "http://127.0.0.1:1".into(),
        tbs_digest: Digest::sha256(b"tbs"),
        tenant: "acme".into(),
        group: "eu".into(),
        network: Network::Regtest,
        sources: Default::default(),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn provisioning_makes_private_files_once_and_reloads_them() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("pat");
    let state =
        Device::provision(&state_dir, provisioning(), Some("meter"), 1_750_000_000).unwrap();
    assert_eq!(mode(&state_dir), 0o700);
    for file in [DEVICE_KEY, INSTRUCTION_KEY, DEVICE_BC, STATE] {
        assert_eq!(mode(&state_dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(state.bc.fields().name, "meter");
    let loaded = Device::load(&state_dir).unwrap();
    assert_eq!(loaded.key.public_key(), state.key.public_key());
    assert_eq!(loaded.bc, state.bc);
    assert_eq!(loaded.provisioning, provisioning());
    // Provisioning again resumes; before a TBS was verified, new settings replace the old.
    let again = Device::provision(&state_dir, provisioning(), None, 1).unwrap();
    assert_eq!(again.bc, state.bc);
    let us = Provisioning {
        group: "us".into(),
        ..provisioning()
    };
    let moved = Device::provision(&state_dir, us.clone(), None, 1).unwrap();
    assert_eq!((moved.bc, moved.provisioning), (state.bc, us));

    // Once a TBS is verified (a request may follow), other settings are refused.
    let tbs_bc = tbs_certificate();
    let pinned = Provisioning {
        tbs_digest: tbs_bc.digest(),
        ..provisioning()
    };
    let mut verified = Device::provision(&state_dir, pinned.clone(), None, 1).unwrap();
    verify_tbs(&mut verified, tbs_bc);
    assert!(Device::load(&state_dir).unwrap().tbs.is_some());
    assert!(Device::provision(&state_dir, pinned, None, 1).is_ok());
    assert!(matches!(
        Device::provision(&state_dir, provisioning(), None, 1),
        Err(Error::ProvisionedOtherwise {
            field: "tbs digest",
            ..
        })
    ));
}

#[test]
fn a_damaged_or_mismatched_state_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Device::load(dir.path()),
        Err(Error::NotProvisioned(_))
    ));
    let fresh = || {
        let d = tempfile::tempdir().unwrap();
        Device::provision(d.path(), provisioning(), None, 1).unwrap();
        d
    };
    let corrupt = |d: &tempfile::TempDir| match Device::load(d.path()) {
        Err(Error::CorruptState { path, reason }) => (path, reason),
        other => panic!("expected a corrupt state, got {other:?}"),
    };

    let d = fresh();
    std::fs::write(d.path().join(STATE), b"{ not json").unwrap();
    assert!(corrupt(&d).0.ends_with(STATE));

    let d = fresh();
    let text = std::fs::read_to_string(d.path().join(STATE)).unwrap();
    std::fs::write(
        d.path().join(STATE),
        text.replace("\"format\": 1", "\"format\": 9"),
    )
    .unwrap();
    assert!(corrupt(&d).1.contains("format 9"));

    // The certificate of another device next to this key.
    let d = fresh();
    let other = fresh();
    std::fs::copy(other.path().join(DEVICE_BC), d.path().join(DEVICE_BC)).unwrap();
    assert!(corrupt(&d).1.contains("another key"));

    let d = fresh();
    std::fs::write(d.path().join(DEVICE_KEY), b"zz").unwrap();
    assert!(corrupt(&d).0.ends_with(DEVICE_KEY));

    let d = fresh();
    let path = d.path().join(INSTRUCTION_KEY);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        Device::load(d.path()),
        Err(Error::InsecurePermissions { .. })
    ));
}

/// A (made-up) TBS's certificate.
fn tbs_certificate() -> BirthCertificate {
    let tbs_key = SecretKey::generate(&mut rand_core::OsRng);
    let fields = BcFields {
        version: VERSION,
        role: Role::Tbs,
        name: "TBS".into(),
        endpoints: vec![],
        created: 1,
        public_key: tbs_key.public_key(),
        status: Status::Active,
        previous: None,
        keys: PurposeKeys::derive(Role::Tbs, &tbs_key).unwrap(),
    };
    BirthCertificate::sign(fields, &tbs_key).unwrap()
}

/// Records `tbs_bc` as verified by `device`, and saves.
fn verify_tbs(device: &mut Device, tbs_bc: BirthCertificate) {
    device.tbs = Some(TbsRecord {
        bc: tbs_bc,
        anchor_txid: bitcoin::Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
        anchor_height: 1,
    });
    device.save().unwrap();
}

/// A provisioned device that verified a (made-up) TBS, in a fresh directory.
fn verified_device() -> (tempfile::TempDir, Device) {
    let dir = tempfile::tempdir().unwrap();
    let tbs_bc = tbs_certificate();
    let pinned = Provisioning {
        tbs_digest: tbs_bc.digest(),
        ..provisioning()
    };
    let mut device = Device::provision(dir.path(), pinned, None, 1).unwrap();
    verify_tbs(&mut device, tbs_bc);
    (dir, device)
}

#[test]
fn a_batch_member_s_progress_round_trips_and_mixed_forms_are_refused() {
    let (dir, mut device) = verified_device();
    device.progress = Some(Progress::Batch);
    device.save().unwrap();
    let text = std::fs::read_to_string(dir.path().join(STATE)).unwrap();
    let wire: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(wire["progress"], serde_json::json!({ "batch": true }));
    let loaded = Device::load(dir.path()).unwrap();
    assert!(loaded.is_batched());
    assert_eq!(loaded.anchor_txid(), None);
    assert!(loaded.signed_anchor().is_none());

    let txid = "11".repeat(32);
    for progress in [
        serde_json::json!({ "batch": true, "anchor_txid": txid }),
        serde_json::json!({}),
        serde_json::json!({ "batch": false }),
    ] {
        let mut broken = wire.clone();
        broken["progress"] = progress.clone();
        std::fs::write(dir.path().join(STATE), broken.to_string()).unwrap();
        assert!(
            matches!(Device::load(dir.path()), Err(Error::CorruptState { .. })),
            "{progress}"
        );
    }
    let mut direct = wire;
    direct["progress"] = serde_json::json!({ "anchor_txid": txid });
    std::fs::write(dir.path().join(STATE), direct.to_string()).unwrap();
    let loaded = Device::load(dir.path()).unwrap();
    assert!(!loaded.is_batched());
    assert_eq!(loaded.anchor_txid().unwrap().to_string(), txid);
}

#[test]
fn a_direct_device_keeps_what_its_milagro_tls_identity_needs() {
    use bitcoin::hashes::Hash as _;
    use bitcoin::{Amount, FeeRate, OutPoint};
    use milagro_anchor::anchor_tx::{build_anchor_tx, FundingUtxo};
    use milagro_anchor::payload::{Payload, RecordKind};

    let (dir, mut device) = verified_device();
    // Not enrolled, and a batch member: no identity.
    assert!(matches!(device.tls_identity(), Err(Error::Unsupported(_))));
    device.progress = Some(Progress::Batch);
    assert!(matches!(device.tls_identity(), Err(Error::Unsupported(why)) if why.contains("batch")));

    let funding = FundingUtxo {
        outpoint: OutPoint::new(bitcoin::Txid::from_byte_array([3; 32]), 1),
        value: Amount::from_sat(5_000),
    };
    let payload = Payload::new(RecordKind::BirthCertificate, device.bc.digest());
    let tx = build_anchor_tx(
        &device.key,
        &funding,
        &payload,
        FeeRate::from_sat_per_vb_u32(2),
        None,
    )
    .unwrap()
    .tx;
    device.progress = Some(Progress::Direct {
        txid: tx.compute_txid(),
        tx: Some(tx.clone()),
        funding: Some(funding.value),
    });
    device.save().unwrap();
    let loaded = Device::load(dir.path()).unwrap();
    let identity = loaded.tls_identity().unwrap();
    assert_eq!(identity.party().party().anchor().txid(), tx.compute_txid());
    assert_eq!(identity.birth_certificate().digest(), device.bc.digest());

    // A wrong funding value gives another sighash: the nonce cannot be recomputed.
    let mut wrong = loaded;
    wrong.progress = Some(Progress::Direct {
        txid: tx.compute_txid(),
        tx: Some(tx.clone()),
        funding: Some(Amount::from_sat(5_001)),
    });
    assert!(matches!(wrong.tls_identity(), Err(Error::Unsupported(why)) if why.contains("nonce")));
    // Without it (an enrolment resumed from the TBS's word), no identity either.
    wrong.progress = Some(Progress::Direct {
        txid: tx.compute_txid(),
        tx: Some(tx),
        funding: None,
    });
    assert!(matches!(wrong.tls_identity(), Err(Error::Unsupported(_))));
}

#[test]
fn sources_may_change_after_enrolment_and_the_best_chain_survives_a_restart() {
    let (dir, mut device) = verified_device();
    let given = Provisioning {
        sources: ChainSources {
            electrum: vec!["tcp://127.0.0.1:50001".into()],
            registries: vec![format!("{}@http://127.0.0.1:2", "ab".repeat(32))
                .parse()
                .unwrap()],
        },
        ..device.provisioning.clone()
    };
    // Each source only adds checks: a verified device takes them.
    let reloaded = Device::provision(dir.path(), given.clone(), None, 1).unwrap();
    assert_eq!(reloaded.provisioning.sources, given.sources);
    // Other settings still may not change.
    let elsewhere = Provisioning {
        tbs_url: "http://127.0.0.1:3".into(),
        ..given.clone()
    };
    assert!(matches!(
        Device::provision(dir.path(), elsewhere, None, 1),
        Err(Error::ProvisionedOtherwise {
            field: "tbs url",
            ..
        })
    ));

    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let seen = ChainSeen {
        height: 0,
        hash: genesis.block_hash(),
        work: genesis.work(),
        agreed_by: vec!["http://127.0.0.1:1".into(), "tcp://127.0.0.1:50001".into()],
    };
    device.chain = Some(seen.clone());
    device.save().unwrap();
    assert_eq!(Device::load(dir.path()).unwrap().chain, Some(seen));
}

#[test]
fn bad_sources_are_refused_with_the_reason() {
    let refused = |sources: ChainSources| {
        Provisioning {
            sources,
            ..provisioning()
        }
        .check()
        .unwrap_err()
    };
    let electrum = |url: &str| ChainSources {
        electrum: vec![url.into()],
        registries: vec![],
    };
    assert!(refused(electrum("ssl://e.example:50002")).contains("tcp://"));
    assert!(refused(electrum("e.example:50001")).contains("tcp://"));
    let digest = "cd".repeat(32);
    assert!(format!("{digest}@ftp://r.example")
        .parse::<RegistryPin>()
        .unwrap_err()
        .contains("not http"));
    assert!("http://r.example"
        .parse::<RegistryPin>()
        .unwrap_err()
        .contains("DIGEST@URL"));
    assert!("zz@http://r.example"
        .parse::<RegistryPin>()
        .unwrap_err()
        .contains("not a certificate digest"));
    let pin: RegistryPin = format!("{digest}@http://r.example/").parse().unwrap();
    assert_eq!(pin.url, "http://r.example");
}
