//! The report: one table per scenario with a column per variant (medians over the rounds), the
//! before/after summary against the targets, and everything as JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};
use viewerload::report::percentile;

use crate::scenarios::{LoadResult, SoakResult};

/// The median of `values` (`NaN` for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

/// One variant's runs of one load scenario, summed up.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    /// Which variant.
    pub variant: String,
    /// Runs.
    pub rounds: usize,
    /// Medians over the runs.
    pub cpu: f64,
    /// Latency p50, ms.
    pub p50: f64,
    /// Latency p99, ms.
    pub p99: f64,
    /// Latency max, ms (the worst run).
    pub max: f64,
    /// RssAnon at the end, MiB.
    pub rss_mib: f64,
    /// RssAnon peak, MiB (the worst run).
    pub rss_peak_mib: f64,
    /// Frames lost, summed over the runs.
    pub frames_lost: u64,
    /// Packets lost (never received) over the runs.
    pub packets_lost: u64,
    /// Viewers that failed, over the runs.
    pub failed: usize,
    /// Time to first frame p50, ms (median).
    pub first_frame_ms: f64,
    /// The runs' CPU figures, to show the spread.
    pub cpu_runs: Vec<f64>,
}

impl LoadSummary {
    /// Sums up `runs`.
    pub fn of(variant: &str, runs: &[&LoadResult]) -> Self {
        let lat = |f: fn(&viewerload::report::LatencySummary) -> f64| -> Vec<f64> {
            runs.iter()
                .filter_map(|r| r.report.latency_ms.as_ref().map(f))
                .collect()
        };
        Self {
            variant: variant.to_owned(),
            rounds: runs.len(),
            cpu: median(&runs.iter().map(|r| r.cpu).collect::<Vec<_>>()),
            p50: median(&lat(|l| l.p50)),
            p99: median(&lat(|l| l.p99)),
            max: lat(|l| l.max).into_iter().fold(f64::NAN, f64::max),
            rss_mib: median(
                &runs
                    .iter()
                    .map(|r| r.rss_end_kb as f64 / 1024.0)
                    .collect::<Vec<_>>(),
            ),
            rss_peak_mib: runs
                .iter()
                .map(|r| r.rss_peak_kb as f64 / 1024.0)
                .fold(f64::NAN, f64::max),
            frames_lost: runs.iter().map(|r| r.frames_lost()).sum(),
            packets_lost: runs.iter().map(|r| r.report.lost_packets).sum(),
            failed: runs.iter().map(|r| r.report.viewers_failed).sum(),
            first_frame_ms: median(
                &runs
                    .iter()
                    .filter_map(|r| r.report.time_to_first_frame_ms.as_ref().map(|s| s.p50))
                    .collect::<Vec<_>>(),
            ),
            cpu_runs: runs.iter().map(|r| r.cpu).collect(),
        }
    }

    /// For the JSON.
    pub fn json(&self) -> Value {
        json!({
            "variant": self.variant, "rounds": self.rounds, "cpu_percent_median": self.cpu,
            "cpu_percent_runs": self.cpu_runs, "latency_p50_ms": self.p50, "latency_p99_ms": self.p99,
            "latency_max_ms": self.max, "rss_anon_mib": self.rss_mib, "rss_anon_peak_mib": self.rss_peak_mib,
            "frames_lost": self.frames_lost, "packets_lost": self.packets_lost,
            "viewers_failed": self.failed, "time_to_first_frame_p50_ms": self.first_frame_ms,
        })
    }
}

fn f1(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "n/a".to_owned()
    }
}

fn f2(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}")
    } else {
        "n/a".to_owned()
    }
}

