//! What a service's background thread needs to wait and retry: a stop flag that wakes a
//! sleeper ([`Shutdown`]) and a doubling, capped delay ([`Backoff`]).

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// A stop flag that a sleeping thread wakes up for.
#[derive(Debug, Default)]
pub struct Shutdown {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Shutdown {
    /// Asks every sleeper to stop, and wakes them.
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `delay`; returns whether a stop was requested.
    pub fn wait(&self, delay: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, delay, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// Doubles a delay after each consecutive failure, from `base` up to `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The delay after no or one failure.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// Consecutive failures so far.
    pub failures: u32,
}

impl Backoff {
    /// No failure yet.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: 0,
        }
    }

    /// The wait before the next attempt.
    pub fn delay(&self) -> Duration {
        let factor = 1u32 << self.failures.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn backoff_doubles_from_the_poll_interval_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
        let mut delays = Vec::new();
        for _ in 0..6 {
            delays.push(backoff.delay().as_millis());
            backoff.failures += 1;
        }
        assert_eq!(delays, [100, 100, 200, 400, 700, 700]);
        backoff.failures = u32::MAX;
        assert_eq!(backoff.delay(), Duration::from_millis(700));
    }

    #[test]
    fn a_stopped_shutdown_wakes_the_sleeper_at_once() {
        let shutdown = Arc::new(Shutdown::default());
        let sleeper = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || shutdown.wait(Duration::from_secs(60)))
        };
        shutdown.stop();
        assert!(sleeper.join().unwrap());
        assert!(shutdown.wait(Duration::from_secs(60)));
    }
}
