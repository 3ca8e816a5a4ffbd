//! What a schema change means: converting a value to a column's new type
//! (a migration's retype), and the differences between two schemas
//! (`rdb schema:diff`). The rules themselves are in `schema_rules.rs`.

use super::schema_rules::{
    Bound, ColumnRules, RuleType, Rules, as_boolean, as_real, is_date, is_datetime, is_integer,
};

impl RuleType {
    /// `v` as a value of this type, or None where it does not convert.
    /// A value the type admits stays as written; otherwise only exact
    /// conversions: an integral real to an integer, `true`/`false` to 1/0,
    /// 1/0 (also as reals) to a boolean, a datetime at midnight (no zone)
    /// to its date, a date to its midnight. Empty stays empty (no value).
    pub fn convert(self, v: &str) -> Option<String> {
        if v.is_empty() || self.admits(v) {
            return Some(v.to_string());
        }
        let t = v.trim();
        if !t.is_empty() && t != v && self.admits(t) {
            return Some(t.to_string());
        }
        match self {
            RuleType::Integer => {
                if let Some(b) = as_boolean(t) {
                    return Some(u8::from(b).to_string());
                }
                let x = as_real(t)?;
                // Within i64 exactly: |x| < 2^63 and no fraction.
                (x.fract() == 0.0 && x.abs() < 9.223_372_036_854_775e18)
                    .then(|| (x as i64).to_string())
                    .filter(|s| is_integer(s))
            }
            RuleType::Real => as_boolean(t).map(|b| u8::from(b).to_string()),
            RuleType::Boolean => {
                let x = as_real(t)?;
                [(1.0, "1"), (0.0, "0")]
                    .iter()
                    .find(|(n, _)| *n == x)
                    .map(|(_, s)| s.to_string())
            }
            RuleType::Date => {
                let date = t.get(..10)?;
                let time = t.get(11..)?;
                let midnight = ["00:00", "00:00:00", "00:00:00.000", "00:00Z", "00:00:00Z"];
                (is_datetime(t) && midnight.contains(&time)).then(|| date.to_string())
            }
            RuleType::Datetime => is_date(t).then(|| format!("{t}T00:00:00")),
            RuleType::Text | RuleType::Enum => Some(v.to_string()),
        }
    }
}

fn bound(b: &Bound) -> String {
    match b {
        Bound::Number(n) => n.to_string(),
        Bound::Time(t) => t.clone(),
    }
}

/// A column's rules as (rule, value) pairs, in a fixed order.
fn described(c: &ColumnRules) -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "type",
        if c.checked_type {
            c.kind.name().to_string()
        } else {
            format!("{} (queries only)", c.kind.name())
        },
    )];
    let flags = [
        ("primary_key", c.primary_key),
        ("unique", c.unique),
        ("required", c.required),
    ];
    out.extend(flags.iter().filter(|f| f.1).map(|f| (f.0, "true".into())));
    if let Some((p, _)) = &c.pattern {
        out.push(("pattern", format!("{p:?}")));
    }
    out.extend(c.min.as_ref().map(|b| ("min", bound(b))));
    out.extend(c.max.as_ref().map(|b| ("max", bound(b))));
    out.extend(c.max_length.map(|n| ("max_length", n.to_string())));
    if !c.values.is_empty() {
        out.push(("values", format!("{:?}", c.values)));
    }
    out.extend(c.default.as_ref().map(|d| ("default", format!("{d:?}"))));
    out
}

fn listed(pairs: &[(&str, String)]) -> String {
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    parts.join(", ")
}

