//! Migrations: a table's new schema and the data it needs, made as one
//! frame (docs/CLI.md, `schema:migrate`). This module plans the new
//! content from the head; the caller stages content and schema in a frame,
//! which checks the content against the new schema whole and commits both
//! or neither (storage/frame.rs).
//!
//! From the old header to the new one: a column the new schema declares
//! with `renamed_from` is renamed (never guessed); `--drop` removes a
//! column (nothing else does); a declared column the table lacks is added
//! with its `default` (else empty); `--map col=<expression>` fills a
//! column, new or not, with a ReedQL expression over the row as it was. A
//! column whose declared (checked) type changes has each value converted
//! (`RuleType::convert`); values that do not convert refuse the migration
//! with their lines.

use super::Engine;
use super::error::{ErrorKind, QueryError};
use super::exec::eval_row;
use super::plan::Binder;
use crate::storage::csv::{record_end, record_fields, render_record};
use crate::storage::{RuleType, Rules, StorageError};

/// What a migration asks for.
#[derive(Debug, Clone, Default)]
pub struct MigrationRequest {
    pub table: String,
    /// The new `schema.toml`.
    pub schema: String,
    /// (column, ReedQL expression over the old row).
    pub maps: Vec<(String, String)>,
    /// Columns to remove with their data.
    pub drops: Vec<String>,
}

/// A planned migration: the content to stage from version `base`, and what
/// it does, one line each.
#[derive(Debug, Clone)]
pub struct Migration {
    pub base: u64,
    pub content: Vec<u8>,
    pub steps: Vec<String>,
}

/// Conversion failures listed before "and N more".
const MAX_LISTED: usize = 20;

fn invalid(table: &str, reason: String) -> QueryError {
    QueryError::from(StorageError::Invalid {
        what: format!("the migration of {table}"),
        reason,
    })
}

/// Where a new column's values come from.
#[derive(Debug)]
enum From {
    /// The old column at this position, converted (from, to) when its
    /// checked type changes.
    Old(usize, Option<(RuleType, RuleType)>),
    /// The default (or empty).
    Default(String),
    /// The n-th `--map` expression.
    Map(usize),
}

/// The declared, checked type of `column` in `rules` (text when undeclared).
fn checked_type(rules: Option<&Rules>, column: &str) -> RuleType {
    rules
        .and_then(|r| r.column(column))
        .filter(|c| c.checked_type)
        .map_or(RuleType::Text, |c| c.kind)
}

