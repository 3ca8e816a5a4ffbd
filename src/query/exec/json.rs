//! SQLite's JSON functions over text: `json`, `json_array`, `json_object`,
//! `json_extract` and the `->` / `->>` operators, `json_valid`, `json_type`,
//! `json_array_length`, `json_quote` (docs/QUERY.md, "JSON").
//!
//! A document is parsed as SQLite's `json1` parses it (strict RFC 8259, at
//! most 2000 levels deep) into a flat array of nodes in document order, a
//! container followed by everything inside it, so parsing, lookups, output
//! and dropping are loops, never recursion over the input. Numbers and
//! strings keep their text as written: `json()` prints them unchanged (only
//! the whitespace goes), and object keys compare by that raw text, as in
//! SQLite.
//!
//! SQLite marks JSON made by these functions with a subtype, so that
//! `json_array(json('[1]'))` nests the array where `json_array('[1]')` holds
//! a string. ReedQL's values have no subtype; the same decision is made from
//! the argument's expression instead: an argument that is itself a call of a
//! JSON function is evaluated here and says whether its text is JSON. The
//! subtype does not survive anything else in SQLite either.

use super::super::ast::{Expr, Func};
use super::super::error::QueryError;
use super::super::value::{Value, format_real};
use super::eval::{Ctx, eval, runtime};

/// The JSON functions (`Func::Json`); `Arrow` and `LongArrow` are `->` and
/// `->>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFunc {
    Json,
    Array,
    Object,
    Extract,
    Arrow,
    LongArrow,
    Valid,
    Type,
    ArrayLength,
    Quote,
}

impl JsonFunc {
    /// The function of an (upper-case) SQL name, with how many arguments
    /// it takes (the binder's one dispatch to this family).
    pub fn named(name: &str) -> Option<(Func, std::ops::RangeInclusive<usize>)> {
        let (f, arity) = match name {
            "JSON" => (JsonFunc::Json, 1..=1),
            "JSON_ARRAY" => (JsonFunc::Array, 0..=usize::MAX),
            "JSON_OBJECT" => (JsonFunc::Object, 0..=usize::MAX),
            "JSON_EXTRACT" => (JsonFunc::Extract, 0..=usize::MAX),
            "JSON_VALID" => (JsonFunc::Valid, 1..=1),
            "JSON_TYPE" => (JsonFunc::Type, 1..=2),
            "JSON_ARRAY_LENGTH" => (JsonFunc::ArrayLength, 1..=2),
            "JSON_QUOTE" => (JsonFunc::Quote, 1..=1),
            _ => return None,
        };
        Some((Func::Json(f), arity))
    }

    /// SQLite's JSON functions ReedQL leaves out, with the way to write
    /// what they do instead (the binder's refusal).
    pub fn refused(name: &str) -> Option<&'static str> {
        Some(match name {
            "JSON_SET" | "JSON_INSERT" | "JSON_REPLACE" | "JSON_REMOVE" | "JSON_PATCH" => {
                "changing JSON documents (json_set, json_insert, json_replace, json_remove, json_patch); build the document with json_object() and json_array()"
            }
            "JSON_GROUP_ARRAY" | "JSON_GROUP_OBJECT" => {
                "the JSON aggregates json_group_array and json_group_object; build each row's JSON with json_object() or json_array()"
            }
            "JSON_EACH" | "JSON_TREE" => {
                "the table-valued json_each and json_tree; read values with json_extract() or ->>"
            }
            _ => return None,
        })
    }
}

/// Deepest nesting of arrays and objects SQLite parses.
const MAX_DEPTH: usize = 2000;

/// Evaluates a call: its value, and whether that value is JSON text (what
/// SQLite's JSON subtype says).
pub(super) fn call(f: JsonFunc, args: &[Expr], ctx: &Ctx) -> Result<(Value, bool), QueryError> {
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        values.push(match a {
            Expr::Func(Func::Json(g), inner) => call(*g, inner, ctx)?,
            other => (eval(other, ctx)?, false),
        });
    }
    apply(f, &values)
}

