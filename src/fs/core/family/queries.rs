//! `<db>/@query/`: queries as files (docs/MOUNT.md, "Queries"). A child
//! module of `core`: it works on the filesystem's state directly.
//!
//! - `cat "@query/<sql>"` runs the query named by the file name.
//! - `@query/<name>.sql` is a saved query: writing it (`>`, `cp`, `tee`,
//!   `sed -i`, a rename onto it) checks the query and saves a new version
//!   in the backing store; `rm` deletes it (also a version). `ls @query/`
//!   lists the saved queries.
//! - `@query/<name>.csv` and `<name>.json` run the saved query.
//! - Any other name that does not start like a query is a scratch file,
//!   so `sed -i` and editors can keep their temp files next to a query.
//!
//! A bad query fails where the caller sees it (EINVAL at open, or at the
//! close of a save) and its message, with the position, is in `@status`.

use crate::fs::core::family::Listing;
use crate::fs::core::*;

/// What a name under `@query/` stands for.
pub(in crate::fs::core) enum QueryName<'a> {
    /// `<name>.sql`
    Saved(&'a str),
    /// `<name>.csv` / `<name>.json`
    Result(&'a str, ResultFormat),
    /// A name that starts like a statement: the query itself (undecoded).
    Sql,
    /// `<x>.sql` where `x` is no valid name (`x y.sql`, `Über.sql`): refused
    /// at create, so a save is never silently a scratch file.
    BadName,
    /// Anything else: a scratch file.
    Scratch,
}

/// Words a query can start with. A name that starts otherwise (`sedAbC12`,
/// `4913`, `.x.sql.swp`) is never run as SQL, so tools can create it.
const STATEMENT_STARTS: [&str; 7] = [
    "select", "explain", "with", "values", "insert", "update", "delete",
];

pub(in crate::fs::core) fn classify(name: &str) -> QueryName<'_> {
    let saved = |ext: &str| {
        name.strip_suffix(ext)
            .filter(|stem| names::validate(stem).is_ok())
    };
    if let Some(stem) = saved(".sql") {
        return QueryName::Saved(stem);
    }
    if let Some(stem) = saved(".csv") {
        return QueryName::Result(stem, ResultFormat::Csv);
    }
    if let Some(stem) = saved(".json") {
        return QueryName::Result(stem, ResultFormat::Json);
    }
    if name.ends_with(".sql") && !name.starts_with('.') {
        return QueryName::BadName;
    }
    let first: String = name
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    if STATEMENT_STARTS.contains(&first.as_str()) {
        QueryName::Sql
    } else {
        QueryName::Scratch
    }
}

/// A query from a file name under `@query/`: `%2F` is `/` and `%25` is `%`
/// (names cannot hold `/`); any other `%` stays as typed, so `LIKE 'a%'`
/// needs no encoding.
pub(in crate::fs::core) fn decode_query_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3);
        match code.map(str::to_ascii_uppercase).as_deref() {
            Some("2F") => out.push('/'),
            Some("25") => out.push('%'),
            _ => {
                out.push('%');
                rest = &rest[i + 1..];
                continue;
            }
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// Results larger than this go to an anonymous file, not memory.
pub(in crate::fs::core) const SPILL_BYTES: usize = 64 << 20;

/// Where a query's result is written while it runs: memory up to
/// `SPILL_BYTES`, then an anonymous file next to the database, so a huge
/// result costs disk, never the daemon's memory.
pub(in crate::fs::core) struct Spool<'a> {
    db: &'a crate::storage::Database,
    mem: Vec<u8>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    spill_at: usize,
}

/// A finished result: its bytes, or the file holding them.
pub(in crate::fs::core) enum Spooled {
    Memory(Arc<Vec<u8>>),
    File(Arc<std::fs::File>),
}

