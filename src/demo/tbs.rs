//! The TBS part of `milagro demo`: a TBS next to the node, a tenant and two device groups
//! (one direct, one batch mode) set up through its admin API, and three devices enrolling
//! with the `pat-client` library (two by their own anchoring transaction, one as a member
//! of a batch the TBS anchors), each verifying every anchor it is told about.

use milagro_regtest::RegtestControls as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use milagro_anchor::birth_certificate::BirthCertificate;
use milagro_pat_client::state::Provisioning;
use milagro_pat_client::{enrol, provision, ChainSources, WaitOptions};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainSource;
use milagro_tbs::config::Config;
use milagro_tbs::tenants::model::ApiToken;
use milagro_tbs::Tbs;
use milagro_wire::service::AnchorStatus;
use milagro_wire::service::AnchoredBirthCertificate;
use milagro_wire::tbs::registry::Status;
use milagro_wire::tbs::tenants::ServiceRef;
use milagro_wire::tbs::tenants::{CreatedTenant, EnrolmentMode, Group, GroupSpec, NewTenant};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// What the TBS part adds to the demo's summary.
#[derive(Debug, Serialize)]
pub struct TbsSummary {
    url: String,
    digest: String,
    devices: Vec<DeviceSummary>,
    /// meter-1 and D-TA 1 over Milagro TLS ([`crate::demo::tls`]).
    milagro_tls: Value,
}

#[derive(Debug, Serialize)]
struct DeviceSummary {
    name: String,
    group: String,
    key: String,
    /// `direct` (its own transaction) or `batch` (a member of a TBS batch root).
    mode: &'static str,
    txid: String,
    batch_root: Option<String>,
    sequence: u64,
    dtas: Vec<Value>,
    idp: Option<Value>,
    /// The sources that agreed on the chain its instructions were verified against.
    agreed_by: Vec<String>,
}

const PATIENCE: Duration = Duration::from_secs(120);

/// The TBS the demo keeps running for its M-Pin part ([`crate::demo::mpin`]).
pub struct DemoTbs {
    /// The running TBS.
    pub tbs: milagro_tbs::RunningTbs,
    /// Its URL.
    pub url: String,
    /// Its Birth Certificate digest.
    pub digest: milagro_anchor::digest::Digest,
    /// Tenant acme's token.
    pub tenant_token: String,
    /// What its devices check it against: the Electrum server on the second node.
    pub sources: ChainSources,
    /// Where its state and the devices' live.
    pub dir: tempfile::TempDir,
    /// The device maker's enrolment key, listed on every group: it signs each device's
    /// enrolment credential.
    pub maker: milagro_anchor::keys::SecretKey,
}

