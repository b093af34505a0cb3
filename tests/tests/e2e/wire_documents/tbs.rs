//! `tbs/openapi.json` against `milagro_wire::tbs` (and what every service serves).

use milagro_anchor::audit_log::{AuditLog, LeafIndex, TreeSize};
use milagro_anchor::digest::Digest;
use milagro_anchor::payload::RecordKind;
use milagro_tbs::api::OPENAPI_JSON;
use milagro_tests::openapi::response_schema;
use milagro_tests::wire_schema::{component, Documented};
use milagro_wire::tbs::audit::{
    AuditCheckpoint, AuditCheckpoints, Checkpoint, CheckpointAnchor, ConfirmedCheckpoint,
    ListedCheckpoint, LogSigner, RegistrationProof,
};
use milagro_wire::tbs::enrolment::{
    BatchPlace, EnrolmentProgress, EnrolmentStage, InstructionsAnswer, Ready, SealedBody,
};
use milagro_wire::tbs::registry::{FundingPool, Headers, Proof, Record, Records, Status};
use milagro_wire::tbs::tenants::{
    CreatedTenant, EnrolmentMode, Group, GroupSpec, NewTenant, ServiceRef, Tenant, Tenants, Token,
};

use super::{anchor_proof, anchor_states, assert_agrees, common, hash, key, signed_checkpoint};

fn statuses() -> Vec<Status> {
    anchor_states()
        .into_iter()
        .enumerate()
        .map(|(i, anchor)| Status {
            name: "Test TBS".into(),
            public_url: "https://tbs.milagro.test".into(),
            network: "regtest".into(),
            digest: Digest::sha256(b"tbs"),
            public_key: key(),
            anchored: i == 2,
            anchor,
            index_height: Some(120),
            index_hash: Some(hash(9)),
            records: 4,
            node_reachable: true,
            node_height: Some(120),
            caught_up: true,
            last_error: Some("node unreachable".into()),
            anchor_error: None,
            sync_errors: 1,
            funding_pool: FundingPool {
                size: 100,
                free: 40,
                refilling: (i == 1).then(|| hash(8)),
            },
        })
        .collect()
}

fn record(kind: RecordKind) -> Record {
    Record {
        kind,
        digest: Digest::sha256(b"record"),
        txid: hash(1),
        vout: 1,
        height: 110,
        block_hash: hash(2),
        signer: key(),
        nonce_point: Some(key()),
    }
}

fn tenants() -> (Vec<Tenant>, Vec<ServiceRef>, Vec<GroupSpec>, Vec<Group>) {
    let tenant = Tenant {
        id: "acme".into(),
        name: "Acme".into(),
    };
    let dta = ServiceRef {
        birth_certificate: Digest::sha256(b"dta"),
        url: "https://dta.milagro.test".into(),
    };
    let spec = GroupSpec {
        name: "EU meters".into(),
        mode: EnrolmentMode::Batch,
        dtas: vec![dta.clone()],
        idp: Some(dta.clone()),
        enrolment_keys: vec![key()],
    };
    let bare = GroupSpec {
        name: "Empty".into(),
        mode: EnrolmentMode::Direct,
        dtas: vec![],
        idp: None,
        enrolment_keys: vec![],
    };
    let group = Group {
        tenant: "acme".into(),
        id: "eu".into(),
        name: spec.name.clone(),
        mode: spec.mode,
        dtas: spec.dtas.clone(),
        idp: spec.idp.clone(),
        revision: 7,
        enrolment_keys: spec.enrolment_keys.clone(),
    };
    (vec![tenant], vec![dta], vec![spec, bare], vec![group])
}

fn progress() -> Vec<EnrolmentProgress> {
    let place = BatchPlace {
        batch: 2,
        index: 5,
        root: Digest::sha256(b"batch"),
    };
    [
        EnrolmentStage::Offered {
            offer: "c2VhbGVk".into(),
        },
        EnrolmentStage::Expired {
            expired_at: 1_750_000_000,
        },
        EnrolmentStage::Broadcast { txid: hash(6) },
        EnrolmentStage::Queued,
        EnrolmentStage::Batched(place.clone()),
        EnrolmentStage::Confirmed {
            txid: Some(hash(6)),
            batch: None,
            height: 130,
            depth: 2,
        },
        EnrolmentStage::Confirmed {
            txid: None,
            batch: Some(place),
            height: 130,
            depth: 2,
        },
    ]
    .into_iter()
    .map(|stage| EnrolmentProgress {
        tenant: "acme".into(),
        group: "eu".into(),
        stage,
    })
    .collect()
}

