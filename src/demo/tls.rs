//! The Milagro TLS part of `milagro demo`: an enrolled device (meter-1) and D-TA 1 agree a
//! key over Bitcoin. Neither has a certificate from any authority: each presents a
//! throwaway TLS certificate bound to its anchor, looks the other's anchor up through the
//! TBS (checked by SPV), and both run YAK over their own anchoring signatures inside the
//! TLS 1.3 channel. The D-TA side runs on the key the demo anchored D-TA 1 with; the D-TA
//! service itself is not part of the demo yet.

use std::path::Path;

use anyhow::{ensure, Result};
use milagro_tls::{LocalIdentity, Options};
use serde_json::Value;

use crate::cli::pat_tls::{answer_session, ping_session, runtime};

/// Runs the step; `device_dir` holds an enrolled direct-mode device (its peers looked up
/// through its own TBS), `dta` is D-TA 1.
pub fn run(device_dir: &Path, dta: &LocalIdentity) -> Result<Value> {
    crate::demo::step("meter-1 and D-TA 1 agree a key over Bitcoin: TLS 1.3 with no certificate authority, each side's anchor looked up through the TBS and checked by SPV, then YAK over their anchoring signatures");
    let (device, directory) =
        crate::cli::pat_tls::device_parts(milagro_pat_client::open(device_dir)?.device())?;
    let options = Options {
        min_depth: 1,
        ..Options::default()
    };
    let dta_digest = dta.birth_certificate().digest();
    let (client, server) = runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let server = {
            let (directory, options) = (directory.clone(), options.clone());
            async move {
                let (tcp, _) = listener.accept().await?;
                answer_session(tcp, dta, directory, &options).await
            }
        };
        let client = ping_session(&device, dta_digest, &addr, directory.clone(), &options);
        let (client, server) = tokio::join!(client, server);
        Ok::<_, anyhow::Error>((client?, server?))
    })?;
    ensure!(
        client["session_id"] == server["session_id"],
        "the two sides hold different sessions"
    );
    for (side, view) in [("meter-1", &client), ("D-TA 1", &server)] {
        eprintln!(
            "    {side:<7}  own anchor {}  peer {} anchored at {} (height {}, depth {})",
            view["local"]["anchor"].as_str().unwrap_or_default(),
            view["peer"]["name"].as_str().unwrap_or_default(),
            view["peer"]["anchor"].as_str().unwrap_or_default(),
            view["peer"]["height"],
            view["peer"]["depth"],
        );
    }
    eprintln!(
        "    {}: session {} on both sides (handshake {} ms)",
        client["protocol"].as_str().unwrap_or_default(),
        client["session_id"].as_str().unwrap_or_default(),
        client["handshake_ms"],
    );
    Ok(client)
}