/// The function over evaluated arguments, each with whether it is JSON.
pub(super) fn apply(f: JsonFunc, args: &[(Value, bool)]) -> Result<(Value, bool), QueryError> {
    let arg = |i: usize| args.get(i).map_or(&Value::Null, |(v, _)| v);
    let text = |v: String| Ok((Value::text(&v), true));
    match f {
        JsonFunc::Array => {
            let mut out = String::from("[");
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                append_value(&mut out, a);
            }
            out.push(']');
            text(out)
        }
        JsonFunc::Object => {
            if args.len() % 2 == 1 {
                return Err(runtime(
                    "json_object() requires an even number of arguments",
                ));
            }
            let mut out = String::from("{");
            for (i, pair) in args.chunks(2).enumerate() {
                let [(Value::Text(label), _), value] = pair else {
                    return Err(runtime("json_object() labels must be TEXT"));
                };
                if i > 0 {
                    out.push(',');
                }
                append_string(&mut out, label);
                out.push(':');
                append_value(&mut out, value);
            }
            out.push('}');
            text(out)
        }
        JsonFunc::Quote => {
            let mut out = String::new();
            append_value(&mut out, args.first().unwrap_or(&(Value::Null, false)));
            text(out)
        }
        JsonFunc::Valid => {
            // SQLite 3.40: NULL is not valid JSON (0, not NULL).
            let v = arg(0);
            Ok((
                Value::Int(i64::from(
                    !v.is_null() && Doc::parse(&v.to_string()).is_some(),
                )),
                false,
            ))
        }
        JsonFunc::Extract if args.len() < 2 => Ok((Value::Null, false)),
        _ => {
            let Some(doc) = document(arg(0))? else {
                return Ok((Value::Null, false));
            };
            doc.query(f, &args[1.min(args.len())..])
        }
    }
}