/// Plans the migration of `req.table` from its head.
pub fn plan(engine: &Engine, req: &MigrationRequest) -> Result<Migration, QueryError> {
    let db = engine.db;
    let name = &req.table;
    // One read of the head: the rows the expressions see are its records.
    let target = super::dml::target_named(engine, name)?;
    let (base, head) = (target.seq, std::sync::Arc::clone(&target.head));
    if head.is_empty() {
        return Err(invalid(name, "the table is empty or dropped".into()));
    }
    let delim = db.config().delimiter_byte();
    let new_rules = Rules::parse(&req.schema, name, None)?;
    let old_schema = db.schema(name)?.map(|(s, _)| s.rules);
    let old_rules = old_schema.as_deref();
    let old_header = record_fields(&head, 0, delim);
    let position = |c: &str| old_header.iter().position(|h| h == c);
    let mut steps = Vec::new();

    // A rename must be unambiguous: its source there, its target not
    // (unless the source is dropped, which is then what happens).
    for c in &new_rules.columns {
        let Some(from) = c.renamed_from.as_deref() else {
            continue;
        };
        let dropped = req.drops.iter().any(|d| d == from);
        match (
            position(from).is_some(),
            position(&c.name).is_some(),
            dropped,
        ) {
            (true, true, false) => {
                return Err(invalid(
                    name,
                    format!(
                        "{} is renamed_from {from}, but the table has both: --drop one of them, or leave renamed_from out",
                        c.name
                    ),
                ));
            }
            (true, false, true) => {
                return Err(invalid(
                    name,
                    format!(
                        "{from} is renamed to {} (renamed_from) and dropped (--drop): one or the other",
                        c.name
                    ),
                ));
            }
            _ => {}
        }
    }

    // The new header: renames in place, drops out, then added columns.
    let mut header: Vec<(String, From)> = Vec::new();
    for (i, h) in old_header.iter().enumerate() {
        if req.drops.iter().any(|d| d == h) {
            if i == 0 {
                return Err(invalid(
                    name,
                    format!("{h} is the key column: it cannot be dropped"),
                ));
            }
            steps.push(format!("drop column {h}"));
            continue;
        }
        let renamed = new_rules
            .columns
            .iter()
            .find(|c| c.renamed_from.as_deref() == Some(h.as_str()) && position(&c.name).is_none());
        let new_name = renamed.map_or(h.clone(), |c| c.name.clone());
        if new_name != *h {
            steps.push(format!("rename column {h} to {new_name}"));
        }
        let (was, now) = (
            checked_type(old_rules, h),
            checked_type(Some(&new_rules), &new_name),
        );
        let convert =
            (was != now && now != RuleType::Text && now != RuleType::Enum).then_some((was, now));
        header.push((new_name, From::Old(i, convert)));
    }
    for d in &req.drops {
        if position(d).is_none() {
            return Err(invalid(name, format!("--drop {d}: no such column")));
        }
    }
    for c in &new_rules.columns {
        if let Some(from) = &c.renamed_from
            && position(from).is_none()
            && position(&c.name).is_none()
        {
            return Err(invalid(
                name,
                format!(
                    "{} is renamed_from {from}, which the table does not have",
                    c.name
                ),
            ));
        }
        if header.iter().any(|(h, _)| *h == c.name) {
            continue;
        }
        let default = c.default.clone().unwrap_or_default();
        steps.push(format!("add column {} = {default:?}", c.name));
        header.push((c.name.clone(), From::Default(default)));
    }

    // --map: bound over the old rows, replacing or adding columns.
    let mut binder = Binder::new(engine, "");
    let sources = [super::dml::source(&target, None)];
    let mut exprs = Vec::with_capacity(req.maps.len());
    for (k, (column, text)) in req.maps.iter().enumerate() {
        let parsed = super::parse::parse_expr(text)?;
        exprs.push(binder.row_expr(&parsed, &sources)?);
        match header.iter_mut().find(|(h, _)| h == column) {
            Some((_, from)) => *from = From::Map(k),
            None => header.push((column.clone(), From::Map(k))),
        }
        steps.push(format!("set column {column} = {text}"));
    }
    for (column, from) in &header {
        if let From::Old(_, Some((was, now))) = from {
            steps.push(format!(
                "convert column {column} from {} to {}",
                was.name(),
                now.name()
            ));
        }
    }

    // The rows, in order; each typed row of the target is the same record.
    let mut rows = target.typed.rows();
    let mut out = render_record(
        &header.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
        delim,
    );
    let mut failed: Vec<String> = Vec::new();
    let mut failures = 0usize;
    let mut pos = record_end(&head, 0);
    // The first record's line: after the header's (which may hold quoted newlines).
    let mut line = 1 + memchr::memchr_iter(b'\n', &head[..pos]).count();
    while pos < head.len() {
        let end = record_end(&head, pos);
        let fields = record_fields(&head, pos, delim);
        let row = rows.next();
        let mut values: Vec<String> = Vec::with_capacity(header.len());
        for (column, from) in &header {
            let v = match from {
                From::Old(i, None) => fields.get(*i).cloned().unwrap_or_default(),
                From::Old(i, Some((_, t))) => {
                    let v = fields.get(*i).map_or("", String::as_str);
                    match t.convert(v) {
                        Some(c) => c,
                        None => {
                            failures += 1;
                            if failed.len() < MAX_LISTED {
                                failed.push(format!(
                                    "line {line}, column {column}: does not convert to {} ({v:?})",
                                    t.name()
                                ));
                            }
                            v.to_string()
                        }
                    }
                }
                From::Default(d) => d.clone(),
                From::Map(k) => {
                    let Some(row) = row else {
                        return Err(QueryError::new(
                            ErrorKind::Runtime,
                            format!("{name} changed while it was read"),
                        ));
                    };
                    let v = eval_row(&exprs[*k], row).map_err(|e| QueryError {
                        message: format!("line {line}, --map {column}: {}", e.message),
                        ..e
                    })?;
                    super::dml::field_text(&v)
                }
            };
            values.push(v);
        }
        out.extend_from_slice(&render_record(&values, delim));
        line += memchr::memchr_iter(b'\n', &head[pos..end]).count();
        pos = end;
    }
    if failures > 0 {
        if failures > failed.len() {
            failed.push(format!("and {} more", failures - failed.len()));
        }
        return Err(invalid(name, failed.join("; ")));
    }
    Ok(Migration {
        base,
        content: out,
        steps,
    })
}
