//! Window functions (`f(...) OVER (...)`), with SQLite's semantics: after
//! WHERE, GROUP BY and HAVING, over the rows (or groups) held in memory,
//! before the final ORDER BY, DISTINCT and LIMIT.
//!
//! Each call sorts the row numbers once by (partition keys, ORDER BY keys)
//! (calls with the same PARTITION BY and ORDER BY share that sort); the
//! rows are never copied, only their keys read once, integer keys kept as
//! integers. Then, per partition: ranking functions from the peer groups
//! (rows equal on every ORDER BY key), LAG/LEAD by position, and the value
//! and aggregate functions over each row's frame; a frame that starts at
//! the partition's start (every default frame) is aggregated
//! incrementally, any other is aggregated anew per row.

use std::cmp::Ordering;

use super::super::ast::{
    ArithOp, Frame, FrameBound, FrameUnits, OrderKey, Select, WinFunc, WindowCall,
};
use super::super::error::QueryError;
use super::super::value::{Type, Value};
use super::aggregate::{accumulate, agg_input, finish, new_acc};
use super::eval::{Ctx, arith, eval, runtime};
use super::keycol::KeyCol;
use super::order::{OutRow, keep_best, out_row};
use super::{Env, too_large};

impl<'a> Ctx<'a> {
    /// The row or group under a window's values.
    pub(super) fn base(&self) -> &Ctx<'a> {
        match self {
            Ctx::Win(inner, _) => inner,
            other => other,
        }
    }
}

/// The output rows (projection, sort keys) of rows or groups whose
/// projection or ORDER BY calls window functions.
pub(super) fn project_windowed(
    s: &Select,
    env: &Env,
    ctxs: &[Ctx],
) -> Result<Vec<OutRow>, QueryError> {
    let w = s.windows.len();
    // A rank limit: the window over the rows it keeps, the others dropped.
    let kept: Vec<Ctx>;
    let mut ctxs = ctxs;
    if let Some(limit) = s.rank_limit
        && let Some(call) = s.windows.get(limit.call)
        && let Some(rows) = super::rank_limit::candidates(call, limit, env, ctxs)?
    {
        kept = rows
            .iter()
            .filter_map(|&i| ctxs.get(i as usize).copied())
            .collect();
        ctxs = &kept;
    }
    let (values, sorted) = window_values(&s.windows, env, ctxs)?;
    // ORDER BY with LIMIT keeps only the best OFFSET + LIMIT rows.
    let keep = s
        .limit
        .filter(|_| !s.order.is_empty() && !s.distinct)
        .map(|l| s.offset.saturating_add(l).max(1));
    let mut out = Vec::new();
    // Rows come out in the window's order when there is one, as SQLite's
    // do (what a LIMIT without ORDER BY then takes).
    let order: Box<dyn Iterator<Item = usize>> = match &sorted {
        Some(perm) => Box::new(perm.iter().map(|&i| i as usize)),
        None => Box::new(0..ctxs.len()),
    };
    for i in order {
        env.limits.interrupt.check()?;
        let Some(c) = ctxs.get(i) else {
            continue;
        };
        let mine = values.get(i * w..(i + 1) * w).unwrap_or(&[]);
        out.push(out_row(s, &Ctx::Win(c, mine))?);
        keep_best(s, &mut out, keep);
    }
    Ok(out)
}

/// Every call's value for every row: row `i`'s value of call `j` at
/// `i * calls.len() + j`; and, when every call shares one PARTITION BY
/// and ORDER BY, the row numbers in that order.
fn window_values(
    calls: &[WindowCall],
    env: &Env,
    ctxs: &[Ctx],
) -> Result<(Vec<Value>, Option<Vec<u32>>), QueryError> {
    let w = calls.len();
    if u32::try_from(ctxs.len()).is_err() {
        return Err(too_large(env.limits));
    }
    let mut out = vec![Value::Null; ctxs.len() * w];
    let mut layouts: Vec<(usize, Layout)> = Vec::new();
    for (j, call) in calls.iter().enumerate() {
        let shared = layouts.iter().position(|(k, _)| {
            calls[*k].partition == call.partition && calls[*k].order == call.order
        });
        let at = match shared {
            Some(at) => at,
            None => {
                layouts.push((j, layout(call, env, ctxs)?));
                layouts.len() - 1
            }
        };
        let lay = &layouts[at].1;
        let mut set = |row: u32, v: Value| {
            if let Some(slot) = out.get_mut(row as usize * w + j) {
                *slot = v;
            }
        };
        compute(call, lay, env, ctxs, &mut set)?;
    }
    let sorted = match layouts.len() {
        1 => layouts.pop().map(|(_, lay)| lay.perm),
        _ => None,
    };
    Ok((out, sorted))
}