/// The parsed first argument: None for NULL, an error when malformed.
fn document(v: &Value) -> Result<Option<Doc>, QueryError> {
    if v.is_null() {
        return Ok(None);
    }
    let text = v.to_string();
    match Doc::parse(&text) {
        Some(d) => Ok(Some(d)),
        None => Err(runtime("malformed JSON")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    True,
    False,
    Int,
    Real,
    /// A string; `escaped` when it holds a backslash escape.
    Str {
        escaped: bool,
    },
    Array,
    Object,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::True => "true",
            Kind::False => "false",
            Kind::Int => "integer",
            Kind::Real => "real",
            Kind::Str { .. } => "text",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

/// One value of a document: its text (`start..end`, for a container its
/// opening bracket) and, for a container, how many nodes it holds (an
/// object's children alternate label and value).
#[derive(Debug, Clone, Copy)]
struct Node {
    kind: Kind,
    start: usize,
    end: usize,
    inner: usize,
}

/// A parsed document: its text and its nodes, the root first.
struct Doc {
    text: String,
    nodes: Vec<Node>,
}

impl Doc {
    /// SQLite's strict parse; None when the text is not JSON.
    fn parse(text: &str) -> Option<Doc> {
        let b = text.as_bytes();
        let mut nodes: Vec<Node> = Vec::new();
        // Open containers (node indices): a loop instead of recursion.
        let mut open: Vec<usize> = Vec::new();
        let mut i = skip_space(b, 0);
        'value: loop {
            // A value starts at `i`.
            let start = i;
            match *b.get(i)? {
                c @ (b'[' | b'{') => {
                    if open.len() >= MAX_DEPTH {
                        return None;
                    }
                    let kind = if c == b'[' { Kind::Array } else { Kind::Object };
                    nodes.push(Node {
                        kind,
                        start,
                        end: start + 1,
                        inner: 0,
                    });
                    open.push(nodes.len() - 1);
                    i = skip_space(b, i + 1);
                    let close = if c == b'[' { b']' } else { b'}' };
                    if b.get(i) == Some(&close) {
                        close_top(&mut nodes, &mut open);
                        i += 1;
                    } else {
                        if c == b'{' {
                            i = label(b, i, &mut nodes)?;
                        }
                        continue 'value;
                    }
                }
                b'"' => {
                    let (end, escaped) = string_end(b, i)?;
                    nodes.push(Node {
                        kind: Kind::Str { escaped },
                        start,
                        end,
                        inner: 0,
                    });
                    i = end;
                }
                b'-' | b'0'..=b'9' => {
                    let (end, real) = number_end(b, i)?;
                    let kind = if real { Kind::Real } else { Kind::Int };
                    nodes.push(Node {
                        kind,
                        start,
                        end,
                        inner: 0,
                    });
                    i = end;
                }
                _ => {
                    let kind = [
                        (&b"null"[..], Kind::Null),
                        (b"true", Kind::True),
                        (b"false", Kind::False),
                    ]
                    .into_iter()
                    .find(|(w, _)| {
                        b[i..].starts_with(w)
                            && !b.get(i + w.len()).is_some_and(u8::is_ascii_alphanumeric)
                    })
                    .map(|(w, k)| (w.len(), k));
                    let (len, kind) = kind?;
                    nodes.push(Node {
                        kind,
                        start,
                        end: i + len,
                        inner: 0,
                    });
                    i += len;
                }
            }
            // After a value: separators and closing brackets.
            loop {
                i = skip_space(b, i);
                let Some(&top) = open.last() else {
                    break 'value;
                };
                let is_object = nodes[top].kind == Kind::Object;
                match b.get(i) {
                    Some(b',') => {
                        i = skip_space(b, i + 1);
                        if is_object {
                            i = label(b, i, &mut nodes)?;
                        }
                        continue 'value;
                    }
                    Some(b']') if !is_object => close_top(&mut nodes, &mut open),
                    Some(b'}') if is_object => close_top(&mut nodes, &mut open),
                    _ => return None,
                }
                i += 1;
            }
        }
        (i == b.len()).then(|| Doc {
            text: text.to_string(),
            nodes,
        })
    }

    fn raw(&self, n: usize) -> &str {
        self.nodes
            .get(n)
            .and_then(|x| self.text.get(x.start..x.end))
            .unwrap_or("")
    }

    /// The node after node `n` and everything inside it.
    fn next(&self, n: usize) -> usize {
        n + 1 + self.nodes.get(n).map_or(0, |x| x.inner)
    }

    fn kind(&self, n: usize) -> Option<Kind> {
        self.nodes.get(n).map(|x| x.kind)
    }

    /// The functions that read a document, over their other arguments.
    fn query(&self, f: JsonFunc, rest: &[(Value, bool)]) -> Result<(Value, bool), QueryError> {
        let path = |i: usize| match rest.get(i) {
            None => Ok(Some(0)),
            Some((Value::Null, _)) => Ok(None),
            Some((p, _)) => self.lookup(&p.to_string()),
        };
        Ok(match f {
            JsonFunc::Json => (Value::text(&self.render(0)), true),
            JsonFunc::Type => match path(0)? {
                Some(n) => (Value::text(self.kind(n).map_or("null", Kind::name)), false),
                None => (Value::Null, false),
            },
            JsonFunc::ArrayLength => match path(0)? {
                Some(n) => {
                    let mut count = 0;
                    if self.kind(n) == Some(Kind::Array) {
                        let (mut c, end) = (n + 1, self.next(n));
                        while c < end {
                            count += 1;
                            c = self.next(c);
                        }
                    }
                    (Value::Int(count), false)
                }
                None => (Value::Null, false),
            },
            JsonFunc::Extract if rest.len() == 1 => match path(0)? {
                Some(n) => {
                    let container = matches!(self.kind(n), Some(Kind::Array | Kind::Object));
                    (self.sql_value(n), container)
                }
                None => (Value::Null, false),
            },
            JsonFunc::Extract => {
                let mut out = String::from("[");
                for i in 0..rest.len() {
                    if i > 0 {
                        out.push(',');
                    }
                    match path(i)? {
                        Some(n) => out.push_str(&self.render(n)),
                        None => out.push_str("null"),
                    }
                }
                out.push(']');
                (Value::text(&out), true)
            }
            JsonFunc::Arrow | JsonFunc::LongArrow => {
                let found = match rest.first() {
                    None | Some((Value::Null, _)) => None,
                    Some((p, _)) => self.lookup(&operator_path(&p.to_string()))?,
                };
                match (found, f) {
                    (None, _) => (Value::Null, false),
                    (Some(n), JsonFunc::Arrow) => (Value::text(&self.render(n)), true),
                    (Some(n), _) => (self.sql_value(n), false),
                }
            }
            // Functions that make JSON never reach a document.
            _ => (Value::Null, false),
        })
    }

    /// SQLite's path lookup: `$`, then `.key`, `."key"`, `[N]`, `[#-N]`.
    /// Ok(None): the path is well formed but leads nowhere (SQLite stops at
    /// the first step that does not fit, before reading the rest).
    fn lookup(&self, path: &str) -> Result<Option<usize>, QueryError> {
        let error = |rest: &[u8]| {
            runtime(format!(
                "JSON path error near '{}'",
                String::from_utf8_lossy(rest)
            ))
        };
        let p = path.as_bytes();
        if p.first() != Some(&b'$') {
            return Err(error(p));
        }
        let mut rest = &p[1..];
        let mut node = 0;
        while let Some(&c) = rest.first() {
            match c {
                b'.' => {
                    if self.kind(node) != Some(Kind::Object) {
                        return Ok(None);
                    }
                    rest = &rest[1..];
                    let (key, after) = if rest.first() == Some(&b'"') {
                        match rest[1..].iter().position(|&c| c == b'"') {
                            Some(k) => (&rest[1..=k], &rest[k + 2..]),
                            None => return Err(error(rest)),
                        }
                    } else {
                        let k = rest
                            .iter()
                            .position(|&c| c == b'.' || c == b'[')
                            .unwrap_or(rest.len());
                        if k == 0 {
                            return Err(error(rest));
                        }
                        (&rest[..k], &rest[k..])
                    };
                    let (mut label, end) = (node + 1, self.next(node));
                    let mut found = None;
                    while label + 1 < end {
                        let raw = self.raw(label).as_bytes();
                        if raw.get(1..raw.len().saturating_sub(1)) == Some(key) {
                            found = Some(label + 1);
                            break;
                        }
                        label = self.next(label + 1);
                    }
                    match found {
                        Some(v) => node = v,
                        None => return Ok(None),
                    }
                    rest = after;
                }
                b'[' => {
                    // SQLite counts in 32 bits and lets them wrap.
                    let mut index: u32 = 0;
                    let mut j = 1;
                    while let Some(d) = rest.get(j).filter(|d| d.is_ascii_digit()) {
                        index = index.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
                        j += 1;
                    }
                    if j < 2 || rest.get(j) != Some(&b']') {
                        if rest.get(1) != Some(&b'#') {
                            return Err(error(rest));
                        }
                        if self.kind(node) != Some(Kind::Array) {
                            return Ok(None);
                        }
                        index = self.children(node).count() as u32;
                        j = 2;
                        if rest.get(2) == Some(&b'-') && rest.get(3).is_some_and(u8::is_ascii_digit)
                        {
                            let mut back: u32 = 0;
                            j = 3;
                            while let Some(d) = rest.get(j).filter(|d| d.is_ascii_digit()) {
                                back = back.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
                                j += 1;
                            }
                            if back > index {
                                return Ok(None);
                            }
                            index -= back;
                        }
                        if rest.get(j) != Some(&b']') {
                            return Err(error(rest));
                        }
                    }
                    if self.kind(node) != Some(Kind::Array) {
                        return Ok(None);
                    }
                    rest = &rest[j + 1..];
                    match self.children(node).nth(index as usize) {
                        Some(child) => node = child,
                        None => return Ok(None),
                    }
                }
                _ => return Err(error(rest)),
            }
        }
        Ok(Some(node))
    }

    /// The nodes directly inside container `n`.
    fn children(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.next(n);
        std::iter::successors(Some(n + 1), move |&c| Some(self.next(c)))
            .take_while(move |&c| c < end)
    }

    /// Node `n` as an SQL value (SQLite's `jsonReturn`): null is NULL, true
    /// and false 1 and 0, a string its text, a container its JSON.
    fn sql_value(&self, n: usize) -> Value {
        let raw = self.raw(n);
        match self.kind(n) {
            None | Some(Kind::Null) => Value::Null,
            Some(Kind::True) => Value::Int(1),
            Some(Kind::False) => Value::Int(0),
            // Beyond 64 bits an integer is read as a real, as SQLite does.
            Some(Kind::Int) => raw
                .parse::<i64>()
                .map(Value::Int)
                .unwrap_or_else(|_| Value::Real(raw.parse().unwrap_or(0.0))),
            Some(Kind::Real) => Value::Real(raw.parse().unwrap_or(0.0)),
            Some(Kind::Str { escaped }) => {
                let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
                if escaped {
                    Value::text(&unescape(inner))
                } else {
                    Value::text(inner)
                }
            }
            Some(Kind::Array | Kind::Object) => Value::text(&self.render(n)),
        }
    }

    /// Node `n` and everything inside it as minified JSON: scalars as
    /// written, no whitespace.
    fn render(&self, n: usize) -> String {
        let end = self.next(n);
        let mut out = String::new();
        // Open containers: (end node, is an object, members written, next is a value).
        let mut open: Vec<(usize, bool, bool, bool)> = Vec::new();
        let mut i = n;
        while i < end {
            while let Some(&(e, is_object, ..)) = open.last() {
                if i < e {
                    break;
                }
                out.push(if is_object { '}' } else { ']' });
                open.pop();
            }
            if let Some((_, is_object, any, value_next)) = open.last_mut() {
                if *is_object && *value_next {
                    out.push(':');
                } else if *any {
                    out.push(',');
                }
                *any = true;
                if *is_object {
                    *value_next = !*value_next;
                }
            }
            match self.kind(i) {
                Some(Kind::Array) => {
                    out.push('[');
                    open.push((self.next(i), false, false, false));
                }
                Some(Kind::Object) => {
                    out.push('{');
                    open.push((self.next(i), true, false, false));
                }
                _ => out.push_str(self.raw(i)),
            }
            i += 1;
        }
        while let Some((_, is_object, ..)) = open.pop() {
            out.push(if is_object { '}' } else { ']' });
        }
        out
    }
}

/// The path of `->` and `->>`: a `$` path as given; `N` (a number) is
/// `$[N]`, `[...]` is `$[...]`, anything else `$.` and it (SQLite 3.40).
fn operator_path(p: &str) -> String {
    if p.starts_with('$') {
        p.to_string()
    } else if p.starts_with(|c: char| c.is_ascii_digit()) {
        format!("$[{p}]")
    } else if p.starts_with('[') {
        format!("${p}")
    } else {
        format!("$.{p}")
    }
}

/// Closes the innermost open container: it holds every node after it.
fn close_top(nodes: &mut [Node], open: &mut Vec<usize>) {
    if let Some(top) = open.pop() {
        let count = nodes.len() - top - 1;
        if let Some(n) = nodes.get_mut(top) {
            n.inner = count;
        }
    }
}

/// An object's label (a string) and its `:`; the index of the value.
fn label(b: &[u8], i: usize, nodes: &mut Vec<Node>) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, escaped) = string_end(b, i)?;
    nodes.push(Node {
        kind: Kind::Str { escaped },
        start: i,
        end,
        inner: 0,
    });
    let colon = skip_space(b, end);
    (b.get(colon) == Some(&b':')).then(|| skip_space(b, colon + 1))
}