impl<'a> Spool<'a> {
    pub(in crate::fs::core) fn new(db: &'a crate::storage::Database, spill_at: usize) -> Spool<'a> {
        Spool {
            db,
            mem: Vec::new(),
            file: None,
            spill_at,
        }
    }

    pub(in crate::fs::core) fn finish(mut self) -> std::io::Result<Spooled> {
        match self.file.take() {
            None => Ok(Spooled::Memory(Arc::new(std::mem::take(&mut self.mem)))),
            Some(f) => Ok(Spooled::File(Arc::new(
                f.into_inner().map_err(|e| e.into_error())?,
            ))),
        }
    }
}

impl std::io::Write for Spool<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && self.mem.len() + buf.len() > self.spill_at {
            let f = self
                .db
                .anonymous_file()
                // The OS error itself (ENOSPC, EIO), so the open that runs
                // the query fails with its errno.
                .map_err(|e| match e {
                    crate::storage::StorageError::Io { source, .. } => source,
                    e => std::io::Error::other(e.report()),
                })?;
            let mut f = std::io::BufWriter::with_capacity(1 << 20, f);
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(buf)?,
            None => self.mem.extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ReedFs {
    /// A name in `@query/`: a saved query, a saved query's result, a
    /// query, or a scratch file.
    pub(in crate::fs::core) fn queries_child(parent: &Node, name: &str) -> Result<Node> {
        let Node::QueryRoot(db) = *parent else {
            return Err(FsError::NotDir);
        };
        Ok(match classify(name) {
            QueryName::Saved(stem) => Node::SavedQuery(db, stem.to_string()),
            QueryName::Result(stem, f) => Node::SavedResult(db, stem.to_string(), f),
            QueryName::Sql => Node::QueryFile(db, decode_query_name(name)),
            QueryName::Scratch | QueryName::BadName => {
                Node::Scratch(db, QUERY_DIR_KEY.to_string(), name.to_string())
            }
        })
    }

    /// The listing of `@query/`: saved queries (not their results: a
    /// listing runs nothing) and scratch files.
    pub(in crate::fs::core) fn queries_entries(
        &self,
        inner: &Inner,
        node: &Node,
    ) -> Result<Listing> {
        let Node::QueryRoot(db) = *node else {
            return Err(FsError::NotDir);
        };
        let mut names: Listing = Vec::new();
        for q in self.dbs[db].db.saved_queries()? {
            let name = format!("{q}.sql");
            names.push((Node::SavedQuery(db, q), Kind::File, name));
        }
        names.extend(Self::scratch_entries(inner, db, QUERY_DIR_KEY));
        Ok(names)
    }

    /// Attributes of `@query/`, saved queries and results. Results come
    /// with direct I/O: their size is found by reading.
    pub(in crate::fs::core) fn queries_attr(
        &self,
        inner: &Inner,
        ino: u64,
        node: &Node,
    ) -> Result<Attr> {
        Ok(match node {
            Node::QueryRoot(_) => self.dir_attr(ino, self.started),
            Node::QueryFile(..) => self.file_attr(ino, 0, READ_ONLY_PERM, SystemTime::now()),
            Node::SavedQuery(db, name) => {
                let (text, mtime) = self.saved_file_in(inner, *db, name)?;
                self.file_attr(ino, text.len() as u64, FILE_PERM, mtime)
            }
            Node::SavedResult(db, name, _) => {
                if !self.dbs[*db].db.saved_query_exists(name)? {
                    return Err(FsError::NotFound);
                }
                self.file_attr(ino, 0, READ_ONLY_PERM, SystemTime::now())
            }
            _ => return Err(FsError::NotFound),
        })
    }

    /// Runs a query of `@query/` and renders its result (in memory, or in
    /// an anonymous file when large). A bad query fails (EINVAL) with its
    /// message and position in `@status`.
    fn run_query(
        &self,
        db: usize,
        sql: &str,
        format: ResultFormat,
        reader: Caller,
    ) -> Result<Handle> {
        let mdb = &self.dbs[db].db;
        let engine = crate::query::Engine::with_cache(mdb, &self.queries[db]);
        let started = std::time::Instant::now();
        let format = match format {
            ResultFormat::Csv => crate::query::output::Format::Csv(mdb.config().delimiter_byte()),
            ResultFormat::Json => crate::query::output::Format::Json,
        };
        let mut spool = Spool::new(mdb, SPILL_BYTES);
        // A reader killed while its query runs (Ctrl-C on `cat`) stops the
        // query: nobody is left to read the result.
        let interrupt = engine.interrupt();
        let pid = reader.pid;
        interrupt.watch(move || reader_gone(pid));
        let result = {
            let _running = Running::start(&self.queries_running);
            engine.query_to(sql, format, &mut spool)
        };
        tracing::debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            ok = result.is_ok(),
            "query run"
        );
        match result {
            Ok(()) => match spool.finish() {
                Ok(Spooled::Memory(data)) => Ok(Handle::Virtual { data }),
                Ok(Spooled::File(file)) => Ok(Handle::Spilled { file }),
                Err(e) => Err(FsError::Storage(StorageError::io(
                    "write a query result to",
                    mdb.root().join("state"),
                    e,
                ))),
            },
            Err(e) => {
                self.status[db].push(Event::Rejected {
                    table: "@query".into(),
                    reason: format!("{} (query: {sql})", e.report()),
                    kept: None,
                });
                Err(e.into())
            }
        }
    }