/// The rows of one PARTITION BY and ORDER BY, sorted.
struct Layout {
    /// Row numbers in (partition, order) order; a "position" indexes this.
    perm: Vec<u32>,
    /// Each partition's [start, end) positions.
    parts: Vec<(usize, usize)>,
    /// Each position's peer group (rows equal on every ORDER BY key; all
    /// of a partition without ORDER BY), numbered over all partitions.
    peer: Vec<u32>,
    /// Each peer group's [start, end) positions.
    groups: Vec<(usize, usize)>,
}

fn layout(call: &WindowCall, env: &Env, ctxs: &[Ctx]) -> Result<Layout, QueryError> {
    let part: Vec<KeyCol> = call
        .partition
        .iter()
        .map(|e| KeyCol::of(e, env, ctxs))
        .collect::<Result<_, _>>()?;
    let order: Vec<(KeyCol, &OrderKey)> = call
        .order
        .iter()
        .map(|o| KeyCol::of(&o.expr, env, ctxs).map(|k| (k, o)))
        .collect::<Result<_, _>>()?;
    // Partitions in any order (their keys ascending); NULLs form one.
    let part_cmp = |a: u32, b: u32| {
        for k in &part {
            let o = k.order(a, b, true, false);
            if o.is_ne() {
                return o;
            }
        }
        Ordering::Equal
    };
    let order_cmp = |a: u32, b: u32| {
        for (k, o) in &order {
            let c = k.order(a, b, o.nulls_first, o.desc);
            if c.is_ne() {
                return c;
            }
        }
        Ordering::Equal
    };
    let n = ctxs.len();
    let mut perm: Vec<u32> = (0..n as u32).collect();
    if !part.is_empty() || !order.is_empty() {
        // Stable: peers keep the order the rows came in.
        perm.sort_by(|&a, &b| part_cmp(a, b).then_with(|| order_cmp(a, b)));
    }
    env.limits.interrupt.check_now()?;
    let mut parts: Vec<(usize, usize)> = Vec::new();
    let mut peer = Vec::with_capacity(n);
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for pos in 0..n {
        env.limits.interrupt.check()?;
        let new_part = pos == 0 || part_cmp(perm[pos - 1], perm[pos]).is_ne();
        if new_part {
            if let Some(last) = parts.last_mut() {
                *last = (last.0, pos);
            }
            parts.push((pos, n));
        }
        if new_part || order_cmp(perm[pos - 1], perm[pos]).is_ne() {
            if let Some(last) = groups.last_mut() {
                *last = (last.0, pos);
            }
            groups.push((pos, n));
        }
        peer.push((groups.len() - 1) as u32);
    }
    Ok(Layout {
        perm,
        parts,
        peer,
        groups,
    })
}

/// `sqlite3_value_int64`: NTILE's argument as SQLite reads it.
fn int64(v: &Value) -> i64 {
    match v.as_number() {
        Some(Value::Int(i)) => i,
        Some(Value::Real(r)) => r as i64,
        _ => 0,
    }
}

/// A value that is an integer, or a real with an integer's value (as
/// SQLite's numeric affinity makes it); text read with integer affinity.
fn integral(v: &Value) -> Option<i64> {
    match v.clone().with_affinity(Type::Integer) {
        Value::Int(i) => Some(i),
        Value::Real(r) if r.fract() == 0.0 && r.abs() < 9.2e18 => Some(r as i64),
        _ => None,
    }
}

/// NTILE's bucket (1-based) of the row at `i` (0-based) of `n` rows in
/// `buckets`: the first `n % buckets` buckets hold one row more.
fn ntile_bucket(i: usize, n: usize, buckets: usize) -> usize {
    if buckets >= n {
        return i + 1;
    }
    let size = n / buckets;
    let big = n % buckets;
    let in_big = big * (size + 1);
    if i < in_big {
        i / (size + 1) + 1
    } else {
        big + (i - in_big) / size + 1
    }
}