/// A labelled row of a table: how to show one figure of one column.
type Row<T> = (&'static str, fn(&T) -> String);

/// A table of one load scenario: a column per variant.
pub fn load_table(md: &mut String, title: &str, summaries: &[LoadSummary]) {
    let _ = writeln!(md, "## {title}\n");
    let _ = write!(md, "| |");
    for s in summaries {
        let _ = write!(md, " {} |", s.variant);
    }
    let _ = write!(md, "\n| --- |");
    for _ in summaries {
        let _ = write!(md, " --- |");
    }
    md.push('\n');
    let rows: [Row<LoadSummary>; 9] = [
        ("CPU, % of one core (median; runs)", |s| {
            format!(
                "{} ({})",
                f1(s.cpu),
                s.cpu_runs
                    .iter()
                    .map(|c| f1(*c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        ("latency p50, ms", |s| f2(s.p50)),
        ("latency p99, ms", |s| f2(s.p99)),
        ("latency max, ms (worst run)", |s| f1(s.max)),
        ("RssAnon at the end, MiB (peak)", |s| {
            format!("{} ({})", f1(s.rss_mib), f1(s.rss_peak_mib))
        }),
        ("frames lost (all runs)", |s| s.frames_lost.to_string()),
        ("packets never received (all runs)", |s| {
            s.packets_lost.to_string()
        }),
        ("viewers failed (all runs)", |s| s.failed.to_string()),
        ("time to first frame p50, ms", |s| f1(s.first_frame_ms)),
    ];
    for (label, value) in rows {
        let _ = write!(md, "| {label} |");
        for s in summaries {
            let _ = write!(md, " {} |", value(s));
        }
        md.push('\n');
    }
    md.push('\n');
}

/// One run's details: CPU by thread, the host, the sink's counters, problems.
pub fn run_details(md: &mut String, r: &LoadResult) {
    let threads: Vec<String> = r
        .cpu_threads
        .iter()
        .filter(|t| t.2 >= 0.05)
        .take(6)
        .map(|(n, c, p)| format!("{n}×{c} {p:.1} %"))
        .collect();
    let udp = |k: &str| r.udp.get(k).copied().unwrap_or(0);
    let _ = writeln!(
        md,
        "- {} ({} viewers): CPU {:.1} % over {:.0} s [{}]; idle {:.2} %; RssAnon {:.1} → {:.1} MiB; \
         fds {} → {}; camsim {} %, viewers {:.0} %, host busy {:.0} % (other load {:.0} %); \
         sink {:?}; host UDP RcvbufErrors {} SndbufErrors {}{}{}",
        r.variant,
        r.plan.viewers,
        r.cpu,
        r.window_s,
        threads.join(", "),
        r.idle_cpu,
        r.rss_idle_kb as f64 / 1024.0,
        r.rss_end_kb as f64 / 1024.0,
        r.fds.0,
        r.fds.1,
        r.camsim_cpu.map_or("?".to_owned(), f1),
        r.viewers_cpu,
        r.host_busy,
        r.host_other,
        r.sink,
        udp("RcvbufErrors"),
        udp("SndbufErrors"),
        if r.problems.is_empty() {
            String::new()
        } else {
            format!("; logged: {}", r.problems.join("; "))
        },
        match &r.one_more {
            Some(Ok((status, message))) => format!("; one more viewer: {status} {message:?}"),
            Some(Err(e)) => format!("; one more viewer: {e}"),
            None => String::new(),
        }
    );
}

/// The soak's table: a column per variant.
pub fn soak_table(md: &mut String, results: &[SoakResult]) {
    let Some(first) = results.first() else {
        return;
    };
    let _ = writeln!(
        md,
        "## Soak: {} connect (WHEP, connected, a frame) / close cycles, {} at a time\n",
        first.cycles, first.parallel
    );
    let _ = write!(md, "| |");
    for r in results {
        let _ = write!(md, " {} |", r.variant);
    }
    let _ = write!(md, "\n| --- |");
    for _ in results {
        let _ = write!(md, " --- |");
    }
    md.push('\n');
    let rows: [Row<SoakResult>; 6] = [
        ("RssAnon start → end (difference)", |r| {
            format!(
                "{} → {} kB ({:+} kB)",
                r.start.rss_anon_kb,
                r.end.rss_anon_kb,
                r.rss_diff_kb()
            )
        }),
        ("fds start → end", |r| {
            format!("{} → {} ({:+})", r.start.fds, r.end.fds, r.fd_diff())
        }),
        ("threads start → end", |r| {
            format!("{} → {}", r.start.threads, r.end.threads)
        }),
        ("cycles failed", |r| {
            r.errors.values().sum::<usize>().to_string()
        }),
        ("cycle p50 / max, ms", |r| {
            let mut ms = r.cycle_ms.clone();
            ms.sort_by(f64::total_cmp);
            format!(
                "{:.0} / {:.0}",
                percentile(&ms, 50.0),
                percentile(&ms, 100.0)
            )
        }),
        ("CPU after, nobody watching, %", |r| f2(r.idle_cpu_after)),
    ];
    for (label, value) in rows {
        let _ = write!(md, "| {label} |");
        for r in results {
            let _ = write!(md, " {} |", value(r));
        }
        md.push('\n');
    }
    for r in results {
        for (e, n) in &r.errors {
            let _ = writeln!(md, "- {}: {n}× {e}", r.variant);
        }
    }
    md.push('\n');
}
