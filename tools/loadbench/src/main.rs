//! `loadbench`: the streaming sink under load on the real stack (stackctl, camsim looping an
//! H.264 file, the sink plugin), with WebRTC viewers on loopback, and the sink of another
//! commit measured side by side in the same run.
//!
//! ```sh
//! cargo build --release -p stackctl -p camsim -p sink-webrtc -p loadbench
//! target/release/loadbench --baseline-commit b0be5af          # builds the old sink once
//! target/release/loadbench --only ten,fifty --rounds 3 --json target/loadbench/run.json
//! ```
//!
//! Scenarios (`--only`): `ten` and `fifty` (10 and 50 viewers of 1080p30 at 8 Mbit/s, all
//! joining at the same instant), `capacity` (200 viewers of 720p30 at 2 Mbit/s with
//! `max_clients = 200`, and a 201st that must get 503), `soak` (500 connect / close cycles),
//! `idle` (the camera on, nobody watching), `publish` (one WHIP publication against none, the
//! camera on, nobody watching; this tree's sink only). Each variant runs each scenario on a fresh stack;
//! `ten`, `fifty` and `idle` alternate the variants for `--rounds` rounds, so that load from
//! elsewhere on the machine falls on both alike, and report medians. The viewers
//! (`viewerload`, in this process) send RTCP as browsers do: receiver reports every second,
//! NACKs for what they lose, TWCC feedback.

mod input;
mod procfs;
mod publish;
mod report;
mod scenarios;
mod stacks;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;

use crate::input::Shape;
use crate::report::{LoadSummary, median};
use crate::scenarios::{LoadPlan, LoadResult};
use crate::stacks::{Kind, SinkSetup, Variant};

/// The streaming sink under load, this tree's and another commit's side by side.
#[derive(Debug, Parser)]
#[command(name = "loadbench", version)]
struct Args {
    /// Short runs (3 and 10 viewers, 50 soak cycles) to check the bench itself.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run, comma-separated: ten, fifty, capacity, soak, idle, publish.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ten,fifty,capacity,soak,idle,publish"
    )]
    only: Vec<String>,
    /// Rounds of `ten`, `fifty`, `idle` and `publish`, the variants (for `publish`: with and
    /// without the publication) alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The other sink to measure: a `libsink_webrtc.so`. Default: the one
    /// `--baseline-commit` builds, if built.
    #[arg(long, value_name = "LIB.so")]
    baseline: Option<PathBuf>,
    /// Build the sink of this commit (git archive + cargo, in target/loadbench/) and measure it.
    #[arg(long, value_name = "COMMIT", default_value = "b0be5af")]
    baseline_commit: String,
    /// Measure this tree's sink only.
    #[arg(long)]
    no_baseline: bool,
    /// Also measure `str0m-sink` (target/release/str0m-sink).
    #[arg(long)]
    str0m: bool,
    /// The sink's `threads` (default: its own sizing, one per 25 of max_clients).
    #[arg(long)]
    threads: Option<usize>,
    /// Write every figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// target/ (loadbench runs from target/release/).
fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .context("loadbench runs from target/<profile>/")
}

/// The sink of `commit`, built once from target/loadbench/baseline-<commit> and kept as
/// target/loadbench/libsink_webrtc-<commit>.so (the build directory is shared by commits).
fn baseline(target: &Path, commit: &str) -> anyhow::Result<PathBuf> {
    let src = target.join("loadbench").join(format!("baseline-{commit}"));
    let build = target.join("loadbench").join("baseline-target");
    let built = build.join("release").join("libsink_webrtc.so");
    let library = target
        .join("loadbench")
        .join(format!("libsink_webrtc-{commit}.so"));
    if library.exists() {
        return Ok(library);
    }
    if !src.join("Cargo.toml").exists() {
        std::fs::create_dir_all(&src)?;
        eprintln!("extracting {commit} into {}", src.display());
        let archive = Command::new("git")
            .args(["archive", "--format=tar", commit])
            .stdout(Stdio::piped())
            .spawn()
            .context("git archive")?;
        let status = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(&src)
            .stdin(archive.stdout.context("git archive's output")?)
            .status()?;
        if !status.success() {
            bail!("git archive {commit} | tar -x failed");
        }
    }
    eprintln!("building the sink of {commit} (release; once)");
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--offline",
            "-p",
            "sink-webrtc",
            "--target-dir",
        ])
        .arg(&build)
        .current_dir(&src)
        .status()
        .context("cargo")?;
    if !status.success() || !built.exists() {
        bail!("building the sink of {commit} failed");
    }
    std::fs::copy(&built, &library).with_context(|| library.display().to_string())?;
    Ok(library)
}