/// JSON's whitespace (SQLite 3.40: not \f or \v).
fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The end of the string starting at `i` (past its closing quote), and
/// whether it holds an escape; None when malformed.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        let c = *b.get(j)?;
        if c < 0x20 {
            return None;
        }
        if c == b'\\' {
            j += 1;
            match *b.get(j)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' if b
                    .get(j + 1..j + 5)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => {}
                _ => return None,
            }
            escaped = true;
        } else if c == b'"' {
            return Some((j + 1, escaped));
        }
        j += 1;
    }
}

/// The end of the number starting at `i`, and whether it is a real (has a
/// `.` or an exponent); None when malformed (`01`, `1.`, `.5`, `-`).
fn number_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let first = if at(i) == b'-' { i + 1 } else { i };
    if at(first) == b'0' && at(first + 1).is_ascii_digit() {
        return None;
    }
    let (mut dot, mut exp) = (false, false);
    let mut j = i + 1;
    loop {
        let c = at(j);
        if c.is_ascii_digit() {
        } else if c == b'.' {
            if at(j - 1) == b'-' || dot {
                return None;
            }
            dot = true;
        } else if c == b'e' || c == b'E' {
            if at(j - 1) < b'0' || exp {
                return None;
            }
            dot = true;
            exp = true;
            if matches!(at(j + 1), b'+' | b'-') {
                j += 1;
            }
            if !at(j + 1).is_ascii_digit() {
                return None;
            }
        } else {
            break;
        }
        j += 1;
    }
    if at(j - 1) < b'0' {
        return None;
    }
    Some((j, dot))
}

