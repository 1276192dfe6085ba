//! Plugins' metrics, checked before they reach `/metrics`: whatever a plugin emits, the scrape
//! stays valid Prometheus text (format 0.0.4).
//!
//! Each plugin's text is parsed by a strict line parser ([`parse`]). What is not valid is left
//! out, line by line: a sample that does not parse, a label the host owns (`plugin`), a
//! duplicate series, a second `# HELP` or `# TYPE`, a `# TYPE` after the family's samples, a
//! histogram bucket without `le`. Whole families are left out when they collide
//! ([`Merger::add`]): with the host's (every `stackctl_*` name, and every family the supervisor
//! exposes itself), or with another plugin's (a family of another library, or of another type).
//! Instances of one library share their families: their samples are merged under one `# HELP`
//! and `# TYPE`. Every sample gets `plugin="NAME"`, first among its labels, so the instances'
//! series never collide.
//!
//! What is left out is counted per plugin in `stackctl_plugin_metrics_rejected_total{plugin}`
//! (the caller keeps the counts) and said once per plugin.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// The family of the rejection counters.
pub const REJECTED_FAMILY: &str = "stackctl_plugin_metrics_rejected_total";

/// A metric type of the text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" => Self::Untyped,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Untyped => "untyped",
        }
    }

    /// The suffixes of the series a family of this type has besides its own name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Self::Histogram => &["_bucket", "_sum", "_count"],
            Self::Summary => &["_sum", "_count"],
            _ => &[],
        }
    }
}

/// One sample line, validated; labels and value kept as written.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    /// `(name, value as written between the quotes, escapes included)`.
    labels: Vec<(String, String)>,
    value: String,
    timestamp: Option<String>,
}

/// One metric family of a plugin's text.
#[derive(Debug, Clone, PartialEq)]
struct Family {
    name: String,
    kind: Kind,
    /// Whether a `# TYPE` line declared it.
    typed: bool,
    /// The `# HELP` text as written (escapes included).
    help: Option<String>,
    samples: Vec<Sample>,
}

impl Family {
    /// Every series name the family may expose: its own, and its type's suffixed ones.
    fn series_names(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.name.clone()).chain(
            self.kind
                .suffixes()
                .iter()
                .map(|s| format!("{}{s}", self.name)),
        )
    }

    /// The lines it took in the plugin's text, to count them when it is left out.
    fn lines(&self) -> u64 {
        self.samples.len() as u64 + u64::from(self.typed) + u64::from(self.help.is_some())
    }
}

/// A plugin's text, parsed: its valid families, and why each invalid line was left out.
#[derive(Debug, Default)]
struct Parsed {
    families: Vec<Family>,
    rejected: Vec<String>,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// A float as the text format writes it: Go's `ParseFloat` syntax (decimal, `Inf`, `NaN`).
fn is_value(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("nan") {
        return true;
    }
    !unsigned.is_empty()
        && unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && s.parse::<f64>().is_ok()
}

/// HELP text: only `\\` and `\n` are escapes.
fn is_help(s: &str) -> bool {
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
            return false;
        }
    }
    true
}

/// Parses `name{a="x",b="y"} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let end = line.find(['{', ' ', '\t']).ok_or("no value")?;
    let name = &line[..end];
    if !is_metric_name(name) {
        return Err("not a metric name");
    }
    let mut rest = &line[end..];
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut s = after.trim_start();
        loop {
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find('=').ok_or("a label without a value")?;
            let label = s[..eq].trim();
            if !is_label_name(label) {
                return Err("not a label name");
            }
            if labels.iter().any(|(l, _)| l == label) {
                return Err("a label twice");
            }
            let quoted = s[eq + 1..].trim_start();
            let body = quoted
                .strip_prefix('"')
                .ok_or("a label value without quotes")?;
            let mut close = None;
            let mut escaped = false;
            for (i, c) in body.char_indices() {
                if escaped {
                    if !matches!(c, '\\' | '"' | 'n') {
                        return Err("an invalid escape in a label value");
                    }
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    close = Some(i);
                    break;
                }
            }
            let close = close.ok_or("an unterminated label value")?;
            labels.push((label.to_owned(), body[..close].to_owned()));
            s = body[close + 1..].trim_start();
            if let Some(after) = s.strip_prefix(',') {
                s = after.trim_start();
            } else if !s.starts_with('}') {
                return Err("labels not separated by commas");
            }
        }
    }
    if !rest.starts_with([' ', '\t']) {
        return Err("no space before the value");
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = fields.next().ok_or("no value")?;
    if !is_value(value) {
        return Err("not a number");
    }
    let timestamp = fields.next();
    if timestamp.is_some_and(|t| t.parse::<i64>().is_err()) {
        return Err("not a timestamp");
    }
    if fields.next().is_some() {
        return Err("more than a value and a timestamp");
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value: value.to_owned(),
        timestamp: timestamp.map(str::to_owned),
    })
}

