//! EXPLAIN: the plan of a bound SELECT as text, one step per row.

use super::super::ResultSet;
use super::super::ast::{Select, Source};
use super::super::value::Value;
use super::Env;
use super::aggregate::dict_grouping;
use super::column_filter::columnwise;
use super::dim_join::dims_uncounted;
use super::join::index_probe;
use super::topk::top_k;

/// The plan of a bound SELECT, one step per row (EXPLAIN): how each table
/// is read (index lookup or scan), joins, filter, grouping, order, limit.
pub fn explain(s: &Select, env: &Env) -> ResultSet {
    let mut lines = Vec::new();
    let col_name = |i: usize| -> String {
        for src in &s.sources {
            if i >= src.offset && i < src.offset + src.table.columns.len() {
                return format!("{}.{}", src.alias, src.table.columns[i - src.offset]);
            }
        }
        format!("#{i}")
    };
    let describe =
        |src: &Source, col: usize| env.indexes.describe(env.policy, &src.name, &src.table, col);
    if let Some(first) = s.sources.first() {
        let width = first.table.columns.len();
        let probe = s.filter.as_ref().and_then(|f| index_probe(f, width));
        match probe.map(|(c, key)| (describe(first, c), key)) {
            Some(((true, how), key)) => lines.push(format!(
                "IndexLookup {} = {key} by {how} ({} rows)",
                first.name,
                first.table.len()
            )),
            Some(((false, how), _)) => lines.push(format!(
                "Scan {} ({} rows): {how}",
                first.name,
                first.table.len()
            )),
            None => lines.push(format!("Scan {} ({} rows)", first.name, first.table.len())),
        }
    } else {
        lines.push("Values (one row)".to_string());
    }
    // Dimension joins serve grouping by a dictionary column.
    let dims = dict_grouping(s).and_then(|_| dims_uncounted(s));
    for (j, src) in s.joins.iter().zip(&s.sources[1..]) {
        let kind = if j.left { "LeftJoin" } else { "Join" };
        lines.push(match j.equi {
            Some((l, _)) if dims.is_some() => format!(
                "{kind} {} on {} as a dimension: at most one row per value, looked up once per distinct value",
                src.name,
                col_name(l)
            ),
            Some((l, r)) => {
                let how = match describe(src, r) {
                    (true, how) => how,
                    (false, _) => format!(
                        "a hash table on {}.{} built for this query",
                        src.alias, src.table.columns[r]
                    ),
                };
                format!("{kind} {} on {} by {how}", src.name, col_name(l))
            }
            None => format!(
                "{kind} {} by nested loop ({} rows)",
                src.name,
                src.table.len()
            ),
        });
    }
    if s.filter.is_some() {
        match columnwise(s, dims.as_deref().unwrap_or(&[])) {
            (0, _) => lines.push("Filter (WHERE)".into()),
            (n, all) => lines.push(format!(
                "Filter (WHERE): {n} of {all} conditions tested column by column"
            )),
        }
    }
    if let Some((keys, aggs)) = &s.grouping {
        lines.push(format!(
            "Aggregate ({} keys, {} aggregates)",
            keys.len(),
            aggs.len()
        ));
        if s.having.is_some() {
            lines.push("Filter (HAVING)".into());
        }
    }
    match s.rank_limit {
        Some(limit) => lines.push(format!(
            "Window ({} calls): only the rows ranked at most {} in their partition, found in one pass",
            s.windows.len(),
            limit.max
        )),
        None if !s.windows.is_empty() => lines.push(format!(
            "Window ({} calls, every row held in memory)",
            s.windows.len()
        )),
        None => {}
    }
    lines.push(format!("Project {}", s.names.join(", ")));
    if s.distinct {
        lines.push("Distinct".into());
    }
    if top_k(s, env.limits).is_some() {
        lines.push(format!(
            "TopK ({} keys): the row numbers of the best {} rows kept, only those projected",
            s.order.len(),
            s.offset.saturating_add(s.limit.unwrap_or(0))
        ));
    } else if !s.order.is_empty() {
        lines.push(format!("Sort ({} keys)", s.order.len()));
    }
    if s.limit.is_some() || s.offset > 0 {
        lines.push(format!(
            "Limit {} offset {}",
            s.limit.map_or("none".to_string(), |l| l.to_string()),
            s.offset
        ));
    }
    ResultSet {
        columns: vec!["plan".into()],
        rows: lines.into_iter().map(|l| vec![Value::text(&l)]).collect(),
    }
}
