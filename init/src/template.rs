//! The configuration file `init` writes: the role's commented example configuration
//! (`tbs/tbs.example.toml`, …), its values replaced by this service's and the sections
//! it does not use taken out, every remaining comment kept. Pure: no file is read or
//! written here.

use std::net::SocketAddr;
use std::path::PathBuf;

use milagro_anchor::digest::Digest;
use toml_edit::{value, ArrayOfTables, DocumentMut, Item, Key, Table};

use crate::role::{Chain, ServiceRole};

/// The certificate chain and key a service serves HTTPS with (`[tls]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// An IdP a D-TA trusts (`[[trusted_idps]]`, `trust = "anchored"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIdp {
    /// Its issuer URL.
    pub issuer: String,
    /// The digest of its anchored Birth Certificate.
    pub digest: Digest,
    /// The D-TA's client id there (the audience of the ID tokens).
    pub client_id: String,
}

/// A D-TA an authentication server (`[[dtas]]`) or an IdP (`[[mpin.dtas]]`) sums
/// server shares from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtaPeer {
    /// The digest of its anchored Birth Certificate.
    pub digest: Digest,
    /// `host:port` of its share API.
    pub share_api: String,
}

/// Every value `init` writes into a configuration; what a role does not have is ignored.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `listen`.
    pub listen: SocketAddr,
    /// `public_url`.
    pub public_url: String,
    /// `name`.
    pub name: String,
    /// `state_dir`.
    pub state_dir: PathBuf,
    /// `[node] rpc_url`.
    pub rpc_url: String,
    /// `[node] rpc_cookie`.
    pub rpc_cookie: PathBuf,
    /// `[sync] poll_interval_ms`; `None`: the template's.
    pub poll_interval_ms: Option<u64>,
    /// `[tls]`; `None`: the section is left out (plain HTTP).
    pub tls: Option<TlsFiles>,
    /// `[admin] token_sha256` (the TBS, the IdP, the auth server).
    pub admin_token_sha256: Option<String>,
    /// `[registration] initial_access_token_sha256` (the IdP).
    pub registration_token_sha256: Option<String>,
    /// `min_peer_depth` (the D-TA, the auth server).
    pub min_peer_depth: u32,
    /// `tls_listen` (the D-TA's share API).
    pub share_listen: Option<SocketAddr>,
    /// `tls_public_addr` (the D-TA); `None`: left out (the bound address).
    pub share_public_addr: Option<String>,
    /// `[master_key] file` (the D-TA).
    pub master_key_file: Option<PathBuf>,
    /// `[[trusted_idps]]` (the D-TA).
    pub trusted_idps: Vec<TrustedIdp>,
    /// `[shares] authservers` (the D-TA).
    pub authservers: Vec<Digest>,
    /// `[[dtas]]` (the auth server), `[[mpin.dtas]]` (the IdP).
    pub dtas: Vec<DtaPeer>,
}

/// Why the template could not be filled in: it does not have a key the code expects
/// (a template edited without this code).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template is not TOML.
    #[error("the {role} template is not toml: {detail}")]
    Parse {
        /// Whose template.
        role: ServiceRole,
        /// The parser's message.
        detail: String,
    },
    /// A key or table the code fills in is missing.
    #[error("the {role} template has no {what}")]
    Missing {
        /// Whose template.
        role: ServiceRole,
        /// The key or table.
        what: &'static str,
    },
}

/// The configuration file of a `role` service on `chain` with `settings`.
pub fn render(
    role: ServiceRole,
    chain: Chain,
    settings: &Settings,
) -> Result<String, TemplateError> {
    let mut doc: DocumentMut =
        role.template()
            .parse()
            .map_err(|e: toml_edit::TomlError| TemplateError::Parse {
                role,
                detail: e.to_string(),
            })?;
    let missing = |what| TemplateError::Missing { role, what };
    let path = |p: &std::path::Path| value(p.display().to_string());
    doc["listen"] = value(settings.listen.to_string());
    doc["public_url"] = value(&settings.public_url);
    doc["name"] = value(&settings.name);
    doc["state_dir"] = path(&settings.state_dir);
    let node = table(&mut doc, "node").ok_or(missing("[node]"))?;
    node["rpc_url"] = value(&settings.rpc_url);
    node["rpc_cookie"] = path(&settings.rpc_cookie);
    node["network"] = value(chain.name());
    if let Some(poll) = settings.poll_interval_ms {
        let sync = table(&mut doc, "sync").ok_or(missing("[sync]"))?;
        sync["poll_interval_ms"] = value(i64::try_from(poll).unwrap_or(i64::MAX));
    }
    // The origin defaults to the public URL's; the template's names example.com.
    if let Some(audit) = table(&mut doc, "audit") {
        audit.remove("origin");
    }
    // The IdP's e-mail sections name example.com's relay and a credentials file that does
    // not exist here: an operator adds them for their own mail (idp.example.toml shows how).
    doc.remove("smtp");
    doc.remove("enrolment");
    match (&settings.tls, table(&mut doc, "tls")) {
        (Some(files), Some(tls)) => {
            tls["cert"] = path(&files.cert);
            tls["key"] = path(&files.key);
        }
        (Some(_), None) => return Err(missing("[tls]")),
        (None, _) => {
            doc.remove("tls");
        }
    }
    set_or_remove(
        &mut doc,
        "admin",
        "token_sha256",
        &settings.admin_token_sha256,
    );
    set_or_remove(
        &mut doc,
        "registration",
        "initial_access_token_sha256",
        &settings.registration_token_sha256,
    );
    match role {
        ServiceRole::Dta => dta(&mut doc, settings).map_err(missing)?,
        ServiceRole::Authserver => authserver(&mut doc, settings).map_err(missing)?,
        ServiceRole::Idp => idp(&mut doc, settings).map_err(missing)?,
        ServiceRole::Tbs => {}
    }
    Ok(format!(
        "# Written by `milagro init {role} --network {chain}`; start it with\n\
         #     milagro {role} serve --config <this file>\n\n{doc}"
    ))
}