/// Parses a plugin's exposition text strictly, keeping what is valid.
fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut series: HashSet<String> = HashSet::new();
    for (n, line) in text.split('\n').enumerate() {
        let mut reject = |why: &str| out.rejected.push(format!("line {}: {why}", n + 1));
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            let (word, rest) = comment.split_once([' ', '\t']).unwrap_or((comment, ""));
            if word != "HELP" && word != "TYPE" {
                continue; // An ordinary comment.
            }
            let rest = rest.trim_start();
            let (name, arg) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            if !is_metric_name(name) {
                reject("not a metric name");
                continue;
            }
            let at = *index.entry(name.to_owned()).or_insert_with(|| {
                out.families.push(Family {
                    name: name.to_owned(),
                    kind: Kind::Untyped,
                    typed: false,
                    help: None,
                    samples: Vec::new(),
                });
                out.families.len() - 1
            });
            let family = &mut out.families[at];
            if word == "HELP" {
                if family.help.is_some() {
                    reject("a second HELP");
                } else if !is_help(arg) {
                    reject("an invalid escape in HELP");
                } else {
                    family.help = Some(arg.to_owned());
                }
            } else if family.typed {
                reject("a second TYPE");
            } else if !family.samples.is_empty() {
                reject("a TYPE after the family's samples");
            } else if let Some(kind) = Kind::parse(arg.trim()) {
                family.kind = kind;
                family.typed = true;
            } else {
                reject("not a metric type");
            }
            continue;
        }
        let sample = match parse_sample(line) {
            Ok(sample) => sample,
            Err(why) => {
                reject(why);
                continue;
            }
        };
        if sample.labels.iter().any(|(l, _)| l == "plugin") {
            reject("the plugin label is the host's");
            continue;
        }
        // The family: a histogram's or summary's suffixed series belong to it.
        let owner = out
            .families
            .iter()
            .position(|f| {
                f.kind.suffixes().iter().any(|s| {
                    sample
                        .name
                        .strip_suffix(s)
                        .is_some_and(|base| base == f.name)
                })
            })
            .or_else(|| index.get(&sample.name).copied());
        let at = owner.unwrap_or_else(|| {
            out.families.push(Family {
                name: sample.name.clone(),
                kind: Kind::Untyped,
                typed: false,
                help: None,
                samples: Vec::new(),
            });
            index.insert(sample.name.clone(), out.families.len() - 1);
            out.families.len() - 1
        });
        let family = &mut out.families[at];
        let has = |l: &str| sample.labels.iter().any(|(name, _)| name == l);
        let needs = match family.kind {
            Kind::Histogram if sample.name == family.name => {
                Some("a histogram sample without a suffix")
            }
            Kind::Histogram if sample.name.ends_with("_bucket") && !has("le") => {
                Some("a histogram bucket without le")
            }
            Kind::Summary if sample.name == family.name && !has("quantile") => {
                Some("a summary sample without quantile")
            }
            _ => None,
        };
        if let Some(why) = needs {
            reject(why);
            continue;
        }
        let mut key = sample.name.clone();
        let mut labels = sample.labels.clone();
        labels.sort();
        for (l, v) in &labels {
            let _ = write!(key, "\u{0}{l}={v}");
        }
        if !series.insert(key) {
            reject("a series twice");
            continue;
        }
        family.samples.push(sample);
    }
    out
}

/// The names a host's exposition text claims: its families and every series name they may
/// have (`x_bucket` of a histogram `x`...).
pub fn host_names(text: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_ascii_whitespace();
            if let (Some("HELP" | "TYPE"), Some(name)) = (words.next(), words.next()) {
                names.insert(name.to_owned());
                let kind = words.next().and_then(Kind::parse).unwrap_or(Kind::Untyped);
                names.extend(kind.suffixes().iter().map(|s| format!("{name}{s}")));
            }
        } else if let Some(name) = line.split(['{', ' ', '\t']).next()
            && !name.is_empty()
        {
            names.insert(name.to_owned());
        }
    }
    names
}

