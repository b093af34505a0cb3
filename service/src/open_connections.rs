//! Keep-alive only while few connections are open, because actix-http times the head of
//! the first request of a connection only.
//!
//! A client can send one quick request, get a keep-alive answer, and then trickle the
//! next head a byte at a time: no timer runs then (the idle timer stops at the first
//! byte), so such connections pile up until the connection cap and keep everyone else
//! out. [`OpenConnections`] counts the server's open connections (a value in each
//! connection's data, given back when actix drops it) and [`middleware`] answers with
//! `Connection: close` while more than [`KEEP_ALIVE_CONNECTIONS`] are open: every next
//! request then starts on a new connection, whose head is timed. Honest clients keep
//! keep-alive in normal use; under a flood they reconnect, which costs them a handshake.
//! A trickler can hold at most [`KEEP_ALIVE_CONNECTIONS`] connections this way, far
//! below the cap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;

/// Above this many open connections (all workers together), answers close their
/// connection instead of keeping it alive.
pub const KEEP_ALIVE_CONNECTIONS: usize = 256;

/// The number of open connections of one server.
#[derive(Debug, Clone, Default)]
pub struct OpenConnections(Arc<AtomicUsize>);

/// One open connection, counted while it lives in the connection's data.
#[derive(Debug)]
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl OpenConnections {
    /// Counts a new connection (for `HttpServer::on_connect`): the count goes down when
    /// actix drops the connection's data.
    pub fn on_connect(&self, data: &mut Extensions) {
        self.0.fetch_add(1, Ordering::AcqRel);
        data.insert(Open(self.0.clone()));
    }

    /// How many connections are open now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// The middleware (for `actix_web::middleware::from_fn`): `Connection: close` on every
/// answer while more than [`KEEP_ALIVE_CONNECTIONS`] connections are open.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let open = req.conn_data::<Open>().map(|open| open.0.clone());
    let mut response = next.call(req).await?;
    if open.is_some_and(|open| open.load(Ordering::Acquire) > KEEP_ALIVE_CONNECTIONS) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_while_its_data_lives() {
        let open = OpenConnections::default();
        let mut first = Extensions::new();
        let mut second = Extensions::new();
        open.on_connect(&mut first);
        open.on_connect(&mut second);
        assert_eq!(open.count(), 2);
        drop(first);
        assert_eq!(open.count(), 1);
        drop(second);
        assert_eq!(open.count(), 0);
    }
}
