//! A commit checked against the rules of the table's `schema.toml`
//! (storage/schema_rules.rs says what they are). Every way a version is
//! made goes through `prepare`, so every save is checked: the mount, an
//! import, ReedQL writes, frames, conflict resolutions, sync integrations.
//!
//! Cost in proportion to the change: the per-value rules run on the
//! records the commit changes; `unique` keeps, per unique column, a count
//! of each value of the head (built once per handle, then updated by each
//! commit's changed records). The head is trusted: it was checked when it
//! was committed, and against the schema when that was set. A commit that
//! changes the header is checked whole (rare: a column added, renamed,
//! moved).

use std::collections::HashMap;
use std::sync::Arc;

use super::super::csv::{self, Hunk};
use super::super::error::{Result, StorageError};
use super::super::revisions;
use super::super::schema_rules::{Rules as SchemaRules, Violation};
use super::Table;

/// Whether a commit is checked against the schema's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rules {
    Checked,
    /// A sync integration: the replay of records that were checked where
    /// they were made. Refusing it here would make this location's head
    /// differ from the others' holding the same records (invariant 14);
    /// two saves that are each valid at their location can still break
    /// `unique` together, and that stays in the data for a later save to
    /// fix.
    Skipped,
}

impl Rules {
    pub(crate) fn for_action(action: super::super::dict::Action) -> Rules {
        if action == super::super::dict::Action::Sync {
            Rules::Skipped
        } else {
            Rules::Checked
        }
    }
}

/// Violations listed in one refusal.
const MAX_LISTED: usize = 20;

/// The rules in force for a table's committer, and what checking them keeps
/// between commits.
#[derive(Debug, Default)]
pub(super) struct RuleCache {
    /// The newest schema revision read (none: none read yet).
    revision: Option<Option<String>>,
    rules: Option<Arc<SchemaRules>>,
    unique: Option<UniqueIndex>,
}

/// Counts of the values of the unique columns of one content.
#[derive(Debug)]
struct UniqueIndex {
    /// The version hash of the content counted (a pending commit's content
    /// until it is stamped).
    digest: String,
    header: Vec<String>,
    /// (column position, name, value -> count).
    columns: Vec<(usize, String, HashMap<String, u32>)>,
}

const PENDING: &str = "pending";

impl RuleCache {
    /// A commit not checked changed the content: the counts are counted
    /// again at the next checked one.
    pub(super) fn forget_counts(&mut self) {
        self.unique = None;
    }
}

impl UniqueIndex {
    fn build(rules: &SchemaRules, content: &[u8], delim: u8, digest: String) -> UniqueIndex {
        let header = csv::record_fields(content, 0, delim);
        let mut columns: Vec<(usize, String, HashMap<String, u32>)> = header
            .iter()
            .enumerate()
            // The key (first column) is unique by the CSV rules already.
            .filter(|(i, h)| *i > 0 && rules.column(h).is_some_and(|c| c.unique))
            .map(|(i, h)| (i, h.clone(), HashMap::new()))
            .collect();
        let (mut field, mut first) = (0usize, true);
        for (value, last) in csv::fields(content, delim) {
            if !first
                && !value.is_empty()
                && let Some((_, _, counts)) = columns.iter_mut().find(|(i, ..)| *i == field)
            {
                *counts.entry(value.into_owned()).or_insert(0) += 1;
            }
            field += 1;
            if last {
                (field, first) = (0, false);
            }
        }
        UniqueIndex {
            digest,
            header,
            columns,
        }
    }

    fn change(&mut self, fields: &[String], by: i64) {
        for (i, _, counts) in &mut self.columns {
            let Some(v) = fields.get(*i).filter(|v| !v.is_empty()) else {
                continue;
            };
            let n = counts.entry(v.clone()).or_insert(0);
            *n = (i64::from(*n) + by).max(0) as u32;
            if *n == 0 {
                counts.remove(v);
            }
        }
    }
}

/// The records that start in `range` of `b` (a row hunk's side): (line,
/// fields), the header left out.
fn records_in(b: &[u8], range: std::ops::Range<usize>, delim: u8) -> Vec<(usize, Vec<String>)> {
    if range.is_empty() {
        return Vec::new();
    }
    let mut line = csv::line_of(b, range.start) as usize;
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos < range.end {
        let end = csv::record_end(b, pos);
        if pos > 0 {
            out.push((line, csv::record_fields(b, pos, delim)));
        }
        line += memchr::memchr_iter(b'\n', &b[pos..end]).count();
        pos = end;
    }
    out
}

fn refusal(table: &str, mut v: Vec<Violation>) -> StorageError {
    v.sort_by_key(|v| v.line);
    let more = v.len().saturating_sub(MAX_LISTED);
    let mut listed: Vec<String> = v.iter().take(MAX_LISTED).map(|v| v.to_string()).collect();
    if more > 0 {
        listed.push(format!("and {more} more"));
    }
    StorageError::Invalid {
        what: format!("{table} against its schema.toml"),
        reason: listed.join("; "),
    }
}