/// Escapes a label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A family in the scrape, with the library that first emitted it.
#[derive(Debug)]
struct Merged {
    library: String,
    family: Family,
    /// `(plugin, its samples)`, in the order the plugins were added.
    samples: Vec<(String, Vec<Sample>)>,
}

/// The plugins' part of one scrape, built plugin by plugin.
#[derive(Debug)]
pub struct Merger<'a> {
    host: &'a HashSet<String>,
    families: Vec<Merged>,
    /// Series name → index in `families`.
    series: HashMap<String, usize>,
}

impl<'a> Merger<'a> {
    /// A scrape whose host part claims the names `host` ([`host_names`]).
    pub fn new(host: &'a HashSet<String>) -> Self {
        Self {
            host,
            families: Vec::new(),
            series: HashMap::new(),
        }
    }

    /// Adds plugin `plugin`'s (an instance of library `library`) `text`; returns why each line
    /// left out was left out.
    pub fn add(&mut self, plugin: &str, library: &str, text: &str) -> Vec<String> {
        let parsed = parse(text);
        let mut rejected = parsed.rejected;
        for family in parsed.families {
            if family.samples.is_empty() {
                continue; // Nothing to show (and a TYPE alone claims nothing).
            }
            let names: Vec<String> = family.series_names().collect();
            let why = if names
                .iter()
                .any(|n| n.starts_with("stackctl_") || self.host.contains(n))
            {
                Some("is the host's".to_owned())
            } else {
                match names.iter().find_map(|n| self.series.get(n).copied()) {
                    None => None,
                    Some(at) => {
                        let other = &self.families[at];
                        if other.family.name == family.name
                            && other.library == library
                            && other.family.kind == family.kind
                        {
                            None
                        } else {
                            let by = other.samples.first().map_or("", |(p, _)| p.as_str());
                            Some(format!(
                                "collides with plugin {by}'s family {}",
                                other.family.name
                            ))
                        }
                    }
                }
            };
            if let Some(why) = why {
                for _ in 0..family.lines() {
                    rejected.push(format!("family {} {why}", family.name));
                }
                continue;
            }
            match self.series.get(&family.name).copied() {
                Some(at) => {
                    let merged = &mut self.families[at];
                    if merged.family.help.is_none() {
                        merged.family.help = family.help.clone();
                    }
                    merged.samples.push((plugin.to_owned(), family.samples));
                }
                None => {
                    let at = self.families.len();
                    for n in names {
                        self.series.insert(n, at);
                    }
                    let samples = vec![(plugin.to_owned(), family.samples.clone())];
                    self.families.push(Merged {
                        library: library.to_owned(),
                        family,
                        samples,
                    });
                }
            }
        }
        rejected
    }

