//! Persistent tenants, groups and token hashes, behind an authorization check that the
//! types enforce: tenant data is reached only through a [`TenantScope`], which only
//! [`authorize`] makes, so a handler cannot forget the check.

use rand_core::CryptoRngCore;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::model::{
    ApiToken, DisplayName, Group, GroupId, GroupSpec, ModelError, Tenant, TenantId, TokenHash,
};

/// Who is calling, once their bearer token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator, holding the admin token.
    Admin,
    /// A tenant, holding one of its API tokens.
    Tenant(TenantId),
}

/// Permission to read and change one tenant's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    /// The tenant this scope covers.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// Permission for operator-only calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminScope(());

/// Why a call was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// No token, a malformed one, or one nobody holds.
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    /// The caller may not do this (a tenant calling an operator-only endpoint).
    #[error("this call needs the admin token")]
    Forbidden,
    /// The tenant or group does not exist, or belongs to someone else (not distinguished,
    /// so tenants cannot probe for each other).
    #[error("{0} not found")]
    NotFound(String),
    /// The tenant already exists.
    #[error("tenant {0} already exists")]
    Conflict(TenantId),
    /// A value was refused.
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// The database failed or holds something unreadable.
    #[error("tenant storage: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> TenantError {
    TenantError::Storage(e.to_string())
}

/// Checks a bearer token: the admin token (compared in constant time with its stored hash,
/// when an admin token is configured) or a tenant token.
pub fn authenticate(
    store: &TenantStore,
    bearer: &str,
    admin: Option<&TokenHash>,
) -> Result<Principal, TenantError> {
    let token = ApiToken::parse(bearer).map_err(|_| TenantError::Unauthenticated)?;
    if admin.is_some_and(|admin| admin.matches(&token)) {
        return Ok(Principal::Admin);
    }
    store
        .tenant_of_token(&token.hash())?
        .map(Principal::Tenant)
        .ok_or(TenantError::Unauthenticated)
}

/// May `principal` act on `tenant`'s data? The admin may act on every tenant.
pub fn authorize(principal: &Principal, tenant: &TenantId) -> Result<TenantScope, TenantError> {
    match principal {
        Principal::Admin => Ok(TenantScope {
            tenant: tenant.clone(),
        }),
        Principal::Tenant(own) if own == tenant => Ok(TenantScope {
            tenant: tenant.clone(),
        }),
        Principal::Tenant(_) => Err(TenantError::NotFound(format!("tenant {tenant}"))),
    }
}

/// Is `principal` the operator?
pub fn authorize_admin(principal: &Principal) -> Result<AdminScope, TenantError> {
    match principal {
        Principal::Admin => Ok(AdminScope(())),
        Principal::Tenant(_) => Err(TenantError::Forbidden),
    }
}

/// Tenants, their token hashes and their groups, in one `sled` tree.
///
/// Keys: `t\0TENANT` → tenant JSON; `k\0HASH` (32 bytes) → tenant id; `g\0TENANT\0GROUP` →
/// group JSON. Multi-row changes run in one sled transaction.
#[derive(Debug, Clone)]
pub struct TenantStore {
    tree: sled::Tree,
}

/// The highest group revision ever given out (`u64`, big-endian).
const REVISION_KEY: &[u8] = b"r\0revision";

fn tenant_key(id: &TenantId) -> Vec<u8> {
    [b"t\0".as_slice(), id.as_str().as_bytes()].concat()
}

fn token_key(hash: &TokenHash) -> Vec<u8> {
    [b"k\0".as_slice(), hash.as_bytes()].concat()
}

fn group_prefix(tenant: &TenantId) -> Vec<u8> {
    [b"g\0".as_slice(), tenant.as_str().as_bytes(), b"\0"].concat()
}