/// The frame of the row at `pos` in the partition [ps, pe): positions
/// [lo, hi), empty when lo >= hi.
fn frame_of(f: &Frame, lay: &Layout, pos: usize, ps: usize, pe: usize) -> (usize, usize) {
    let g = lay.peer.get(pos).map_or(0, |&g| g as usize);
    let first = lay.peer.get(ps).map_or(0, |&g| g as usize);
    let last = lay
        .peer
        .get(pe.saturating_sub(1))
        .map_or(0, |&g| g as usize);
    let group = |i: usize| lay.groups.get(i).copied().unwrap_or((pe, pe));
    let n = |k: u64| usize::try_from(k).unwrap_or(usize::MAX);
    let rows = f.units == FrameUnits::Rows;
    let lo = match f.start {
        FrameBound::UnboundedPreceding => ps,
        FrameBound::CurrentRow if rows => pos,
        FrameBound::CurrentRow => group(g).0,
        FrameBound::Preceding(k) if rows => pos.saturating_sub(n(k)).max(ps),
        FrameBound::Preceding(k) => group(g.saturating_sub(n(k)).max(first)).0,
        FrameBound::Following(k) if rows => pos.saturating_add(n(k)).min(pe),
        FrameBound::Following(k) => match g.checked_add(n(k)) {
            Some(t) if t <= last => group(t).0,
            _ => pe,
        },
        FrameBound::UnboundedFollowing => pe,
    };
    let hi = match f.end {
        FrameBound::UnboundedFollowing => pe,
        FrameBound::CurrentRow if rows => pos + 1,
        FrameBound::CurrentRow => group(g).1,
        FrameBound::Following(k) if rows => pos.saturating_add(n(k)).saturating_add(1).min(pe),
        FrameBound::Following(k) => match g.checked_add(n(k)) {
            Some(t) if t < last => group(t).1,
            _ => pe,
        },
        FrameBound::Preceding(k) if rows => (pos + 1).saturating_sub(n(k)).max(ps),
        FrameBound::Preceding(k) => match g.checked_sub(n(k)) {
            Some(t) if t >= first => group(t).1,
            _ => ps,
        },
        FrameBound::UnboundedPreceding => ps,
    };
    (lo, hi)
}

/// The single ORDER BY key of a `RANGE n PRECEDING/FOLLOWING` frame, per
/// row number, and its direction.
struct RangeKeys {
    keys: Vec<Value>,
    desc: bool,
}

/// A RANGE frame's offset bounds (SQLite's rules): for a numeric current
/// value v, the rows whose number lies within [v - n, v + m] (DESC: the
/// other way round); for a NULL or text current value, its peers. `frame`
/// is `frame_of`'s answer, whose other bounds stand; `numeric` the
/// partition's positions holding numbers (contiguous: the sort puts NULLs,
/// numbers and texts apart).
fn range_frame(
    f: &Frame,
    rk: &RangeKeys,
    lay: &Layout,
    pos: usize,
    numeric: (usize, usize),
    frame: (usize, usize),
) -> (usize, usize) {
    let key = |p: usize| {
        lay.perm
            .get(p)
            .and_then(|&r| rk.keys.get(r as usize))
            .unwrap_or(&Value::Null)
    };
    let v = key(pos);
    let peers = lay
        .peer
        .get(pos)
        .and_then(|&g| lay.groups.get(g as usize))
        .copied()
        .unwrap_or(frame);
    let is_number = matches!(v, Value::Int(_) | Value::Real(_));
    let (ns, ne) = numeric;
    // How the row at p compares with a bound n away from v, computed as
    // SQLite computes it (so reals round alike): n FOLLOWING shifts v
    // (by +n, DESC -n), n PRECEDING shifts the other row's value (by +n,
    // DESC -n) and compares it with v.
    let number = |n: u64| i64::try_from(n).map_or(Value::Real(n as f64), Value::Int);
    let op = if rk.desc { ArithOp::Sub } else { ArithOp::Add };
    let versus = |p: usize, b: FrameBound| -> Ordering {
        match b {
            FrameBound::Preceding(n) => arith(op, key(p), &number(n)).sort_cmp(v),
            FrameBound::Following(n) => key(p).sort_cmp(&arith(op, v, &number(n))),
            _ => Ordering::Equal,
        }
    };
    // The first position of the numeric run where `stop` holds (the run
    // is sorted, so `stop` turns true once).
    let first = |b: FrameBound, stop: &dyn Fn(Ordering) -> bool| {
        let (mut a, mut z) = (ns, ne);
        while a < z {
            let m = a + (z - a) / 2;
            if stop(versus(m, b)) {
                z = m;
            } else {
                a = m + 1;
            }
        }
        a
    };
    let offset = |b: FrameBound| matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_));
    let lo = match f.start {
        b if offset(b) && !is_number => peers.0,
        b if offset(b) && rk.desc => first(b, &|o| o != Ordering::Greater),
        b if offset(b) => first(b, &|o| o != Ordering::Less),
        _ => frame.0,
    };
    let hi = match f.end {
        b if offset(b) && !is_number => peers.1,
        b if offset(b) && rk.desc => first(b, &|o| o == Ordering::Less),
        b if offset(b) => first(b, &|o| o == Ordering::Greater),
        _ => frame.1,
    };
    (lo, hi)
}