    /// The exposition text of every family added, each sample labelled with its plugin.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for merged in &self.families {
            let f = &merged.family;
            if let Some(help) = &f.help {
                let _ = writeln!(out, "# HELP {} {help}", f.name);
            }
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.name());
            for (plugin, samples) in &merged.samples {
                for s in samples {
                    let _ = write!(out, "{}{{plugin=\"{}\"", s.name, escape(plugin));
                    for (l, v) in &s.labels {
                        let _ = write!(out, ",{l}=\"{v}\"");
                    }
                    let _ = write!(out, "}} {}", s.value);
                    if let Some(ts) = &s.timestamp {
                        let _ = write!(out, " {ts}");
                    }
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// The rejection counters, for every plugin in `counts`.
pub fn render_rejected(counts: &[(String, u64)]) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "# HELP {REJECTED_FAMILY} Lines of a plugin's metrics left out of the scrape: invalid, or a family of the host's or of another plugin.\n# TYPE {REJECTED_FAMILY} counter\n"
    );
    for (plugin, n) in counts {
        let _ = writeln!(
            out,
            "{REJECTED_FAMILY}{{plugin=\"{}\"}} {n}",
            escape(plugin)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples() {
        let ok = [
            ("a 1", "a", 0, "1", None),
            ("a_b:c{x=\"1\"} -2.5e3", "a_b:c", 1, "-2.5e3", None),
            (
                "a{x=\"1\",y=\"q\\\"\\\\\\n\",} +Inf 123",
                "a",
                2,
                "+Inf",
                Some("123"),
            ),
            ("a{ } NaN", "a", 0, "NaN", None),
            ("a\t.5", "a", 0, ".5", None),
        ];
        for (line, name, labels, value, ts) in ok {
            let s = parse_sample(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(
                (
                    s.name.as_str(),
                    s.labels.len(),
                    s.value.as_str(),
                    s.timestamp.as_deref()
                ),
                (name, labels, value, ts),
                "{line:?}"
            );
        }
        let bad = [
            "a",
            "1a 1",
            "a b",
            "a 1 2 3",
            "a 1 1.5",
            "a{x=\"1} 1",
            "a{x=1} 1",
            "a{x=\"1\" y=\"2\"} 1",
            "a{x=\"1\",x=\"2\"} 1",
            "a{__x=\"1\"} 1",
            "a{x=\"\\t\"} 1",
            "a{1x=\"1\"} 1",
            "a{x=\"1\"}1",
            "a 0x10",
            "a 1_000",
            "a infinity",
            "a one",
        ];
        for line in bad {
            assert!(parse_sample(line).is_err(), "{line:?} was accepted");
        }
    }

    #[test]
    fn parse_keeps_the_valid_and_says_why_the_rest_is_left_out() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\na_total 1\n\
                    garbage here\n# TYPE a_total gauge\n# HELP a_total Again.\n\
                    # plain comment\nb 2\n# TYPE b gauge\nb 3\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket 2\nh_sum 3\nh_count 1\nh 4\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 1\ns 2\ns_sum 1\n\
                    c{plugin=\"x\"} 1\n# TYPE d nonsense\n";
        let parsed = parse(text);
        let names: Vec<_> = parsed.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a_total", "b", "h", "s", "d"]);
        let samples: Vec<_> = parsed.families.iter().map(|f| f.samples.len()).collect();
        assert_eq!(samples, [1, 1, 3, 2, 0]);
        let why: Vec<_> = parsed
            .rejected
            .iter()
            .map(|r| r.split_once(": ").map_or("", |(_, w)| w))
            .collect();
        assert_eq!(
            why,
            [
                "not a number",
                "a second TYPE",
                "a second HELP",
                "a TYPE after the family's samples",
                "a series twice",
                "a histogram bucket without le",
                "a histogram sample without a suffix",
                "a summary sample without quantile",
                "the plugin label is the host's",
                "not a metric type",
            ],
            "{:?}",
            parsed.rejected
        );
    }

    #[test]
    fn families_merge_per_library_and_collisions_are_left_out() {
        let host_text = "# TYPE stackctl_ready gauge\nstackctl_ready 1\n\
                         # TYPE disk_free_bytes gauge\ndisk_free_bytes 5\n\
                         # TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 1\nlat_sum 1\nlat_count 1\n";
        let host = host_names(host_text);
        for name in [
            "stackctl_ready",
            "disk_free_bytes",
            "lat",
            "lat_bucket",
            "lat_count",
        ] {
            assert!(host.contains(name), "{name}");
        }
        let mut merger = Merger::new(&host);
        let one = "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{path=\"/a\"} 3\nreq_count 5\n\
                   # TYPE stackctl_ready gauge\nstackctl_ready 0\ndisk_free_bytes 1\nlat_count 2\n";
        let rejected = merger.add("one", "lib", one);
        assert_eq!(rejected.len(), 4, "{rejected:?}");
        assert!(merger.add("two", "lib", one).len() == 4);
        // Another library's family of the same name, and a series name taken: left out.
        let other = "# TYPE req_total counter\nreq_total 1\n# TYPE req histogram\nreq_bucket{le=\"1\"} 1\nmine 1\n";
        let rejected = merger.add("three", "otherlib", other);
        assert_eq!(rejected.len(), 2 + 2, "{rejected:?}");
        // The same library with another type: left out too.
        let retyped = "# TYPE req_total gauge\nreq_total 1\n";
        assert_eq!(merger.add("four", "lib", retyped).len(), 2);
        let text = merger.render();
        assert_eq!(
            text,
            "# HELP req_total Requests.\n# TYPE req_total counter\n\
             req_total{plugin=\"one\",path=\"/a\"} 3\nreq_total{plugin=\"two\",path=\"/a\"} 3\n\
             # TYPE req_count untyped\nreq_count{plugin=\"one\"} 5\nreq_count{plugin=\"two\"} 5\n\
             # TYPE mine untyped\nmine{plugin=\"three\"} 1\n"
        );
    }

    #[test]
    fn rejected_counters() {
        assert_eq!(render_rejected(&[]), "");
        let text = render_rejected(&[("a\"b".into(), 2), ("c".into(), 0)]);
        assert!(text.contains("stackctl_plugin_metrics_rejected_total{plugin=\"a\\\"b\"} 2\n"));
        assert!(text.contains("stackctl_plugin_metrics_rejected_total{plugin=\"c\"} 0\n"));
    }
}
