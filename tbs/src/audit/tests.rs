use std::str::FromStr;

use bitcoin::hashes::Hash as _;
use bitcoin::Txid;
use milagro_anchor::audit_log::{AuditLog, TreeHead, TreeSize};
use milagro_anchor::checkpoint::KeyName;
use milagro_anchor::envelope::InstructionKey;
use milagro_anchor::keys::SecretKey;
use rand_core::OsRng;

use super::*;

fn device() -> PublicKey {
    SecretKey::generate(&mut OsRng).public_key()
}

fn txid(byte: u8) -> Txid {
    Txid::from_byte_array([byte; 32])
}

fn row(device: PublicKey, state: EnrolmentState) -> Enrolment {
    Enrolment {
        device,
        tenant: TenantId::new("acme").unwrap(),
        group: GroupId::new("eu").unwrap(),
        birth_certificate: String::new(),
        instruction_key: InstructionKey::generate(&mut OsRng),
        state,
    }
}

fn broadcast(byte: u8) -> EnrolmentState {
    EnrolmentState::Broadcast {
        funding_tx: String::new(),
        anchor_tx: String::new(),
        txid: txid(byte),
    }
}

fn origin() -> KeyName {
    KeyName::new("tbs.milagro.test/audit").unwrap()
}

fn db() -> sled::Db {
    sled::Config::new().temporary(true).open().unwrap()
}

#[test]
fn the_entry_is_the_documented_hash_of_the_four_fields() {
    let key = device();
    let (tenant, group) = (TenantId::new("acme").unwrap(), GroupId::new("eu").unwrap());
    let txid =
        Txid::from_str("00000000000000000000000000000000000000000000000000000000000000ff").unwrap();
    let mut expected = b"milagro-tbs/registration/v1\0".to_vec();
    expected.extend_from_slice(&key.to_sec1());
    expected.extend_from_slice(b"\x04acme\x02eu");
    // Consensus order: the hex's last byte comes first.
    expected.push(0xff);
    expected.extend_from_slice(&[0; 31]);
    assert_eq!(
        registration_entry(&key, &tenant, &group, &txid),
        Digest::sha256(&expected)
    );
    // Lengths are prefixed: moving a character between tenant and group changes the entry.
    let shifted = registration_entry(
        &key,
        &TenantId::new("acm").unwrap(),
        &GroupId::new("eeu").unwrap(),
        &txid,
    );
    assert_ne!(shifted, registration_entry(&key, &tenant, &group, &txid));
}

#[test]
fn a_batch_member_s_entry_hashes_the_root_under_its_own_domain() {
    let key = device();
    let (tenant, group) = (TenantId::new("acme").unwrap(), GroupId::new("eu").unwrap());
    let root = Digest::sha256(b"batch root");
    let mut expected = b"milagro-tbs/batch-registration/v1\0".to_vec();
    expected.extend_from_slice(&key.to_sec1());
    expected.extend_from_slice(b"\x04acme\x02eu");
    expected.extend_from_slice(root.as_bytes());
    assert_eq!(
        batch_registration_entry(&key, &tenant, &group, &root),
        Digest::sha256(&expected)
    );
    // The same 32 bytes as a txid make another entry: the two modes cannot collide.
    let as_txid = Txid::from_byte_array(*root.as_bytes());
    assert_ne!(
        registration_entry(&key, &tenant, &group, &as_txid),
        batch_registration_entry(&key, &tenant, &group, &root)
    );
    let audit = Audit::open(&db(), origin()).unwrap();
    let batched = EnrolmentState::Batched {
        batch: 0,
        index: 3,
        root,
    };
    assert_eq!(
        audit.register(&row(key, batched)).unwrap(),
        Some(LeafIndex::new(0))
    );
    assert_eq!(
        audit.registration(&key).unwrap().unwrap().1,
        batch_registration_entry(&key, &tenant, &group, &root)
    );
}

