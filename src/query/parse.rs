//! Parsing: sqlparser with SQLite's dialect, plus ReedQL's `AS OF <time>`
//! after a table name, and errors that carry a line and column.
//!
//! `AS OF` is rewritten at the token level into the `FOR SYSTEM_TIME AS OF`
//! sqlparser already knows (its `TableVersion`), keeping every token's
//! position, so errors still point into the query as the user wrote it.

use sqlparser::ast::Statement;
use sqlparser::dialect::{Dialect, Precedence, SQLiteDialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace, Word};

use super::error::{ErrorKind, QueryError};

/// Longest query accepted, and most operators: beyond them a query is
/// refused before parsing (very long operator chains parse without
/// recursion but their trees are dropped recursively).
const MAX_QUERY_BYTES: usize = 64 * 1024;
const MAX_OPERATORS: usize = 1000;
const RECURSION_LIMIT: usize = 128;

const SQLITE: SQLiteDialect = SQLiteDialect {};

/// SQLite's dialect with table versions on and `||` binding tighter than
/// `*` (as in SQLite; sqlparser's SQLite dialect binds it looser).
#[derive(Debug)]
struct ReedDialect;

impl Dialect for ReedDialect {
    fn dialect(&self) -> std::any::TypeId {
        SQLITE.dialect()
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        SQLITE.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        SQLITE.is_identifier_part(ch)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        SQLITE.is_delimited_identifier_start(ch)
    }
    fn supports_table_versioning(&self) -> bool {
        true
    }
    /// `agg(x) FILTER (WHERE ...)`, as SQLite has it.
    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }
    fn prec_value(&self, p: Precedence) -> u8 {
        SQLITE.prec_value(p)
    }
    fn between_low_bound_precedence(&self) -> u8 {
        SQLITE.between_low_bound_precedence()
    }
    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &sqlparser::ast::Expr,
        precedence: u8,
    ) -> Option<Result<sqlparser::ast::Expr, ParserError>> {
        // `x NOT GLOB p`, which sqlparser's SQLite dialect lacks.
        if parser.parse_keywords(&[Keyword::NOT, Keyword::GLOB]) {
            use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator};
            return Some(parser.parse_subexpr(precedence).map(|right| Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr: Box::new(Expr::BinaryOp {
                    left: Box::new(expr.clone()),
                    op: BinaryOperator::Glob,
                    right: Box::new(right),
                }),
            }));
        }
        SQLITE.parse_infix(parser, expr, precedence)
    }
    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        if matches!(
            parser.peek_token_ref().token,
            Token::StringConcat | Token::Arrow | Token::LongArrow
        ) {
            // Above `* / %` (40): 2 * 3 || 4 is 2 * '34' in SQLite; `->` and
            // `->>` bind as `||` does.
            return Some(Ok(45));
        }
        SQLITE.get_next_precedence(parser)
    }
    fn is_table_alias(&self, kw: &Keyword, parser: &mut Parser) -> bool {
        SQLITE.is_table_alias(kw, parser)
    }
    fn is_column_alias(&self, kw: &Keyword, parser: &mut Parser) -> bool {
        SQLITE.is_column_alias(kw, parser)
    }
    fn supports_in_empty_list(&self) -> bool {
        true
    }
    fn supports_limit_comma(&self) -> bool {
        true
    }
    // SQLite's `x IS y`, `trim(x, chars)` and type names (CAST(x AS VARCHAR(10))).
    fn supports_is_operator(&self) -> bool {
        true
    }
    fn supports_comma_separated_trim(&self) -> bool {
        true
    }
    fn supports_notnull_operator(&self) -> bool {
        true
    }
    fn parse_data_type(
        &self,
        parser: &mut Parser,
    ) -> Option<Result<sqlparser::ast::DataType, ParserError>> {
        SQLITE.parse_data_type(parser)
    }
}

fn is_keyword(t: &Token, k: Keyword) -> bool {
    matches!(t, Token::Word(w) if w.keyword == k && w.quote_style.is_none())
}

/// `AS OF` -> `FOR SYSTEM_TIME AS OF`, the new tokens at the position of `AS`.
fn rewrite_as_of(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len() + 4);
    for (i, t) in tokens.iter().enumerate() {
        if is_keyword(&t.token, Keyword::AS) {
            let next = tokens[i + 1..]
                .iter()
                .find(|n| !matches!(n.token, Token::Whitespace(_)));
            if next.is_some_and(|n| is_keyword(&n.token, Keyword::OF)) {
                for (value, keyword) in
                    [("FOR", Keyword::FOR), ("SYSTEM_TIME", Keyword::SYSTEM_TIME)]
                {
                    out.push(TokenWithSpan {
                        token: Token::Word(Word {
                            value: value.into(),
                            quote_style: None,
                            keyword,
                        }),
                        span: t.span,
                    });
                    out.push(TokenWithSpan {
                        token: Token::Whitespace(Whitespace::Space),
                        span: t.span,
                    });
                }
            }
        }
        out.push(t.clone());
    }
    out
}