/// What changed from `old` to `new`, one line each: `+ column c (rules)`,
/// `- column c`, `> column a renamed to b`, `~ column c: rule old -> new`,
/// and the table-wide keys. Empty when they are the same.
pub fn diff(old: &Rules, new: &Rules) -> Vec<String> {
    let mut out = Vec::new();
    if old.strict != new.strict {
        out.push(format!("~ strict: {} -> {}", old.strict, new.strict));
    }
    if old.version != new.version {
        let v = |v: Option<u64>| v.map_or("none".to_string(), |v| v.to_string());
        out.push(format!(
            "~ version: {} -> {}",
            v(old.version),
            v(new.version)
        ));
    }
    for c in &new.columns {
        let before = old.column(&c.name).or_else(|| {
            c.renamed_from
                .as_deref()
                .and_then(|from| old.column(from))
                .filter(|_| old.column(&c.name).is_none())
        });
        let Some(b) = before else {
            let mut rules = described(c);
            // Renaming a column the old schema did not declare.
            rules.extend(
                c.renamed_from
                    .as_ref()
                    .map(|f| ("renamed_from", format!("{f:?}"))),
            );
            out.push(format!("+ column {} ({})", c.name, listed(&rules)));
            continue;
        };
        if b.name != c.name {
            out.push(format!("> column {} renamed to {}", b.name, c.name));
        }
        let (was, now) = (described(b), described(c));
        for (rule, value) in &now {
            match was.iter().find(|(r, _)| r == rule) {
                Some((_, w)) if w == value => {}
                Some((_, w)) => out.push(format!("~ column {}: {rule} {w} -> {value}", c.name)),
                None => out.push(format!("~ column {}: {rule} added ({value})", c.name)),
            }
        }
        for (rule, w) in &was {
            if !now.iter().any(|(r, _)| r == rule) {
                out.push(format!("~ column {}: {rule} removed (was {w})", c.name));
            }
        }
    }
    for b in &old.columns {
        let kept = new.column(&b.name).is_some()
            || new
                .columns
                .iter()
                .any(|c| c.renamed_from.as_deref() == Some(b.name.as_str()));
        if !kept {
            out.push(format!("- column {}", b.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_exactly_or_not_at_all() {
        let cases = [
            (RuleType::Integer, "12", Some("12")),
            (RuleType::Integer, " 12 ", Some("12")),
            (RuleType::Integer, "12.0", Some("12")),
            (RuleType::Integer, "12.5", None),
            (RuleType::Integer, "true", Some("1")),
            (RuleType::Integer, "1e30", None),
            (RuleType::Integer, "abc", None),
            (RuleType::Integer, "", Some("")),
            (RuleType::Real, "3", Some("3")),
            (RuleType::Real, "x", None),
            (RuleType::Boolean, "1.0", Some("1")),
            (RuleType::Boolean, "TRUE", Some("TRUE")),
            (RuleType::Boolean, "2", None),
            (RuleType::Date, "2026-01-02T00:00:00", Some("2026-01-02")),
            (RuleType::Date, "2026-01-02T10:00:00", None),
            (RuleType::Date, "2026-02-30", None),
            (
                RuleType::Datetime,
                "2026-01-02",
                Some("2026-01-02T00:00:00"),
            ),
            (RuleType::Text, "anything", Some("anything")),
        ];
        for (t, v, want) in cases {
            let got = t.convert(v);
            assert_eq!(got.as_deref(), want, "{v:?} to {}", t.name());
            if let Some(g) = got.filter(|g| !g.is_empty()) {
                assert!(t.admits(&g), "{g:?} is a {}", t.name());
            }
        }
    }

    #[test]
    fn diff_names_each_change() {
        let parse = |t: &str| Rules::parse(t, "t", None).unwrap();
        let old = parse(
            "[columns.id]\ntype = \"integer\"\n[columns.mail]\ntype = \"text\"\n[columns.age]\ntype = \"integer\"\nmin = 0\n[columns.gone]\ntype = \"text\"\n",
        );
        let new = parse(
            "strict = true\n[columns.id]\ntype = \"integer\"\n[columns.email]\ntype = \"text\"\nunique = true\nrenamed_from = \"mail\"\n[columns.age]\ntype = \"real\"\n[columns.city]\ntype = \"text\"\ndefault = \"Oslo\"\n",
        );
        let d = diff(&old, &new);
        let want = [
            "~ strict: false -> true",
            "~ column age: type integer -> real",
            "~ column age: min removed (was 0)",
            "+ column city (type = text, default = \"Oslo\")",
            "> column mail renamed to email",
            "~ column email: unique added (true)",
            "- column gone",
        ];
        assert_eq!(d, want);
        assert!(diff(&old, &old).is_empty());
    }
}
