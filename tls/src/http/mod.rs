//! HTTP/1.1 over Milagro TLS: an actix-web `App` served on accepted sessions
//! ([`serve_app`], feature `server`), and requests sent on a connected session with hyper,
//! one ([`send`]) or many on a session kept alive ([`Connection`]) (feature `client`). A
//! device builds only the client, so it links no server framework.
//!
//! A handler finds the admitted peer among the connection's data:
//! `req.conn_data::<AdmittedPeer>()` (set before the first request is read), so it can
//! decide what that party may do. Requests are plain `http` types with byte bodies.
//!
//! [`AdmittedPeer`]: crate::AdmittedPeer

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "client")]
pub use client::{send, Connection, HttpError, MAX_RESPONSE_BYTES};
#[cfg(feature = "server")]
pub use server::{
    peer_of, serve_app, ServerSession, DISCONNECT_TIMEOUT, HEAD_READ_TIMEOUT, KEEP_ALIVE,
    MAX_SESSIONS,
};