/// The line and column (1-based) just past the end of `sql`.
fn end_of(sql: &str) -> (u64, u64) {
    let line = sql.lines().count().max(1) as u64;
    let col = sql.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, col)
}

/// Splits sqlparser's "... at Line: L, Column: C" into message and position.
fn parser_error(sql: &str, e: ParserError) -> QueryError {
    let text = match e {
        ParserError::RecursionLimitExceeded => {
            return QueryError::new(ErrorKind::Limit, "expression nested too deeply");
        }
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
    };
    let (message, pos) = match text.rsplit_once(" at Line: ") {
        Some((m, at)) => {
            let mut parts = at.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let col = parts.next().and_then(|c| c.trim().parse().ok());
            (m.to_string(), line.zip(col))
        }
        None => (text, None),
    };
    let message = message
        .replace("Expected: ", "expected ")
        .replace(", found: EOF", ", found the end of the query")
        .replace(", found: ", ", found ");
    let pos = pos.or_else(|| message.contains("end of the query").then(|| end_of(sql)));
    let message = if message.contains("SYSTEM_TIME") {
        "AS OF must follow the table name: FROM t AS OF '<time>' [AS alias]".to_string()
    } else {
        message
    };
    QueryError::new(ErrorKind::Syntax, message).at(pos)
}

/// Parses one statement.
pub fn parse(sql: &str) -> Result<Statement, QueryError> {
    if sql.len() > MAX_QUERY_BYTES {
        return Err(QueryError::new(
            ErrorKind::Limit,
            format!("query longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let dialect = ReedDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            QueryError::new(ErrorKind::Syntax, e.message.to_lowercase())
                .at(Some((e.location.line, e.location.column)))
        })?;
    let operators = tokens
        .iter()
        .filter(|t| {
            matches!(
                t.token,
                Token::Plus
                    | Token::Minus
                    | Token::Mul
                    | Token::Div
                    | Token::Mod
                    | Token::Eq
                    | Token::Neq
                    | Token::Lt
                    | Token::Gt
                    | Token::LtEq
                    | Token::GtEq
                    | Token::StringConcat
                    | Token::LParen
            ) || is_keyword(&t.token, Keyword::AND)
                || is_keyword(&t.token, Keyword::OR)
                || is_keyword(&t.token, Keyword::NOT)
        })
        .count();
    if operators > MAX_OPERATORS {
        return Err(QueryError::new(
            ErrorKind::Limit,
            format!("query has {operators} operators; at most {MAX_OPERATORS} are allowed"),
        ));
    }
    let mut statements = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(rewrite_as_of(tokens))
        .parse_statements()
        .map_err(|e| parser_error(sql, e))?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        0 => Err(QueryError::new(ErrorKind::Syntax, "empty query").at(Some((1, 1)))),
        _ => Err(QueryError::new(
            ErrorKind::Syntax,
            "one statement per query (found several separated by ';')",
        )),
    }
}

/// Parses one expression (a migration's `--map`), with a statement's limits.
pub fn parse_expr(text: &str) -> Result<sqlparser::ast::Expr, QueryError> {
    use sqlparser::ast::{SelectItem, SetExpr};
    let not_one = || QueryError::new(ErrorKind::Syntax, format!("not one expression: {text}"));
    let Statement::Query(q) = parse(&format!("SELECT {text}"))? else {
        return Err(not_one());
    };
    let SetExpr::Select(select) = *q.body else {
        return Err(not_one());
    };
    let mut items = select.projection;
    match (items.pop(), items.is_empty(), select.from.is_empty()) {
        (Some(SelectItem::UnnamedExpr(e)), true, true) => Ok(e),
        _ => Err(not_one()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_a_table_version_and_errors_have_positions() {
        let s = parse("SELECT * FROM users AS OF '-1h' AS u WHERE u.id = 1").unwrap();
        assert!(s.to_string().contains("FOR SYSTEM_TIME AS OF '-1h'"), "{s}");
        let e = parse("SELECT id FROM users WHERE").unwrap_err();
        assert_eq!(e.pos, Some((1, 27)), "{e}");
        assert!(e.message.contains("expected an expression"), "{e}");
        let e = parse("SELECT id,\n  FROM users WHERE = 1").unwrap_err();
        assert_eq!(e.pos.map(|p| p.0), Some(2), "{e}");
        let e = parse("SELECT 'open").unwrap_err();
        assert_eq!(e.pos, Some((1, 8)), "{e}");
        let deep = format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(parse(&deep).unwrap_err().kind, ErrorKind::Limit);
        let long = format!("SELECT 1{}", "+1".repeat(5000));
        assert_eq!(parse(&long).unwrap_err().kind, ErrorKind::Limit);
    }
}
