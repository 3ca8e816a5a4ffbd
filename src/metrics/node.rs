//! How loaded this machine is (`rdb node:health`, what a peer answers when
//! it is probed): the one-minute load average over the cores, and the share
//! of memory in use, from `/proc`. The output is one line of JSON whose
//! fields only ever get added to (`format` says which set).

use std::time::Duration;

/// Testing only: a CPU load (`0.95` is 95 %) this process reports instead of
/// the machine's, so a test can make one host look overloaded.
pub const FAKE_CPU_ENV: &str = "REEDBASE_FAKE_CPU";
/// Testing only: the share of memory in use to report.
pub const FAKE_MEMORY_ENV: &str = "REEDBASE_FAKE_MEMORY";

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NodeHealth {
    pub cores: u64,
    /// The one-minute load average.
    pub load1: f64,
    /// `load1 / cores` (1.0: every core busy; more: a queue).
    pub cpu: f64,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// `1 - available / total`.
    pub memory: f64,
}

impl NodeHealth {
    /// The stable machine-readable form (one line).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"format\":1,\"cores\":{},\"load1\":{:.2},\"cpu\":{:.4},\"memory_total_bytes\":{},\"memory_available_bytes\":{},\"memory\":{:.4}}}",
            self.cores,
            self.load1,
            self.cpu,
            self.memory_total_bytes,
            self.memory_available_bytes,
            self.memory
        )
    }

    /// Reads [`Self::to_json`]'s output (fields it does not know are skipped).
    pub fn from_json(text: &str) -> Option<NodeHealth> {
        let field = |name: &str| -> Option<f64> {
            let key = format!("\"{name}\":");
            let at = text.find(&key)? + key.len();
            let rest = &text[at..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            rest[..end].trim().parse().ok()
        };
        Some(NodeHealth {
            cores: field("cores")? as u64,
            load1: field("load1")?,
            cpu: field("cpu")?,
            memory_total_bytes: field("memory_total_bytes")? as u64,
            memory_available_bytes: field("memory_available_bytes")? as u64,
            memory: field("memory")?,
        })
    }
}

fn fake(var: &str) -> Option<f64> {
    std::env::var(var).ok()?.trim().parse().ok()
}

/// This machine's load and memory now.
pub fn node_health() -> NodeHealth {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let load1 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |name: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (total, available) = (kib("MemTotal") * 1024, kib("MemAvailable") * 1024);
    let memory = if total > 0 {
        1.0 - available as f64 / total as f64
    } else {
        0.0
    };
    let cpu = load1 / cores.max(1) as f64;
    NodeHealth {
        cores,
        load1,
        cpu: fake(FAKE_CPU_ENV).unwrap_or(cpu),
        memory_total_bytes: total,
        memory_available_bytes: available,
        memory: fake(FAKE_MEMORY_ENV).unwrap_or(memory),
    }
}

/// The median of some durations (none: none).
pub fn median(mut v: Vec<Duration>) -> Option<Duration> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reads_back_from_its_json() {
        let h = node_health();
        assert!(h.cores >= 1 && h.memory_total_bytes > 0, "{h:?}");
        assert!((0.0..=1.0).contains(&h.memory), "{h:?}");
        let back = NodeHealth::from_json(&h.to_json()).unwrap_or_default();
        assert_eq!(back.cores, h.cores);
        assert_eq!(back.memory_total_bytes, h.memory_total_bytes);
        assert!((back.cpu - h.cpu).abs() < 1e-3);
        assert!(NodeHealth::from_json("{\"format\":1}").is_none());
    }
}
