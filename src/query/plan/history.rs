//! `history('<table>'[, '<key>'])` in FROM: a table's row history as rows
//! (docs/QUERY.md, "Row history"): one per changed cell, with the columns
//! `rdb row:history` prints, so history joins with current data. With a
//! key, only that row's changes are read (from the row log); without, every
//! change of every version.

use std::sync::Arc;

use sqlparser::ast as sql;

use super::compose::Rows;
use super::{Binder, Scope, err};
use crate::query::ast::Source;
use crate::query::error::{ErrorKind, QueryError};
use crate::query::exec;
use crate::query::table::TypedTable;
use crate::query::value::{Type, Value};
use crate::storage::HISTORY_COLUMNS;

impl Binder<'_> {
    /// The rows of `history(...)`: `args` are the table's name and,
    /// optionally, a key.
    pub(super) fn history_source(
        &mut self,
        f: &sql::TableFactor,
        args: &sql::TableFunctionArgs,
        alias: Option<&sql::TableAlias>,
        offset: usize,
    ) -> Result<Source, QueryError> {
        let usage = || {
            err(
                ErrorKind::Type,
                f,
                "history takes a table's name and optionally a key: history('users') or history('users', '42')",
            )
        };
        let mut texts = Vec::new();
        for a in &args.args {
            let sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) = a else {
                return Err(usage());
            };
            let bound = self.expr(e, &Scope { sources: &[] }, None)?;
            match exec::eval_const(&bound)? {
                Value::Null => return Err(usage()),
                v => texts.push(v.to_string()),
            }
        }
        let (name, key) = match texts.as_slice() {
            [t] => (t.clone(), None),
            [t, k] => (t.clone(), Some(k.clone())),
            _ => return Err(usage()),
        };
        // Read as the table is: a later commit makes a cached result stale.
        let (_, version, stored) = self.engine.table(&name, None)?;
        self.read.push((stored.clone(), version.clone()));
        let table = self.engine.db.table(&stored)?;
        let limit = self.engine.limits.max_rows_in_memory;
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for (v, change) in table.changes(key.as_deref())? {
            let time = format!(
                "{}.{:06}",
                crate::storage::names::format_ts_human(v.ts_us),
                v.ts_us % 1_000_000
            );
            let text = |s: &str| Value::text(s);
            let opt = |s: Option<String>| s.map_or(Value::Null, |s| Value::text(&s));
            for (column, old, new) in change.cells() {
                if rows.len() as u64 >= limit {
                    return Err(exec::too_large(&self.engine.limits));
                }
                rows.push(vec![
                    Value::Int(v.seq as i64),
                    text(&time),
                    text(&v.user),
                    text(&v.action),
                    opt(v.frame.clone()),
                    text(&change.key),
                    text(change.kind.name()),
                    text(&column),
                    opt(old),
                    opt(new),
                ]);
            }
        }
        let mut types = vec![Some(Type::Text); HISTORY_COLUMNS.len()];
        types[0] = Some(Type::Integer);
        let rows = Rows {
            names: HISTORY_COLUMNS.iter().map(|c| c.to_string()).collect(),
            types,
            rows,
        };
        let alias = alias.map_or_else(|| "history".to_string(), |a| a.name.value.clone());
        Ok(Source {
            name: "history".to_string(),
            alias,
            table: Arc::new(TypedTable::from_values(rows.names, rows.types, rows.rows)),
            version,
            offset,
        })
    }
}
