//! The bound query: what the binder (`plan/`) makes of a parsed SELECT and
//! execution (`exec/`) runs. Plain data; both sides import it, neither
//! imports the other through it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use super::exec::datetime::TimeFunc;
pub use super::exec::json::JsonFunc;
use super::table::TableRef;
use super::value::{Type, Value};

/// A bound expression, evaluated against a row (the joined columns of every
/// source) or, after grouping, against a group (keys then aggregates).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Column `idx` of the row; its type gives comparisons their affinity.
    Col(usize, Option<Type>),
    Lit(Value),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    /// Comparison; `coerce` says which side takes which affinity first.
    Cmp(CmpOp, Box<Expr>, Box<Expr>, Coerce),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    InList(Box<Expr>, Vec<Expr>, bool),
    InSet(Box<Expr>, Arc<InSet>, bool),
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<char>,
        negated: bool,
    },
    Func(Func, Vec<Expr>),
    /// A subquery's value (`plan/subquery.rs`): computed once when bound;
    /// a correlated one as its values per key of the outer row (`Some`).
    Subquery(Option<Box<Expr>>, Arc<SubqueryValues>),
    /// After grouping: group key `i`.
    Key(usize),
    /// After grouping: aggregate `i`.
    Agg(usize),
    /// The value of window function `Select::windows[i]` for the row.
    Window(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `IS` / `IS NOT DISTINCT FROM`: `=` where NULL equals NULL, never NULL.
    Is,
    /// `IS NOT` / `IS DISTINCT FROM`.
    IsNot,
}

impl Expr {
    /// Calls `f` on the expression and every expression in it, outside in.
    pub fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) | Expr::InSet(x, _, _) => x.walk(f),
            Expr::Arith(_, a, c)
            | Expr::Concat(a, c)
            | Expr::Cmp(_, a, c, _)
            | Expr::And(a, c)
            | Expr::Or(a, c) => {
                a.walk(f);
                c.walk(f);
            }
            Expr::InList(x, l, _) => {
                x.walk(f);
                l.iter().for_each(|i| i.walk(f));
            }
            Expr::Like { expr, pattern, .. } => {
                expr.walk(f);
                pattern.walk(f);
            }
            Expr::Func(_, a) => a.iter().for_each(|i| i.walk(f)),
            Expr::Subquery(key, _) => key.iter().for_each(|k| k.walk(f)),
            Expr::Col(..) | Expr::Lit(_) | Expr::Key(_) | Expr::Agg(_) | Expr::Window(_) => {}
        }
    }

    /// The affinity SQLite gives an expression in comparisons: a column's
    /// type, or a CAST's (NUMERIC compares as INTEGER does: a text that is a
    /// number becomes one); no other expression has one.
    pub fn affinity(&self) -> Option<Type> {
        match self {
            Expr::Col(_, t) => *t,
            Expr::Func(Func::Scalar(Scalar::Cast(t)), _) => Some(match t {
                CastTo::Integer | CastTo::Numeric => Type::Integer,
                CastTo::Real => Type::Real,
                CastTo::Text => Type::Text,
            }),
            Expr::Subquery(_, v) => v.affinity,
            _ => None,
        }
    }
}

/// Affinity to apply to the (left, right) operand before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Coerce(pub Option<Type>, pub Option<Type>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Lower,
    Upper,
    Length,
    Substr,
    Coalesce,
    Abs,
    /// date, time, datetime, julianday, unixepoch, strftime (`exec/datetime.rs`).
    Time(TimeFunc),
    /// The JSON functions and `->`, `->>` (`exec/json.rs`).
    Json(JsonFunc),
    /// SQLite's other scalar functions and operators (exec/functions.rs).
    Scalar(Scalar),
}

/// CAST's target: the affinity SQLite gives the type name (INT... is
/// INTEGER; CHAR, CLOB, TEXT are TEXT; REAL, FLOA, DOUB are REAL; any
/// other name NUMERIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastTo {
    Integer,
    Real,
    Text,
    Numeric,
}

/// The scalar functions of exec/functions.rs (the binder's names for them
/// are in plan/scalar.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// CASE (both forms), IIF, IS TRUE ...: arguments are (condition,
    /// result) pairs, then the ELSE result; only what is needed is evaluated.
    Case,
    Cast(CastTo),
    NullIf,
    /// `glob(pattern, text)`, also `text GLOB pattern`.
    Glob,
    /// `like(pattern, text[, escape])`.
    Like,
    Instr,
    Replace,
    /// trim, ltrim, rtrim: (left, right).
    Trim(bool, bool),
    Hex,
    Quote,
    Char,
    Unicode,
    Printf,
    Round,
    Sign,
    TypeOf,
    /// min/max with two or more arguments.
    Min,
    Max,
    Math(Math),
}

