//! Load at several concurrency levels: `n` operations (handshakes, requests) dealt to
//! `concurrency` clients that each run theirs one after another, timed one by one and as a
//! whole. Shared by `bench kex`, `bench mfa` and `bench token`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use super::stats::{num, rate, summarize, Table};

/// One kind of operation at one concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Concurrent clients.
    pub concurrency: usize,
    /// Operations per second.
    pub per_s: f64,
    /// Median operation, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
}

/// The best rate of `levels`.
pub fn best(levels: &[Level]) -> f64 {
    levels.iter().map(|l| l.per_s).fold(0.0, f64::max)
}

/// Runs `n` operations made by `operation` (`name` in errors) with `concurrency` clients
/// at once, each client one after another; an operation may take 20 s at most.
pub async fn level<F, Fut>(
    name: &'static str,
    n: usize,
    concurrency: usize,
    operation: F,
) -> Result<Level>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let round = timed(name, n, concurrency, operation).await?;
    Ok(Level::of_rounds(concurrency, vec![round]))
}

/// One timed round of a level: each operation's time (µs) and the round's wall time (s).
#[derive(Debug, Clone, Default)]
pub struct Round {
    samples: Vec<f64>,
    seconds: f64,
}

impl Round {
    /// A round of operations taking `samples` µs each, `seconds` in all.
    pub fn new(samples: Vec<f64>, seconds: f64) -> Self {
        Self { samples, seconds }
    }
}

impl Level {
    /// The level `rounds` make together: their operations over their summed wall time.
    pub fn of_rounds(concurrency: usize, rounds: Vec<Round>) -> Self {
        let seconds: f64 = rounds.iter().map(|r| r.seconds).sum();
        let spread = summarize(rounds.into_iter().flat_map(|r| r.samples).collect());
        Self {
            concurrency,
            per_s: rate(spread.calls as f64, seconds),
            p50_us: spread.p50_us,
            p99_us: spread.p99_us,
        }
    }
}

/// [`level`]'s timed work, as a [`Round`].
async fn timed<F, Fut>(
    name: &'static str,
    n: usize,
    concurrency: usize,
    operation: F,
) -> Result<Round>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    // The futures are made up front (cheap: nothing runs until polled), dealt to the
    // clients round-robin, and each client awaits its own in turn.
    let mut queues: Vec<Vec<Fut>> = (0..concurrency).map(|_| Vec::new()).collect();
    for i in 0..n {
        queues[i % concurrency].push(operation());
    }
    let started = Instant::now();
    let clients: Vec<_> = queues
        .into_iter()
        .map(|queue| {
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(queue.len());
                for future in queue {
                    let start = Instant::now();
                    tokio::time::timeout(Duration::from_secs(20), future)
                        .await
                        .with_context(|| format!("a {name} did not finish in 20 s"))?
                        .with_context(|| format!("a {name}"))?;
                    samples.push(start.elapsed().as_secs_f64() * 1e6);
                }
                Ok::<_, anyhow::Error>(samples)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(n);
    for client in clients {
        samples.extend(client.await.context("a client task")??);
    }
    Ok(Round {
        samples,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// One row per kind and level: the rate, then p50 and p99.
pub fn tabulate_levels(table: &mut Table, kinds: &[(&str, &[Level])]) {
    for (name, levels) in kinds {
        for level in *levels {
            table.row(
                &format!("{name}, c{}", level.concurrency),
                format!("{}/s", num(level.per_s)),
                format!("p50 {} µs, p99 {} µs", num(level.p50_us), num(level.p99_us)),
            );
        }
    }
}
