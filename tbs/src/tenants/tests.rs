//! Specifications of tenant isolation and credentials.

use milagro_anchor::digest::Digest;
use rand_core::OsRng;

use super::model::*;
use super::store::*;

struct World {
    store: TenantStore,
    db: sled::Db,
    admin_hash: TokenHash,
    admin: ApiToken,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let admin = ApiToken::generate(&mut OsRng);
    World {
        store: TenantStore::open(&db).unwrap(),
        db,
        admin_hash: admin.hash(),
        admin,
        _dir: dir,
    }
}

fn id(text: &str) -> TenantId {
    TenantId::new(text).unwrap()
}

fn spec(name: &str, dta: &str) -> GroupSpec {
    GroupSpec {
        name: DisplayName::new(name).unwrap(),
        mode: EnrolmentMode::Direct,
        dtas: vec![ServiceRef {
            birth_certificate: Digest::sha256(dta.as_bytes()),
            url: ServiceUrl::new(&format!("https://{dta}.example")).unwrap(),
        }],
        idp: None,
        enrolment_keys: vec![],
    }
}

/// Two tenants with one group each; returns their tokens.
fn two_tenants(w: &World) -> (ApiToken, ApiToken) {
    let admin =
        authorize_admin(&authenticate(&w.store, w.admin.reveal(), Some(&w.admin_hash)).unwrap())
            .unwrap();
    let (_, acme) = w
        .store
        .create_tenant(
            &admin,
            id("acme"),
            DisplayName::new("Acme").unwrap(),
            &mut OsRng,
        )
        .unwrap();
    let (_, globex) = w
        .store
        .create_tenant(
            &admin,
            id("globex"),
            DisplayName::new("Globex").unwrap(),
            &mut OsRng,
        )
        .unwrap();
    for (tenant, token) in [("acme", &acme), ("globex", &globex)] {
        let me = authenticate(&w.store, token.reveal(), Some(&w.admin_hash)).unwrap();
        let scope = authorize(&me, &id(tenant)).unwrap();
        w.store
            .put_group(&scope, GroupId::new("eu").unwrap(), spec("EU", tenant))
            .unwrap();
    }
    (acme, globex)
}

#[test]
fn a_tenant_sees_and_changes_only_its_own_groups() {
    let w = world();
    let (acme, _) = two_tenants(&w);
    let me = authenticate(&w.store, acme.reveal(), Some(&w.admin_hash)).unwrap();
    assert_eq!(me, Principal::Tenant(id("acme")));
    let own = authorize(&me, &id("acme")).unwrap();
    assert_eq!(w.store.groups(&own).unwrap().len(), 1);
    assert!(matches!(
        authorize(&me, &id("globex")),
        Err(TenantError::NotFound(_))
    ));
    assert!(matches!(authorize_admin(&me), Err(TenantError::Forbidden)));
}

