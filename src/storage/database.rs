//! A database: a directory with `config.toml`, `registry/` and `tables/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::DbCtx;
use super::config::Config;
use super::dict::{self, Action, UserDict};
use super::error::{Result, StorageError};
use super::frame::{self, Frame, FrameCommitted, FrameInfo};
use super::io::{self as sio, Io, RealIo, Trust, replace_file, sync_parent};
use super::names;
use super::progress::Progress;
use super::revisions::{self, Revision};
use super::saved_query::{self, SavedQuery};
use super::schema::Schema;
use super::table::{self, Base, CommitOptions, Committed, PartIn, Table};
use super::{attrs, kept};

pub const CONFIG: &str = "config.toml";

/// The entries of a database with fixed names (and whether each is a
/// directory), checked by [`check_store`] before the database is used.
const PARTS: &[(&str, bool)] = &[
    (CONFIG, false),
    ("tables", true),
    ("registry", true),
    ("registry/actions.dict", false),
    ("registry/users.dict", false),
    ("frames", true),
    (super::open_frame::OPEN_FRAMES_DIR, true),
    ("state", true),
    ("queries", true),
    (kept::REJECTED_DIR, true),
    (kept::UNSAVED_DIR, true),
    (super::conflict_store::CONFLICTS_DIR, true),
];

/// Checks a database directory and its fixed parts before anything in them
/// is read or written: no symlink anywhere (a planted `tables -> /etc`
/// would lead writes outside the database) and no owner other than this
/// user, root, or a database owner allowed explicitly (`io::check_root`).
/// `None` when `root` does not exist.
fn check_store(io: &dyn Io, root: &Path) -> Result<Option<Trust>> {
    let Some(trust) = sio::check_root(io, root)? else {
        return Ok(None);
    };
    for (part, dir) in PARTS {
        sio::check_part(io, &root.join(part), *dir, trust)?;
    }
    Ok(Some(trust))
}

#[derive(Debug)]
pub struct Database {
    ctx: Arc<DbCtx>,
    /// Who may own what the database holds (checked as tables open).
    trust: Trust,
    tables: Mutex<HashMap<String, Arc<Table>>>,
    /// Parsed schemas by table, with the version they were parsed from:
    /// a query lists the schema directory, and reads and parses the file
    /// only when its newest version changed.
    schemas: Mutex<HashMap<String, (String, Schema)>>,
}

/// One line of `table:list` / `db:list`.
#[derive(Debug, Clone)]
pub struct TableSummary {
    pub name: String,
    pub versions: u64,
    pub rows: u64,
    pub size: u64,
    pub dropped: bool,
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |e| StorageError::io(op, path, e)
}

impl Database {
    /// Creates a database at `root` (which must not hold one already).
    pub fn init(io: Arc<dyn Io>, root: &Path, name: &str, delimiter: char) -> Result<Database> {
        Database::init_as(io, root, name, delimiter, None)
    }

    /// [`Self::init`] of a new location of an existing database: it takes
    /// that database's id (`id`), and a node id of its own.
    pub fn init_location(
        io: Arc<dyn Io>,
        root: &Path,
        name: &str,
        delimiter: char,
        id: &str,
    ) -> Result<Database> {
        let db = Database::init_as(io, root, name, delimiter, Some(id))?;
        db.ensure_sync_dir()?;
        Ok(db)
    }

    fn init_as(
        io: Arc<dyn Io>,
        root: &Path,
        name: &str,
        delimiter: char,
        id: Option<&str>,
    ) -> Result<Database> {
        names::validate(name)?;
        // An existing directory is checked before anything is written into
        // it (another user's `.reedbase`, or one with planted symlinks); a
        // new one is created by `create_dir` with mode 0700, and every
        // directory below it the same way, refusing symlinks.
        check_store(&*io, root)?;
        let cfg_path = root.join(CONFIG);
        if io
            .len(&cfg_path)
            .map_err(io_err("stat", &cfg_path))?
            .is_some()
        {
            return Err(StorageError::Exists {
                kind: "database",
                name: root.display().to_string(),
            });
        }
        let mut config = Config::new(name, delimiter);
        if let Some(id) = id {
            config.id = id.to_string();
        }
        config.check().map_err(|detail| StorageError::Config {
            path: cfg_path.clone(),
            detail,
        })?;
        for d in ["tables", "registry", "frames"] {
            let p = root.join(d);
            io.create_dir(&p).map_err(io_err("create", &p))?;
        }
        let reg = root.join("registry");
        replace_file(
            &*io,
            &reg.join("actions.dict"),
            dict::actions_dict().as_bytes(),
        )?;
        replace_file(&*io, &reg.join("users.dict"), b"")?;
        // config.toml last: its presence marks a complete database.
        config.save(&*io, &cfg_path)?;
        sync_parent(&*io, root)?;
        Database::open_with(io, root)
    }

