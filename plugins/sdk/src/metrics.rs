//! [`MetricsText`]: Prometheus text exposition for [`Sink::metrics`](crate::Sink::metrics).
//!
//! A plugin cannot register in stackctl's Prometheus registry (it has its own copy of any
//! metrics crate): it returns text, which stackctl appends to its `/metrics`. Prefix every name
//! with the sink's (`sink_stats_...`).

use std::fmt::Write as _;

/// Builds Prometheus text exposition (format 0.0.4), one metric family at a time.
///
/// ```
/// let mut m = stackctl_sink_sdk::MetricsText::new();
/// m.counter("sink_demo_frames_total", "Access units received.", 3);
/// m.gauge("sink_demo_fps", "Frames per second.", 29.97);
/// assert!(m.finish().ends_with("sink_demo_fps 29.97\n"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct MetricsText {
    text: String,
}

impl MetricsText {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter: a total that only grows (name it `..._total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.family(name, help, "counter");
        let _ = writeln!(self.text, "{name} {value}");
        self
    }

    /// A gauge: a value that goes up and down.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        self.family(name, help, "gauge");
        let _ = writeln!(self.text, "{name} {}", number(value));
        self
    }

    /// A counter with one sample per label set, e.g. `[(&[("viewer", "3")][..], 42)]`.
    pub fn counters<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (&'a [(&'a str, &'a str)], u64)>,
    ) -> &mut Self {
        self.family(name, help, "counter");
        for (labels, value) in samples {
            let _ = writeln!(self.text, "{name}{} {value}", label_set(labels));
        }
        self
    }

    /// A gauge with one sample per label set.
    pub fn gauges<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (&'a [(&'a str, &'a str)], f64)>,
    ) -> &mut Self {
        self.family(name, help, "gauge");
        for (labels, value) in samples {
            let _ = writeln!(self.text, "{name}{} {}", label_set(labels), number(value));
        }
        self
    }

    /// A histogram: `buckets` are `(upper bound, observations at or below it)`, cumulative and
    /// in increasing order; the `+Inf` bucket is `count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        self.family(name, help, "histogram");
        for (le, n) in buckets {
            let _ = writeln!(self.text, "{name}_bucket{{le=\"{}\"}} {n}", number(*le));
        }
        let _ = writeln!(self.text, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(self.text, "{name}_sum {}", number(sum));
        let _ = writeln!(self.text, "{name}_count {count}");
        self
    }

    /// The text, ready to return from `metrics`.
    pub fn finish(self) -> String {
        self.text
    }

    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
}

/// `{a="1",b="x"}`, values escaped; empty for no labels.
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A float as Prometheus spells it.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_and_type_and_floats_are_spelled_right() {
        let mut m = MetricsText::new();
        m.counter("a_total", "Line one\nline two", 5)
            .gauge("b", "B.", f64::INFINITY)
            .gauge("c", "C.", 2.5);
        assert_eq!(
            m.finish(),
            "# HELP a_total Line one\\nline two\n# TYPE a_total counter\na_total 5\n\
             # HELP b B.\n# TYPE b gauge\nb +Inf\n\
             # HELP c C.\n# TYPE c gauge\nc 2.5\n"
        );
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn labels_are_escaped_and_histograms_end_with_inf_sum_and_count() {
        let mut m = MetricsText::new();
        m.counters("v_total", "V.", [(&[("id", "a\"b")][..], 1), (&[][..], 2)])
            .gauges("g", "G.", [(&[("s", "x"), ("t", "y")][..], 0.5)])
            .histogram("h_seconds", "H.", &[(0.1, 1), (1.0, 3)], 1.25, 4);
        let text = m.finish();
        assert!(
            text.contains("v_total{id=\"a\\\"b\"} 1\nv_total 2\n"),
            "{text}"
        );
        assert!(text.contains("g{s=\"x\",t=\"y\"} 0.5\n"), "{text}");
        assert!(text.contains("# TYPE h_seconds histogram\n"), "{text}");
        assert!(
            text.ends_with(
                "h_seconds_bucket{le=\"0.1\"} 1\nh_seconds_bucket{le=\"1\"} 3\n\
                 h_seconds_bucket{le=\"+Inf\"} 4\nh_seconds_sum 1.25\nh_seconds_count 4\n"
            ),
            "{text}"
        );
    }
}