/// The audit answers, with real proofs of a log of four entries.
fn audit() -> (
    Vec<AuditCheckpoint>,
    Vec<AuditCheckpoints>,
    Vec<RegistrationProof>,
) {
    let log = AuditLog::from_entries([b"a", b"b", b"c", b"d"].map(|e| e.to_vec()));
    let signer = LogSigner {
        origin: "tbs.milagro.test/audit".into(),
        key_name: "tbs.milagro.test/audit".into(),
        key_id: "0a1b2c3d".into(),
        public_key: key(),
    };
    let confirmed = |proof| {
        CheckpointAnchor::Confirmed(ConfirmedCheckpoint {
            txid: hash(5),
            vout: 1,
            height: 140,
            block_hash: hash(7),
            depth: 3,
            anchor_proof: proof,
        })
    };
    let listed = |anchor| Checkpoint {
        signed: signed_checkpoint(),
        anchor: Some(anchor),
    };
    let newest = AuditCheckpoint {
        signer: signer.clone(),
        checkpoint: Checkpoint {
            signed: signed_checkpoint(),
            anchor: None,
        },
        anchor: confirmed(Some(anchor_proof())),
        log_size: 4,
    };
    let page = AuditCheckpoints {
        signer,
        checkpoints: vec![
            ListedCheckpoint {
                checkpoint: listed(CheckpointAnchor::Pending { txid: hash(5) }),
                consistency_proof: None,
            },
            ListedCheckpoint {
                checkpoint: listed(confirmed(None)),
                consistency_proof: Some(
                    log.consistency_proof(TreeSize::new(2), TreeSize::new(4))
                        .unwrap(),
                ),
            },
        ],
        next: Some(2),
    };
    let proof = |checkpoint| RegistrationProof {
        device: key(),
        entry: milagro_anchor::audit_log::leaf_hash(b"b"),
        leaf_index: 1,
        tree_size: 4,
        root: log.root(),
        inclusion_proof: log
            .inclusion_proof(LeafIndex::new(1), TreeSize::new(4))
            .unwrap(),
        checkpoint,
    };
    let proofs = vec![proof(Some(listed(confirmed(None)))), proof(None)];
    (vec![newest], vec![page], proofs)
}

#[test]
fn the_tbs_document_describes_the_tbs_wire_types() {
    let mut document = Documented::new(OPENAPI_JSON);
    let answer =
        |method, path, status| response_schema(OPENAPI_JSON, (method, path), status).unwrap();
    let (tenants, services, specs, groups) = tenants();
    let (newest, pages, proofs) = audit();
    let log = AuditLog::from_entries([b"a".to_vec(), b"b".to_vec()]);
    common(&mut document)
        .values(&component("Status"), &statuses())
        .values(
            &component("Record"),
            &[
                record(RecordKind::BirthCertificate),
                record(RecordKind::AuditLogRoot),
                record(RecordKind::BatchRoot),
            ],
        )
        .values(
            &component("Records"),
            &[Records {
                records: vec![record(RecordKind::BirthCertificate)],
            }],
        )
        .values(
            &component("Proof"),
            &[Proof {
                txid: hash(1),
                vout: 1,
                kind: RecordKind::BirthCertificate,
                digest: Digest::sha256(b"record"),
                signer: key(),
                height: 110,
                block_hash: hash(2),
                depth: 3,
                anchor_proof: anchor_proof(),
            }],
        )
        .values(
            &component("Headers"),
            &[Headers {
                from: 0,
                tip_height: 1,
                tip_hash: hash(2),
                headers: vec!["00".repeat(80)],
            }],
        )
        .values(
            &component("NewTenant"),
            &[NewTenant {
                id: "acme".into(),
                name: "Acme".into(),
            }],
        )
        .values(&component("Tenant"), &tenants)
        .values(
            &component("Tenants"),
            &[Tenants {
                tenants: tenants.clone(),
            }],
        )
        .values(
            &component("Token"),
            &[Token {
                token: format!("mlgt_{}", hash(3)),
            }],
        )
        .values(
            &component("CreatedTenant"),
            &[CreatedTenant {
                tenant: tenants[0].clone(),
                token: format!("mlgt_{}", hash(3)),
            }],
        )
        .values(&component("ServiceRef"), &services)
        .values(&component("GroupSpec"), &specs)
        .values(&component("Group"), &groups)
        .values(
            &answer("get", "/v1/tenants/{tenant}/groups", 200),
            std::slice::from_ref(&groups),
        )
        .values(
            &component("SealedBody"),
            &[SealedBody {
                envelope: "c2VhbGVk".into(),
            }],
        )
        .values(&component("EnrolmentProgress"), &progress())
        .values(
            &answer("get", "/v1/enrolments/{device}/instructions", 200),
            &[InstructionsAnswer {
                status: Ready::Ready,
                sequence: 7,
                instructions: "c2VhbGVk".into(),
            }],
        )
        .values(&component("AuditCheckpoint"), &newest)
        .values(&component("AuditCheckpoints"), &pages)
        .values(&component("RegistrationProof"), &proofs)
        .values(
            &component("ConsistencyProof"),
            &[log
                .consistency_proof(TreeSize::new(1), TreeSize::new(2))
                .unwrap()],
        )
        .values(
            &component("InclusionProof"),
            &[log
                .inclusion_proof(LeafIndex::new(0), TreeSize::new(2))
                .unwrap()],
        );
    assert_agrees("tbs/openapi.json", &document);
}