/// One call's value for every row, handed to `set` (row number, value).
fn compute(
    call: &WindowCall,
    lay: &Layout,
    env: &Env,
    ctxs: &[Ctx],
    set: &mut dyn FnMut(u32, Value),
) -> Result<(), QueryError> {
    let ctx = |pos: usize| -> Result<&Ctx, QueryError> {
        lay.perm
            .get(pos)
            .and_then(|&r| ctxs.get(r as usize))
            .ok_or_else(|| runtime("a window row out of range"))
    };
    let arg = |i: usize| call.args.get(i);
    // The value of argument 0 at position `pos`.
    let value_at = |pos: usize| -> Result<Value, QueryError> {
        match arg(0) {
            Some(e) => eval(e, ctx(pos)?),
            None => Ok(Value::Null),
        }
    };
    let offset = |b: FrameBound| matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_));
    let range = match (call.frame.units, call.order.first()) {
        (FrameUnits::Range, Some(o)) if offset(call.frame.start) || offset(call.frame.end) => {
            let mut keys = Vec::with_capacity(ctxs.len());
            for c in ctxs {
                env.limits.interrupt.check()?;
                keys.push(eval(&o.expr, c)?);
            }
            Some(RangeKeys { keys, desc: o.desc })
        }
        _ => None,
    };
    // An aggregate's input per row, read once.

    let inputs = match &call.func {
        WinFunc::Agg(a) => ctxs
            .iter()
            .map(|c| agg_input(a, c))
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    for &(ps, pe) in &lay.parts {
        let n = pe - ps;
        let row = |pos: usize| lay.perm.get(pos).copied().unwrap_or(0);
        let rank = |pos: usize| {
            let g = lay.peer.get(pos).copied().unwrap_or(0) as usize;
            lay.groups.get(g).copied().unwrap_or((ps, pe))
        };
        let buckets = match call.func {
            WinFunc::Ntile => {
                let b = int64(&value_at(ps)?);
                if b <= 0 {
                    return Err(runtime("argument of ntile must be a positive integer"));
                }
                usize::try_from(b).unwrap_or(usize::MAX)
            }
            _ => 1,
        };
        // The positions of the partition holding numbers (RANGE offsets).
        let numeric = match &range {
            Some(rk) => {
                let is_number = |p: usize| {
                    lay.perm
                        .get(p)
                        .and_then(|&r| rk.keys.get(r as usize))
                        .is_some_and(|v| matches!(v, Value::Int(_) | Value::Real(_)))
                };
                let ns = (ps..pe).find(|&p| is_number(p)).unwrap_or(pe);
                let ne = (ns..pe).find(|&p| !is_number(p)).unwrap_or(pe);
                (ns, ne)
            }
            None => (ps, ps),
        };
        let frame_at = |pos: usize| {
            let frame = frame_of(&call.frame, lay, pos, ps, pe);
            match &range {
                Some(rk) => range_frame(&call.frame, rk, lay, pos, numeric, frame),
                None => frame,
            }
        };
        // A running aggregate: the frame starts at the partition's start,
        // and its end only grows.
        let mut running = (new_acc_of(call), ps);
        for pos in ps..pe {
            env.limits.interrupt.check()?;
            let v = match &call.func {
                WinFunc::RowNumber => Value::Int((pos - ps + 1) as i64),
                WinFunc::Rank => Value::Int((rank(pos).0 - ps + 1) as i64),
                WinFunc::DenseRank => Value::Int(
                    i64::from(lay.peer.get(pos).copied().unwrap_or(0))
                        - i64::from(lay.peer.get(ps).copied().unwrap_or(0))
                        + 1,
                ),
                WinFunc::PercentRank if n <= 1 => Value::Real(0.0),
                WinFunc::PercentRank => Value::Real((rank(pos).0 - ps) as f64 / (n - 1) as f64),
                WinFunc::CumeDist => Value::Real((rank(pos).1 - ps) as f64 / n as f64),
                WinFunc::Ntile => Value::Int(ntile_bucket(pos - ps, n, buckets) as i64),
                WinFunc::Lag | WinFunc::Lead => {
                    // SQLite: the row numbered (this row's number -/+ the
                    // offset) in the partition, when that is an integer
                    // within it; else the default.
                    let here = ctx(pos)?;
                    let offset = match arg(1) {
                        Some(e) => eval(e, here)?,
                        None => Value::Int(1),
                    };
                    let op = if call.func == WinFunc::Lag {
                        ArithOp::Sub
                    } else {
                        ArithOp::Add
                    };
                    let number = arith(op, &Value::Int((pos - ps + 1) as i64), &offset);
                    match integral(&number).filter(|t| (1..=n as i64).contains(t)) {
                        Some(t) => value_at(ps + t as usize - 1)?,
                        None => match arg(2) {
                            Some(d) => eval(d, here)?,
                            None => Value::Null,
                        },
                    }
                }
                WinFunc::FirstValue | WinFunc::LastValue | WinFunc::NthValue => {
                    let (lo, hi) = frame_at(pos);
                    let at = match call.func {
                        WinFunc::FirstValue => Some(lo),
                        WinFunc::LastValue => hi.checked_sub(1),
                        _ => {
                            let nth = match arg(1) {
                                Some(e) => eval(e, ctx(pos)?)?,
                                None => Value::Null,
                            };
                            match integral(&nth).filter(|&k| k > 0) {
                                Some(k) => {
                                    lo.checked_add(usize::try_from(k - 1).unwrap_or(usize::MAX))
                                }
                                None => {
                                    return Err(runtime(
                                        "second argument to nth_value must be a positive integer",
                                    ));
                                }
                            }
                        }
                    };
                    match at.filter(|&a| a >= lo && a < hi) {
                        Some(a) => value_at(a)?,
                        None => Value::Null,
                    }
                }
                WinFunc::Agg(_) => {
                    let (lo, hi) = frame_at(pos);
                    let add = |acc: &mut _, q: usize| -> Result<(), QueryError> {
                        if let Some(Some((v, sep))) = inputs.get(row(q) as usize) {
                            accumulate(acc, v, sep.as_ref())?;
                        }
                        Ok(())
                    };
                    if call.frame.start == FrameBound::UnboundedPreceding {
                        let (acc, done) = &mut running;
                        while *done < hi {
                            add(acc, *done)?;
                            *done += 1;
                        }
                        finish(acc.clone())
                    } else {
                        let mut acc = new_acc_of(call);
                        for q in lo..hi {
                            env.limits.interrupt.check()?;
                            add(&mut acc, q)?;
                        }
                        finish(acc)
                    }
                }
            };
            set(row(pos), v);
        }
    }
    Ok(())
}

