//! A bounded queue in front of expensive work that a request without credentials can
//! cause (password hashing, pairings, opening envelopes): at most `workers` jobs run at
//! once, at most `queue` more wait, and anything beyond is refused at once with
//! [`Busy`], which answers 503 with `Retry-After` ([`ApiError`]).
//!
//! Without it each such request takes one of actix's blocking threads (256 per worker by
//! default) and whatever memory the work needs, so a burst of cheap requests costs the
//! server hundreds of times the work's memory and every honest request waits behind the
//! whole burst. With it, the cost is bounded by `workers` jobs, a refused request costs
//! almost nothing, and the wait of an admitted one by `queue / workers` jobs.
//!
//! Every request that reaches the work goes through [`WorkGate::run`], from an async
//! handler; the gate is shared by all of the server's workers (hold it in the app state
//! behind an `Arc`, made once at start). Users: the IdP's password checks
//! (`AppState::password_checks`), the auth server's login passes (`AppState::pairings`).
//! [`GateError`] converts to this crate's [`ApiError`] and to the TBS's (`busy`, 503,
//! `Retry-After`), so a TBS handler that opens envelopes needs only a gate in its state
//! and `gate.run(move || open(...)).await??`. Size it like the others: one worker per
//! core, and a queue that a core empties in well under a second.
//!
//! ```no_run
//! use std::sync::Arc;
//! use milagro_service::api::ApiError;
//! use milagro_service::work_gate::WorkGate;
//!
//! async fn open(gate: Arc<WorkGate>, sealed: Vec<u8>) -> Result<Vec<u8>, ApiError> {
//!     // A refusal converts to 503 `busy` with Retry-After; the work's own error is
//!     // returned as it is.
//!     gate.run(move || Ok::<_, ApiError>(sealed)).await?
//! }
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::http::StatusCode;
use tokio::sync::Semaphore;

use crate::api::ApiError;

/// How long a refused client is asked to wait before trying again, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The gate is full: the request was refused without doing the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy with {what}; retry in {retry_after_secs} s")]
pub struct Busy {
    /// What the gate guards (for the message).
    pub what: &'static str,
    /// Seconds the client should wait.
    pub retry_after_secs: u64,
}

/// Why [`WorkGate::run`] returned no result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The gate is full.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The work panicked or the blocking pool is gone (a bug or a shutdown).
    #[error("the work did not finish: {0}")]
    Lost(#[from] actix_web::error::BlockingError),
}

impl From<GateError> for ApiError {
    /// 503 `busy` with `Retry-After` when full; 500 when the work was lost.
    fn from(error: GateError) -> Self {
        match error {
            GateError::Busy(busy) => busy.into(),
            GateError::Lost(lost) => ApiError::internal(lost),
        }
    }
}

impl From<Busy> for ApiError {
    fn from(busy: Busy) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", busy.to_string())
            .with_header("Retry-After", busy.retry_after_secs.to_string())
    }
}

/// At most `workers` jobs at once and `queue` waiting; see the module documentation.
#[derive(Debug)]
pub struct WorkGate {
    what: &'static str,
    running: Arc<Semaphore>,
    /// Jobs admitted (waiting or running); never above `capacity`.
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    workers: usize,
}

/// One admitted job's place: given back when dropped (the job ended, or the request
/// waiting for a worker went away).
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WorkGate {
    /// A gate for `what` (named in refusals): `workers` jobs at once (at least 1), and
    /// `queue` more waiting.
    pub fn new(what: &'static str, workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            what,
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: workers.saturating_add(queue),
            workers,
        }
    }

    /// How many jobs run at once at most.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How many jobs are admitted now (running or waiting).
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// Takes a place, or refuses if the gate is full.
    fn admit(&self) -> Result<Place, Busy> {
        let taken = self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(Place(self.admitted.clone())),
            Err(_) => Err(Busy {
                what: self.what,
                retry_after_secs: RETRY_AFTER_SECS,
            }),
        }
    }

    /// Runs `work` on actix's blocking pool once a worker is free, or refuses at once
    /// with [`GateError::Busy`] if `workers + queue` jobs are admitted already.
    ///
    /// The worker's permit and the place travel with the job into the blocking thread, so
    /// a request whose client went away still counts until its work has ended: the bound
    /// holds for the work, not just for the requests.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GateError> {
        let place = self.admit()?;
        let permit = self.running.clone().acquire_owned().await.map_err(|_| {
            // The semaphore is never closed; this is unreachable but not worth a panic.
            GateError::Busy(Busy {
                what: self.what,
                retry_after_secs: RETRY_AFTER_SECS,
            })
        })?;
        let result = actix_web::web::block(move || {
            let _held = (place, permit);
            work()
        })
        .await?;
        Ok(result)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn at_most_workers_run_and_the_queue_is_bounded() {
        actix_web::rt::System::new().block_on(the_gate_holds());
    }

    async fn the_gate_holds() {
        let gate = Arc::new(WorkGate::new("tests", 2, 3));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..5 {
            let (gate, rx) = (gate.clone(), release_rx.clone());
            let (running, most) = (running.clone(), most.clone());
            jobs.push(actix_web::rt::spawn(async move {
                gate.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    rx.lock().unwrap().recv().unwrap();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // Let the five be admitted.
        while gate.admitted() < 5 {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = gate.run(|| ()).await;
        assert!(
            matches!(
                refused,
                Err(GateError::Busy(Busy {
                    retry_after_secs: 1,
                    ..
                }))
            ),
            "the sixth is refused at once: {refused:?}"
        );
        for _ in 0..5 {
            release_tx.send(()).unwrap();
        }
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "never more than two at once"
        );
        assert_eq!(gate.admitted(), 0, "every place is given back");
        gate.run(|| ()).await.unwrap();
    }

    #[test]
    fn a_refusal_answers_503_with_retry_after() {
        use actix_web::ResponseError as _;
        let error = ApiError::from(GateError::Busy(Busy {
            what: "password checks",
            retry_after_secs: 1,
        }));
        let response = error.error_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers().get("retry-after").unwrap(), "1");
        assert_eq!(error.code(), "busy");
    }
}