/// A JSON string's content with its escapes decoded, as SQLite decodes
/// them: `\u0000` ends the text; a lone surrogate (which SQLite writes as
/// invalid UTF-8) becomes U+FFFD.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let hex = |k: usize| {
        s.get(k..k + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    let mut i = 0;
    let mut plain = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(s.get(plain..i).unwrap_or(""));
        i += 1;
        match b.get(i).copied().unwrap_or(0) {
            b'u' => {
                let mut v = hex(i + 1);
                i += 5;
                if v == 0 {
                    return out;
                }
                if (v & 0xfc00) == 0xd800 && b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u')
                {
                    let lo = hex(i + 2);
                    if (lo & 0xfc00) == 0xdc00 {
                        v = ((v & 0x3ff) << 10) + (lo & 0x3ff) + 0x10000;
                        i += 6;
                    }
                }
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            }
            c => {
                out.push(match c {
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    other => char::from(other),
                });
                i += 1;
            }
        }
        plain = i;
    }
    out.push_str(s.get(plain..).unwrap_or(""));
    out
}

/// An SQL value in JSON (SQLite's `jsonAppendValue`): NULL is null, a
/// number as SQLite prints it, a text quoted unless it is JSON already.
fn append_value(out: &mut String, (v, is_json): &(Value, bool)) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Real(r) => out.push_str(&format_real(*r)),
        Value::Text(t) if *is_json => out.push_str(t),
        Value::Text(t) => append_string(out, t),
    }
}

