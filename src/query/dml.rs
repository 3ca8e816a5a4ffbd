//! INSERT, UPDATE and DELETE: the statement becomes a new content of the
//! table, built from the head's bytes (untouched rows keep theirs), and
//! commits through the merge layer like any save: validation, merging with
//! what others committed meanwhile, conflicts (docs/QUERY.md, "Writes").

use std::sync::Arc;

use sqlparser::ast as sql;

use super::ast::Source;
use super::error::{ErrorKind, QueryError};
use super::exec::eval_row;
use super::plan::Binder;
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
    let text = match v {
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
    };
    crate::storage::csv::quote_field(&text, delim).into_owned()
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
struct Target {
    name: String,
    table: Arc<crate::storage::Table>,
    seq: u64,
    head: Arc<Vec<u8>>,
    typed: Arc<TypedTable>,
}

fn target(engine: &Engine, name: &sql::ObjectName) -> Result<Target, QueryError> {
    let db = engine.db;
    let (resolved, table) = engine.resolve_table(&name.to_string())?;
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

/// Runs one INSERT, UPDATE or DELETE; the result is `changes|version`.
pub fn run(
    engine: &Engine,
    sql_text: &str,
    statement: &sql::Statement,
    user: &str,
) -> Result<ResultSet, QueryError> {
    let delim = engine.db.config().delimiter_byte();
    let mut binder = Binder::new(engine, sql_text);
    let (t, content, changes) = match statement {
        sql::Statement::Insert(ins) => {
            let sql::TableObject::TableName(name) = &ins.table else {
                return Err(unsupported("INSERT into a table function"));
            };
            if ins.on.is_some() || ins.returning.is_some() || ins.or.is_some() {
                return Err(unsupported("ON CONFLICT, OR REPLACE and RETURNING"));
            }
            let t = target(engine, name)?;
            let columns = &t.typed.columns;
            // Which table column each inserted value goes to.
            let positions: Vec<usize> = if ins.columns.is_empty() {
                (0..columns.len()).collect()
            } else {
                ins.columns
                    .iter()
                    .map(|c| {
                        let c = c.to_string();
                        columns
                            .iter()
                            .position(|x| x.eq_ignore_ascii_case(&c))
                            .ok_or_else(|| {
                                QueryError::new(ErrorKind::Unknown, format!("no such column: {c}"))
                            })
                    })
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
            let mut content = t.head.as_ref().clone();
            if !content.ends_with(b"\n") {
                content.push(b'\n');
            }
            for r in &rows {
                if r.len() != positions.len() {
                    return Err(QueryError::new(
                        ErrorKind::Type,
                        format!("{} values for {} columns", r.len(), positions.len()),
                    ));
                }
                let mut fields = vec![String::new(); columns.len()];
                for (v, &p) in r.iter().zip(&positions) {
                    let v = match t.typed.types[p] {
                        Some(ty) => v.clone().with_affinity(ty),
                        None => v.clone(),
                    };
                    fields[p] = render(&v, delim);
                }
                content.extend_from_slice(line(&fields, delim).as_bytes());
            }
            let n = rows.len();
            (t, content, n)
        }
        sql::Statement::Update(up) => {
            if up.from.is_some()
                || up.returning.is_some()
                || !up.table.joins.is_empty()
                || up.limit.is_some()
            {
                return Err(unsupported("UPDATE with FROM, joins, LIMIT or RETURNING"));
            }
            let sql::TableFactor::Table { name, alias, .. } = &up.table.relation else {
                return Err(unsupported("UPDATE of a subquery"));
            };
            let t = target(engine, name)?;
            let sources = [source(&t, alias.as_ref().map(|a| a.name.value.clone()))];
            let filter = up
                .selection
                .as_ref()
                .map(|e| binder.row_expr(e, &sources))
                .transpose()?;
            let mut sets = Vec::new();
            for a in &up.assignments {
                let sql::AssignmentTarget::ColumnName(c) = &a.target else {
                    return Err(unsupported("tuple assignments"));
                };
                let c = c.0.last().map(|p| p.to_string()).unwrap_or_default();
                let col = t
                    .typed
                    .columns
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case(&c))
                    .ok_or_else(|| {
                        QueryError::new(ErrorKind::Unknown, format!("no such column: {c}"))
                    })?;
                sets.push((col, binder.row_expr(&a.value, &sources)?));
            }
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
                for (col, e) in &sets {
                    let v = eval_row(e, row)?;
                    let v = match t.typed.types[*col] {
                        Some(Type::Text) | None => v,
                        Some(ty) => v.with_affinity(ty),
                    };
                    if let Some(f) = fields.get_mut(*col) {
                        *f = render(&v, delim);
                    }
                }
                content.extend_from_slice(line(&fields, delim).as_bytes());
                n += 1;
            }
            (t, content, n)
        }
        sql::Statement::Delete(del) => {
            if del.using.is_some()
                || del.returning.is_some()
                || del.limit.is_some()
                || !del.tables.is_empty()
            {
                return Err(unsupported(
                    "DELETE with USING, LIMIT, RETURNING or several tables",
                ));
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
            let sources = [source(&t, alias.as_ref().map(|a| a.name.value.clone()))];
            let filter = del
                .selection
                .as_ref()
                .map(|e| binder.row_expr(e, &sources))
                .transpose()?;
            let mut content = t.head[..t.typed.header_len()].to_vec();
            let mut n = 0;
            for (i, row) in t.typed.rows().enumerate() {
                let hit = match &filter {
                    None => true,
                    Some(f) => eval_row(f, row)?.truth() == Some(true),
                };
                if hit {
                    n += 1;
                } else {
                    content.extend_from_slice(&t.head[t.typed.row_range(i, t.head.len())]);
                }
            }
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
    Ok(ResultSet {
        columns: vec!["changes".into(), "version".into()],
        rows: vec![vec![Value::Int(changes as i64), Value::Int(version as i64)]],
    })
}

fn source(t: &Target, alias: Option<String>) -> Source {
    Source {
        alias: alias.unwrap_or_else(|| t.name.clone()),
        name: t.name.clone(),
        table: Arc::clone(&t.typed),
        // The head as this write parsed it (not shared with queries).
        version: format!("write-{}", t.seq),
        offset: 0,
    }
}
