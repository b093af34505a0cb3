//! An actix-web `App` served on accepted sessions ([`serve_app`]).
//!
//! actix-web's `HttpServer` cannot be handed streams that were already accepted, so
//! [`serve_app`] runs actix-http's HTTP/1 service itself, one instance per thread, as
//! `HttpServer` does per worker. It must run inside an actix (or any `LocalSet`) runtime.
//! The app sees a default `AppConfig` (`secure` is false, `host` is `localhost:8080`):
//! use the admitted peer, not the connection info, to make decisions.

use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use actix_http::body::MessageBody;
use actix_http::{HttpService, Protocol, Request, Response};
use actix_service::{
    map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt as _,
};
use actix_web::dev::AppConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server;

use crate::{accept, AdmittedPeer, LocalIdentity, Options, PeerDirectory, Session, TlsError};

/// A server-side session over TCP: what [`serve_app`] hands actix-http.
pub type ServerSession = Session<server::TlsStream<TcpStream>>;

/// How long an admitted session has to send its first request head (as every plain HTTP
/// listener of the services: `milagro_service::http`).
pub const HEAD_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long an idle session is kept open for a next request.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a closing session may take to take our last bytes.
pub const DISCONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Sessions (handshaking or admitted) [`serve_app`] serves at once; beyond, it stops
/// accepting until one ends. A handshake that stalls is dropped after
/// [`Options::timeout`], so connections that never finish one cannot hold the listener.
pub const MAX_SESSIONS: usize = 1024;

/// Accepts Milagro TLS sessions on `listener` and serves the app `factory` builds on
/// each, until the listener fails. A session that fails admission or key agreement is
/// reported to `refused` and closed; no request of it reaches the app. At most
/// [`MAX_SESSIONS`] at once; request heads, idle and closing sessions are timed as
/// the constants above say (a deadline on bodies is the app's: the services wrap
/// `milagro_service::body_deadline`).
pub async fn serve_app<F, I, S, B>(
    listener: TcpListener,
    identity: Arc<LocalIdentity>,
    directory: Arc<dyn PeerDirectory>,
    options: Options,
    factory: F,
    refused: impl Fn(SocketAddr, TlsError) + 'static,
) -> std::io::Result<()>
where
    F: Fn() -> I,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let app = factory()
        .into_factory()
        .map_err(|e| e.into().error_response());
    let handler = HttpService::<ServerSession, _, _>::build()
        .client_request_timeout(HEAD_READ_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .on_connect_ext(|session: &ServerSession, data| {
            data.insert(session.peer().clone());
        })
        .finish(map_config(app, |_| AppConfig::default()))
        .new_service(())
        .await
        .map_err(|()| std::io::Error::other("the app failed to start"))?;
    let handler = Rc::new(handler);
    let refused = Rc::new(refused);
    let sessions = Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS));
    loop {
        // Wait for a free place before accepting: beyond the cap, clients wait in the
        // kernel's backlog rather than in this process's memory.
        let Ok(place) = sessions.clone().acquire_owned().await else {
            return Err(std::io::Error::other("the session cap was closed"));
        };
        let (tcp, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            // A client that gave up before the accept, or a descriptor limit: the server
            // goes on.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (handler, refused) = (handler.clone(), refused.clone());
        let (identity, directory, options) = (identity.clone(), directory.clone(), options.clone());
        actix_rt::spawn(async move {
            let _place = place;
            match accept(tcp, &identity, directory, &options).await {
                Ok(session) => {
                    // Errors here are the client's HTTP mistakes, answered by actix-http.
                    let _ = handler.call((session, Protocol::Http1, Some(from))).await;
                }
                Err(e) => refused(from, e),
            }
        });
    }
}

/// The admitted peer of the request's connection (present for every request
/// [`serve_app`] serves).
pub fn peer_of(request: &actix_web::HttpRequest) -> Option<&AdmittedPeer> {
    request.conn_data::<AdmittedPeer>()
}