    /// The saved query's current text, or the buffer of a save in progress
    /// (so a file being written exists before its first close).
    pub(in crate::fs::core) fn saved_text_in(
        &self,
        inner: &Inner,
        db: usize,
        name: &str,
    ) -> Result<Vec<u8>> {
        self.saved_file_in(inner, db, name).map(|(text, _)| text)
    }

    /// The saved query's text and mtime: the time of its version (editors
    /// compare mtimes before they write), or now for a save in progress.
    pub(in crate::fs::core) fn saved_file_in(
        &self,
        inner: &Inner,
        db: usize,
        name: &str,
    ) -> Result<(Vec<u8>, std::time::SystemTime)> {
        Self::revision_file_in(inner, db, &EditTarget::SavedQuery(name.to_string()), || {
            let q = self.dbs[db].db.saved_query(name)?;
            Ok(q.map(|q| (q.text, q.ts_us)))
        })
    }

    /// Runs saved query `name` and renders its result.
    pub(in crate::fs::core) fn run_saved(
        &self,
        db: usize,
        name: &str,
        format: ResultFormat,
        reader: Caller,
    ) -> Result<Handle> {
        let text = self.dbs[db]
            .db
            .saved_query(name)?
            .and_then(|q| q.text)
            .ok_or(FsError::NotFound)?;
        self.run_query(db, &text, format, reader)
    }

    /// Checks `text` as a reading query and saves it as a new version of
    /// `name`. A bad query is refused (EINVAL) with its message in
    /// `@status`, and its bytes are kept under `@rejected/`.
    pub(in crate::fs::core) fn save_query(&self, db: usize, name: &str, text: &[u8]) -> Result<()> {
        let mdb = &self.dbs[db].db;
        self.save_revision(
            db,
            format!("@query/{name}.sql"),
            (&format!("query-{name}"), "sql"),
            text,
            |sql| {
                crate::query::Engine::with_cache(mdb, &self.queries[db])
                    .check(sql)
                    .map_err(|e| e.report())
            },
            |sql| Ok(mdb.save_query(name, sql)?.version),
        )
    }

    /// `rm @query/<name>.sql`.
    pub(in crate::fs::core) fn delete_saved(&self, db: usize, name: &str) -> Result<()> {
        let deleted = self.dbs[db].db.delete_query(name)?;
        self.status[db].push(Event::Saved {
            file: format!("@query/{name}.sql"),
            version: format!("{} (deleted)", deleted.version),
        });
        Ok(())
    }

    /// Whether opening `ino` runs a query (the adapter runs such opens on
    /// its query threads, never on a request thread).
    pub fn opens_a_query(&self, ino: u64) -> bool {
        matches!(
            lock(&self.inner).inodes.node(ino),
            Some(Node::QueryFile(..) | Node::SavedResult(..))
        )
    }

