//! What `/proc` says of a process and of the host: CPU ticks (per thread too), `RssAnon`,
//! threads, descriptors by kind, the host's busy time and UDP counters.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Clock ticks a second (`getconf CLK_TCK`).
pub fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// (comm, utime + stime) from a `stat` file.
fn stat_ticks(path: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let comm = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// utime + stime of a process (all its threads, living and exited), in ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    stat_ticks(&format!("/proc/{pid}/stat")).map_or(0, |(_, t)| t)
}

fn thread_ticks(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Some(tid) = task.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(t) = stat_ticks(&format!("{}/stat", task.path().display())) {
            out.insert(tid, t);
        }
    }
    out
}

/// A `kB` field of `/proc/<pid>/status` (`RssAnon`, `Threads`: a count).
pub fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Open descriptors.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Open descriptors by kind: `udp`, `tcp`, `unix`, other sockets, `pipe`, `anon_inode:[x]`,
/// `/dev/shm`, other files.
pub fn fd_kinds(pid: u32) -> BTreeMap<String, usize> {
    let mut inodes: HashMap<String, &'static str> = HashMap::new();
    for (file, kind) in [
        ("udp", "udp"),
        ("udp6", "udp"),
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("unix", "unix"),
    ] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        let column = if file == "unix" { 6 } else { 9 };
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(column) {
                inodes.insert(inode.to_owned(), kind);
            }
        }
    }
    let mut kinds = BTreeMap::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let target = std::fs::read_link(fd.path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let kind = if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            inodes
                .get(inode)
                .copied()
                .unwrap_or("socket (other)")
                .to_owned()
        } else if target.starts_with("pipe:") {
            "pipe".to_owned()
        } else if target.starts_with("anon_inode:") {
            target.clone()
        } else if target.starts_with("/dev/shm") {
            "/dev/shm".to_owned()
        } else {
            "file".to_owned()
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// Direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// (busy, total) jiffies of the whole host, from the `cpu` line of `/proc/stat`.
pub fn host_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The host's UDP counters (`/proc/net/snmp`): loss on loopback is a socket buffer
/// overflowing (`RcvbufErrors` at the receiver, `SndbufErrors` at the sender).
pub fn udp_counters() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut rows = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter_map(|(n, v)| Some((n.to_owned(), v.parse().ok()?)))
        .collect()
}

/// `to - from`, counter by counter.
pub fn delta(from: &BTreeMap<String, u64>, to: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    to.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(from.get(k).copied().unwrap_or(0)),
            )
        })
        .collect()
}

/// What a process looks like at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When.
    pub at: Instant,
    /// Its CPU ticks.
    pub ticks: u64,
    /// Its `RssAnon`, kB.
    pub rss_anon_kb: u64,
    /// Its threads.
    pub threads: u64,
    /// Its descriptors.
    pub fds: usize,
    per_thread: HashMap<u32, (String, u64)>,
}

impl Sample {
    /// Samples `pid` now.
    pub fn take(pid: u32) -> Self {
        Self {
            at: Instant::now(),
            ticks: cpu_ticks(pid),
            rss_anon_kb: status_kb(pid, "RssAnon"),
            threads: status_kb(pid, "Threads"),
            fds: fd_count(pid),
            per_thread: thread_ticks(pid),
        }
    }

    /// CPU, % of one core, from `self` to `to`.
    pub fn cpu_to(&self, to: &Sample) -> f64 {
        let secs = to.at.duration_since(self.at).as_secs_f64();
        to.ticks.saturating_sub(self.ticks) as f64 / clk_tck() / secs * 100.0
    }

    /// CPU, % of one core, per thread name (alike names summed), busiest first.
    pub fn cpu_by_thread_to(&self, to: &Sample) -> Vec<(String, usize, f64)> {
        let secs = to.at.duration_since(self.at).as_secs_f64();
        let mut by_name: BTreeMap<String, (usize, u64)> = BTreeMap::new();
        for (tid, (name, ticks)) in &to.per_thread {
            let before = self.per_thread.get(tid).map_or(0, |t| t.1);
            let e = by_name.entry(name.clone()).or_default();
            e.0 += 1;
            e.1 += ticks.saturating_sub(before);
        }
        let mut out: Vec<(String, usize, f64)> = by_name
            .into_iter()
            .map(|(name, (n, ticks))| (name, n, ticks as f64 / clk_tck() / secs * 100.0))
            .collect();
        out.sort_by(|a, b| b.2.total_cmp(&a.2));
        out
    }
}