/// SQLite's math functions (3.35+), each on doubles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Math {
    Acos,
    Acosh,
    Asin,
    Asinh,
    Atan,
    Atan2,
    Atanh,
    Ceil,
    Cos,
    Cosh,
    Degrees,
    Exp,
    Floor,
    Ln,
    Log,
    Log10,
    Log2,
    Mod,
    Pi,
    Pow,
    Radians,
    Sin,
    Sinh,
    Sqrt,
    Tan,
    Tanh,
    Trunc,
}

/// The values of an uncorrelated `IN (SELECT ...)`, computed once.
#[derive(Debug, PartialEq)]
pub struct InSet {
    pub values: HashSet<Value>,
    pub has_null: bool,
}

/// What a subquery in an expression gives (`Expr::Subquery`): without a
/// key, `otherwise`; with one (a correlated subquery decorrelated into a
/// grouped or semi-join), the value for the outer row's key, `otherwise`
/// when the key is NULL or absent (no inner row matched).
#[derive(Debug, PartialEq)]
pub struct SubqueryValues {
    pub by_key: HashMap<Value, Value>,
    /// Affinity the outer key takes before the lookup (the `=` that
    /// correlated it would have applied).
    pub key_affinity: Option<Type>,
    pub otherwise: Value,
    /// The affinity of the subquery's column (SQLite gives a scalar
    /// subquery its result column's affinity in comparisons).
    pub affinity: Option<Type>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// SQLite's `total()`: the sum as a real, 0.0 over no rows.
    Total,
    /// `GROUP_CONCAT(x [, sep])` and `string_agg(x, sep)`.
    GroupConcat,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    pub distinct: bool,
    pub arg: Option<Expr>,
    /// GROUP_CONCAT's separator, read per row (None: ",").
    pub sep: Option<Expr>,
    /// `FILTER (WHERE ...)`: a row counts only where it is true.
    pub filter: Option<Expr>,
}

/// One table of the FROM clause (or rows a query made: `is_derived`).
#[derive(Debug)]
pub struct Source {
    /// The table's name as stored (names resolve case-insensitively).
    pub name: String,
    pub alias: String,
    pub table: TableRef,
    /// The version read (with the schema's, when it has one).
    pub version: String,
    /// Index of its first column in the joined row.
    pub offset: usize,
}

impl Source {
    /// A subquery, CTE or VALUES made these rows for this query alone:
    /// no stored version, so no index of the database applies.
    pub fn is_derived(&self) -> bool {
        self.version.is_empty()
    }
}

#[derive(Debug)]
pub struct Join {
    pub left: bool,
    pub on: Option<Expr>,
    /// An equality between a column already in the row and one of the
    /// joined table (index within that table): a hash join.
    pub equi: Option<(usize, usize)>,
    /// ON is exactly that equality: a hash match needs no more checking.
    pub on_is_equi: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

/// A bound SELECT.
#[derive(Debug)]
pub struct Select {
    pub sources: Vec<Source>,
    /// `joins[i]` joins `sources[i + 1]`.
    pub joins: Vec<Join>,
    pub filter: Option<Expr>,
    /// GROUP BY keys and aggregates (present for aggregate queries).
    pub grouping: Option<(Vec<Expr>, Vec<AggCall>)>,
    pub having: Option<Expr>,
    pub projection: Vec<Expr>,
    pub names: Vec<String>,
    pub distinct: bool,
    pub order: Vec<OrderKey>,
    pub limit: Option<u64>,
    pub offset: u64,
    /// The window function calls `Expr::Window` names (exec/window.rs).
    pub windows: Vec<WindowCall>,
    /// Only the rows a ranking window call puts at or under a rank are
    /// wanted (the query reading this one's rows keeps no other):
    /// exec/rank_limit.rs finds them without sorting every row.
    pub rank_limit: Option<RankLimit>,
}

/// `Select::rank_limit`: the rows whose value of `windows[call]` (a
/// ROW_NUMBER, RANK or DENSE_RANK) is at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankLimit {
    pub call: usize,
    pub max: u64,
}

/// A window function call: `func` over its partition's rows in its order,
/// within its frame. In a grouped query its expressions are over groups.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowCall {
    pub func: WinFunc,
    /// The arguments of a function that is not an aggregate (an
    /// aggregate's are in its `AggCall`).
    pub args: Vec<Expr>,
    pub partition: Vec<Expr>,
    pub order: Vec<OrderKey>,
    pub frame: Frame,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WinFunc {
    RowNumber,
    Rank,
    DenseRank,
    PercentRank,
    CumeDist,
    Ntile,
    Lag,
    Lead,
    FirstValue,
    LastValue,
    NthValue,
    Agg(AggCall),
}

/// A window frame; without one, `RANGE BETWEEN UNBOUNDED PRECEDING AND
/// CURRENT ROW` (with no ORDER BY every row is a peer: the partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub units: FrameUnits,
    pub start: FrameBound,
    pub end: FrameBound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameUnits {
    Rows,
    Range,
    Groups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameBound {
    UnboundedPreceding,
    Preceding(u64),
    CurrentRow,
    Following(u64),
    UnboundedFollowing,
}