#[test]
fn the_admin_reaches_every_tenant_and_lists_them() {
    let w = world();
    two_tenants(&w);
    let admin = authenticate(&w.store, w.admin.reveal(), Some(&w.admin_hash)).unwrap();
    assert_eq!(admin, Principal::Admin);
    let scope = authorize(&admin, &id("globex")).unwrap();
    assert_eq!(w.store.groups(&scope).unwrap()[0].tenant, id("globex"));
    assert_eq!(
        w.store
            .tenants(&authorize_admin(&admin).unwrap())
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn unknown_malformed_and_revoked_tokens_are_refused() {
    let w = world();
    let (acme, _) = two_tenants(&w);
    for bad in [
        "",
        "Bearer x",
        "mlgt_",
        &format!("mlgt_{}", "0".repeat(64)),
        &acme.reveal().to_uppercase(),
    ] {
        assert!(
            matches!(
                authenticate(&w.store, bad, Some(&w.admin_hash)),
                Err(TenantError::Unauthenticated)
            ),
            "{bad}"
        );
    }
    let scope = authorize(&Principal::Tenant(id("acme")), &id("acme")).unwrap();
    let second = w.store.issue_token(&scope, &mut OsRng).unwrap();
    w.store.revoke_token(&scope, &acme.hash()).unwrap();
    assert!(matches!(
        authenticate(&w.store, acme.reveal(), Some(&w.admin_hash)),
        Err(TenantError::Unauthenticated)
    ));
    assert_eq!(
        authenticate(&w.store, second.reveal(), Some(&w.admin_hash)).unwrap(),
        Principal::Tenant(id("acme"))
    );
}

#[test]
fn a_tenant_cannot_revoke_another_tenants_token() {
    let w = world();
    let (_, globex) = two_tenants(&w);
    let acme_scope = authorize(&Principal::Tenant(id("acme")), &id("acme")).unwrap();
    assert!(matches!(
        w.store.revoke_token(&acme_scope, &globex.hash()),
        Err(TenantError::NotFound(_))
    ));
    assert!(authenticate(&w.store, globex.reveal(), Some(&w.admin_hash)).is_ok());
}

#[test]
fn every_change_to_a_group_raises_its_revision_and_a_re_created_group_never_goes_back() {
    let w = world();
    two_tenants(&w);
    let scope = authorize(&Principal::Admin, &id("acme")).unwrap();
    let eu = GroupId::new("eu").unwrap();
    let first = w.store.group(&scope, &eu).unwrap().revision;
    let updated = w
        .store
        .put_group(&scope, eu.clone(), spec("EU", "dta-2"))
        .unwrap();
    assert!(updated.revision > first);
    assert_eq!(w.store.group(&scope, &eu).unwrap(), updated);
    w.store.delete_group(&scope, &eu).unwrap();
    assert!(matches!(
        w.store.group(&scope, &eu),
        Err(TenantError::NotFound(_))
    ));
    // Created again under the same name: its devices hold `updated.revision` and refuse
    // anything lower, so the new group starts above it.
    let again = w
        .store
        .put_group(&scope, eu.clone(), spec("EU", "dta-3"))
        .unwrap();
    assert!(again.revision > updated.revision, "{again:?}");
}

#[test]
fn a_store_written_before_the_revision_counter_continues_above_its_groups() {
    let w = world();
    two_tenants(&w);
    let scope = authorize(&Principal::Admin, &id("acme")).unwrap();
    let mut group = w.store.group(&scope, &GroupId::new("eu").unwrap()).unwrap();
    // As an older build left it: group "eu" at revision 15 and no counter.
    group.revision = 15;
    let tree = w.db.open_tree("tenants").unwrap();
    let key = [b"g\0acme\0".as_slice(), b"eu"].concat();
    tree.insert(key, serde_json::to_vec(&group).unwrap())
        .unwrap();
    tree.remove(b"r\0revision").unwrap();
    let other = w
        .store
        .put_group(&scope, GroupId::new("us").unwrap(), spec("US", "dta"))
        .unwrap();
    assert_eq!(other.revision, 16);
}

#[test]
fn duplicate_tenants_and_groups_of_missing_tenants_are_refused() {
    let w = world();
    two_tenants(&w);
    let admin = authorize_admin(&Principal::Admin).unwrap();
    assert!(matches!(
        w.store.create_tenant(
            &admin,
            id("acme"),
            DisplayName::new("Again").unwrap(),
            &mut OsRng
        ),
        Err(TenantError::Conflict(_))
    ));
    let ghost = authorize(&Principal::Admin, &id("ghost")).unwrap();
    assert!(matches!(
        w.store
            .put_group(&ghost, GroupId::new("g").unwrap(), spec("G", "d")),
        Err(TenantError::NotFound(_))
    ));
}

/// A group spec as the API reads it: its JSON body, then its values parsed.
fn read(json: &str) -> Result<GroupSpec, String> {
    let body: milagro_wire::tbs::tenants::GroupSpec =
        serde_json::from_str(json).map_err(|e| e.to_string())?;
    GroupSpec::try_from(body).map_err(|e| e.to_string())
}

#[test]
fn values_are_checked_when_read_from_json() {
    for bad in ["", "-lead", "UPPER", "with space", &"a".repeat(65)] {
        assert!(TenantId::new(bad).is_err(), "{bad:?}");
    }
    let json =
        r#"{"name":"EU","mode":"batch","dtas":[{"birth_certificate":"zz","url":"https://d"}]}"#;
    assert!(read(json).is_err());
    let json = r#"{"name":"EU","dtas":[{"birth_certificate":"00000000000000000000000000000000000000000000000000000000000000ff","url":"ftp://d"}]}"#;
    assert!(read(json).is_err());
    let json = r#"{"name":"EU","extra":1}"#;
    assert!(read(json).is_err());
    let json = r#"{"name":"EU","mode":"batch"}"#;
    assert_eq!(read(json).unwrap().mode, EnrolmentMode::Batch);
    let many = GroupSpec {
        dtas: vec![spec("x", "d").dtas[0].clone(); MAX_DTAS + 1],
        ..spec("x", "d")
    };
    assert!(many.check().is_err());
    let json = r#"{"name":"EU","enrolment_keys":["02zz"]}"#;
    assert!(read(json).is_err());
    let key = milagro_anchor::keys::SecretKey::generate(&mut rand_core::OsRng).public_key();
    let twice = GroupSpec {
        enrolment_keys: vec![key, key],
        ..spec("x", "d")
    };
    assert_eq!(twice.check(), Err(ModelError::EnrolmentKeys(2)));
    let once = GroupSpec {
        enrolment_keys: vec![key],
        ..spec("x", "d")
    };
    assert!(once.check().is_ok());
}

#[test]
fn tokens_never_show_in_debug_output() {
    let token = ApiToken::generate(&mut OsRng);
    assert!(!format!("{token:?}").contains(token.reveal()));
    assert!(TokenHash::from_hex(&token.hash().to_string())
        .unwrap()
        .matches(&token));
}

#[test]
fn without_a_configured_admin_token_nobody_is_admin() {
    let w = world();
    assert!(matches!(
        authenticate(&w.store, w.admin.reveal(), None),
        Err(TenantError::Unauthenticated)
    ));
}