fn group_key(tenant: &TenantId, group: &GroupId) -> Vec<u8> {
    [group_prefix(tenant), group.as_str().as_bytes().to_vec()].concat()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, TenantError> {
    serde_json::from_slice(bytes).map_err(storage)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, TenantError> {
    serde_json::to_vec(value).map_err(storage)
}

impl TenantStore {
    /// Opens the `tenants` tree of `db`.
    pub fn open(db: &sled::Db) -> Result<Self, TenantError> {
        Ok(Self {
            tree: db.open_tree("tenants").map_err(storage)?,
        })
    }

    /// Creates a tenant with a first API token (returned once, stored hashed).
    pub fn create_tenant(
        &self,
        _: &AdminScope,
        id: TenantId,
        name: DisplayName,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Tenant, ApiToken), TenantError> {
        let tenant = Tenant {
            id: id.clone(),
            name,
        };
        let token = ApiToken::generate(rng);
        let (key, value, token_row) = (tenant_key(&id), encode(&tenant)?, token_key(&token.hash()));
        self.tree
            .transaction(|tx| {
                if tx.get(&key)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                tx.insert(key.as_slice(), value.as_slice())?;
                tx.insert(token_row.as_slice(), id.as_str().as_bytes())?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => TenantError::Conflict(id.clone()),
                TransactionError::Storage(e) => storage(e),
            })?;
        self.tree.flush().map_err(storage)?;
        Ok((tenant, token))
    }

    /// Issues another API token for a tenant (e.g. for rotation).
    pub fn issue_token(
        &self,
        scope: &TenantScope,
        rng: &mut impl CryptoRngCore,
    ) -> Result<ApiToken, TenantError> {
        self.tenant(scope)?;
        let token = ApiToken::generate(rng);
        self.tree
            .insert(token_key(&token.hash()), scope.tenant.as_str().as_bytes())
            .map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        Ok(token)
    }

    /// Revokes a token of the tenant; other tenants' tokens are untouched.
    pub fn revoke_token(&self, scope: &TenantScope, token: &TokenHash) -> Result<(), TenantError> {
        match self.tenant_of_token(token)? {
            Some(owner) if owner == scope.tenant => {
                self.tree.remove(token_key(token)).map_err(storage)?;
                self.tree.flush().map_err(storage)?;
                Ok(())
            }
            _ => Err(TenantError::NotFound("token".into())),
        }
    }

    /// Every tenant.
    pub fn tenants(&self, _: &AdminScope) -> Result<Vec<Tenant>, TenantError> {
        self.tree
            .scan_prefix(b"t\0")
            .map(|row| decode(&row.map_err(storage)?.1))
            .collect()
    }

    /// The scoped tenant.
    pub fn tenant(&self, scope: &TenantScope) -> Result<Tenant, TenantError> {
        let bytes = self.tree.get(tenant_key(&scope.tenant)).map_err(storage)?;
        decode(&bytes.ok_or_else(|| TenantError::NotFound(format!("tenant {}", scope.tenant)))?)
    }

    fn tenant_of_token(&self, hash: &TokenHash) -> Result<Option<TenantId>, TenantError> {
        self.tree
            .get(token_key(hash))
            .map_err(storage)?
            .map(|id| {
                let text = std::str::from_utf8(&id).map_err(storage)?;
                TenantId::new(text).map_err(TenantError::from)
            })
            .transpose()
    }

    /// Creates or replaces a group with a new revision, so devices pick up the change.
    ///
    /// Revisions come from one counter for the whole store ([`REVISION_KEY`]), never
    /// from the group alone: a device refuses instructions whose sequence is below the one
    /// it holds, so a group deleted and created again under the same name must not start
    /// again at 1 (its devices would refuse every new instruction). The counter is at
    /// least every revision stored, so a store written before it existed continues above
    /// its groups.
    pub fn put_group(
        &self,
        scope: &TenantScope,
        id: GroupId,
        spec: GroupSpec,
    ) -> Result<Group, TenantError> {
        spec.check()?;
        self.tenant(scope)?;
        let key = group_key(&scope.tenant, &id);
        let group = Group {
            tenant: scope.tenant.clone(),
            id,
            name: spec.name,
            mode: spec.mode,
            dtas: spec.dtas,
            idp: spec.idp,
            enrolment_keys: spec.enrolment_keys,
            revision: 0,
        };
        // Read outside the transaction: a scan inside one would wait on its own locks.
        let before_counter = match self.tree.get(REVISION_KEY).map_err(storage)? {
            Some(_) => 0,
            None => self.highest_group_revision()?,
        };
        let stored = self
            .tree
            .transaction(|tx| {
                let counter = match tx.get(REVISION_KEY)? {
                    Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                        .map(u64::from_be_bytes)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?,
                    None => before_counter,
                };
                let previous = match tx.get(&key)? {
                    Some(old) => serde_json::from_slice::<Group>(&old)
                        .map(|g| g.revision)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?,
                    None => 0,
                };
                let mut next = group.clone();
                next.revision = counter.max(previous) + 1;
                let bytes = serde_json::to_vec(&next)
                    .map_err(|_| ConflictableTransactionError::Abort(()))?;
                tx.insert(key.as_slice(), bytes)?;
                tx.insert(REVISION_KEY, next.revision.to_be_bytes().as_slice())?;
                Ok(next)
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => storage("unreadable stored group"),
                TransactionError::Storage(e) => storage(e),
            })?;
        self.tree.flush().map_err(storage)?;
        Ok(stored)
    }

    /// The highest revision of any stored group (0 without groups): where the revision
    /// counter starts in a store written before it existed.
    fn highest_group_revision(&self) -> Result<u64, TenantError> {
        self.tree
            .scan_prefix(b"g\0")
            .map(|row| decode::<Group>(&row.map_err(storage)?.1).map(|g| g.revision))
            .try_fold(0, |highest, revision| Ok(highest.max(revision?)))
    }

    /// One group of the scoped tenant.
    pub fn group(&self, scope: &TenantScope, id: &GroupId) -> Result<Group, TenantError> {
        let bytes = self
            .tree
            .get(group_key(&scope.tenant, id))
            .map_err(storage)?;
        decode(&bytes.ok_or_else(|| TenantError::NotFound(format!("group {id}")))?)
    }

    /// The group a device says it was provisioned for. Devices hold no tenant token: they
    /// are identified by their self-signed certificate and this lookup gives them nothing
    /// but the group they name (a missing tenant and a missing group are the same 404).
    pub fn group_for_device(&self, tenant: &TenantId, id: &GroupId) -> Result<Group, TenantError> {
        self.group(
            &TenantScope {
                tenant: tenant.clone(),
            },
            id,
        )
    }

    /// Every group of the scoped tenant.
    pub fn groups(&self, scope: &TenantScope) -> Result<Vec<Group>, TenantError> {
        self.tree
            .scan_prefix(group_prefix(&scope.tenant))
            .map(|row| decode(&row.map_err(storage)?.1))
            .collect()
    }

    /// Deletes a group of the scoped tenant.
    pub fn delete_group(&self, scope: &TenantScope, id: &GroupId) -> Result<(), TenantError> {
        let removed = self
            .tree
            .remove(group_key(&scope.tenant, id))
            .map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        removed
            .map(drop)
            .ok_or_else(|| TenantError::NotFound(format!("group {id}")))
    }
}
