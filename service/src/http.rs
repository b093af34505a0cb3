//! Running a service's actix-web server on its own thread, and stopping it.
//!
//! [`spawn`] starts an actix system on a named thread, binds, and returns once the socket
//! is bound (or binding failed), so the caller knows the real port before it goes on.
//!
//! Every listener it starts bounds what one client can hold (threat model, attack 7):
//!
//! | limit | value | what happens |
//! |---|---|---|
//! | [`HEAD_READ_TIMEOUT`] | 5 s | a connection whose first request head is not complete by then gets 408 and is closed |
//! | [`BODY_READ_TIMEOUT`] | 10 s | a body not complete 10 s after its head: 408, connection closed ([`crate::body_deadline`]) |
//! | [`KEEP_ALIVE`] | 5 s | an idle connection between requests is closed |
//! | [`DISCONNECT_TIMEOUT`] | 1 s | a closing connection that does not read our last bytes is dropped |
//! | [`MAX_CONNECTIONS_PER_WORKER`] | 1,024 | beyond it the worker stops accepting (the kernel queues up to the backlog) until one closes |
//! | [`crate::open_connections::KEEP_ALIVE_CONNECTIONS`] | 256 | above it (all workers), answers close their connection |
//!
//! actix-http times the head of the first request of a connection only, so a client
//! that sends one quick request and then trickles the next head would be held by
//! nothing but the cap; [`crate::open_connections`] stops keep-alive while many
//! connections are open, so every next head is a first one again.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpServer};

/// How long a graceful stop lets requests in flight finish.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// How long a new connection has to send its first request head (request line and
/// headers). Honest clients send it in one packet; 5 s covers a slow mobile link.
pub const HEAD_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request's body may take once its head is in. The largest body any route
/// accepts is a few hundred KiB, which even a 1 Mbit/s link sends in about 3 s.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle connection is kept open for a next request.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// How long a closing connection may take to take our last bytes before it is dropped.
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections each actix worker (one per core) serves at once; beyond, the worker stops
/// accepting until one closes. With the timeouts above a connection that sends nothing
/// useful is gone within 10 s, so the cap bounds memory and descriptors without keeping
/// honest clients out for long; it is far above what the services see in honest use.
pub const MAX_CONNECTIONS_PER_WORKER: usize = 1024;

/// A bound, running server.
#[derive(Debug)]
pub struct Spawned {
    /// The bound address (the real port when port 0 was asked for).
    pub addr: SocketAddr,
    /// Whether it serves HTTPS (a `[tls]` section), else plain HTTP.
    pub https: bool,
    /// Stops the server.
    pub handle: ServerHandle,
    /// The thread running it; joins once the server stopped.
    pub thread: JoinHandle<()>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The thread could not be started, or ended before binding.
    #[error("cannot start the HTTP thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The `[tls]` certificate or key could not be loaded.
    #[error("cannot serve HTTPS: {0}")]
    Tls(#[from] crate::https::TlsError),
}

/// Serves the apps `factory` makes (one per worker) on `listen`, on a thread named
/// `thread_name`, with the read deadlines and the connection cap above. With
/// `handle_signals`, SIGTERM stops the server gracefully and SIGINT or SIGQUIT at once;
/// without, only [`ServerHandle::stop`] does.
///
/// With `tls` the listener serves HTTPS only, with the same limits, and its certificate
/// is reloaded on file change and (with `handle_signals`) on SIGHUP ([`crate::https`]);
/// without, plain HTTP, with a warning unless `listen` is loopback.
pub fn spawn<F, T, B>(
    listen: SocketAddr,
    thread_name: &str,
    handle_signals: bool,
    tls: Option<&crate::https::TlsSettings>,
    factory: F,
) -> Result<Spawned, SpawnError>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let tls = crate::https::listener_tls(listen, tls)?;
    let https = tls.is_some();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let app = move || {
                    factory()
                        .wrap(actix_web::middleware::from_fn(
                            crate::body_deadline::middleware,
                        ))
                        .wrap(actix_web::middleware::from_fn(
                            crate::open_connections::middleware,
                        ))
                };
                let open = crate::open_connections::OpenConnections::default();
                let mut server = HttpServer::new(app)
                    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
                    .client_request_timeout(HEAD_READ_TIMEOUT)
                    .keep_alive(KEEP_ALIVE)
                    .client_disconnect_timeout(DISCONNECT_TIMEOUT)
                    .max_connections(MAX_CONNECTIONS_PER_WORKER)
                    .on_connect(move |connection, data| {
                        crate::https::set_nodelay(connection);
                        open.on_connect(data)
                    });
                if !handle_signals {
                    server = server.disable_signals();
                }
                let bound = match &tls {
                    Some((tls, config)) => {
                        actix_web::rt::spawn(tls.clone().watch(handle_signals));
                        server.bind_rustls_0_23(listen, config.clone())
                    }
                    None => server.bind(listen),
                };
                let server = match bound {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let addr = server.addrs().first().copied().unwrap_or(listen);
                let server = server.run();
                let _ = tx.send(Ok((addr, server.handle())));
                if let Err(error) = server.await {
                    tracing::error!(%error, "HTTP server failed");
                }
            });
        })
        .map_err(SpawnError::Thread)?;
    let bound = rx.recv().map_err(|_| {
        SpawnError::Thread(std::io::Error::other(
            "the HTTP thread ended before binding",
        ))
    })?;
    match bound {
        Ok((addr, handle)) => Ok(Spawned {
            addr,
            https,
            handle,
            thread,
        }),
        Err(source) => {
            let _ = thread.join();
            Err(SpawnError::Bind {
                addr: listen,
                source,
            })
        }
    }
}