/// Provisions `devices` (name, group of tenant acme), has the maker's enrolment key sign
/// each one's credential, and enrols them through the TBS at `url`, each on its own
/// thread in `dir/<name>`, mining whenever something waits in the mempool.
#[allow(clippy::too_many_arguments)]
pub(crate) fn enrol_devices(
    node: &BitcoindRpc,
    miner: &str,
    url: &str,
    digest: milagro_anchor::digest::Digest,
    sources: &ChainSources,
    dir: &Path,
    maker: &milagro_anchor::keys::SecretKey,
    devices: &[(&str, &str)],
) -> Result<Vec<(String, String, milagro_pat_client::Enrolled)>> {
    wait_for_sources(sources, node.tip()?.height)?;
    let workers: Vec<_> = devices
        .iter()
        .map(|(name, group)| {
            let (state, url, name) = (dir.join(name), url.to_owned(), name.to_string());
            let (group, sources, maker) = (group.to_string(), sources.clone(), maker.clone());
            std::thread::spawn(move || -> Result<_> {
                let provisioning = Provisioning {
                    tbs_url: url.clone(),
                    tbs_digest: digest,
                    tenant: "acme".into(),
                    group: group.clone(),
                    network: bitcoin::Network::Regtest,
                    sources,
                };
                let device = provision(&state, provisioning, Some(&name))?
                    .device()
                    .public_key();
                let credential = milagro_anchor::enrolment_credential::EnrolmentCredential::issue(
                    &maker, "acme", &group, &device,
                )?;
                let stage = milagro_pat_client::install_credential(&state, credential)?;
                let wait = WaitOptions {
                    timeout: PATIENCE,
                    interval: Duration::from_millis(200),
                };
                Ok((
                    name,
                    group,
                    enrol(stage, &crate::cli::service_client(&url)?, &wait, |_| {})?,
                ))
            })
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while !workers.iter().all(|w| w.is_finished()) {
        ensure!(
            Instant::now() < deadline,
            "timed out waiting for the devices"
        );
        let mempool: Vec<String> = node.call("getrawmempool", &[])?;
        if !mempool.is_empty() {
            node.generate_to_address(1, miner)?;
            wait_for_sources(sources, node.tip()?.height)?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    workers
        .into_iter()
        .map(|worker| {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a device thread panicked"))?
        })
        .collect()
}

/// A second node following the demo's, and ElectrumX on it: the independent header
/// source every device checks the TBS's chain against. Both stop when dropped.
pub(crate) fn independent_header_source(
    exe: &Path,
    node: &bitcoind::BitcoinD,
) -> Result<(bitcoind::BitcoinD, milagro_regtest::ElectrumServer)> {
    crate::demo::step(
        "starting a second node following the first, and ElectrumX on it (installed once per machine): devices check the TBS's chain against it",
    );
    let mut conf = bitcoind::Conf::default();
    conf.args.extend(milagro_regtest::NODE_ARGS);
    conf.args.push("-listenonion=0");
    conf.p2p = node
        .p2p_connect(true)
        .context("the demo's node does not listen")?;
    let peer =
        bitcoind::BitcoinD::with_conf(exe, &conf).context("cannot start a second bitcoind")?;
    let (first, second) = (
        BitcoindRpc::with_cookie(node.rpc_url(), &node.params.cookie_file),
        BitcoindRpc::with_cookie(peer.rpc_url(), &peer.params.cookie_file),
    );
    crate::demo::wait_for(PATIENCE, "the second node to follow the first", || {
        Ok((second.tip()? == first.tip()?).then_some(()))
    })?;
    let electrum = milagro_regtest::ElectrumServer::start(
        &peer.rpc_url(),
        &peer.params.cookie_file,
        bitcoin::Network::Regtest,
    )?;
    eprintln!("    {} on {}", electrum.url(), peer.rpc_url());
    Ok((peer, electrum))
}

/// Waits until every Electrum server of `sources` serves a tip at `height` or above: the
/// demo mines a block every 200 ms, where the network finds one every 10 minutes, and a
/// device refuses a TBS more than 2 blocks ahead of its header sources.
fn wait_for_sources(sources: &ChainSources, height: u32) -> Result<()> {
    for url in &sources.electrum {
        crate::demo::wait_for(PATIENCE, "the Electrum server to see the new block", || {
            let server = milagro_electrum::ElectrumSource::connect(url, Duration::from_secs(10))?;
            Ok((server.tip()?.0 >= height).then_some(()))
        })?;
    }
    Ok(())
}

/// Sends `request` to a JSON API and reads the answer as its wire type `T`; any non-2xx
/// status is an error carrying the error body.
pub(crate) fn call<T: DeserializeOwned>(request: reqwest::blocking::RequestBuilder) -> Result<T> {
    let response = request.send().context("calling the API")?;
    let (url, status) = (response.url().clone(), response.status());
    let text = response.text().with_context(|| format!("reading {url}"))?;
    ensure!(status.is_success(), "{url} answered {status}: {text}");
    serde_json::from_str(&text).with_context(|| format!("{url} answered {text}"))
}

/// `bc`'s party as a group names it: its digest and the first endpoint it lists.
pub(crate) fn service_ref(bc: &BirthCertificate) -> Result<ServiceRef> {
    Ok(ServiceRef {
        birth_certificate: bc.digest(),
        url: bc
            .fields()
            .endpoints
            .first()
            .context("a birth certificate without an endpoint")?
            .clone(),
    })
}

/// Runs the TBS part against the demo's node; `dtas` and `idp` are anchored already, and
/// `dta1` (the first D-TA) then talks to meter-1 over Milagro TLS. The TBS keeps running
/// for the M-Pin part.
pub fn run(
    chain: &crate::demo::mpin::Chain<'_>,
    dtas: &[&BirthCertificate],
    idp: &BirthCertificate,
    dta1: &milagro_tls::LocalIdentity,
    electrum: &str,
) -> Result<(TbsSummary, DemoTbs)> {
    let (node, rpc_url, cookie, miner) = (chain.node, chain.rpc_url, chain.cookie, chain.miner);
    crate::demo::step("starting a TBS next to the node; it anchors its own Birth Certificate");
    let dir = tempfile::tempdir()?;
    let admin = ApiToken::generate(&mut rand_core::OsRng);
    let config = Config::parse(&format!(
        "listen = \"127.0.0.1:0\"\npublic_url = \"https://tbs.milagro.test\"\nname = \"Milagro demo TBS\"\nstate_dir = {:?}\n\n[node]\nrpc_url = {rpc_url:?}\nrpc_cookie = {cookie:?}\nnetwork = \"regtest\"\n\n[sync]\npoll_interval_ms = 100\n\n[anchoring]\nbatch_interval_secs = 2\n\n[admin]\ntoken_sha256 = \"{}\"\n",
        dir.path().join("state"),
        admin.hash()
    ))?;
    let tbs = Tbs::start(config)?;
    let url = tbs.local_url();
    let digest = tbs.state().identity.digest();
    let http = crate::cli::http_builder()?
        .timeout(Duration::from_secs(30))
        .build()?;
    let status = || call::<Status>(http.get(format!("{url}/v1/status")));
    crate::demo::wait_for(PATIENCE, "the TBS anchor to be broadcast", || {
        Ok(matches!(status()?.anchor, AnchorStatus::Pending { .. }).then_some(()))
    })?;
    node.generate_to_address(1, miner)?;
    crate::demo::wait_for(PATIENCE, "the TBS certificate to be served", || {
        let served = http.get(format!("{url}/.well-known/milagro/birth-certificate"));
        Ok(call::<AnchoredBirthCertificate>(served).ok())
    })?;
    let tip = node.tip()?.hash.to_string();
    crate::demo::wait_for(PATIENCE, "the TBS index to reach the tip", || {
        Ok((status()?.index_hash.as_ref() == Some(&tip)).then_some(()))
    })?;
    eprintln!("    {url}  digest {digest}");

    crate::demo::step(
        "creating tenant acme and device groups eu (direct) and fleet (batch), each with two D-TAs and one IdP, through the admin API",
    );
    let tenant = NewTenant {
        id: "acme".into(),
        name: "Acme Devices".into(),
    };
    let created: CreatedTenant = call(
        http.post(format!("{url}/v1/admin/tenants"))
            .bearer_auth(admin.reveal())
            .json(&tenant),
    )?;
    let token = created.token;
    // The device maker's key: it signs each device's enrolment credential at the factory.
    let maker = milagro_anchor::keys::SecretKey::generate(&mut rand_core::OsRng);
    for (id, name, mode) in [
        ("eu", "EU meters", EnrolmentMode::Direct),
        ("fleet", "Sensor fleet", EnrolmentMode::Batch),
    ] {
        let group = GroupSpec {
            name: name.into(),
            mode,
            dtas: dtas
                .iter()
                .map(|bc| service_ref(bc))
                .collect::<Result<_>>()?,
            idp: Some(service_ref(idp)?),
            enrolment_keys: vec![maker.public_key().to_string()],
        };
        let saved: Group = call(
            http.put(format!("{url}/v1/tenants/acme/groups/{id}"))
                .bearer_auth(&token)
                .json(&group),
        )?;
        eprintln!(
            "    group {id} ({mode:?} mode), revision {}",
            saved.revision
        );
    }

    crate::demo::step("enrolling three devices: each checks the TBS by SPV; meter-1 and meter-2 (group eu) sign their own anchors, sensor-1 (group fleet) is anchored in a TBS batch; each verifies its instructions");
    let devices = [("meter-1", "eu"), ("meter-2", "eu"), ("sensor-1", "fleet")];
    let sources = ChainSources {
        electrum: vec![electrum.to_owned()],
        registries: vec![],
    };
    let enrolled_devices = enrol_devices(
        node,
        miner,
        &url,
        digest,
        &sources,
        dir.path(),
        &maker,
        &devices,
    )?;
    let mut summaries = Vec::new();
    for (name, group, enrolled) in enrolled_devices {
        let stored = enrolled.instructions();
        let anchors = &stored.service_anchors;
        let describe = |i: usize, s: &milagro_anchor::instructions::ServiceAnchor| json!({"url": s.url, "birth_certificate": s.birth_certificate, "depth": anchors.get(i).map(|a| a.depth)});
        let dtas: Vec<Value> = stored
            .instructions
            .dtas
            .iter()
            .enumerate()
            .map(|(i, s)| describe(i, s))
            .collect();
        let idp = stored
            .instructions
            .idp
            .as_ref()
            .map(|s| describe(dtas.len(), s));
        let device = &stored.instructions.device;
        let (mode, batch_root) = match device {
            milagro_anchor::instructions::DeviceAnchor::Batch {
                root, membership, ..
            } => {
                eprintln!(
                    "    {name}  member {} of {} under batch root {root}",
                    membership.index(),
                    membership.size()
                );
                ("batch", Some(root.to_string()))
            }
            _ => ("direct", None),
        };
        eprintln!(
            "    {name}  key {}  {mode} anchor {} (depth {})  instructions #{}: {} D-TAs, IdP {}",
            enrolled.device().public_key(),
            stored.device_anchor.txid,
            stored.device_anchor.depth,
            stored.sequence,
            dtas.len(),
            stored
                .instructions
                .idp
                .as_ref()
                .map_or("none", |s| s.url.as_str()),
        );
        if let Some(chain) = enrolled.device().chain_seen() {
            let sources: Vec<String> = chain
                .agreed_by
                .iter()
                .enumerate()
                .map(|(i, url)| format!("{} {url}", if i == 0 { "tbs" } else { "electrum" }))
                .collect();
            eprintln!(
                "    {name}  chain at height {} ({}) agreed by {}",
                chain.height,
                chain.hash,
                sources.join(" and ")
            );
        }
        summaries.push(DeviceSummary {
            agreed_by: enrolled
                .device()
                .chain_seen()
                .map(|c| c.agreed_by.clone())
                .unwrap_or_default(),
            name,
            group,
            key: enrolled.device().public_key().to_string(),
            mode,
            txid: stored.device_anchor.txid.to_string(),
            batch_root,
            sequence: stored.sequence,
            dtas,
            idp,
        });
    }
    let milagro_tls = crate::demo::tls::run(&dir.path().join("meter-1"), dta1)?;
    let summary = TbsSummary {
        url: url.clone(),
        digest: digest.to_string(),
        devices: summaries,
        milagro_tls,
    };
    Ok((
        summary,
        DemoTbs {
            tbs,
            url,
            digest,
            tenant_token: token,
            sources,
            dir,
            maker,
        },
    ))
}
