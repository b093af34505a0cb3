//! Failed attempts per key (a client address, an account) in a fixed window, with bounded
//! memory: what keeps a guessing endpoint from answering an unbounded number of guesses.
//!
//! [`FailureLimiter::check`] refuses a key that has failed `max` times within the current
//! window of `window_secs` (and says how long until it ends); [`FailureLimiter::failed`]
//! counts one failure. Successes are not counted: only failures spend the budget. Used as
//! a plain rate limit, [`FailureLimiter::take`] checks and counts every request at once. At most
//! `capacity` keys are tracked; when full, finished windows are dropped first, then the
//! key whose window started earliest, so memory stays bounded whatever an attacker sends
//! (at the cost of forgetting the oldest key's count, which a per-code or per-account
//! limit behind it still holds). Time is passed in (Unix seconds), so the rules are
//! tested with a fake clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

/// A key refused until its window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts; retry in {retry_after_secs} s")]
pub struct TooManyFailures {
    /// Seconds until the window ends (at least 1).
    pub retry_after_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: u64,
    failures: u32,
}

/// Failure counts per key.
#[derive(Debug)]
pub struct FailureLimiter<K> {
    max: u32,
    window_secs: u64,
    capacity: usize,
    windows: Mutex<HashMap<K, Window>>,
}

impl<K: Eq + Hash + Clone> FailureLimiter<K> {
    /// At most `max` failures per key per `window_secs`, tracking at most `capacity` keys.
    pub fn new(max: u32, window_secs: u64, capacity: usize) -> Self {
        Self {
            max: max.max(1),
            window_secs: window_secs.max(1),
            capacity: capacity.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` may try now.
    pub fn check(&self, key: &K, now: u64) -> Result<(), TooManyFailures> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        match windows.get(key) {
            Some(w) if w.failures >= self.max && now < w.started + self.window_secs => {
                Err(TooManyFailures {
                    retry_after_secs: (w.started + self.window_secs - now).max(1),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts one failure of `key`.
    pub fn failed(&self, key: &K, now: u64) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        self.count(&mut windows, key, now);
    }

    fn count(&self, windows: &mut HashMap<K, Window>, key: &K, now: u64) {
        if !windows.contains_key(key) && windows.len() >= self.capacity {
            let window = self.window_secs;
            windows.retain(|_, w| now < w.started + window);
            if windows.len() >= self.capacity {
                let oldest = windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    windows.remove(&oldest);
                }
            }
        }
        let entry = windows.entry(key.clone()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= entry.started + self.window_secs {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    /// Checks `key` and counts this attempt, under one lock (so concurrent requests
    /// cannot all pass one check): a rate limit of `max` requests per window.
    pub fn take(&self, key: &K, now: u64) -> Result<(), TooManyFailures> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = windows.get(key) {
            if w.failures >= self.max && now < w.started + self.window_secs {
                return Err(TooManyFailures {
                    retry_after_secs: (w.started + self.window_secs - now).max(1),
                });
            }
        }
        self.count(&mut windows, key, now);
        Ok(())
    }

    /// How many keys are tracked.
    pub fn tracked(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_after_max_failures_until_its_window_ends() {
        let limiter = FailureLimiter::new(3, 600, 100);
        for now in [0, 1, 2] {
            assert!(limiter.check(&"a", now).is_ok());
            limiter.failed(&"a", now);
        }
        assert_eq!(
            limiter.check(&"a", 100),
            Err(TooManyFailures {
                retry_after_secs: 500
            })
        );
        assert!(limiter.check(&"b", 100).is_ok(), "per key");
        assert!(limiter.check(&"a", 600).is_ok(), "a new window");
        limiter.failed(&"a", 600);
        assert!(limiter.check(&"a", 601).is_ok(), "counting starts again");
    }

    #[test]
    fn take_is_a_rate_limit_of_max_requests_per_window() {
        let limiter = FailureLimiter::new(2, 60, 100);
        assert!(limiter.take(&"a", 0).is_ok());
        assert!(limiter.take(&"a", 1).is_ok());
        assert_eq!(
            limiter.take(&"a", 2),
            Err(TooManyFailures {
                retry_after_secs: 58
            })
        );
        assert!(limiter.take(&"a", 60).is_ok(), "a new window");
    }

    #[test]
    fn memory_stays_bounded_whatever_the_number_of_keys() {
        let limiter = FailureLimiter::new(3, 600, 10);
        for key in 0..1_000u32 {
            limiter.failed(&key, u64::from(key));
        }
        assert_eq!(limiter.tracked(), 10);
        // The newest keys are kept.
        for _ in 0..3 {
            limiter.failed(&999, 999);
        }
        assert!(limiter.check(&999, 1_000).is_err());
    }
}