/// The D-TA's own keys.
fn dta(doc: &mut DocumentMut, settings: &Settings) -> Result<(), &'static str> {
    if let Some(listen) = settings.share_listen {
        doc["tls_listen"] = value(listen.to_string());
    }
    match &settings.share_public_addr {
        Some(addr) => doc["tls_public_addr"] = value(addr),
        None => {
            doc.remove("tls_public_addr");
        }
    }
    doc["min_peer_depth"] = value(i64::from(settings.min_peer_depth));
    if let Some(file) = &settings.master_key_file {
        let master = table(doc, "master_key").ok_or("[master_key]")?;
        // The sealing key in a file of its own (mode 0600) rather than the environment,
        // keeping the comments that explain both.
        let (old, _) = master.remove_entry("env").ok_or("[master_key] env")?;
        let key = Key::new("file").with_leaf_decor(old.leaf_decor().clone());
        master.insert_formatted(&key, value(file.display().to_string()));
    }
    let idps = settings.trusted_idps.iter().map(|idp| {
        let mut table = Table::new();
        table["issuer"] = value(&idp.issuer);
        table["trust"] = value("anchored");
        table["bc_digest"] = value(idp.digest.to_string());
        table["client_id"] = value(&idp.client_id);
        table
    });
    fill_tables(doc.as_table_mut(), "trusted_idps", idps)?;
    // Defaults: the system's roots, no plain HTTP off loopback.
    doc.remove("outbound_http");
    let servers: Vec<String> = settings.authservers.iter().map(Digest::to_string).collect();
    if servers.is_empty() {
        doc.remove("shares");
    } else {
        let shares = table(doc, "shares").ok_or("[shares]")?;
        shares["authservers"] = value(toml_edit::Array::from_iter(servers));
    }
    Ok(())
}

/// The authentication server's own keys.
fn authserver(doc: &mut DocumentMut, settings: &Settings) -> Result<(), &'static str> {
    doc["min_peer_depth"] = value(i64::from(settings.min_peer_depth));
    let dtas = settings.dtas.iter().map(|dta| {
        let mut table = Table::new();
        table["bc_digest"] = value(dta.digest.to_string());
        table["share_api"] = value(&dta.share_api);
        table
    });
    fill_tables(doc.as_table_mut(), "dtas", dtas)
}

/// The IdP's own keys: `[mpin]` with its D-TAs, or no `[mpin]` (no M-Pin sign-in)
/// without any.
fn idp(doc: &mut DocumentMut, settings: &Settings) -> Result<(), &'static str> {
    if settings.dtas.is_empty() {
        doc.remove("mpin");
        return Ok(());
    }
    let mpin = table(doc, "mpin").ok_or("[mpin]")?;
    mpin["min_peer_depth"] = value(i64::from(settings.min_peer_depth));
    let dtas = settings.dtas.iter().map(|dta| {
        let mut table = Table::new();
        table["bc_digest"] = value(dta.digest.to_string());
        table["share_api"] = value(&dta.share_api);
        table
    });
    fill_tables(mpin, "dtas", dtas)
}

fn table<'a>(doc: &'a mut DocumentMut, name: &str) -> Option<&'a mut Table> {
    doc.get_mut(name).and_then(Item::as_table_mut)
}

/// Sets `[section] key` to `hash`, or removes the section when there is none.
fn set_or_remove(doc: &mut DocumentMut, section: &str, key: &str, hash: &Option<String>) {
    match (hash, table(doc, section)) {
        (Some(hash), Some(table)) => table[key] = value(hash),
        _ => {
            doc.remove(section);
        }
    }
}

/// Replaces the array of tables `name` by `tables`, the first keeping the comments of
/// the template's first (which explain every key); none removes it.
fn fill_tables(
    doc: &mut Table,
    name: &'static str,
    tables: impl Iterator<Item = Table>,
) -> Result<(), &'static str> {
    let template = doc
        .get(name)
        .and_then(Item::as_array_of_tables)
        .and_then(|array| array.get(0))
        .ok_or(name)?
        .clone();
    let mut filled = ArrayOfTables::new();
    for (n, values) in tables.enumerate() {
        let mut table = if n == 0 {
            template.clone()
        } else {
            Table::new()
        };
        for (key, item) in values.iter() {
            table[key] = item.clone();
        }
        filled.push(table);
    }
    if filled.is_empty() {
        doc.remove(name);
    } else {
        doc[name] = Item::ArrayOfTables(filled);
    }
    Ok(())
}