impl Table {
    /// The rules in force: the newest schema revision's (read again only
    /// when a newer one exists).
    fn rules_in_force(&self, cache: &mut RuleCache) -> Result<Option<Arc<SchemaRules>>> {
        let io = &*self.ctx.io;
        // The caller holds the lock: a frame's staged schema is decided.
        super::super::frame::settle_staged_schemas(&self.ctx, &self.name)?;
        let dir = self.dir.join("schema");
        let newest = revisions::newest(io, &dir, "toml", None)?;
        if cache.revision.as_ref() != Some(&newest) {
            let text = match &newest {
                Some(_) => revisions::current(io, &dir, "toml", None)?.and_then(|r| r.text),
                None => None,
            };
            cache.rules = match text {
                Some(t) => Some(Arc::new(SchemaRules::parse(&t, &self.name, None)?)),
                None => None,
            };
            cache.unique = None;
            cache.revision = Some(newest);
        }
        Ok(cache
            .rules
            .clone()
            .filter(|r| r.strict || !r.columns.is_empty()))
    }

    /// Checks `new` (the head `old`, changed by `hunks`) against the rules;
    /// `head_digest` is the head's version hash. On success the unique
    /// counts describe `new`, pending its stamp ([`Self::stamp_rules`]).
    pub(super) fn check_rules(
        &self,
        cache: &mut RuleCache,
        old: &[u8],
        new: &[u8],
        hunks: &[Hunk],
        head_digest: impl FnOnce() -> String,
    ) -> Result<()> {
        let Some(rules) = self.rules_in_force(cache)? else {
            return Ok(());
        };
        if new.is_empty() {
            // A dropped or emptied table holds no values.
            cache.unique = None;
            return Ok(());
        }
        let delim = self.delim();
        let header = csv::record_fields(new, 0, delim);
        let header_changed =
            old.is_empty() || hunks.iter().any(|h| h.new.start == 0 || h.old.start == 0);
        if header_changed {
            // A new header (columns added, renamed, moved): all of it.
            let rows = records_in(new, 0..new.len(), delim);
            let records = rows.iter().map(|(l, f)| (*l, f.as_slice()));
            let violations = rules.check_table(&header, records, usize::MAX);
            if !violations.is_empty() {
                cache.unique = None;
                return Err(refusal(&self.name, violations));
            }
            cache.unique = Some(UniqueIndex::build(&rules, new, delim, PENDING.into()));
            return Ok(());
        }
        // The head was checked when it was committed (and against this
        // schema when it was set): only the unique counts need building.
        let head_digest = head_digest();
        let valid = cache
            .unique
            .as_ref()
            .is_some_and(|u| u.digest == head_digest && u.header == header);
        if !valid {
            cache.unique = Some(UniqueIndex::build(&rules, old, delim, head_digest));
        }
        let mut violations = Vec::new();
        let mut added = Vec::new();
        let Some(index) = cache.unique.as_mut() else {
            return Ok(());
        };
        for h in hunks {
            for (_, fields) in records_in(old, h.old.clone(), delim) {
                index.change(&fields, -1);
            }
            added.extend(records_in(new, h.new.clone(), delim));
        }
        for (_, fields) in &added {
            index.change(fields, 1);
        }
        let positions: Vec<(usize, &super::super::schema_rules::ColumnRules)> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| Some((i, rules.column(h)?)))
            .collect();
        for (line, fields) in &added {
            for (i, c) in &positions {
                let v = fields.get(*i).map_or("", String::as_str);
                if let Some(rule) = c.broken_by(v) {
                    violations.push(Violation {
                        line: *line,
                        column: c.name.clone(),
                        rule,
                        value: v.to_string(),
                    });
                }
            }
            for (i, name, counts) in &index.columns {
                let v = fields.get(*i).map_or("", String::as_str);
                if !v.is_empty() && counts.get(v).is_some_and(|n| *n > 1) {
                    violations.push(Violation {
                        line: *line,
                        column: name.clone(),
                        rule: "unique: the value is on another line too".into(),
                        value: v.to_string(),
                    });
                }
            }
        }
        if !violations.is_empty() {
            // Counted with the refused content: built again at the next commit.
            cache.unique = None;
            return Err(refusal(&self.name, violations));
        }
        index.digest = PENDING.into();
        Ok(())
    }

    /// After a checked content's version hash is known: the unique counts
    /// describe that content.
    pub(super) fn stamp_rules(cache: &mut RuleCache, digest: &str) {
        if let Some(u) = cache.unique.as_mut()
            && u.digest == PENDING
        {
            u.digest = digest.to_string();
        }
    }

    /// Every violation of `rules` by the head (`head`), at most `limit`:
    /// what setting a schema with those rules would refuse.
    pub(crate) fn violations_of(
        &self,
        rules: &SchemaRules,
        head: &[u8],
        limit: usize,
    ) -> Vec<Violation> {
        if head.is_empty() {
            return Vec::new();
        }
        let delim = self.delim();
        let header = csv::record_fields(head, 0, delim);
        let rows = records_in(head, 0..head.len(), delim);
        rules.check_table(&header, rows.iter().map(|(l, f)| (*l, f.as_slice())), limit)
    }

    /// The refusal of a schema that the head violates.
    pub(crate) fn schema_refusal(&self, violations: Vec<Violation>) -> StorageError {
        refusal(&self.name, violations)
    }
}
