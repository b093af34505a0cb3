//! Timing helpers: repeated wall-clock runs, per-call latency samples, and the table.
//!
//! Two kinds of figure, each measured with [`std::time::Instant`]:
//! - a **run** is one pass over a whole workload (sync the chain, decode every block),
//!   repeated a few times; we report the best (the least disturbed by the rest of the
//!   machine) and the median (what to expect);
//! - a **latency** is a distribution of single calls, each timed on its own, for calls
//!   that take microseconds or more (per-call timing costs ~20 ns, noise at that scale).
//!
//! Calls far below a microsecond (one SHA-256 of 32 bytes) are timed in bulk as a run.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

/// The timings of a workload run several times.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Runs {
    /// Fastest run, in seconds.
    pub best_s: f64,
    /// Median run, in seconds.
    pub median_s: f64,
    /// How many runs.
    pub runs: usize,
}

impl Runs {
    /// `count` items per run, as a rate at the best run (items per second).
    pub fn best_rate(&self, count: f64) -> f64 {
        rate(count, self.best_s)
    }

    /// `count` items per run, as a rate at the median run.
    pub fn median_rate(&self, count: f64) -> f64 {
        rate(count, self.median_s)
    }
}

/// Runs `work` `runs` times (at least once); returns the timings and the last output.
pub fn repeat<T>(runs: usize, mut work: impl FnMut() -> Result<T>) -> Result<(Runs, T)> {
    repeat_timed(runs, || {
        let start = Instant::now();
        let output = work()?;
        Ok((start.elapsed(), output))
    })
}

/// Like [`repeat`], for a workload that times itself (setup excluded): `work` returns the
/// duration that counts and an output.
pub fn repeat_timed<T>(
    runs: usize,
    mut work: impl FnMut() -> Result<(Duration, T)>,
) -> Result<(Runs, T)> {
    let mut times = Vec::with_capacity(runs.max(1));
    let mut last = None;
    for _ in 0..runs.max(1) {
        let (time, output) = work()?;
        times.push(time);
        last = Some(output);
    }
    times.sort();
    let runs = Runs {
        best_s: times.first().map_or(0.0, Duration::as_secs_f64),
        median_s: times
            .get(times.len() / 2)
            .map_or(0.0, Duration::as_secs_f64),
        runs: times.len(),
    };
    match last {
        Some(output) => Ok((runs, output)),
        None => anyhow::bail!("no run was made"),
    }
}

/// The distribution of single-call times.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Calls timed.
    pub calls: usize,
    /// Fastest call, µs.
    pub min_us: f64,
    /// Median call, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Mean, µs.
    pub mean_us: f64,
    /// Calls per second at the mean.
    pub ops_per_s: f64,
}

/// Times `calls` calls of `work` one by one (after `calls / 10` untimed warm-up calls).
pub fn latency(calls: usize, mut work: impl FnMut() -> Result<()>) -> Result<Latency> {
    let calls = calls.max(1);
    for _ in 0..calls / 10 {
        work()?;
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        work()?;
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(summarize(samples))
}

/// The distribution of call times measured elsewhere, in µs.
pub fn summarize(mut samples: Vec<f64>) -> Latency {
    let calls = samples.len();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let index = ((samples.len() - 1) as f64 * q).round() as usize;
        samples.get(index).copied().unwrap_or_default()
    };
    let mean_us = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    Latency {
        calls,
        min_us: at(0.0),
        p50_us: at(0.5),
        p90_us: at(0.9),
        p99_us: at(0.99),
        mean_us,
        ops_per_s: rate(1.0, mean_us / 1e6),
    }
}

/// `count / seconds`, or 0 when nothing was timed.
pub fn rate(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count / seconds
    } else {
        0.0
    }
}

/// The human-readable report on stderr: sections of `label  value  note` rows.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    /// Starts a section.
    pub fn section(&mut self, title: &str) {
        let title = format!("\n{title}:");
        self.rows.push((title, String::new(), String::new()));
    }

    /// Adds a row.
    pub fn row(&mut self, label: &str, value: String, note: impl Into<String>) {
        self.rows.push((format!("  {label}"), value, note.into()));
    }

    /// Adds a row for a latency distribution.
    pub fn latency(&mut self, label: &str, l: &Latency, note: impl Into<String>) {
        self.row(
            label,
            format!(
                "p50 {} µs  p99 {} µs  {}/s",
                num(l.p50_us),
                num(l.p99_us),
                num(l.ops_per_s)
            ),
            note,
        );
    }

    /// Prints the table to stderr, columns aligned within each section.
    pub fn print(&self) {
        let sections = self.rows.split(|r| r.1.is_empty() && r.2.is_empty());
        let titles = self
            .rows
            .iter()
            .filter(|r| r.1.is_empty() && r.2.is_empty());
        // `split` yields one more group than there are titles: the (empty) head.
        for (title, rows) in std::iter::once(None).chain(titles.map(Some)).zip(sections) {
            if let Some((title, _, _)) = title {
                eprintln!("{title}");
            }
            let lw = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
            let vw = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
            for (label, value, note) in rows {
                eprintln!("{label:<lw$}  {value:<vw$}  {note}");
            }
        }
    }
}

/// A figure with three significant digits or so, for the table.
pub fn num(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100_000.0 {
        format!("{value:.0}")
    } else if magnitude >= 100.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// A duration in seconds for the table, best and median.
pub fn runs_text(runs: &Runs) -> String {
    format!(
        "best {} s  median {} s",
        num(runs.best_s),
        num(runs.median_s)
    )
}