    /// Opens a node under `@query/` that is not a scratch file: a saved
    /// query (for writing, an edit saved at the close), or a result, whose
    /// query runs now, outside the namespace lock.
    pub(in crate::fs::core) fn queries_open(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if let Node::SavedQuery(db, name) = node {
            let h = if how.writes() {
                if self.opts.read_only {
                    return Err(FsError::ReadOnly("mounted read-only"));
                }
                let buf = if how.trunc {
                    Vec::new()
                } else {
                    self.saved_text_in(&inner, *db, name)?
                };
                Handle::VirtualEdit {
                    db: *db,
                    target: EditTarget::SavedQuery(name.clone()),
                    buf,
                    dirty: how.trunc,
                }
            } else {
                let data = Arc::new(self.saved_text_in(&inner, *db, name)?);
                Handle::Virtual { data }
            };
            return Ok((Self::new_fh(&mut inner, h), Caching::Direct));
        }
        if how.writes() {
            self.check_writable(node)?;
        }
        drop(inner);
        let h = match node {
            Node::QueryFile(db, sql) => self.run_query(*db, sql, ResultFormat::Csv, how.caller)?,
            Node::SavedResult(db, name, format) => {
                self.run_saved(*db, name, *format, how.caller)?
            }
            _ => return Err(FsError::IsDir),
        };
        let mut inner = lock(&self.inner);
        Ok((Self::new_fh(&mut inner, h), Caching::Direct))
    }

    /// `create` in `@query/`: a saved query's file, or a scratch file.
    pub(in crate::fs::core) fn create_in_query(
        &self,
        inner: &mut Inner,
        db: usize,
        name: &str,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64, Caching)> {
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        match classify(name) {
            QueryName::Saved(stem) => {
                let node = Node::SavedQuery(db, stem.to_string());
                if flags & libc::O_EXCL != 0 && self.saved_text_in(inner, db, stem).is_ok() {
                    return Err(FsError::Exists);
                }
                Ok(self.create_edit(inner, db, node, EditTarget::SavedQuery(stem.to_string())))
            }
            QueryName::Result(..) | QueryName::Sql => Err(FsError::ReadOnly(
                "query results are read-only; save a query as <name>.sql",
            )),
            QueryName::Scratch => {
                self.create_scratch(inner, db, QUERY_DIR_KEY, name, mode, flags, caller)
            }
            QueryName::BadName => Err(self.refuse_query_name()),
        }
    }

    /// A save under a name that cannot be a saved query's (the caller's
    /// `explain_name` puts the reason in `@status`).
    fn refuse_query_name(&self) -> FsError {
        FsError::InvalidName("saved query names use letters, digits, '_' and '-', then .sql")
    }

    /// `rm` in `@query/`.
    pub(in crate::fs::core) fn unlink_in_query(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        name: &str,
    ) -> Result<()> {
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        match classify(name) {
            QueryName::Saved(stem) => {
                drop(inner);
                self.delete_saved(db, stem)
            }
            QueryName::Scratch if Self::scratch_ino(&inner, db, QUERY_DIR_KEY, name).is_some() => {
                Self::drop_scratch_name(&mut inner, db, QUERY_DIR_KEY, name);
                Ok(())
            }
            QueryName::Scratch | QueryName::BadName => Err(FsError::NotFound),
            QueryName::Result(..) | QueryName::Sql => {
                Err(FsError::ReadOnly("query results cannot be removed"))
            }
        }
    }