/// A text as a JSON string: `"` and `\` escaped, control characters as
/// `\b \t \n \f \r` or `\u00XX`; everything else (`/`, non-ASCII) as is.
fn append_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> (Value, bool) {
        (Value::text(s), false)
    }

    fn show(r: Result<(Value, bool), QueryError>) -> String {
        match r {
            Ok((Value::Null, _)) => "NULL".to_string(),
            Ok((v, _)) => v.to_string(),
            Err(e) => format!("error: {}", e.message),
        }
    }

    #[test]
    fn parse_is_strict_and_minifies_as_written() {
        let valid = |s: &str| Doc::parse(s).is_some();
        for s in [
            "1",
            " \"x\" ",
            "-0",
            "1E+2",
            "[]",
            "{}",
            "[1,[2,{\"a\":null}]]",
            "\"\\u00e9\\/\"",
            "true",
            "\r\n[ 1 ]",
        ] {
            assert!(valid(s), "{s}");
        }
        for s in [
            "",
            "{a:1}",
            "[1,]",
            "01",
            "-",
            "1.",
            ".5",
            "\"\\x\"",
            "\"a\tb\"",
            "1 2",
            "nul",
            "nullx",
            "[1",
            "{\"a\"}",
            "{\"a\":1,}",
            "\u{c}1",
            "-01",
            "1.e5",
            "1e",
            "[1]]",
        ] {
            assert!(!valid(s), "{s}");
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(valid(&deep(MAX_DEPTH)));
        assert!(!valid(&deep(MAX_DEPTH + 1)));
        let doc = Doc::parse(" [1.50, 1E2, -0, \"\\u0041\", {\"a\" : null, \"a\":2}, [], {}] ");
        assert_eq!(
            doc.map(|d| d.render(0)).as_deref(),
            Some("[1.50,1E2,-0,\"\\u0041\",{\"a\":null,\"a\":2},[],{}]")
        );
    }

    #[test]
    fn paths_follow_sqlite() {
        let ex = |doc: &str, path: &str| show(apply(JsonFunc::Extract, &[t(doc), t(path)]));
        let d = r#"{"a":[1,2,{"b":"x"}],"c d":true,"e":{"f":1.5}}"#;
        assert_eq!(ex(d, "$.a[2].b"), "x");
        assert_eq!(ex(d, "$.a"), "[1,2,{\"b\":\"x\"}]");
        assert_eq!(ex(d, "$.\"c d\""), "1");
        assert_eq!(ex(d, "$.e.f"), "1.5");
        assert_eq!(ex(d, "$.a[#-1].b"), "x");
        assert_eq!(ex(d, "$.a[#]"), "NULL");
        assert_eq!(ex(d, "$.a[#-0]"), "NULL");
        assert_eq!(ex(d, "$.a[#-9]"), "NULL");
        assert_eq!(ex(d, "$.zz"), "NULL");
        assert_eq!(ex("[1]", "$."), "NULL");
        assert_eq!(ex("[1]", "$.a["), "NULL");
        assert!(ex(d, "$.").starts_with("error"));
        assert!(ex(d, "x").starts_with("error"));
        assert!(ex(d, "$[").starts_with("error"));
        assert!(ex(d, "$.\"a").starts_with("error"));
        assert!(ex("nope", "$").starts_with("error"));
        assert_eq!(ex("[9223372036854775807]", "$[0]"), "9223372036854775807");
        assert_eq!(ex("[9223372036854775808]", "$[0]"), "9.22337203685478e+18");
        assert_eq!(ex(r#"{"\u0061":1}"#, "$.a"), "NULL");
        assert_eq!(ex(r#"["b\u0000x"]"#, "$[0]"), "b");
        assert_eq!(ex(r#"["\ud83d\ude00\n\"\/"]"#, "$[0]"), "😀\n\"/");
        let two = apply(
            JsonFunc::Extract,
            &[t(d), t("$.e"), (Value::Null, false), t("x")],
        );
        assert!(show(two).starts_with("error"));
        let two = apply(
            JsonFunc::Extract,
            &[t(d), t("$.e"), (Value::Null, false), t("$.a[0]")],
        );
        assert_eq!(show(two), "[{\"f\":1.5},null,1]");
        let arrow = |f, p: Value| show(apply(f, &[t(d), (p, false)]));
        assert_eq!(arrow(JsonFunc::Arrow, Value::text("a[2].b")), "\"x\"");
        assert_eq!(arrow(JsonFunc::LongArrow, Value::text("a[2].b")), "x");
        assert_eq!(
            show(apply(
                JsonFunc::Arrow,
                &[t("[5,6]"), (Value::Int(1), false)]
            )),
            "6"
        );
        assert_eq!(
            show(apply(
                JsonFunc::LongArrow,
                &[t("[5,6]"), (Value::Int(-1), false)]
            )),
            "NULL"
        );
    }

    #[test]
    fn making_json_quotes_text_but_nests_json() {
        let arr = apply(
            JsonFunc::Array,
            &[
                (Value::Int(1), false),
                (Value::Real(2.5), false),
                t("x\"\u{1}\t/é"),
                (Value::Null, false),
                (Value::Real(1e20), false),
                (Value::text("[1]"), true),
                t("[1]"),
            ],
        );
        assert_eq!(
            show(arr),
            r#"[1,2.5,"x\"\u0001\t/é",null,1.0e+20,[1],"[1]"]"#
        );
        let obj = |args: &[(Value, bool)]| show(apply(JsonFunc::Object, args));
        assert_eq!(obj(&[t("a"), (Value::Int(1), false)]), r#"{"a":1}"#);
        assert_eq!(obj(&[]), "{}");
        assert!(obj(&[t("a")]).starts_with("error"));
        assert!(obj(&[(Value::Int(1), false), t("a")]).starts_with("error"));
        let one = |f, v: (Value, bool)| show(apply(f, &[v]));
        assert_eq!(one(JsonFunc::Quote, (Value::Real(1.0), false)), "1.0");
        assert_eq!(one(JsonFunc::Quote, t("a\"b")), r#""a\"b""#);
        assert_eq!(one(JsonFunc::Quote, (Value::text("[1]"), true)), "[1]");
        assert_eq!(one(JsonFunc::Valid, (Value::Null, false)), "0");
        assert_eq!(one(JsonFunc::Valid, (Value::Int(123), false)), "1");
        assert_eq!(one(JsonFunc::Type, t("{}")), "object");
        assert_eq!(one(JsonFunc::Type, (Value::Null, false)), "NULL");
        assert_eq!(one(JsonFunc::ArrayLength, t("[1,[2,3],{}]")), "3");
        assert_eq!(one(JsonFunc::ArrayLength, t("5")), "0");
        assert!(one(JsonFunc::Json, t("abc")).starts_with("error"));
    }
}
