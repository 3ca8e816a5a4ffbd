//! What the benchmarks share: the generated table, a deterministic random
//! source, a one-row edit, and how times are summarised.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The `users` table of `scripts/gen_table.py` with `rows` rows (seed 7).
pub fn generate(rows: usize) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen_table.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["users", &rows.to_string(), "--seed", "7"])
        .output()
        .expect("run scripts/gen_table.py");
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Deterministic pseudo-random numbers (no dependency).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Changes the `age` (4th field) of one random plain record (no quotes).
pub fn edit_one_row(content: &[u8], rng: &mut Lcg, round: usize) -> Vec<u8> {
    let header = content.iter().position(|&b| b == b'\n').expect("header") + 1;
    loop {
        // A random byte, then the next line start: a record start unless
        // inside a quoted field (such lines are skipped below).
        let at = header + (rng.next() as usize) % (content.len() - header);
        let Some(nl) = content[at..].iter().position(|&b| b == b'\n') else {
            continue;
        };
        let start = at + nl + 1;
        let Some(len) = content[start..].iter().position(|&b| b == b'\n') else {
            continue;
        };
        let line = &content[start..start + len];
        // Skip lines of a quoted field or next to one.
        let prev_quoted = content[..start - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .is_some_and(|p| content[p..start].contains(&b'"'));
        if prev_quoted || line.contains(&b'"') {
            continue;
        }
        let text = std::str::from_utf8(line).expect("utf8");
        let mut fields: Vec<&str> = text.split('|').collect();
        if fields.len() != 10 {
            continue;
        }
        let age = format!("{}", 18 + (round % 70));
        if fields[3] == age {
            continue;
        }
        fields[3] = &age;
        let new_line = fields.join("|");
        let mut out = Vec::with_capacity(content.len() + 4);
        out.extend_from_slice(&content[..start]);
        out.extend_from_slice(new_line.as_bytes());
        out.extend_from_slice(&content[start + len..]);
        return out;
    }
}

pub fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// A line of `/proc/self/status` in KiB (`VmRSS:` now, `VmHWM:` the peak).
#[allow(dead_code)] // not every benchmark reports memory
pub fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
