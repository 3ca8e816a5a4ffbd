//! INSERT, UPDATE and DELETE: the statement becomes a new content of the
//! table, built from the head's bytes (untouched rows keep theirs), and
//! commits through the merge layer like any save: validation, merging with
//! what others committed meanwhile, conflicts (docs/QUERY.md, "Writes").

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast as sql;

use super::ast::{Expr, Source};
use super::cells::RowRef;
use super::error::{ErrorKind, QueryError};
use super::exec::{eval_parts, eval_row};
use super::plan::{Binder, EXCLUDED};
use super::table::TypedTable;
use super::value::Value;
use super::{Engine, ResultSet, Type};
use crate::merge::{self, Outcome};
use crate::storage::csv::record_fields;
use crate::storage::{Action, CommitOptions};

/// A field as the table stores it: NULL is empty; a real keeps a decimal
/// point so the column stays REAL; quoted when it holds the delimiter, a
/// quote or a line break.
fn render(v: &Value, delim: u8) -> String {
    crate::storage::csv::quote_field(&field_text(v), delim).into_owned()
}

/// A value as a field's text, unquoted (see [`render`]).
pub(super) fn field_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Int(i) => i.to_string(),
        Value::Real(r) => {
            let s = format!("{r}");
            if s.contains(['.', 'e', 'E', 'i', 'N']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        Value::Text(t) => t.to_string(),
    }
}

fn line(fields: &[String], delim: u8) -> String {
    let mut l = fields.join(&(delim as char).to_string());
    l.push('\n');
    l
}

fn unsupported(what: &str) -> QueryError {
    QueryError::new(
        ErrorKind::Unsupported,
        format!("ReedQL does not support {what}"),
    )
}

/// The table a statement writes: its name, head, parsed rows and record offsets.
pub(super) struct Target {
    name: String,
    table: Arc<crate::storage::Table>,
    pub(super) seq: u64,
    pub(super) head: Arc<Vec<u8>>,
    pub(super) typed: Arc<TypedTable>,
}

fn target(engine: &Engine, name: &sql::ObjectName) -> Result<Target, QueryError> {
    target_named(engine, &name.to_string())
}

/// The table `name` as a statement writes it (also a migration's source).
pub(super) fn target_named(engine: &Engine, name: &str) -> Result<Target, QueryError> {
    let db = engine.db;
    let (resolved, table) = engine.resolve_table(name)?;
    if table.is_dropped()? {
        return Err(QueryError::new(
            ErrorKind::Unknown,
            format!("table {resolved} is dropped (`rdb table:restore` brings it back)"),
        ));
    }
    let (seq, head) = table.head()?;
    let delim = db.config().delimiter_byte();
    // Typed as queries type it: with the declared schema, if any.
    let declared = db
        .schema(&resolved)?
        .map(|(s, _)| s.columns)
        .unwrap_or_default();
    // One parse: the typed rows know their records' byte ranges too.
    let typed = Arc::new(TypedTable::parse_declared(&head, delim, &declared)?);
    Ok(Target {
        name: resolved,
        table,
        seq,
        head,
        typed,
    })
}

/// What INSERT does with a row whose key the table (or the statement) has.
enum OnConflict {
    /// Write it anyway: the storage layer refuses the duplicate key.
    Fail,
    Nothing,
    /// The row replaces the one there, in its place.
    Replace,
    Update {
        sets: Vec<(usize, Expr)>,
        filter: Option<Expr>,
    },
}

/// Where a key is: a row of the head, or a row this statement inserts.
#[derive(Clone, Copy)]
enum Slot {
    Head(usize),
    New(usize),
}

/// A head row this statement rewrites: its values and its fields as written.
struct Rewritten {
    values: Vec<Value>,
    fields: Vec<String>,
}

fn column_of(t: &Target, c: &str) -> Result<usize, QueryError> {
    t.typed
        .columns
        .iter()
        .position(|x| x.eq_ignore_ascii_case(c))
        .ok_or_else(|| QueryError::new(ErrorKind::Unknown, format!("no such column: {c}")))
}

/// SET's targets and expressions, bound over `sources`.
fn assignments(
    binder: &mut Binder,
    t: &Target,
    list: &[sql::Assignment],
    sources: &[Source],
) -> Result<Vec<(usize, Expr)>, QueryError> {
    let mut sets = Vec::new();
    for a in list {
        let sql::AssignmentTarget::ColumnName(c) = &a.target else {
            return Err(unsupported("tuple assignments"));
        };
        let c = c.0.last().map(|p| p.to_string()).unwrap_or_default();
        sets.push((column_of(t, &c)?, binder.row_expr(&a.value, sources)?));
    }
    Ok(sets)
}

