//! The share API's thread: it waits until the D-TA's own anchor is confirmed (its Milagro
//! TLS identity is the nonce of that anchoring signature), then serves
//! [`crate::api::configure_shares`] over Milagro TLS, admitting peers through the D-TA's
//! own index ([`IndexDirectory`]), until stopped.
//!
//! The socket is bound at start, so the port is known (and taken) before the anchor
//! confirms; connections made meanwhile wait in the backlog.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};

use actix_web::{web, App};
use milagro_service::peer_directory::wait_for_identity;
use milagro_service::runtime::Running;
use milagro_tls::{LocalIdentity, Options, PeerDirectory, TlsError};

use crate::server::StartError;
use crate::state::AppState;

/// Starts the thread serving on `listener` (bound, any blocking mode) as a worker of
/// `running`: it waits for the anchor, serves, and ends when the D-TA stops.
pub(crate) fn start(
    state: AppState,
    listener: std::net::TcpListener,
    running: &mut Running<AppState>,
) -> Result<(), StartError> {
    listener
        .set_nonblocking(true)
        .map_err(|source| StartError::Bind {
            addr: state.share_listen,
            source,
        })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    running.on_halt(move || drop(stop));
    let waiting = running.shutdown().clone();
    running.spawn_worker("dta-shares", move || {
        let Some(identity) = wait_for_identity(
            &state.identity,
            &state.own_anchor,
            &state.config.party.state_dir,
            state.config.party.sync.poll_interval,
            &waiting,
            "the share API",
        ) else {
            return;
        };
        serve(state, listener, identity, stopped);
    })?;
    Ok(())
}

fn serve(
    state: AppState,
    listener: std::net::TcpListener,
    identity: Arc<LocalIdentity>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let config = state.config.clone();
    let directory: Arc<dyn PeerDirectory> = state.directory.clone();
    let options = Options {
        min_depth: config.min_peer_depth,
        ..Options::default()
    };
    let addr_slot = state.tls_addr.clone();
    actix_rt::System::new().block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "the share API cannot use its socket");
                return;
            }
        };
        let addr = listener.local_addr().ok();
        // The same body deadline as every plain HTTP listener of the services.
        let app = move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .configure(crate::api::configure_shares)
                .wrap(actix_web::middleware::from_fn(
                    milagro_service::body_deadline::middleware,
                ))
        };
        let refused = |from: SocketAddr, error: TlsError| {
            tracing::info!(%from, %error, "refused a milagro tls session");
        };
        *addr_slot.write().unwrap_or_else(PoisonError::into_inner) = addr;
        tracing::info!(?addr, "share API serving over milagro tls");
        tokio::select! {
            served = milagro_tls::http::serve_app(listener, identity, directory, options, app, refused) => {
                if let Err(error) = served {
                    tracing::error!(%error, "the share API stopped");
                }
            }
            _ = stopped => {}
        }
        *addr_slot.write().unwrap_or_else(PoisonError::into_inner) = None;
    });
}
