//! Invariants that check themselves (rust-analyzer keeps the same kind of
//! `tidy` test): the rules of docs/ARCHITECTURE.md that a text scan can
//! decide are checked here on every `cargo test`, so they hold without anyone
//! remembering them.
//!
//! Each check is a plain function from (path, text) to the offences it finds,
//! named `file:line`; `tidy` runs them over the tree and subtracts the
//! allowlists below, and the unit tests at the bottom feed every check a small
//! sample that breaks its rule, so a check that stopped finding anything would
//! fail too. Code is scanned with comments and string contents blanked out
//! (`mask`), so a rule named in a comment or a message is not an offence.
//!
//! An allowlist entry that no longer matches anything fails as well: the lists
//! only shrink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Files of `src/` that may use `std::fs` directly (invariant 3: all other
/// file I/O of the engine goes through `storage::io::Io`, which is what lets
/// the crash matrix put `FaultIo` underneath). The reasons are in
/// docs/ARCHITECTURE.md, in the block marked `tidy:std-fs`, which must list
/// exactly these files (`std_fs_allowlist_matches_architecture_md`).
/// `#[cfg(test)]` modules and test-only files are not scanned.
const STD_FS_ALLOWED: &[&str] = &[
    "src/storage/io.rs",
    "src/storage/fault.rs",
    "src/storage/lock.rs",
    "src/storage/registry.rs",
    "src/storage/verify.rs",
    "src/storage/database.rs",
    "src/storage/table/read.rs",
    "src/fs/core/mod.rs",
    "src/fs/core/handles.rs",
    "src/fs/spill.rs",
    "src/fs/core/family/queries.rs",
    "src/cli/mount.rs",
    "src/cli/conflict.rs",
    "src/cli/db.rs",
    "src/cli/table.rs",
    "src/metrics/node.rs",
    "src/metrics/serve.rs",
];

/// `.unwrap()` / `.expect(` outside tests (invariant "no panics on input"):
/// (file, text of the line that holds it, why it cannot fire on input).
/// Matching on the line's text rather than its number keeps an entry valid
/// while the file around it changes.
const UNWRAP_ALLOWED: &[(&str, &str, &str)] = &[];

/// Source files over `MAX_LINES` lines, with the reason they still are.
const BIG_FILES_ALLOWED: &[(&str, &str)] = &[];

const MAX_LINES: usize = 1500;

/// Where the repository must not point outside itself, and what it must not
/// name: the repository stands on its own. Built with `concat!` so this file
/// does not name them either.
const OUTSIDE_REFS: &[&str] = &[
    concat!("..", "/shared"),
    concat!("shared", "/notes"),
    concat!("design", ".md"),
];
const OUTSIDE_REF_ROOTS: &[&str] = &["src", "tests", "docs", "scripts", "mount", "README.md"];

#[test]
fn tidy() {
    let root = Path::new(ROOT);
    let mut offences = Vec::new();

    let sources = files_under(&root.join("src"), root);
    assert!(
        sources.iter().any(|(p, _)| p == "src/storage/io.rs"),
        "tidy found no sources under {ROOT}/src"
    );

    // (a) std::fs outside the allowlist.
    let mut fs_used = BTreeSet::new();
    for (path, text) in &sources {
        let found = check_std_fs(path, text);
        if !found.is_empty() {
            fs_used.insert(path.as_str());
        }
        if !STD_FS_ALLOWED.contains(&path.as_str()) {
            offences.extend(found);
        }
    }
    for allowed in STD_FS_ALLOWED {
        if !fs_used.contains(allowed) {
            offences.push(format!(
                "{allowed}: in STD_FS_ALLOWED but uses no std::fs; remove it here and in docs/ARCHITECTURE.md"
            ));
        }
    }

    // (b) dependencies point down.
    for (path, text) in &sources {
        offences.extend(check_layers(path, text));
    }

    // (c) no unwrap/expect outside tests.
    let mut unwrap_used = BTreeSet::new();
    for (path, text) in &sources {
        for (line, offence) in check_unwrap(path, text) {
            let allowed = UNWRAP_ALLOWED.iter().position(|(file, needle, _)| {
                file == path
                    && text
                        .lines()
                        .nth(line - 1)
                        .is_some_and(|l| l.contains(needle))
            });
            match allowed {
                Some(i) => {
                    unwrap_used.insert(i);
                }
                None => offences.push(offence),
            }
        }
    }
    for (i, (file, needle, _)) in UNWRAP_ALLOWED.iter().enumerate() {
        if !unwrap_used.contains(&i) {
            offences.push(format!(
                "{file}: UNWRAP_ALLOWED entry {needle:?} matches nothing; remove it"
            ));
        }
    }

    // (d) file size.
    for (path, text) in &sources {
        let big = check_size(path, text);
        let allowed = BIG_FILES_ALLOWED.iter().any(|(f, _)| f == path);
        match (big, allowed) {
            (Some(offence), false) => offences.push(offence),
            (None, true) => offences.push(format!(
                "{path}: in BIG_FILES_ALLOWED but no longer over {MAX_LINES} lines; remove it"
            )),
            _ => {}
        }
    }

    // (e) the repository stands on its own.
    for top in OUTSIDE_REF_ROOTS {
        for (path, text) in files_under(&root.join(top), root) {
            offences.extend(check_outside_refs(&path, &text));
        }
    }

    // (f) every source file is on the code map of docs/ARCHITECTURE.md.
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md"))
        .expect("read docs/ARCHITECTURE.md");
    for (path, _) in &sources {
        offences.extend(check_code_map(path, &doc));
    }

    // (g) errors are mapped once: to errnos, to exit codes, between types.
    offences.extend(check_error_mapping(&sources));

    assert!(
        offences.is_empty(),
        "tidy found {} offence(s):\n{}",
        offences.len(),
        offences.join("\n")
    );
}

