//! The metrics as text: Prometheus' text exposition format (version
//! 0.0.4, encoded by the `prometheus` crate), JSON, or an aligned table for
//! people. A database's view keeps the series labelled with its name and
//! the process-wide ones (FUSE requests), which carry no `db` label.

use super::global;
use prometheus::proto::{MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Table,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "text" | "prometheus" => Some(Format::Text),
            "json" => Some(Format::Json),
            "table" => Some(Format::Table),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Table => "table",
        }
    }
}

/// The metrics of `db` (all of them: none), in `format`.
pub fn render(db: Option<&str>, format: Format) -> Vec<u8> {
    let mut families = global().gather();
    if let Some(db) = db {
        for f in &mut families {
            let keep: Vec<_> = f
                .get_metric()
                .iter()
                .filter(|m| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == "db")
                        .is_none_or(|l| l.value() == db)
                })
                .cloned()
                .collect();
            f.mut_metric().clear();
            f.mut_metric().extend(keep);
        }
    }
    match format {
        Format::Text => {
            let mut out = Vec::new();
            // Encoding into memory fails only on a family without metrics
            // or a name the registry would have refused: skip those.
            let families: Vec<_> = families
                .into_iter()
                .filter(|f| !f.get_metric().is_empty())
                .collect();
            if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
                tracing::warn!(error = %e, "metrics could not be encoded");
            }
            out
        }
        Format::Json => {
            let mut text = serde_json_lines(&samples(&families));
            text.push('\n');
            text.into_bytes()
        }
        Format::Table => table(&samples(&families)).into_bytes(),
    }
}

/// One number of a family: a counter's or gauge's value, a histogram's
/// count, sum and quantiles estimated from its buckets.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

fn samples(families: &[MetricFamily]) -> Vec<Sample> {
    let mut out = Vec::new();
    for f in families {
        for m in f.get_metric() {
            let labels: Vec<(String, String)> = m
                .get_label()
                .iter()
                .map(|l| (l.name().to_string(), l.value().to_string()))
                .collect();
            let mut push = |suffix: &str, value: f64| {
                out.push(Sample {
                    name: format!("{}{suffix}", f.name()),
                    labels: labels.clone(),
                    value,
                })
            };
            match f.get_field_type() {
                MetricType::COUNTER => push("", m.get_counter().get_value()),
                MetricType::GAUGE => push("", m.get_gauge().get_value()),
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    push("_count", h.get_sample_count() as f64);
                    push("_sum", h.get_sample_sum());
                    let buckets: Vec<(f64, u64)> = h
                        .get_bucket()
                        .iter()
                        .map(|b| (b.upper_bound(), b.cumulative_count()))
                        .collect();
                    for (q, name) in [(0.5, "_p50"), (0.95, "_p95"), (0.99, "_p99")] {
                        if let Some(v) = quantile(&buckets, h.get_sample_count(), q) {
                            push(name, v);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The `q` quantile as Prometheus' `histogram_quantile` estimates it:
/// linear within the bucket that holds it.
fn quantile(buckets: &[(f64, u64)], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, cum) in buckets {
        if cum as f64 >= rank {
            let in_bucket = (cum - lower.1) as f64;
            if in_bucket == 0.0 {
                return Some(bound);
            }
            return Some(lower.0 + (bound - lower.0) * (rank - lower.1 as f64) / in_bucket);
        }
        lower = (bound, cum);
    }
    // Beyond the last bucket: its bound is the best that can be said.
    Some(lower.0)
}

/// One JSON object per sample, one per line.
fn serde_json_lines(samples: &[Sample]) -> String {
    let items: Vec<String> = samples
        .iter()
        .map(|s| {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
                .collect();
            let value = if s.value.is_finite() {
                format!("{}", s.value)
            } else {
                "null".to_string()
            };
            format!(
                "{{\"name\":{},\"labels\":{{{}}},\"value\":{value}}}",
                json_str(&s.name),
                labels.join(",")
            )
        })
        .collect();
    format!("[\n{}\n]", items.join(",\n"))
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn table(samples: &[Sample]) -> String {
    let rows: Vec<(String, String, String)> = samples
        .iter()
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let value = if s.value.fract() == 0.0 && s.value.abs() < 1e15 {
                format!("{}", s.value as i64)
            } else {
                format!("{:.6}", s.value)
            };
            (s.name.clone(), labels.join(" "), value)
        })
        .collect();
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(6);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6);
    let mut out = format!("{:w0$}  {:w1$}  value\n", "metric", "labels");
    for (n, l, v) in rows {
        out.push_str(&format!("{n:w0$}  {l:w1$}  {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let b = [(1.0, 10), (2.0, 20), (4.0, 20)];
        assert_eq!(quantile(&b, 20, 0.5), Some(1.0));
        assert_eq!(quantile(&b, 20, 0.75), Some(1.5));
        assert_eq!(quantile(&b, 0, 0.5), None);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