    pub fn open(root: &Path) -> Result<Database> {
        Database::open_with(Arc::new(RealIo), root)
    }

    pub fn open_with(io: Arc<dyn Io>, root: &Path) -> Result<Database> {
        let cfg_path = root.join(CONFIG);
        let not_found = || StorageError::NotFound {
            kind: "database",
            name: root.display().to_string(),
        };
        let trust = check_store(&*io, root)?.ok_or_else(not_found)?;
        if io
            .len(&cfg_path)
            .map_err(io_err("stat", &cfg_path))?
            .is_none()
        {
            return Err(not_found());
        }
        let config = Config::load(&*io, &cfg_path)?;
        let users = UserDict::load(&*io, &root.join("registry").join("users.dict"))?;
        Ok(Database {
            ctx: Arc::new(DbCtx {
                io,
                root: root.to_path_buf(),
                config,
                users: Mutex::new(users),
                background_head: std::sync::atomic::AtomicBool::new(true),
                frames: Default::default(),
            }),
            trust,
            tables: Mutex::new(HashMap::new()),
            schemas: Mutex::new(HashMap::new()),
        })
    }

    /// Makes commits of tables opened from now on write `current.csv`
    /// before they return, instead of on a background thread. The crash
    /// tests use it to get a deterministic sequence of I/O operations.
    pub fn set_inline_head_writes(&self, inline: bool) {
        self.ctx
            .background_head
            .store(!inline, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits until every open table's `current.csv` holds its head.
    pub fn flush(&self) {
        let tables: Vec<Arc<Table>> = self
            .tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for t in tables {
            t.flush();
        }
    }

    /// Changes `config.toml` of the database at `root` (checked, replaced
    /// atomically). Open handles, and a running mount, keep the config they
    /// read until reopened.
    pub fn update_config(
        root: &Path,
        change: impl FnOnce(&mut Config) -> std::result::Result<(), String>,
    ) -> Result<Config> {
        let path = root.join(CONFIG);
        let mut cfg = Config::load(&RealIo, &path)?;
        let bad = |detail: String| StorageError::Config {
            path: path.clone(),
            detail,
        };
        change(&mut cfg).map_err(bad)?;
        cfg.check().map_err(bad)?;
        cfg.save(&RealIo, &path)?;
        Ok(cfg)
    }

    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    pub fn name(&self) -> &str {
        &self.ctx.config.name
    }

    pub fn root(&self) -> &Path {
        &self.ctx.root
    }

    pub fn io(&self) -> &Arc<dyn Io> {
        &self.ctx.io
    }

    fn tables_dir(&self) -> PathBuf {
        self.ctx.root.join("tables")
    }

    /// Names of every table with at least one version, dropped ones included, sorted.
    pub fn table_names(&self) -> Result<Vec<String>> {
        let dir = self.tables_dir();
        let mut names: Vec<String> = self
            .ctx
            .io
            .list(&dir)
            .map_err(io_err("list", &dir))?
            .into_iter()
            .filter(|n| names::validate(n).is_ok())
            .filter(|n| {
                let log = dir.join(n).join(table::LOG);
                matches!(self.ctx.io.len(&log), Ok(Some(l)) if l > 0)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Commits a frame: every staged table or none. A table whose head moved
    /// since the version its content was staged from fails the frame with
    /// `BaseMismatch` (the merge layer's `commit_frame_merging` merges instead).
    pub fn commit_frame(&self, frame: Frame, user: &str) -> Result<FrameCommitted> {
        let bases: HashMap<String, u64> = frame
            .staged()
            .filter_map(|(t, s)| match s.base {
                Base::Version(b) => Some((t.to_string(), b)),
                Base::Head => None,
            })
            .collect();
        self.commit_frame_resolving(frame, user, |table, _, _, _, head| {
            let base = bases.get(table).copied().unwrap_or_default();
            Err(StorageError::BaseMismatch { base, head })
        })
    }

    /// [`Self::commit_frame`] with `resolve(table, base, ours, head,
    /// head_seq)` producing the content of a part whose head moved.
    pub fn commit_frame_resolving<E: From<StorageError>>(
        &self,
        frame: Frame,
        user: &str,
        resolve: impl FnMut(&str, &[u8], &[u8], &[u8], u64) -> Result<Vec<u8>, E>,
    ) -> Result<FrameCommitted, E> {
        let Frame {
            id,
            name,
            staged,
            mut schemas,
            not_before_us,
        } = frame;
        // Moved, not copied: the staged contents may be whole tables.
        let mut parts = Vec::with_capacity(staged.len());
        for (table, st) in staged {
            parts.push(PartIn {
                table: self.table(&table)?,
                staged: Some(st),
                schema: schemas.remove(&table),
            });
        }
        for (table, schema) in schemas {
            parts.push(PartIn {
                table: self.table(&table)?,
                staged: None,
                schema: Some(schema),
            });
        }
        Table::commit_frame(&id, &name, user, parts, not_before_us, resolve)
    }

    /// Every frame with its status, oldest first.
    /// (See also [`Frame::commit`], the same call from the frame's side.)
    pub fn frames(&self) -> Result<Vec<FrameInfo>> {
        frame::list(&self.ctx)
    }

    /// The frame whose id starts with `prefix` (unique).
    pub fn frame_info(&self, prefix: &str) -> Result<FrameInfo> {
        let found: Vec<FrameInfo> = self
            .frames()?
            .into_iter()
            .filter(|f| f.id.starts_with(prefix) || f.name == prefix)
            .collect();
        frame::pick_one(found, "frame", prefix)
    }

    /// Frame `id` exactly, if it reached the store (an intent record).
    pub fn frame_by_id(&self, id: &str) -> Result<Option<FrameInfo>> {
        frame::info(&self.ctx, id)
    }

    /// What recovery did since this database was opened (frames rolled
    /// forward or back), for `@status` and the CLI.
    pub fn recovery_notes(&self) -> Vec<String> {
        self.ctx
            .frames
            .notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Saves a new version of the query text `name` (docs/FORMAT.md,
    /// "Saved queries"); durable when it returns.
    pub fn save_query(&self, name: &str, text: &str) -> Result<SavedQuery> {
        let node = &self.ctx.config.node;
        saved_query::write(&*self.ctx.io, &self.ctx.root, node, name, Some(text))
    }

    /// Deletes saved query `name` (a new version that says so).
    pub fn delete_query(&self, name: &str) -> Result<SavedQuery> {
        if self.saved_query(name)?.is_none() {
            return Err(StorageError::NotFound {
                kind: "saved query",
                name: name.to_string(),
            });
        }
        let node = &self.ctx.config.node;
        saved_query::write(&*self.ctx.io, &self.ctx.root, node, name, None)
    }

    /// The current version of saved query `name`, None when there is none.
    pub fn saved_query(&self, name: &str) -> Result<Option<SavedQuery>> {
        saved_query::current(&*self.ctx.io, &self.ctx.root, name)
    }

    /// Whether saved query `name` exists (a listing; nothing read).
    pub fn saved_query_exists(&self, name: &str) -> Result<bool> {
        saved_query::exists(&*self.ctx.io, &self.ctx.root, name)
    }

    /// Names of the saved queries, sorted.
    pub fn saved_queries(&self) -> Result<Vec<String>> {
        saved_query::list(&*self.ctx.io, &self.ctx.root)
    }

    /// Every version of saved query `name`, oldest first (deletions too).
    pub fn saved_query_history(&self, name: &str) -> Result<Vec<SavedQuery>> {
        saved_query::history(&*self.ctx.io, &self.ctx.root, name)
    }

    /// Writes local state of this site that is not data (what a daemon's
    /// query engine keeps, for `rdb index:list`): `state/<name>`, replaced
    /// atomically but not fsynced (losing it loses nothing); never synced.
    pub fn write_state(&self, name: &str, bytes: &[u8]) -> Result<()> {
        names::validate(name)?;
        let dir = self.ctx.root.join("state");
        self.ctx
            .io
            .create_dir(&dir)
            .map_err(io_err("create", &dir))?;
        super::io::replace_file_unsynced(&*self.ctx.io, &dir.join(name), bytes)
    }

    /// Removes `state/<name>` (nothing to do when it is not there).
    pub fn remove_state(&self, name: &str) -> Result<()> {
        names::validate(name)?;
        super::io::remove_if_exists(&*self.ctx.io, &self.ctx.root.join("state").join(name))
            .map(|_| ())
    }

    /// An anonymous file (no name; gone when closed) next to the database,
    /// for data too large to hold in memory, such as a huge query result.
    pub fn anonymous_file(&self) -> Result<std::fs::File> {
        anonymous_file_in(&self.ctx.root)
    }

    /// Keeps the bytes of a refused save durably as
    /// `rejected/<stem>-<time>.<ext>`; returns the name (module `kept`).
    pub fn keep_rejected(&self, stem: &str, ext: &str, bytes: &[u8]) -> Result<String> {
        kept::keep_rejected(&*self.ctx.io, &self.ctx.root, stem, ext, bytes)
    }

    /// Names of the kept refused saves, sorted.
    pub fn rejected_names(&self) -> Result<Vec<String>> {
        kept::rejected_names(&*self.ctx.io, &self.ctx.root)
    }

    pub fn rejected_len(&self, name: &str) -> Result<u64> {
        kept::rejected_len(&*self.ctx.io, &self.ctx.root, name)
    }

    pub fn read_rejected(&self, name: &str) -> Result<Vec<u8>> {
        kept::read_rejected(&*self.ctx.io, &self.ctx.root, name)
    }

    /// Makes the bytes of a save in progress durable as `unsaved/<name>`
    /// (`name` from [`kept::new_unsaved_name`]).
    pub fn save_unsaved(&self, name: &str, bytes: &[u8]) -> Result<()> {
        kept::save_unsaved(&*self.ctx.io, &self.ctx.root, name, bytes)
    }

    pub fn remove_unsaved(&self, name: &str) -> Result<()> {
        kept::remove_unsaved(&*self.ctx.io, &self.ctx.root, name)
    }

    /// Moves unsaved bytes left by a process that died into `rejected/`.
    pub fn recover_unsaved(&self) -> Result<Vec<String>> {
        kept::recover_unsaved(&*self.ctx.io, &self.ctx.root)
    }

    /// Modes and times writers set on the mounted tree (module `attrs`).
    pub fn file_attrs(&self) -> Result<attrs::Attrs> {
        attrs::load(&*self.ctx.io, &self.ctx.root)
    }

    pub fn save_file_attrs(&self, a: &attrs::Attrs) -> Result<()> {
        attrs::save(&*self.ctx.io, &self.ctx.root, a)
    }

    /// Reads what `write_state` wrote, None when nothing was.
    pub fn read_state(&self, name: &str) -> Result<Option<Vec<u8>>> {
        names::validate(name)?;
        let path = self.ctx.root.join("state").join(name);
        match self.ctx.io.read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", &path, e)),
        }
    }

    fn schema_dir(&self, table: &str) -> Result<std::path::PathBuf> {
        names::validate(table)?;
        Ok(self.tables_dir().join(table).join("schema"))
    }

    /// Runs `f` over table `table`'s schema revisions, counting the schema
    /// a committed frame staged but has not published yet (its writer is
    /// at it, or died after its commit point).
    fn with_schema_dir<T>(
        &self,
        table: &str,
        f: impl FnOnce(&dyn Io, &Path, revisions::Staging) -> Result<T>,
    ) -> Result<T> {
        let dir = self.schema_dir(table)?;
        let ctx = &self.ctx;
        let staging = |id: &str| frame::committed_schema(ctx, table, id);
        f(&*ctx.io, &dir, Some(&staging))
    }

    /// Table `table`'s schema text and its version, None when it has none.
    pub fn schema_text(&self, table: &str) -> Result<Option<Revision>> {
        self.with_schema_dir(table, |io, dir, st| revisions::current(io, dir, "toml", st))
    }

    /// Table `table`'s parsed schema and the schema's version; None when it
    /// has none. Not checked against the header: a later commit may have
    /// renamed or dropped a declared column, and old versions have their
    /// own headers; a declared column a version lacks types nothing.
    pub fn schema(&self, table: &str) -> Result<Option<(Schema, String)>> {
        let newest =
            self.with_schema_dir(table, |io, dir, st| revisions::newest(io, dir, "toml", st))?;
        let Some(newest) = newest else {
            return Ok(None);
        };
        let mut cache = self.schemas.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((version, schema)) = cache.get(table)
            && *version == newest
        {
            return Ok(Some((schema.clone(), newest)));
        }
        drop(cache);
        let Some(rev) = self.schema_text(table)? else {
            return Ok(None);
        };
        let schema = Schema::parse(&rev.text.unwrap_or_default(), table, None)?;
        cache = self.schemas.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(table.to_string(), (rev.version.clone(), schema.clone()));
        Ok(Some((schema, rev.version)))
    }

    /// Whether table `table` has a schema (a listing; nothing read).
    pub fn schema_exists(&self, table: &str) -> Result<bool> {
        self.with_schema_dir(table, |io, dir, st| revisions::exists(io, dir, "toml", st))
    }

    /// The violations of table `table`'s schema by its head, at most
    /// `limit`: none unless something bypassed the check of each commit
    /// (a sync integration: two saves valid at their own locations can
    /// break `unique` together; docs/FORMAT.md section 12).
    pub fn violations(&self, table: &str, limit: usize) -> Result<Vec<super::Violation>> {
        let t = self.table(table)?;
        let Some((schema, _)) = self.schema(table)? else {
            return Ok(Vec::new());
        };
        let (_, head) = t.head()?;
        Ok(t.violations_of(&schema.rules, &head, limit))
    }

    /// Checks a schema for table `table`: it parses, holds together, names
    /// columns of the table, and the table's head keeps its rules (else the
    /// violations, up to 20, are the error).
    pub fn check_schema(&self, table: &str, text: &str) -> Result<()> {
        let t = self.table(table)?;
        let schema = Schema::parse(text, table, Some(&t.columns()?))?;
        let (_, head) = t.head()?;
        let violations = t.violations_of(&schema.rules, &head, 21);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(t.schema_refusal(violations))
        }
    }

    /// Sets table `table`'s schema as a new version, or removes it
    /// (`None`). Durable when it returns. It is a frame of its own (named
    /// `schema-change`), so it is checked against the head under the
    /// table's lock (no commit slips in between), and `frame:rollback`
    /// undoes it. Setting the schema in force changes nothing.
    pub fn set_schema(&self, table: &str, text: Option<&str>, user: &str) -> Result<Revision> {
        if text.is_none() && !self.schema_exists(table)? {
            return Err(StorageError::NotFound {
                kind: "schema of table",
                name: table.to_string(),
            });
        }
        let mut frame = Frame::begin("schema-change")?;
        frame.stage_schema(table, text.map(str::to_string))?;
        self.commit_frame(frame, user)?;
        let rev = self.schema_text(table)?;
        let newest = self.schema_history(table)?.pop();
        rev.or(newest).ok_or_else(|| StorageError::NotFound {
            kind: "schema of table",
            name: table.to_string(),
        })
    }

    /// Every version of table `table`'s schema, oldest first.
    pub fn schema_history(&self, table: &str) -> Result<Vec<Revision>> {
        self.with_schema_dir(table, |io, dir, st| revisions::history(io, dir, "toml", st))
    }

    /// Opens a table (cached: one `Table` per name per `Database`).
    pub fn table(&self, name: &str) -> Result<Arc<Table>> {
        names::validate(name)?;
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tables.get(name) {
            return Ok(Arc::clone(t));
        }
        self.check_table_dir(name)?;
        let t = Arc::new(Table::open(Arc::clone(&self.ctx), name)?);
        if t.head_seq()? == 0 {
            return Err(StorageError::NotFound {
                kind: "table",
                name: name.to_string(),
            });
        }
        tables.insert(name.to_string(), Arc::clone(&t));
        Ok(t)
    }

    /// Checks a table's directory and its schema directory before the
    /// table opens (module `io`, `check_part`): a symlink there would lead
    /// its commits outside the database.
    fn check_table_dir(&self, name: &str) -> Result<()> {
        let dir = self.tables_dir().join(name);
        let io = &*self.ctx.io;
        sio::check_part(io, &dir, true, self.trust)?;
        sio::check_part(io, &dir.join("schema"), true, self.trust)
    }

    /// Files and directories of this database that other users may read or
    /// write (for the warnings of `rdb verify` and `rdb db:info`).
    pub fn exposure(&self) -> sio::Exposure {
        sio::exposed_paths(&self.ctx.root, &[])
    }

    /// A live (not dropped) table.
    pub fn live_table(&self, name: &str) -> Result<Arc<Table>> {
        let t = self.table(name)?;
        if t.is_dropped()? {
            return Err(StorageError::NotFound {
                kind: "table",
                name: format!("{name} (dropped; `rdb table:restore` brings it back)"),
            });
        }
        Ok(t)
    }

    /// Creates a table with `content` (CSV with a header) as its first
    /// version. A dropped table of the same name is re-created on top of its
    /// history.
    pub fn create_table(&self, name: &str, content: &[u8], user: &str) -> Result<Committed> {
        self.create_table_with(name, content.to_vec(), user, None)
    }

    /// [`Self::create_table`] of a buffer the caller hands over (it is
    /// committed as it is, not copied), telling `progress` how it goes.
    pub fn create_table_with(
        &self,
        name: &str,
        content: Vec<u8>,
        user: &str,
        progress: Option<&dyn Progress>,
    ) -> Result<Committed> {
        let mut opts = CommitOptions::new(Action::Create, user);
        opts.progress = progress;
        self.create_table_as(name, content, &opts)
    }

    /// [`Self::create_table_with`] logged as `opts` say (sync creates a
    /// table a record from another site brings with action `sync`).
    pub fn create_table_as(
        &self,
        name: &str,
        content: Vec<u8>,
        opts: &CommitOptions,
    ) -> Result<Committed> {
        let content = super::csv::strip_bom(content).into_owned();
        names::validate(name)?;
        if let Ok(t) = self.table(name) {
            if !t.is_dropped()? {
                return Err(StorageError::Exists {
                    kind: "table",
                    name: name.to_string(),
                });
            }
            return t.commit(Base::Head, content, opts);
        }
        // Validate before creating anything on disk.
        opts.phase("validating", 0);
        let index = super::csv::TableIndex::parse(&content, self.ctx.config.delimiter_byte())?;
        let dir = self.tables_dir().join(name);
        self.check_table_dir(name)?;
        self.ctx
            .io
            .create_dir(&dir)
            .map_err(io_err("create", &dir))?;
        sync_parent(&*self.ctx.io, &dir)?;
        let t = Arc::new(Table::open(Arc::clone(&self.ctx), name)?);
        let done = t.commit_parsed(content, index, opts)?;
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), t);
        Ok(done)
    }

    /// Drops a table: a version with no content, so history keeps it and a
    /// rollback restores it.
    pub fn drop_table(&self, name: &str, user: &str) -> Result<Committed> {
        let t = self.live_table(name)?;
        t.commit(
            Base::Head,
            Vec::new(),
            &CommitOptions::new(Action::Drop, user),
        )
    }

    /// Brings a dropped table back as it was before the drop.
    pub fn restore_table(&self, name: &str, user: &str) -> Result<Committed> {
        let t = self.table(name)?;
        let versions = t.versions()?;
        let Some(before) = versions.iter().rev().find(|v| v.size > 0) else {
            return Err(StorageError::NotFound {
                kind: "version with content of table",
                name: name.to_string(),
            });
        };
        if !t.is_dropped()? {
            return Err(StorageError::Exists {
                kind: "table",
                name: name.to_string(),
            });
        }
        let bytes = t.read_version(before.seq)?;
        t.commit(
            Base::Head,
            bytes,
            &CommitOptions::new(Action::Restore, user),
        )
    }

    pub fn summaries(&self) -> Result<Vec<TableSummary>> {
        let mut out = Vec::new();
        for name in self.table_names()? {
            let t = self.table(&name)?;
            let versions = t.versions()?;
            let last = versions.last();
            out.push(TableSummary {
                name,
                versions: versions.len() as u64,
                rows: last.map_or(0, |v| v.rows),
                size: last.map_or(0, |v| v.size),
                dropped: t.is_dropped()?,
            });
        }
        Ok(out)
    }

    /// Bytes the database occupies on disk.
    pub fn disk_usage(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.ctx.root)
    }
}

impl Frame {
    /// Commits the frame to `db`: `db.commit_frame(self, user)`.
    pub fn commit(self, db: &Database, user: &str) -> Result<FrameCommitted> {
        db.commit_frame(self, user)
    }
}

/// An anonymous file (no name; gone when closed) in `<root>/state/`.
pub fn anonymous_file_in(root: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = root.join("state");
    // 0700 whatever the umask, and never through a symlink (io.rs).
    sio::create_private_dir(&dir).map_err(io_err("create", &dir))?;
    let tmpfile = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | libc::O_NOFOLLOW)
        .mode(sio::FILE_MODE)
        .open(&dir);
    match tmpfile {
        Ok(f) => Ok(f),
        // A file system without O_TMPFILE: a named file, unlinked at once.
        Err(_) => {
            let path = super::io::temp_path_for(&dir.join("spill"));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(sio::FILE_MODE)
                .open(&path)
                .map_err(io_err("create", &path))?;
            let _ = std::fs::remove_file(&path);
            Ok(f)
        }
    }
}