/// A value as column `col` stores it (an assigned or inserted value).
fn typed(t: &Target, col: usize, v: Value) -> Value {
    match t.typed.types.get(col).copied().flatten() {
        Some(Type::Text) | None => v,
        Some(ty) => v.with_affinity(ty),
    }
}

/// A key as the storage layer compares it: the field's text.
fn key_text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.to_string(),
        Value::Null => String::new(),
        v => {
            let r = render(v, b',');
            r.trim_matches('"').to_string()
        }
    }
}

fn on_conflict(
    binder: &mut Binder,
    t: &Target,
    ins: &sql::Insert,
) -> Result<OnConflict, QueryError> {
    let from_or = match ins.or {
        None
        | Some(sql::SqliteOnConflict::Abort)
        | Some(sql::SqliteOnConflict::Fail)
        | Some(sql::SqliteOnConflict::Rollback) => OnConflict::Fail,
        Some(sql::SqliteOnConflict::Ignore) => OnConflict::Nothing,
        Some(sql::SqliteOnConflict::Replace) => OnConflict::Replace,
    };
    let Some(on) = &ins.on else {
        return Ok(from_or);
    };
    if ins.or.is_some() {
        return Err(unsupported("INSERT OR ... together with ON CONFLICT"));
    }
    let sql::OnInsert::OnConflict(oc) = on else {
        return Err(unsupported(
            "ON DUPLICATE KEY UPDATE (write ON CONFLICT (key) DO UPDATE SET ...)",
        ));
    };
    let key = t.typed.columns.first().cloned().unwrap_or_default();
    match &oc.conflict_target {
        None => {}
        Some(sql::ConflictTarget::Columns {
            columns,
            predicate: None,
        }) if matches!(columns.as_slice(), [c] if c.value.eq_ignore_ascii_case(&key)) => {}
        Some(target) => {
            return Err(QueryError::new(
                ErrorKind::Unsupported,
                format!(
                    "ON CONFLICT target {target}: the only unique column of {} is its key, \
                     write ON CONFLICT ({key})",
                    t.name
                ),
            ));
        }
    }
    Ok(match &oc.action {
        sql::OnConflictAction::DoNothing => OnConflict::Nothing,
        sql::OnConflictAction::DoUpdate(du) => {
            let sources = [
                source(t, None),
                Source {
                    name: EXCLUDED.into(),
                    alias: "excluded".into(),
                    table: Arc::clone(&t.typed),
                    version: format!("excluded-{}", t.seq),
                    offset: t.typed.columns.len(),
                },
            ];
            let sets = assignments(binder, t, &du.assignments, &sources)?;
            let filter = du
                .selection
                .as_ref()
                .map(|e| binder.row_expr(e, &sources))
                .transpose()?;
            OnConflict::Update { sets, filter }
        }
    })
}

/// RETURNING's column names and expressions.
type Returning = (Vec<String>, Vec<Expr>);

/// RETURNING's expressions, bound over the written table, with their names.
fn returning(
    binder: &mut Binder,
    t: &Target,
    items: &Option<Vec<sql::SelectItem>>,
) -> Result<Option<Returning>, QueryError> {
    let Some(items) = items else {
        return Ok(None);
    };
    // Named by the table's name, not the statement's alias (SQLite).
    let sources = [source(t, None)];
    let (mut names, mut exprs) = (Vec::new(), Vec::new());
    for item in items {
        match item {
            sql::SelectItem::UnnamedExpr(e) => {
                names.push(e.to_string());
                exprs.push(binder.row_expr(e, &sources)?);
            }
            sql::SelectItem::ExprWithAlias { expr, alias } => {
                names.push(alias.value.clone());
                exprs.push(binder.row_expr(expr, &sources)?);
            }
            sql::SelectItem::Wildcard(_) => {
                for (i, c) in t.typed.columns.iter().enumerate() {
                    names.push(c.clone());
                    exprs.push(Expr::Col(i, t.typed.types[i]));
                }
            }
            _ => return Err(unsupported("this RETURNING item (write * or expressions)")),
        }
    }
    Ok(Some((names, exprs)))
}