#[test]
fn std_fs_allowlist_matches_architecture_md() {
    let path = Path::new(ROOT).join("docs/ARCHITECTURE.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/ARCHITECTURE.md");
    let listed =
        marked_list(&doc, "tidy:std-fs").expect("docs/ARCHITECTURE.md has a tidy:std-fs block");
    let in_doc: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    let in_test: BTreeSet<&str> = STD_FS_ALLOWED.iter().copied().collect();
    assert_eq!(
        in_doc, in_test,
        "the tidy:std-fs block of docs/ARCHITECTURE.md and STD_FS_ALLOWED in tests/it/tidy.rs must list the same files"
    );
}

/// Every file under `dir` (or `dir` itself if it is a file) as
/// (path relative to `root` with `/`, text), sorted. Non-UTF-8 bytes are
/// replaced, which is enough to search text.
fn files_under(dir: &Path, root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            let rd = std::fs::read_dir(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            stack.extend(rd.map(|e| e.expect("dir entry").path()));
        } else if meta.is_file() {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            out.push((rel(&p, root), String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out.sort();
    out
}

fn rel(p: &Path, root: &Path) -> String {
    let r: PathBuf = p.strip_prefix(root).unwrap_or(p).to_path_buf();
    r.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn is_rust(path: &str) -> bool {
    path.ends_with(".rs")
}

/// `*_tests.rs` and `tests.rs` hold only tests.
fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "tests.rs" || name.ends_with("_tests.rs")
}

/// The text with comments and the contents of string and char literals
/// replaced by spaces; line breaks and the positions of everything else are
/// kept, so offsets and line numbers match the original.
fn mask(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (i == 0 || !ident(c[i - 1]) || (c[i - 1] == 'b' && (i == 1 || !ident(c[i - 2]))))
            && {
                let mut j = i + 1;
                while c.get(j) == Some(&'#') {
                    j += 1;
                }
                c.get(j) == Some(&'"')
            }
        {
            // Raw string: r"..." or r#"..."#.
            let mut hashes = 0;
            out.push('r');
            i += 1;
            while c[i] == '#' {
                hashes += 1;
                out.push('#');
                i += 1;
            }
            out.push('"');
            i += 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    out.push('"');
                    i += 1;
                    for _ in 0..hashes {
                        out.push('#');
                        i += 1;
                    }
                    break;
                }
                out.push(blank(c[i]));
                i += 1;
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && i + 1 < c.len() {
                    out.push(' ');
                    i += 1;
                }
                out.push(blank(c[i]));
                i += 1;
            }
            if i < c.len() {
                out.push('"');
                i += 1;
            }
        } else if c[i] == '\'' && next == Some('\\') {
            // Escaped char literal: '\n', '\'', '\u{..}'.
            out.push_str("'  ");
            i += 3;
            while i < c.len() && c[i] != '\'' {
                out.push(blank(c[i]));
                i += 1;
            }
            if i < c.len() {
                out.push('\'');
                i += 1;
            }
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else {
            // Code, including a lifetime's quote.
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// For each line of masked code, whether it belongs to an item under
/// `#[cfg(test)]`: a test module, a `mod x;` declaration of one, a function,
/// or a field or variant (which ends at a `,` outside brackets, or at the `}`
/// that closes its struct).
fn test_lines(code: &str) -> Vec<bool> {
    let lines: Vec<&str> = code.split('\n').collect();
    let mut in_test = vec![false; lines.len()];
    let starts: Vec<usize> = std::iter::once(0)
        .chain(code.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let bytes = code.as_bytes();
    for (at, _) in code.match_indices("#[cfg(test)]") {
        let mut depth = 0usize;
        let mut parens = 0usize;
        let mut end = bytes.len();
        for (j, &b) in bytes.iter().enumerate().skip(at + "#[cfg(test)]".len()) {
            match b {
                b';' if depth == 0 => {
                    end = j;
                    break;
                }
                b',' if depth == 0 && parens == 0 => {
                    end = j;
                    break;
                }
                b'(' | b'[' => parens += 1,
                b')' | b']' => parens = parens.saturating_sub(1),
                b'{' => depth += 1,
                b'}' => {
                    if depth <= 1 {
                        end = j;
                        break;
                    }
                    depth -= 1;
                }
                _ => {}
            }
        }
        let first = line_of(&starts, at);
        let last = line_of(&starts, end);
        for flag in &mut in_test[first - 1..last] {
            *flag = true;
        }
    }
    in_test
}

/// 1-based line number of byte offset `at`, given the offsets where lines start.
fn line_of(starts: &[usize], at: usize) -> usize {
    starts.partition_point(|&s| s <= at)
}

/// Lines of masked code that hold `needle` outside a test item.
fn code_hits(code: &str, tests: &[bool], needle: &str) -> Vec<usize> {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(code.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    code.match_indices(needle)
        .map(|(at, _)| line_of(&starts, at))
        .filter(|&line| !tests[line - 1])
        .collect()
}

/// The first identifier of each member of the `{...}` group that starts at
/// byte `open` of `code` (which holds `{`), with the offset where it starts.
fn group_heads(code: &str, open: usize) -> Vec<(usize, String)> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expect_head = false;
    let mut i = open;
    let b = code.as_bytes();
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                expect_head = depth == 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => expect_head = true,
            ch if expect_head && (ch.is_ascii_alphabetic() || ch == b'_') => {
                let end = code[i..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(b.len(), |n| i + n);
                heads.push((i, code[i..end].to_string()));
                expect_head = false;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    heads
}

/// (a) `std::fs` used outside test code: a path through it, or `fs` in a
/// `use std::{...}` group.
fn check_std_fs(path: &str, text: &str) -> Vec<String> {
    if !is_rust(path) || is_test_file(path) {
        return Vec::new();
    }
    let code = mask(text);
    let tests = test_lines(&code);
    let starts: Vec<usize> = std::iter::once(0)
        .chain(code.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut lines: BTreeSet<usize> = BTreeSet::new();
    for (at, _) in code.match_indices("std::fs") {
        let after = code[at + "std::fs".len()..].chars().next();
        if !after.is_some_and(|ch| ch.is_alphanumeric() || ch == '_') {
            lines.insert(line_of(&starts, at));
        }
    }
    for (at, _) in code.match_indices("std::{") {
        for (h, name) in group_heads(&code, at + "std::".len()) {
            if name == "fs" {
                lines.insert(line_of(&starts, h));
            }
        }
    }
    lines
        .into_iter()
        .filter(|&l| !tests[l - 1])
        .map(|l| {
            format!(
                "{path}:{l}: std::fs outside storage::io::Io (invariant 3); use Io, or add the file with its reason to STD_FS_ALLOWED and docs/ARCHITECTURE.md"
            )
        })
        .collect()
}

/// The layers a file of `path` must not import: the ones above it.
fn forbidden_layers(path: &str) -> &'static [&'static str] {
    match path.split('/').nth(1) {
        Some("storage") => &["merge", "query", "fs", "cli", "sync"],
        Some("sync") => &["merge", "query", "fs", "cli"],
        Some("merge") => &["query", "fs", "cli", "sync"],
        Some("query") => &["fs", "cli", "sync"],
        Some("fs") => &["cli"],
        Some("metrics") => &["storage", "merge", "query", "fs", "cli", "sync"],
        _ => &[],
    }
}

/// (b) A lower layer naming an upper one through `crate::<layer>`, a
/// `crate::{<layer>, ...}` group, or `super::super::<layer>`. Test code counts
/// too: a layer's tests may not pull in the layers above it either.
fn check_layers(path: &str, text: &str) -> Vec<String> {
    let forbidden = forbidden_layers(path);
    if !is_rust(path) || forbidden.is_empty() {
        return Vec::new();
    }
    let code = mask(text);
    let starts: Vec<usize> = std::iter::once(0)
        .chain(code.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let ident_end = |from: usize| {
        code[from..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(code.len(), |n| from + n)
    };
    let mut found = Vec::new();
    let mut offence = |at: usize, layer: &str| {
        found.push(format!(
            "{path}:{}: imports crate::{layer}, a layer above {} (invariant: dependencies point down)",
            line_of(&starts, at),
            path.split('/').nth(1).unwrap_or(path)
        ));
    };
    for (at, _) in code.match_indices("crate::") {
        let from = at + "crate::".len();
        if code[from..].starts_with('{') {
            for (h, name) in group_heads(&code, from) {
                if forbidden.contains(&name.as_str()) {
                    offence(h, &name);
                }
            }
        } else {
            let name = &code[from..ident_end(from)];
            if forbidden.contains(&name) {
                offence(at, name);
            }
        }
    }
    for (at, _) in code.match_indices("super::super::") {
        let mut from = at + "super::super::".len();
        while code[from..].starts_with("super::") {
            from += "super::".len();
        }
        let name = &code[from..ident_end(from)];
        if forbidden.contains(&name) {
            offence(at, name);
        }
    }
    found
}

/// (c) `.unwrap()` or `.expect(` outside test modules and test-only files:
/// (line, offence).
fn check_unwrap(path: &str, text: &str) -> Vec<(usize, String)> {
    if !is_rust(path) || is_test_file(path) {
        return Vec::new();
    }
    let code = mask(text);
    let tests = test_lines(&code);
    let mut lines: BTreeSet<usize> = BTreeSet::new();
    lines.extend(code_hits(&code, &tests, ".unwrap()"));
    lines.extend(code_hits(&code, &tests, ".expect("));
    lines
        .into_iter()
        .map(|l| {
            (
                l,
                format!(
                    "{path}:{l}: unwrap/expect outside tests (invariant: no panics on input); return a typed error, or add (file, line text, reason) to UNWRAP_ALLOWED"
                ),
            )
        })
        .collect()
}

/// Where each way of turning an error into what the caller sees may be
/// written (outside tests): the one place invariant 8 of
/// docs/ARCHITECTURE.md names.
const ERROR_MAPPINGS: &[(&str, &str)] = &[
    // FsError -> errno: `fs/fuse.rs::errno`.
    ("Errno::", "src/fs/fuse.rs"),
    // Error -> exit code: `cli/mod.rs::exit_code`.
    ("fn exit_code", "src/cli/mod.rs"),
    ("process::exit", "src/main.rs"),
];

/// (g) An errno or exit code picked outside its one place, and a conversion
/// between two error types written twice (`impl From<A> for B`).
fn check_error_mapping(sources: &[(String, String)]) -> Vec<String> {
    let mut offences = Vec::new();
    let mut froms: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, text) in sources {
        if !is_rust(path) || is_test_file(path) {
            continue;
        }
        let code = mask(text);
        let tests = test_lines(&code);
        for (needle, home) in ERROR_MAPPINGS {
            if path != home {
                for l in code_hits(&code, &tests, needle) {
                    offences.push(format!(
                        "{path}:{l}: `{needle}` outside {home} (invariant 8: errors are mapped in one place)"
                    ));
                }
            }
        }
        for l in code_hits(&code, &tests, "impl From<") {
            let line = text.lines().nth(l - 1).unwrap_or("");
            let head: String = line.split_whitespace().collect::<Vec<_>>().join(" ");
            froms.entry(head).or_default().push(format!("{path}:{l}"));
        }
    }
    for (head, places) in froms {
        if places.len() > 1 {
            offences.push(format!(
                "`{head}` written {} times ({}): one conversion per pair of types",
                places.len(),
                places.join(", ")
            ));
        }
    }
    offences
}

/// (d) A source file over `MAX_LINES` lines.
fn check_size(path: &str, text: &str) -> Option<String> {
    let n = text.lines().count();
    (is_rust(path) && n > MAX_LINES).then(|| {
        format!("{path}:{n}: {n} lines, over {MAX_LINES}; split it, or add it with a reason to BIG_FILES_ALLOWED")
    })
}

/// (f) A source file that docs/ARCHITECTURE.md does not map: `src/<dir>/<f>.rs`
/// must be named as `` `<f>.rs` `` in the section whose heading starts
/// "## Map of `src/<dir>/`"; a file directly in `src/` anywhere in the doc.
fn check_code_map(path: &str, doc: &str) -> Option<String> {
    if !is_rust(path) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let found = match parts.as_slice() {
        ["src", _] => doc.contains(&format!("`{path}`")),
        ["src", dir, .., file] => {
            let heading = format!("## Map of `src/{dir}/`");
            // A file of a subdirectory may be named with its path from `dir`.
            let within = parts[2..].join("/");
            doc.find(&heading).is_some_and(|at| {
                let section = &doc[at + heading.len()..];
                let section = &section[..section.find("\n## ").unwrap_or(section.len())];
                section.contains(&format!("`{file}`")) || section.contains(&format!("`{within}`"))
            })
        }
        _ => true,
    };
    (!found).then(|| {
        format!("{path}: not on the code map of docs/ARCHITECTURE.md; add its line to the map of its directory")
    })
}

/// (e) A mention of a document outside the repository.
fn check_outside_refs(path: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for needle in OUTSIDE_REFS {
            if line.contains(needle) {
                found.push(format!(
                    "{path}:{}: mentions {needle:?}, outside the repository; say what the reader needs instead",
                    n + 1
                ));
            }
        }
    }
    found
}

/// The backticked path that starts each `- ` item between
/// `<!-- {mark} begin -->` and `<!-- {mark} end -->`.
fn marked_list(doc: &str, mark: &str) -> Option<Vec<String>> {
    let begin = format!("<!-- {mark} begin -->");
    let end = format!("<!-- {mark} end -->");
    let from = doc.find(&begin)? + begin.len();
    let to = from + doc[from..].find(&end)?;
    let items = doc[from..to]
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    Some(items)
}

/// Each check on a small sample that breaks its rule (and one that does not),
/// so a check that silently stopped matching fails here.
mod checks {
    use super::*;

    #[test]
    fn check_error_mapping_finds_errnos_exit_codes_and_conversions_out_of_place() {
        let src = |p: &str, t: &str| (p.to_string(), t.to_string());
        let found = check_error_mapping(&[
            src("src/fs/core/open.rs", "fn f() -> E { Errno::EIO }\n"),
            src("src/cli/table.rs", "fn g() { std::process::exit(3) }\n"),
            src(
                "src/query/a.rs",
                "impl From<MergeError> for QueryError {}\n",
            ),
            src(
                "src/query/b.rs",
                "impl From<MergeError> for QueryError {}\n",
            ),
            src("src/fs/fuse.rs", "fn errno() -> Errno { Errno::EIO }\n"),
            src(
                "src/fs/x.rs",
                "// Errno::EIO in a comment\nconst S: &str = \"Errno::\";\n",
            ),
            src(
                "src/fs/y.rs",
                "#[cfg(test)]\nmod tests {\n    fn t() { Errno::EIO; }\n}\n",
            ),
        ]);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("src/fs/core/open.rs:1:"), "{found:#?}");
        assert!(found[1].starts_with("src/cli/table.rs:1:"), "{found:#?}");
        assert!(found[2].contains("written 2 times"), "{found:#?}");
    }

    #[test]
    fn mask_blanks_comments_and_strings_only() {
        let text = "let a = \"std::fs\"; // std::fs\n/* x.unwrap() */ let b = r#\"\"#; 'x'; '\\'' ; f::<'a>()\n";
        let code = mask(text);
        assert_eq!(code.len(), text.len());
        assert_eq!(code.lines().count(), text.lines().count());
        assert!(!code.contains("std::fs") && !code.contains("unwrap"));
        assert!(code.contains("let b = r#\"\"#;") && code.contains("f::<'a>()"));
    }

    #[test]
    fn std_fs_is_found_outside_tests_only() {
        let text = "use std::fs;\nfn f() { std::fs::read(p); }\nuse std::{io, fs::File};\n\
                    // std::fs in a comment\nlet s = \"std::fs\";\n\
                    #[cfg(test)]\nmod tests {\n    fn g() { std::fs::read(p); }\n}\n";
        let found = check_std_fs("src/query/x.rs", text);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("src/query/x.rs:1:"));
        assert!(found[1].starts_with("src/query/x.rs:2:"));
        assert!(found[2].starts_with("src/query/x.rs:3:"));
        assert!(check_std_fs("src/query/x_tests.rs", text).is_empty());
        assert!(check_std_fs("src/query/x.rs", "use std::fs_extra;\n").is_empty());
    }

    #[test]
    fn upward_imports_are_found() {
        let text = "use crate::storage::Table;\nuse crate::query::Engine;\n\
                    use crate::{\n    storage,\n    fs::ReedFs,\n};\n\
                    fn f() { super::super::cli::run(); }\n// crate::cli in a comment\n";
        let found = check_layers("src/storage/x.rs", text);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("src/storage/x.rs:2:"));
        assert!(found[1].starts_with("src/storage/x.rs:5:"));
        assert!(found[2].starts_with("src/storage/x.rs:7:"));
        assert_eq!(check_layers("src/fs/x.rs", text).len(), 1);
        assert!(check_layers("src/cli/x.rs", text).is_empty());
        assert!(check_layers("src/merge/x.rs", "use crate::storage::Table;\n").is_empty());
    }

    #[test]
    fn unwrap_is_found_outside_tests_only() {
        let text = "fn f() {\n    a.unwrap();\n    b.expect(\"b\");\n    c.unwrap_or_else(|e| e.into_inner());\n    d.expect_err(\"x\");\n}\n\
                    #[cfg(test)]\nmod tests {\n    fn g() { a.unwrap(); }\n}\n\
                    #[cfg(test)]\n#[path = \"x_tests.rs\"]\nmod x_tests;\nfn h() { e.unwrap() }\n\
                    struct S {\n    #[cfg(test)]\n    t: Option<u8>,\n    u: u8,\n}\n\
                    fn i() { f.unwrap() }\n";
        let found = check_unwrap("src/storage/x.rs", text);
        let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 14, 20], "{found:#?}");
        assert!(check_unwrap("src/merge/tests.rs", text).is_empty());
        assert!(check_unwrap("src/fs/saves_tests.rs", text).is_empty());
    }

    #[test]
    fn big_files_are_found() {
        let big = "x\n".repeat(MAX_LINES + 1);
        assert!(check_size("src/a.rs", &big).is_some());
        assert!(check_size("src/a.rs", &"x\n".repeat(MAX_LINES)).is_none());
    }

    #[test]
    fn outside_references_are_found() {
        for needle in OUTSIDE_REFS {
            let text = format!("fine\n//! see {needle} for why\n");
            let found = check_outside_refs("docs/X.md", &text);
            assert_eq!(found.len(), 1, "{needle}: {found:#?}");
            assert!(found[0].starts_with("docs/X.md:2:"));
        }
        assert!(check_outside_refs("docs/X.md", "docs/FORMAT.md\n").is_empty());
    }

    #[test]
    fn unmapped_files_are_found() {
        let doc = "`src/lib.rs`\n## Map of `src/fs/`\n| `core.rs` | x |\n| `sub/deep.rs` | x |\n## Map of `src/cli/`\n| `mod.rs` | x |\n";
        assert!(check_code_map("src/lib.rs", doc).is_none());
        assert!(check_code_map("src/fs/core.rs", doc).is_none());
        assert!(check_code_map("src/fs/sub/deep.rs", doc).is_none());
        assert!(check_code_map("src/fs/sub/core.rs", doc).is_none());
        assert!(
            check_code_map("src/fs/other/deep.rs", doc).is_some(),
            "named only with another subdirectory"
        );
        assert!(check_code_map("src/main.rs", doc).is_some());
        assert!(
            check_code_map("src/fs/mod.rs", doc).is_some(),
            "named only under cli"
        );
        assert!(
            check_code_map("src/query/core.rs", doc).is_some(),
            "no section"
        );
    }

    #[test]
    fn marked_list_reads_the_block() {
        let doc = "x\n<!-- m begin -->\n- `src/a.rs`: why\n  - `src/b.rs` (why)\nnot an item `src/c.rs`\n<!-- m end -->\n- `src/d.rs`\n";
        assert_eq!(marked_list(doc, "m").unwrap(), ["src/a.rs", "src/b.rs"]);
        assert!(marked_list(doc, "other").is_none());
    }
}