fn run(args: Args) -> anyhow::Result<()> {
    let target = target_dir()?;
    let release = target.join("release");
    for needed in ["stackctl", "camsim", "libsink_webrtc.so"] {
        if !release.join(needed).exists() {
            bail!(
                "{} is missing: cargo build --release -p stackctl -p camsim -p sink-webrtc -p loadbench",
                release.join(needed).display()
            );
        }
    }
    let mut variants = Vec::new();
    if !args.no_baseline {
        let library = match &args.baseline {
            Some(path) => path.clone(),
            None => baseline(&target, &args.baseline_commit)?,
        };
        variants.push(Variant {
            name: format!("old ({})", args.baseline_commit),
            kind: Kind::Sink {
                library,
                current: false,
            },
        });
    }
    variants.push(Variant {
        name: "new".to_owned(),
        kind: Kind::Sink {
            library: release.join("libsink_webrtc.so"),
            current: true,
        },
    });
    if args.str0m {
        variants.push(Variant {
            name: "str0m".to_owned(),
            kind: Kind::Str0m(release.join("str0m-sink")),
        });
    }
    let wanted = |name: &str| args.only.iter().any(|o| o == name);
    let inputs = target.join("loadbench").join("inputs");
    let camsim = release.join("camsim");
    let hd = input::input(&inputs, Shape::HD, &camsim)?;
    let sd = if wanted("capacity") {
        Some(input::input(&inputs, Shape::SD, &camsim)?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("viewerload")
        .enable_all()
        .build()?;
    let started = Instant::now();
    let q = args.quick;
    let rounds = if q { 1 } else { args.rounds.max(1) };
    let secs = Duration::from_secs;
    let plan =
        |viewers: usize, duration: u64, warmup: u64, ramp_ms: u64, max_clients: usize| LoadPlan {
            viewers,
            duration: secs(duration),
            warmup: secs(warmup),
            ramp: Duration::from_millis(ramp_ms),
            setup: SinkSetup {
                max_clients,
                threads: args.threads,
                whip_port: None,
            },
            one_more: false,
        };
    let mut md = String::new();
    let mut doc = json!({
        "machine": machine(),
        "input_1080p": hd.json(),
        "input_720p": sd.as_ref().map(input::Input::json),
        "rounds": rounds,
        "variants": variants.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
    });
    let mut summaries: Vec<(&str, Vec<LoadSummary>)> = Vec::new();
    let scenarios = [
        (
            "ten",
            if q {
                plan(3, 8, 2, 0, 10)
            } else {
                plan(10, 30, 5, 0, 10)
            },
        ),
        (
            "fifty",
            if q {
                plan(10, 8, 2, 0, 10)
            } else {
                plan(50, 25, 5, 0, 50)
            },
        ),
    ];
    for (name, plan) in scenarios {
        if !wanted(name) {
            continue;
        }
        let mut results: Vec<LoadResult> = Vec::new();
        for round in 0..rounds {
            // Alternate which variant goes first.
            let order: Vec<&Variant> = if round % 2 == 0 {
                variants.iter().collect()
            } else {
                variants.iter().rev().collect()
            };
            for variant in order {
                results.push(scenarios::load(&runtime, variant, &hd, plan)?);
            }
        }
        let per: Vec<LoadSummary> = variants
            .iter()
            .map(|v| {
                let runs: Vec<&LoadResult> =
                    results.iter().filter(|r| r.variant == v.name).collect();
                LoadSummary::of(&v.name, &runs)
            })
            .collect();
        report::load_table(
            &mut md,
            &format!(
                "{name}: {} viewers of {} joining at once, {:?} ({:?} warm-up left out), {rounds} round(s)",
                plan.viewers, hd.shape.size, plan.duration, plan.warmup
            ),
            &per,
        );
        for r in &results {
            report::run_details(&mut md, r);
        }
        md.push('\n');
        doc[name] = json!({
            "summary": per.iter().map(LoadSummary::json).collect::<Vec<_>>(),
            "runs": results.iter().map(LoadResult::json).collect::<Vec<_>>(),
        });
        summaries.push((name, per));
    }
    if let Some(sd) = &sd {
        let mut plan = if q {
            plan(20, 10, 4, 20, 20)
        } else {
            plan(200, 30, 8, 20, 200)
        };
        plan.one_more = true;
        let mut results = Vec::new();
        for variant in &variants {
            results.push(scenarios::load(&runtime, variant, sd, plan)?);
        }
        let refs: Vec<&LoadResult> = results.iter().collect();
        let per: Vec<LoadSummary> = refs
            .iter()
            .map(|r| LoadSummary::of(&r.variant, &[*r]))
            .collect();
        report::load_table(
            &mut md,
            &format!(
                "capacity: {} viewers of {} at {} kbit/s (ramped {:?}), max_clients = {}, then one more",
                plan.viewers, sd.shape.size, sd.shape.kbps, plan.ramp, plan.setup.max_clients
            ),
            &per,
        );
        for r in &results {
            report::run_details(&mut md, r);
        }
        md.push('\n');
        doc["capacity"] = json!(results.iter().map(LoadResult::json).collect::<Vec<_>>());
        summaries.push(("capacity", per));
    }
    let mut soaks = Vec::new();
    if wanted("soak") {
        let (cycles, settle) = if q { (50, secs(3)) } else { (500, secs(10)) };
        for variant in variants
            .iter()
            .filter(|v| matches!(v.kind, Kind::Sink { .. }))
        {
            soaks.push(scenarios::soak(&runtime, variant, &hd, cycles, 4, settle)?);
        }
        report::soak_table(&mut md, &soaks);
        doc["soak"] = json!(
            soaks
                .iter()
                .map(scenarios::SoakResult::json)
                .collect::<Vec<_>>()
        );
    }
    let mut idle: Vec<(String, Vec<f64>)> = variants
        .iter()
        .map(|v| (v.name.clone(), Vec::new()))
        .collect();
    if wanted("idle") {
        let window = if q { secs(4) } else { secs(15) };
        for round in 0..rounds {
            let order: Vec<usize> = if round % 2 == 0 {
                (0..variants.len()).collect()
            } else {
                (0..variants.len()).rev().collect()
            };
            for i in order {
                let (cpu, _) = scenarios::idle(&variants[i], &hd, window)?;
                idle[i].1.push(cpu);
            }
        }
        let _ = std::fmt::Write::write_fmt(
            &mut md,
            format_args!(
                "## idle: the camera on (1080p30), nobody watching, {window:?} after a settling second\n\n{}\n\n",
                idle.iter()
                    .map(|(n, c)| format!(
                        "- {n}: {:.2} % of one core (median of {:?})",
                        median(c),
                        c
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        );
        doc["idle"] = json!(
            idle.iter()
                .map(|(n, c)| json!({"variant": n, "cpu_percent_runs": c, "median": median(c)}))
                .collect::<Vec<_>>()
        );
    }
    if wanted("publish") {
        let this = variants
            .iter()
            .find(|v| matches!(v.kind, Kind::Sink { current: true, .. }))
            .context("this tree's sink is always measured")?;
        let (settle, window) = if q {
            (secs(1), secs(5))
        } else {
            (secs(3), secs(30))
        };
        let mut runs = Vec::new();
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for published in order {
                runs.push(publish::run(this, &hd, published, settle, window)?);
            }
        }
        doc["publish"] = publish::report(&mut md, &runs, hd.shape.size);
    }
    summary(&mut md, &summaries, &soaks, &idle);
    doc["elapsed_s"] = json!(started.elapsed().as_secs_f64());
    print!("{md}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| path.display().to_string())?;
        eprintln!("JSON written to {}", path.display());
    }
    Ok(())
}

/// The before/after table: each figure of the issue's targets, per variant.
fn summary(
    md: &mut String,
    loads: &[(&str, Vec<LoadSummary>)],
    soaks: &[scenarios::SoakResult],
    idle: &[(String, Vec<f64>)],
) {
    if loads.is_empty() && soaks.is_empty() && idle.iter().all(|(_, c)| c.is_empty()) {
        return;
    }
    let variants: Vec<&str> = idle.iter().map(|(n, _)| n.as_str()).collect();
    let _ = std::fmt::Write::write_fmt(
        md,
        format_args!(
            "## Summary (medians)\n\n| figure | {} | target |\n| --- |{} --- |\n",
            variants.join(" | "),
            " --- |".repeat(variants.len())
        ),
    );
    let mut row = |label: String, values: Vec<String>, target: &str| {
        let _ = std::fmt::Write::write_fmt(
            md,
            format_args!("| {label} | {} | {target} |\n", values.join(" | ")),
        );
    };
    let pick = |name: &str, f: fn(&LoadSummary) -> String| -> Option<Vec<String>> {
        let (_, per) = loads.iter().find(|(n, _)| *n == name)?;
        Some(
            variants
                .iter()
                .map(|v| {
                    per.iter()
                        .find(|s| s.variant == *v)
                        .map_or("n/a".to_owned(), f)
                })
                .collect(),
        )
    };
    for (name, label, targets) in [
        (
            "ten",
            "10 viewers",
            ["≤ 3 %", "≤ 2 / ≤ 5 ms", "≤ 10 MB", "0"],
        ),
        (
            "fifty",
            "50 viewers",
            ["≤ 15 %", "— / ≤ 15 ms", "≤ 30 MB", "0"],
        ),
        (
            "capacity",
            "200 viewers, 720p",
            ["report", "report", "report", "report"],
        ),
    ] {
        if let Some(v) = pick(name, |s| format!("{:.1} %", s.cpu)) {
            row(format!("{label}: CPU, % of one core"), v, targets[0]);
        }
        if let Some(v) = pick(name, |s| format!("{:.2} / {:.2} ms", s.p50, s.p99)) {
            row(format!("{label}: latency p50 / p99"), v, targets[1]);
        }
        if let Some(v) = pick(name, |s| format!("{:.1} MiB", s.rss_mib)) {
            row(format!("{label}: RssAnon"), v, targets[2]);
        }
        if let Some(v) = pick(name, |s| {
            format!("{} ({} packets)", s.frames_lost, s.packets_lost)
        }) {
            row(
                format!("{label}: frames lost (packets never received)"),
                v,
                targets[3],
            );
        }
    }
    if !soaks.is_empty() {
        let v = variants
            .iter()
            .map(|n| {
                soaks
                    .iter()
                    .find(|s| s.variant == *n)
                    .map_or("n/a".to_owned(), |s| {
                        format!("{:+} kB, fds {:+}", s.rss_diff_kb(), s.fd_diff())
                    })
            })
            .collect();
        row(
            format!("soak, {} cycles: RssAnon, fds", soaks[0].cycles),
            v,
            "± 2 MB, equal",
        );
    }
    if idle.iter().any(|(_, c)| !c.is_empty()) {
        row(
            "idle, camera on: CPU".to_owned(),
            idle.iter()
                .map(|(_, c)| format!("{:.2} %", median(c)))
                .collect(),
            "≤ 0.3 %",
        );
    }
    md.push('\n');
}

/// The machine, for the report.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| {
        l.strip_prefix("model name")?
            .split_once(':')
            .map(|x| x.1.trim().to_owned())
    });
    json!({
        "cpu": model,
        "cores": cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "loadavg_at_start": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    })
}