fn eval_all(exprs: &[Expr], row: RowRef) -> Result<Vec<Value>, QueryError> {
    exprs.iter().map(|e| eval_row(e, row)).collect()
}

/// Runs one INSERT, UPDATE or DELETE; the result is `changes|version`, or
/// with RETURNING the rows it asks for.
pub fn run(
    engine: &Engine,
    sql_text: &str,
    statement: &sql::Statement,
    user: &str,
) -> Result<ResultSet, QueryError> {
    let delim = engine.db.config().delimiter_byte();
    let mut binder = Binder::new(engine, sql_text);
    // The rows RETURNING gives, and its column names.
    let mut returned: Vec<Vec<Value>> = Vec::new();
    let mut ret_names: Option<Vec<String>> = None;
    let (t, content, changes) = match statement {
        sql::Statement::Insert(ins) => {
            let sql::TableObject::TableName(name) = &ins.table else {
                return Err(unsupported("INSERT into a table function"));
            };
            if ins.replace_into {
                return Err(unsupported("REPLACE INTO (write INSERT OR REPLACE INTO)"));
            }
            let t = target(engine, name)?;
            let conflict = on_conflict(&mut binder, &t, ins)?;
            let ret = returning(&mut binder, &t, &ins.returning)?;
            let columns = &t.typed.columns;
            let ncols = columns.len();
            // Which table column each inserted value goes to.
            let positions: Vec<usize> = if ins.columns.is_empty() {
                (0..ncols).collect()
            } else {
                ins.columns
                    .iter()
                    .map(|c| column_of(&t, &c.to_string()))
                    .collect::<Result<_, _>>()?
            };
            let rows: Vec<Vec<Value>> = match ins.source.as_deref() {
                Some(q) => match &*q.body {
                    sql::SetExpr::Values(v) => v
                        .rows
                        .iter()
                        .map(|r| r.content.iter().map(|e| binder.const_expr(e)).collect())
                        .collect::<Result<_, _>>()?,
                    _ => {
                        let select = binder.bind_query(q)?;
                        super::exec::run_whole(&select, &engine.env())?.rows
                    }
                },
                None => return Err(unsupported("INSERT without VALUES or SELECT")),
            };
            // The head's rows by key, read only when a conflict is handled.
            let head_rows: Vec<RowRef> = match conflict {
                OnConflict::Fail => Vec::new(),
                _ => t.typed.rows().collect(),
            };
            let mut keys: HashMap<String, Slot> = HashMap::new();
            for i in 0..head_rows.len() {
                let start = t.typed.row_range(i, t.head.len()).start;
                let key = record_fields(&t.head, start, delim)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                keys.insert(key, Slot::Head(i));
            }
            let mut rewritten: HashMap<usize, Rewritten> = HashMap::new();
            let mut inserted: Vec<Vec<Value>> = Vec::new();
            // What RETURNING reports, in the order the rows were written.
            let mut order: Vec<Slot> = Vec::new();
            let mut n = 0;
            for r in &rows {
                if r.len() != positions.len() {
                    return Err(QueryError::new(
                        ErrorKind::Type,
                        format!("{} values for {} columns", r.len(), positions.len()),
                    ));
                }
                let mut values = vec![Value::Null; ncols];
                for (v, &p) in r.iter().zip(&positions) {
                    values[p] = typed(&t, p, v.clone());
                }
                let key = values.first().map(key_text).unwrap_or_default();
                let slot = match conflict {
                    OnConflict::Fail => None,
                    _ => keys.get(&key).copied(),
                };
                let Some(slot) = slot else {
                    if !matches!(conflict, OnConflict::Fail) {
                        keys.insert(key, Slot::New(inserted.len()));
                    }
                    order.push(Slot::New(inserted.len()));
                    inserted.push(values);
                    n += 1;
                    continue;
                };
                let new_values = match &conflict {
                    OnConflict::Fail | OnConflict::Nothing => continue,
                    OnConflict::Replace => values,
                    OnConflict::Update { sets, filter } => {
                        let old: RowRef = match slot {
                            Slot::Head(i) => match rewritten.get(&i) {
                                Some(rw) => RowRef::Values(&rw.values),
                                None => head_rows[i],
                            },
                            Slot::New(j) => RowRef::Values(&inserted[j]),
                        };
                        let parts = [old, RowRef::Values(&values)];
                        let offsets = [0, ncols];
                        if let Some(f) = filter
                            && eval_parts(f, &parts, &offsets)?.truth() != Some(true)
                        {
                            continue;
                        }
                        let mut next: Vec<Value> = (0..ncols)
                            .map(|c| old.get(c).unwrap_or(Value::Null))
                            .collect();
                        let mut changed = Vec::new();
                        for (col, e) in sets {
                            let v = typed(&t, *col, eval_parts(e, &parts, &offsets)?);
                            changed.push((*col, v));
                        }
                        for (col, v) in changed {
                            if let Some(x) = next.get_mut(col) {
                                *x = v;
                            }
                        }
                        next
                    }
                };
                n += 1;
                // A key changed by DO UPDATE moves in the map.
                let new_key = new_values.first().map(key_text).unwrap_or_default();
                if new_key != key {
                    if keys.contains_key(&new_key) {
                        return Err(QueryError::new(
                            ErrorKind::Runtime,
                            format!("duplicate key {new_key:?}: {} not changed", t.name),
                        ));
                    }
                    keys.remove(&key);
                    keys.insert(new_key, slot);
                }
                match slot {
                    Slot::New(j) => inserted[j] = new_values,
                    Slot::Head(i) => {
                        // Fields the write did not change keep their text.
                        let (fields, old) = match rewritten.remove(&i) {
                            Some(rw) => (rw.fields, rw.values),
                            None => {
                                let start = t.typed.row_range(i, t.head.len()).start;
                                let fields = record_fields(&t.head, start, delim)
                                    .iter()
                                    .map(|f| render(&Value::text(f), delim))
                                    .collect::<Vec<_>>();
                                let values = (0..ncols)
                                    .map(|c| head_rows[i].get(c).unwrap_or(Value::Null))
                                    .collect::<Vec<_>>();
                                (fields, values)
                            }
                        };
                        let fields = fields
                            .into_iter()
                            .enumerate()
                            .map(|(c, f)| match (old.get(c), new_values.get(c)) {
                                (Some(a), Some(b)) if same(a, b) => f,
                                (_, Some(b)) => render(b, delim),
                                _ => f,
                            })
                            .collect();
                        rewritten.insert(
                            i,
                            Rewritten {
                                values: new_values,
                                fields,
                            },
                        );
                    }
                }
                if !order.iter().any(|o| same_slot(*o, slot)) {
                    order.push(slot);
                }
            }
            let mut content;
            if rewritten.is_empty() {
                content = t.head.as_ref().clone();
            } else {
                content = t.head[..t.typed.header_len()].to_vec();
                for i in 0..head_rows.len() {
                    match rewritten.get(&i) {
                        Some(rw) => content.extend_from_slice(line(&rw.fields, delim).as_bytes()),
                        None => {
                            content.extend_from_slice(&t.head[t.typed.row_range(i, t.head.len())])
                        }
                    }
                }
            }
            if !content.ends_with(b"\n") {
                content.push(b'\n');
            }
            for values in &inserted {
                let fields: Vec<String> = values.iter().map(|v| render(v, delim)).collect();
                content.extend_from_slice(line(&fields, delim).as_bytes());
            }
            if let Some((names, exprs)) = ret {
                for slot in order {
                    let row = match slot {
                        Slot::New(j) => &inserted[j],
                        Slot::Head(i) => match rewritten.get(&i) {
                            Some(rw) => &rw.values,
                            None => continue,
                        },
                    };
                    returned.push(eval_all(&exprs, RowRef::Values(row))?);
                }
                ret_names = Some(names);
            }
            (t, content, n)
        }
        sql::Statement::Update(up) => {
            if up.from.is_some() || !up.table.joins.is_empty() || up.limit.is_some() {
                return Err(unsupported("UPDATE with FROM, joins or LIMIT"));
            }
            if up.or.is_some() {
                return Err(unsupported("UPDATE OR ..."));
            }
            let sql::TableFactor::Table { name, alias, .. } = &up.table.relation else {
                return Err(unsupported("UPDATE of a subquery"));
            };
            let t = target(engine, name)?;
            let alias = alias.as_ref().map(|a| a.name.value.clone());
            let sources = [source(&t, alias)];
            let filter = up
                .selection
                .as_ref()
                .map(|e| binder.row_expr(e, &sources))
                .transpose()?;
            let sets = assignments(&mut binder, &t, &up.assignments, &sources)?;
            let ret = returning(&mut binder, &t, &up.returning)?;
            let ncols = t.typed.columns.len();
            let mut content = t.head[..t.typed.header_len()].to_vec();
            let mut n = 0;
            for (i, row) in t.typed.rows().enumerate() {
                let range = t.typed.row_range(i, t.head.len());
                let hit = match &filter {
                    None => true,
                    Some(f) => eval_row(f, row)?.truth() == Some(true),
                };
                if !hit {
                    content.extend_from_slice(&t.head[range]);
                    continue;
                }
                let mut fields: Vec<String> = record_fields(&t.head, range.start, delim)
                    .iter()
                    .map(|f| render(&Value::text(f), delim))
                    .collect();
                let mut values: Vec<Value> = Vec::new();
                if ret.is_some() {
                    values = (0..ncols)
                        .map(|c| row.get(c).unwrap_or(Value::Null))
                        .collect();
                }
                for (col, e) in &sets {
                    let v = typed(&t, *col, eval_row(e, row)?);
                    if let Some(f) = fields.get_mut(*col) {
                        *f = render(&v, delim);
                    }
                    if let Some(x) = values.get_mut(*col) {
                        *x = v;
                    }
                }
                if let Some((_, exprs)) = &ret {
                    returned.push(eval_all(exprs, RowRef::Values(&values))?);
                }
                content.extend_from_slice(line(&fields, delim).as_bytes());
                n += 1;
            }
            ret_names = ret.map(|(names, _)| names);
            (t, content, n)
        }
        sql::Statement::Delete(del) => {
            if del.using.is_some() || del.limit.is_some() || !del.tables.is_empty() {
                return Err(unsupported("DELETE with USING, LIMIT or several tables"));
            }
            let (sql::FromTable::WithFromKeyword(from) | sql::FromTable::WithoutKeyword(from)) =
                &del.from;
            let [twj] = from.as_slice() else {
                return Err(unsupported("DELETE from several tables"));
            };
            let sql::TableFactor::Table { name, alias, .. } = &twj.relation else {
                return Err(unsupported("DELETE from a subquery"));
            };
            let t = target(engine, name)?;
            let alias = alias.as_ref().map(|a| a.name.value.clone());
            let sources = [source(&t, alias)];
            let filter = del
                .selection
                .as_ref()
                .map(|e| binder.row_expr(e, &sources))
                .transpose()?;
            let ret = returning(&mut binder, &t, &del.returning)?;
            let mut content = t.head[..t.typed.header_len()].to_vec();
            let mut n = 0;
            for (i, row) in t.typed.rows().enumerate() {
                let hit = match &filter {
                    None => true,
                    Some(f) => eval_row(f, row)?.truth() == Some(true),
                };
                if hit {
                    n += 1;
                    if let Some((_, exprs)) = &ret {
                        returned.push(eval_all(exprs, row)?);
                    }
                } else {
                    content.extend_from_slice(&t.head[t.typed.row_range(i, t.head.len())]);
                }
            }
            ret_names = ret.map(|(names, _)| names);
            (t, content, n)
        }
        _ => return Err(unsupported("this statement")),
    };
    let cfg = engine.db.config();
    let opts = CommitOptions::new(Action::Sql, user);
    let version =
        match merge::commit_merging(&t.table, t.seq, content, &opts, cfg.conflict_policy, delim) {
            Ok(Outcome::Clean(c)) | Ok(Outcome::Merged { committed: c, .. }) => c.version.seq,
            Err(e) => return Err(QueryError::from(e).context(format!("{} not changed", t.name))),
        };
    if let Some(columns) = ret_names {
        return Ok(ResultSet {
            columns,
            rows: returned,
        });
    }
    Ok(ResultSet {
        columns: vec!["changes".into(), "version".into()],
        rows: vec![vec![Value::Int(changes as i64), Value::Int(version as i64)]],
    })
}

fn same_slot(a: Slot, b: Slot) -> bool {
    matches!((a, b), (Slot::Head(x), Slot::Head(y)) | (Slot::New(x), Slot::New(y)) if x == y)
}

/// The same value, type and all (a field keeps its text when unchanged).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Real(x), Value::Real(y)) => x.to_bits() == y.to_bits(),
        (Value::Text(x), Value::Text(y)) => x == y,
        _ => false,
    }
}

pub(super) fn source(t: &Target, alias: Option<String>) -> Source {
    Source {
        alias: alias.unwrap_or_else(|| t.name.clone()),
        name: t.name.clone(),
        table: Arc::clone(&t.typed),
        // The head as this write parsed it (not shared with queries).
        version: format!("write-{}", t.seq),
        offset: 0,
    }
}