/// A fresh accumulator for an aggregate call (COUNT's for the others,
/// never read).
fn new_acc_of(call: &WindowCall) -> super::aggregate::Acc {
    match &call.func {
        WinFunc::Agg(a) => new_acc(a),
        _ => super::aggregate::Acc::Count(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntile_gives_the_first_buckets_one_row_more() {
        let b: Vec<usize> = (0..7).map(|i| ntile_bucket(i, 7, 3)).collect();
        assert_eq!(b, [1, 1, 1, 2, 2, 3, 3]);
        let b: Vec<usize> = (0..3).map(|i| ntile_bucket(i, 3, 5)).collect();
        assert_eq!(b, [1, 2, 3]);
        let b: Vec<usize> = (0..4).map(|i| ntile_bucket(i, 4, 2)).collect();
        assert_eq!(b, [1, 1, 2, 2]);
        assert_eq!(ntile_bucket(0, 1, usize::MAX), 1);
    }

    /// Six rows in one partition, peers {0, 1}, {2}, {3, 4, 5}.
    fn six() -> Layout {
        Layout {
            perm: (0..6).collect(),
            parts: vec![(0, 6)],
            peer: vec![0, 0, 1, 2, 2, 2],
            groups: vec![(0, 2), (2, 3), (3, 6)],
        }
    }

    fn frames(units: FrameUnits, start: FrameBound, end: FrameBound) -> Vec<(usize, usize)> {
        let f = Frame { units, start, end };
        (0..6).map(|pos| frame_of(&f, &six(), pos, 0, 6)).collect()
    }

    #[test]
    fn frames_follow_rows_peers_and_groups() {
        use FrameBound::*;
        use FrameUnits::*;
        // The default frame: up to the last peer.
        assert_eq!(
            frames(Range, UnboundedPreceding, CurrentRow),
            [(0, 2), (0, 2), (0, 3), (0, 6), (0, 6), (0, 6)]
        );
        assert_eq!(
            frames(Rows, Preceding(1), Following(1)),
            [(0, 2), (0, 3), (1, 4), (2, 5), (3, 6), (4, 6)]
        );
        // Empty frames: wholly before or after the partition.
        assert_eq!(
            frames(Rows, Preceding(3), Preceding(2)),
            [(0, 0), (0, 0), (0, 1), (0, 2), (1, 3), (2, 4)]
        );
        let after = frames(Rows, Following(2), Following(9));
        assert!(after[4].0 >= after[4].1 && after[5].0 >= after[5].1);
        assert_eq!(
            frames(Groups, Preceding(1), CurrentRow),
            [(0, 2), (0, 2), (0, 3), (2, 6), (2, 6), (2, 6)]
        );
        assert_eq!(
            frames(Groups, Following(1), UnboundedFollowing),
            [(2, 6), (2, 6), (3, 6), (6, 6), (6, 6), (6, 6)]
        );
        assert_eq!(
            frames(Groups, CurrentRow, Following(u64::MAX)),
            [(0, 6), (0, 6), (2, 6), (3, 6), (3, 6), (3, 6)]
        );
        assert_eq!(
            frames(Range, CurrentRow, CurrentRow),
            [(0, 2), (0, 2), (2, 3), (3, 6), (3, 6), (3, 6)]
        );
    }

    #[test]
    fn range_offsets_compare_numbers_and_give_null_and_text_their_peers() {
        // Keys NULL, 1, 2, 2, 4, 'a' ascending: peers {0} {1} {2, 3} {4} {5}.
        let lay = Layout {
            perm: (0..6).collect(),
            parts: vec![(0, 6)],
            peer: vec![0, 1, 2, 2, 3, 4],
            groups: vec![(0, 1), (1, 2), (2, 4), (4, 5), (5, 6)],
        };
        let keys = vec![
            Value::Null,
            Value::Int(1),
            Value::Int(2),
            Value::Real(2.0),
            Value::Int(4),
            Value::text("a"),
        ];
        let rk = RangeKeys { keys, desc: false };
        let f = Frame {
            units: FrameUnits::Range,
            start: FrameBound::Preceding(1),
            end: FrameBound::Following(1),
        };
        let got: Vec<(usize, usize)> = (0..6)
            .map(|pos| range_frame(&f, &rk, &lay, pos, (1, 5), frame_of(&f, &lay, pos, 0, 6)))
            .collect();
        assert_eq!(got, [(0, 1), (1, 4), (1, 4), (1, 4), (4, 5), (5, 6)]);
        // Wholly after: 2 to 3 above the current value.
        let f = Frame {
            start: FrameBound::Following(2),
            end: FrameBound::Following(3),
            ..f
        };
        let got: Vec<(usize, usize)> = (1..5)
            .map(|pos| range_frame(&f, &rk, &lay, pos, (1, 5), frame_of(&f, &lay, pos, 0, 6)))
            .collect();
        assert_eq!(got, [(4, 5), (4, 5), (4, 5), (5, 5)]);
    }

    #[test]
    fn integral_takes_integers_and_whole_reals_only() {
        assert_eq!(integral(&Value::Int(3)), Some(3));
        assert_eq!(integral(&Value::Real(2.0)), Some(2));
        assert_eq!(integral(&Value::Real(1.5)), None);
        assert_eq!(integral(&Value::text("2")), Some(2));
        assert_eq!(integral(&Value::text("x")), None);
        assert_eq!(integral(&Value::Null), None);
        assert_eq!(integral(&Value::Real(1e300)), None);
    }
}