    /// `mv` inside `@query/`: a scratch file onto `<name>.sql` saves it
    /// (`sed -i`, atomic saves); `<a>.sql` to `<b>.sql` renames a saved
    /// query (a save of b and a deletion of a); `<a>.sql` to a scratch name
    /// moves its text out (an editor's backup) and deletes it.
    pub(in crate::fs::core) fn rename_in_query(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        name: &str,
        newname: &str,
        noreplace: bool,
    ) -> Result<()> {
        if self.opts.read_only {
            return Err(FsError::ReadOnly("mounted read-only"));
        }
        let target_exists = |inner: &Inner, n: &str| match classify(n) {
            QueryName::Saved(stem) => self.saved_text_in(inner, db, stem).is_ok(),
            _ => Self::scratch_ino(inner, db, QUERY_DIR_KEY, n).is_some(),
        };
        if name == newname {
            return Ok(());
        }
        if noreplace && target_exists(&inner, newname) {
            return Err(FsError::Exists);
        }
        match (classify(name), classify(newname)) {
            (QueryName::Scratch, QueryName::Saved(stem)) => {
                self.save_scratch_onto(inner, db, QUERY_DIR_KEY, name, |text| {
                    self.save_query(db, stem, &text)
                })
            }
            (QueryName::Saved(from), QueryName::Saved(to)) => {
                let text = self.saved_text_in(&inner, db, from)?;
                drop(inner);
                self.save_query(db, to, &text)?;
                self.delete_saved(db, from)
            }
            (QueryName::Saved(from), QueryName::Scratch) => {
                let data = self.saved_text_in(&inner, db, from)?;
                let file = self.owned_scratch(&data, FILE_PERM)?;
                Self::add_scratch(&mut inner, db, QUERY_DIR_KEY, newname, file);
                drop(inner);
                self.delete_saved(db, from)
            }
            (QueryName::Scratch, QueryName::Scratch) => {
                self.move_scratch(&mut inner, db, QUERY_DIR_KEY, name, newname)
            }
            (_, QueryName::BadName) => Err(self.refuse_query_name()),
            _ => Err(FsError::NotPermitted(
                "in @query/, only saved queries (<name>.sql) and scratch files move",
            )),
        }
    }
}

/// Counts a query as running for as long as it lives.
struct Running<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Running<'a> {
    fn start(n: &'a std::sync::atomic::AtomicUsize) -> Running<'a> {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Running(n)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_spills_to_an_anonymous_file_past_its_bound() {
        use std::io::Write;
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let db =
            crate::storage::Database::init(Arc::new(crate::storage::RealIo), dir.path(), "d", '|')
                .unwrap();
        let mut small = Spool::new(&db, 100);
        small.write_all(b"id\n1\n").unwrap();
        assert!(
            matches!(small.finish().unwrap(), Spooled::Memory(m) if m.as_slice() == b"id\n1\n")
        );
        let mut big = Spool::new(&db, 100);
        let mut want = Vec::new();
        for i in 0..1000 {
            let line = format!("{i}|row {i}\n");
            big.write_all(line.as_bytes()).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        let Spooled::File(f) = big.finish().unwrap() else {
            panic!("not spilled");
        };
        let mut got = vec![0u8; want.len()];
        f.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(got, want);
        // Anonymous: nothing is left in the directory.
        let state: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .collect();
        assert!(state.is_empty(), "{state:?}");
    }

    #[test]
    fn names_are_saved_queries_results_sql_or_scratch() {
        assert!(matches!(classify("top.sql"), QueryName::Saved("top")));
        assert!(matches!(
            classify("top-10.json"),
            QueryName::Result("top-10", ResultFormat::Json)
        ));
        assert!(matches!(classify("SELECT * FROM t"), QueryName::Sql));
        assert!(matches!(classify("  select 1"), QueryName::Sql));
        assert!(matches!(classify("sedAbC123"), QueryName::Scratch));
        assert!(matches!(classify(".top.sql.swp"), QueryName::Scratch));
        assert!(matches!(classify("top.sql~"), QueryName::Scratch));
        assert!(matches!(classify("4913"), QueryName::Scratch));
        assert!(matches!(classify("x y.sql"), QueryName::BadName));
        assert!(matches!(classify("Über.sql"), QueryName::BadName));
        // A query whose text happens to end in `.csv` still starts like one.
        assert!(matches!(classify("SELECT a.csv FROM a"), QueryName::Sql));
    }
}