#[test]
fn a_device_is_logged_once_whatever_the_retries() {
    let audit = Audit::open(&db(), origin()).unwrap();
    let (a, b) = (device(), device());
    let offered = EnrolmentState::Offered {
        funding_tx: String::new(),
        offer_psbt: String::new(),
        reservation: None,
    };
    assert_eq!(audit.register(&row(a, offered)).unwrap(), None);
    assert_eq!(
        audit.register(&row(a, EnrolmentState::Queued)).unwrap(),
        None
    );
    assert_eq!(audit.tree_head().size, TreeSize::new(0));
    let first = audit.register(&row(a, broadcast(1))).unwrap();
    assert_eq!(first, Some(LeafIndex::new(0)));
    assert_eq!(audit.register(&row(a, broadcast(1))).unwrap(), first);
    assert_eq!(
        audit.register(&row(b, broadcast(2))).unwrap(),
        Some(LeafIndex::new(1))
    );
    assert_eq!(audit.tree_head().size, TreeSize::new(2));
    let (index, entry) = audit.registration(&b).unwrap().unwrap();
    assert_eq!(index, LeafIndex::new(1));
    audit
        .inclusion_proof(index, TreeSize::new(2))
        .unwrap()
        .verify(entry.as_bytes(), &audit.tree_head())
        .unwrap();
    assert!(audit.registration(&device()).unwrap().is_none());
}

#[test]
fn a_reopened_log_has_the_same_root_and_refuses_a_checkpoint_it_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let head = {
        let db = milagro_service::sled_db::open_waiting_for_lock(dir.path()).unwrap();
        let audit = Audit::open(&db, origin()).unwrap();
        for byte in 0..5 {
            audit.register(&row(device(), broadcast(byte))).unwrap();
        }
        let head = audit.tree_head_at(TreeSize::new(3)).unwrap();
        audit.store().put_checkpoint(&stored(0, head)).unwrap();
        audit.tree_head()
    };
    let db = milagro_service::sled_db::open_waiting_for_lock(dir.path()).unwrap();
    let audit = Audit::open(&db, origin()).unwrap();
    assert_eq!(audit.tree_head(), head);
    let entries = audit.store().entries().unwrap();
    assert_eq!(
        AuditLog::from_entries(entries.iter().map(Digest::as_bytes)).root(),
        head.root
    );

    // A checkpoint whose root the entries do not give, or beyond them, is refused at start.
    let forged = TreeHead {
        size: TreeSize::new(4),
        root: Digest::sha256(b"another history"),
    };
    audit.store().put_checkpoint(&stored(1, forged)).unwrap();
    assert!(matches!(
        Audit::open(&db, origin()),
        Err(AuditError::Inconsistent { sequence: 1, .. })
    ));
    let beyond = TreeHead {
        size: TreeSize::new(6),
        root: head.root,
    };
    audit.store().put_checkpoint(&stored(1, beyond)).unwrap();
    assert!(Audit::open(&db, origin()).is_err());
}

fn stored(sequence: u64, head: TreeHead) -> StoredCheckpoint {
    StoredCheckpoint {
        sequence,
        note: String::new(),
        size: head.size,
        root: head.root,
        digest: head.root,
        created: 0,
        txid: txid(9),
        tx: String::new(),
        funding_tx: None,
    }
}

#[test]
fn checkpoints_are_listed_in_order_and_the_newest_first() {
    let audit = Audit::open(&db(), origin()).unwrap();
    for byte in 0..3 {
        audit.register(&row(device(), broadcast(byte))).unwrap();
    }
    for sequence in 0..3 {
        let head = audit.tree_head_at(TreeSize::new(sequence + 1)).unwrap();
        audit
            .store()
            .put_checkpoint(&stored(sequence, head))
            .unwrap();
    }
    let sequences =
        |rows: Vec<StoredCheckpoint>| rows.iter().map(|c| c.sequence).collect::<Vec<_>>();
    assert_eq!(sequences(audit.store().checkpoints(1, 10).unwrap()), [1, 2]);
    assert_eq!(sequences(audit.store().checkpoints(0, 2).unwrap()), [0, 1]);
    assert_eq!(
        audit
            .store()
            .latest_checkpoint()
            .unwrap()
            .map(|c| c.sequence),
        Some(2)
    );
    assert!(audit.store().checkpoints(3, 10).unwrap().is_empty());
}

#[test]
fn another_format_version_is_refused() {
    let db = db();
    db.open_tree("audit")
        .unwrap()
        .insert("v", &99u32.to_be_bytes())
        .unwrap();
    assert!(matches!(
        Audit::open(&db, origin()),
        Err(AuditError::Store(AuditStoreError::Corrupt(_)))
    ));
}
