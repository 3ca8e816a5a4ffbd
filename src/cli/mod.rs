//! Command definitions and dispatch. Data goes to stdout, messages to
//! stderr; exit codes are documented in docs/CLI.md and in `rdb --help`.

mod conflict;
mod db;
mod frame;
mod health;
mod mount;
mod output;
mod progress;
mod query;
mod retention;
mod schema;
mod sync;
mod table;
mod version;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use reedbase::merge::MergeError;
use reedbase::query::{Cause, ErrorKind, QueryError};
use reedbase::storage::{Database, Mode, Registry, StorageError};
use reedbase::sync::SyncError;

/// Exit codes (also in docs/CLI.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_FOUND: i32 = 3;
    pub const INVALID: i32 = 4;
    pub const CONFLICT: i32 = 5;
    pub const LOCKED: i32 = 6;
    pub const DAMAGED: i32 = 7;
    pub const QUERY: i32 = 8;
}

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 invalid input (CSV, names),
5 conflict (exists, or the table changed since your base), 6 locked by another process,
7 damaged store (verify found problems), 8 bad query (syntax, unknown name, type, limit).
Environment: REEDBASE_HOME (default ~/.reedbase), REEDBASE_USER (default $USER), RUST_LOG,
REEDBASE_SAFE_DIRECTORIES (other users' databases to use anyway: paths separated by ':', or '*').";

#[derive(Parser, Debug)]
#[command(name = "rdb", version, about = "ReedBase: a versioned CSV database", after_help = AFTER_HELP)]
pub struct Cli {
    /// Who to record as the author of changes (default: $REEDBASE_USER, then $USER).
    #[arg(long, global = true)]
    user: Option<String>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a database (global: under $REEDBASE_HOME/databases; local: ./.reedbase).
    #[command(name = "db:init")]
    DbInit(db::InitArgs),
    /// List every registered database.
    #[command(name = "db:list")]
    DbList(output::FormatArg),
    /// Show the details of a database.
    #[command(name = "db:info")]
    DbInfo { db: String },
    /// Run a ReedQL query (SELECT) and print its result, or a write (INSERT, UPDATE,
    /// DELETE) that commits like a save and prints `changes|version`.
    #[command(name = "db:query")]
    DbQuery {
        db: String,
        sql: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: query::QueryFormat,
        /// Where a distributed database answers: local, auto (this location unless it
        /// is overloaded or gone, else the nearest healthy one, failing over), or a
        /// location's name (the only way a write runs elsewhere).
        #[arg(long, default_value = "local", value_name = "auto|local|LOCATION")]
        route: String,
        /// Seconds a routed query may take in all, over every location tried.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        route_timeout: u64,
    },
    /// Print the metrics of the daemon (mount or sync:run) serving a database.
    #[command(alias = "metrics:export")]
    Metrics {
        db: String,
        #[arg(long, value_enum, default_value = "text")]
        format: health::MetricsFormat,
    },
    /// Print this machine's load and memory as one line of JSON (what peers probe).
    #[command(name = "node:health")]
    NodeHealth,
    /// Probe every location of a database now: reachability, latency, load.
    #[command(name = "db:health")]
    DbHealth {
        db: String,
        #[command(flatten)]
        format: output::FormatArg,
    },
    /// Save a query under a name (text from the argument or stdin); it is checked
    /// first. The mount shows it as `@query/<name>.sql`, its result as `<name>.csv`.
    #[command(name = "query:save")]
    QuerySave {
        db: String,
        name: String,
        sql: Option<String>,
    },
    /// List saved queries.
    #[command(name = "query:list")]
    QueryList { db: String },
    /// Print a saved query's text, or with --history every version of it.
    #[command(name = "query:show")]
    QueryShow {
        db: String,
        name: String,
        #[arg(long)]
        history: bool,
    },
    /// Run a saved query.
    #[command(name = "query:run")]
    QueryRun {
        db: String,
        name: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: query::QueryFormat,
    },
    /// List hash indices: every table's key column and the columns queries made
    /// indices for, as the mount's query engine last reported them.
    #[command(name = "index:list")]
    IndexList {
        db: String,
        #[command(flatten)]
        format: output::FormatArg,
    },
    /// Delete a saved query (its history stays).
    #[command(name = "query:drop")]
    QueryDrop { db: String, name: String },
    /// Print a table's schema.toml (declared column types), or with --history every
    /// version of it.
    #[command(name = "schema:show")]
    SchemaShow {
        db: String,
        table: String,
        #[arg(long)]
        history: bool,
    },
    /// Set a table's schema.toml from a file (or stdin); it is checked first. With
    /// --migrate, the data is migrated to it as `schema:migrate` does.
    #[command(name = "schema:set")]
    SchemaSet {
        db: String,
        table: String,
        file: Option<String>,
        #[arg(long)]
        migrate: bool,
    },
    /// Migrate a table to a new schema.toml in one frame: renames (renamed_from), added
    /// columns (default or --map), --drop, type conversions; all or nothing, undone by
    /// `frame:rollback`.
    #[command(name = "schema:migrate")]
    SchemaMigrate {
        db: String,
        table: String,
        /// The new schema.toml (`-`: stdin).
        #[arg(long)]
        to: String,
        /// COLUMN=EXPRESSION: fill a column with a ReedQL expression over the old row.
        #[arg(long = "map", value_name = "COLUMN=EXPRESSION")]
        maps: Vec<String>,
        /// Remove a column and its data.
        #[arg(long = "drop", value_name = "COLUMN")]
        drops: Vec<String>,
        /// Print what the migration would do; commit nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the rows of a table that break its schema.toml now (what a sync integration can
    /// bring in: two saves valid at their own locations breaking `unique` together); exit 4
    /// when there are any.
    #[command(name = "schema:check")]
    SchemaCheck {
        db: String,
        table: String,
        /// Violations listed at most.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// What changed between two versions of a table's schema.toml: version names (a
    /// prefix will do) or numbers (1 is the oldest); V2 defaults to the current one.
    #[command(name = "schema:diff")]
    SchemaDiff {
        db: String,
        table: String,
        v1: String,
        v2: Option<String>,
    },
    /// Remove a table's schema.toml (a new version; the history stays).
    #[command(name = "schema:drop")]
    SchemaDrop { db: String, table: String },
    /// Show a database's settings, or set one: conflict_policy (reject | last-writer-wins),
    /// keyframe_every, pack_bytes, lock_timeout_ms, auto_index_after, index_memory_mb, max_join_rows,
    /// max_rows_in_memory; or the sync topology: `topology mesh`, `topology hub <location>`,
    /// `topology pairs "a -> b" "a <-> c"`.
    #[command(name = "db:config")]
    DbConfig {
        db: String,
        key: Option<String>,
        #[arg(num_args = 0.., allow_hyphen_values = true)]
        values: Vec<String>,
    },
    /// Add a location of a database: a path here, or [user@]host:path over SSH. The
    /// database is created there (and rdb installed on a remote that lacks it), then synced.
    #[command(name = "location:add")]
    LocationAdd(sync::AddArgs),
    /// List a database's locations, with their state and last sync.
    #[command(name = "location:list")]
    LocationList {
        db: String,
        #[command(flatten)]
        format: output::FormatArg,
    },
    /// Remove a location from the list (its files stay).
    #[command(name = "location:remove")]
    LocationRemove { db: String, name: String },
    /// Sync a database with its locations once (one round per peer); with a second
    /// registered database, that one becomes a location first.
    #[command(name = "db:sync")]
    DbSync {
        db: String,
        other: Option<String>,
        /// Only this peer.
        #[arg(long)]
        peer: Option<String>,
    },
    /// Sync continuously without a mount: a round every --interval seconds.
    #[command(name = "sync:run")]
    SyncRun {
        db: String,
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Serve Prometheus metrics over HTTP at PORT (loopback) or ADDRESS:PORT.
        #[arg(long, value_name = "[ADDRESS:]PORT")]
        metrics_listen: Option<String>,
    },
    /// Integrate the commit records this location holds (a database name or path).
    #[command(name = "sync:integrate")]
    SyncIntegrate {
        target: String,
        /// Do nothing (print "busy") when a round holds the sync lock.
        #[arg(long)]
        if_free: bool,
        /// Then print what this location holds (for the peer that asked).
        #[arg(long, requires = "if_free")]
        summary: bool,
        /// With --summary: `<dir>=<name>`, the asker's newest file of a directory.
        #[arg(long, requires = "summary")]
        after: Vec<String>,
    },
    /// List the values sync conflicts kept (overwritten by a concurrent save elsewhere).
    #[command(name = "sync:conflicts")]
    SyncConflicts {
        db: String,
        #[command(flatten)]
        format: output::FormatArg,
    },
    /// (Run over SSH by location:add) describe the database at a path.
    #[command(name = "sync:remote-info", hide = true)]
    SyncRemoteInfo { path: PathBuf },
    /// (Run over SSH by db:info) what the database at a path holds, read-only.
    #[command(name = "sync:remote-query", hide = true)]
    SyncRemoteQuery {
        path: PathBuf,
        /// The database id the asker expects there.
        #[arg(long)]
        id: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: query::QueryFormat,
        /// Let a write run (the asker named this location).
        #[arg(long)]
        writes: bool,
        sql: String,
    },
    /// (Run over SSH by db:info) what the database at a path holds, read-only.
    #[command(name = "sync:remote-summary", hide = true)]
    SyncRemoteSummary {
        path: PathBuf,
        /// `<dir>=<name>`: the asker's newest file of a directory.
        #[arg(long)]
        after: Vec<String>,
    },
    /// (Run over SSH by location:add) create a location of a database at a path.
    #[command(name = "sync:remote-create", hide = true)]
    SyncRemoteCreate {
        path: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        delimiter: char,
    },
    /// Register an existing database directory.
    #[command(name = "db:register")]
    DbRegister { path: PathBuf },
    /// Remove a database from the registry (its files stay).
    #[command(name = "db:unregister")]
    DbUnregister { db: String },
    /// Create a table from a CSV file or a list of columns.
    #[command(name = "table:create")]
    TableCreate(table::CreateArgs),
    /// List the tables of a database.
    #[command(name = "table:list")]
    TableList(table::ListArgs),
    /// Replace a table's content with a CSV file ('-' for stdin); creates the table if needed.
    #[command(name = "table:import")]
    TableImport {
        db: String,
        table: String,
        file: PathBuf,
    },
    /// Write a table (or one of its versions) to stdout.
    #[command(name = "table:export")]
    TableExport {
        db: String,
        table: String,
        /// A version: its number, its name, or head.
        #[arg(long)]
        version: Option<String>,
    },
    /// Drop a table (recorded in history; table:restore brings it back).
    #[command(name = "table:drop")]
    TableDrop { db: String, table: String },
    /// Bring a dropped table back as it was before the drop.
    #[command(name = "table:restore")]
    TableRestore { db: String, table: String },
    /// List the versions of a table.
    #[command(name = "version:list")]
    VersionList {
        db: String,
        table: String,
        #[command(flatten)]
        format: output::FormatArg,
    },
    /// Every change of one row, oldest first: version, time, user, action, frame, and each
    /// changed cell old -> new (an insert or a delete shows every cell).
    #[command(name = "row:history")]
    RowHistory {
        db: String,
        table: String,
        key: String,
        /// Only changes at or after this time (RFC 3339, a date, `-2h`, or a version name).
        #[arg(long)]
        since: Option<String>,
        /// Only changes at or before this time.
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        format: output::FormatArg,
    },
    /// Every change committed to a database (or some of its tables), in commit order: a CSV
    /// line per changed cell, or with --format json a JSON line per changed row. --since
    /// replays history after a version (or from a time) first; --follow then waits for new
    /// commits, so a consumer that resumes with the last version it read loses nothing.
    Changes {
        db: String,
        /// Only these tables (repeat for several).
        #[arg(long = "table")]
        tables: Vec<String>,
        /// After this version name (the `version` a line carries), or from this time;
        /// without it, only commits after the command started (with --follow) or none.
        #[arg(long)]
        since: Option<String>,
        /// Keep waiting for new commits (Ctrl-C stops).
        #[arg(long)]
        follow: bool,
        #[arg(long, value_enum, default_value_t = version::ChangesFormat::Csv)]
        format: version::ChangesFormat,
    },
    /// Remove the stored bytes of old versions (their log lines stay): keep each table's last
    /// --keep versions and/or what a reader of any time since --keep-since needs (default: the
    /// policy in config.toml). Never removes the head, a version an unresolved conflict or a
    /// staged frame starts from, or one sync has not exported yet. Kept versions stay
    /// byte-identical; reports the bytes freed.
    #[command(name = "version:prune")]
    VersionPrune(retention::PruneArgs),
    /// Copy a database into a directory, consistent at a frame boundary, while it stays in use
    /// (a mount keeps running): every file content-addressed by SHA-256 with a manifest. Run
    /// again into the same directory, it copies only what is new.
    Backup { db: String, dir: String },
    /// Create a database from a backup directory: every file checked against its SHA-256,
    /// then the whole database verified.
    Restore(retention::RestoreArgs),
    /// Write the exact bytes of a version to stdout.
    #[command(name = "version:show")]
    VersionShow {
        db: String,
        table: String,
        version: String,
    },
    /// Row-level differences between two versions.
    #[command(name = "version:diff")]
    VersionDiff(version::DiffArgs),
    /// Make a new version equal to an old one (history is kept).
    #[command(name = "version:rollback")]
    VersionRollback {
        db: String,
        table: String,
        version: String,
    },
    /// List unresolved merge conflicts (writes refused because they collided).
    #[command(name = "conflict:list")]
    ConflictList {
        db: String,
        #[command(flatten)]
        format: output::FormatArg,
    },
    /// Show a conflict's cells: key, column, base, ours (the refused write), theirs (the head).
    #[command(name = "conflict:show")]
    ConflictShow { db: String, id: String },
    /// Resolve a conflict: --ours applies the refused write, --theirs keeps the head, --file commits a table;
    /// without a flag, on a terminal, choose cell by cell.
    #[command(name = "conflict:resolve")]
    ConflictResolve(conflict::ResolveArgs),
    /// Begin a frame (changes to several tables committed all at once); prints its id.
    #[command(name = "frame:begin")]
    FrameBegin { db: String, name: String },
    /// Stage a table's new content in a frame ('-' for stdin; an empty file drops the table).
    #[command(name = "frame:stage")]
    FrameStage {
        db: String,
        /// The frame's id (or a unique prefix of it, or its name).
        id: String,
        table: String,
        file: PathBuf,
    },
    /// Commit a staged frame: every table or none, merged with changes made meanwhile.
    #[command(name = "frame:commit")]
    FrameCommit { db: String, id: String },
    /// Discard a staged frame.
    #[command(name = "frame:abort")]
    FrameAbort { db: String, id: String },
    /// List frames: committed, aborted, pending and staged.
    #[command(name = "frame:list")]
    FrameList {
        db: String,
        #[command(flatten)]
        format: output::FormatArg,
    },
    /// Show a frame and, per table, the rows it changed.
    #[command(name = "frame:show")]
    FrameShow { db: String, id: String },
    /// Undo a frame in every table it changed, keeping later unrelated changes (a new frame).
    #[command(name = "frame:rollback")]
    FrameRollback { db: String, id: String },
    /// Put every table back as it was at a time (a new frame): RFC 3339, unix seconds, -1h, or a version name.
    #[command(name = "restore:point-in-time")]
    RestorePointInTime {
        db: String,
        #[arg(allow_hyphen_values = true)]
        time: String,
    },
    /// Mount databases as directories: every save of current.csv is a version.
    Mount(mount::MountArgs),
    /// Unmount a mount made by `rdb mount`, after everything is written back.
    Umount { mountpoint: String },
    /// Rebuild every version from the stored deltas and check every hash and CRC (--quick: log, files and head only).
    ///
    /// Tables, and the stretches between keyframes, are checked in parallel; the time
    /// grows with the stored bytes. --quick reads no delta: it checks the log's CRCs,
    /// that every file the log names exists with a plausible size, and current.csv
    /// against the log's head.
    Verify {
        /// A database name; all registered databases when omitted.
        db: Option<String>,
        /// Check the log, the files it names (existence, size) and the head only.
        #[arg(long)]
        quick: bool,
        /// Worker threads (default: one per core).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Also compare each table's row log (rows.log) with its versions; this opens the
        /// tables, which repairs what a crash left.
        #[arg(long)]
        row_log: bool,
    },
}

/// Everything a command needs from its surroundings.
pub struct Ctx {
    pub home: PathBuf,
    pub cwd: PathBuf,
    pub user: String,
}

impl Ctx {
    pub fn registry(&self) -> Result<Registry> {
        Ok(Registry::load(&self.home)?)
    }

    /// Resolves a database name: the local database above the working
    /// directory when it has that name, else the registry (docs/CLI.md,
    /// "Name resolution"). When both exist at different places, says on
    /// stderr which one is used: a local database silently taking the
    /// place of a registered one is how writes end up in the wrong store.
    pub fn resolve(&self, name: &str) -> Result<(PathBuf, Mode)> {
        let (root, mode, shadowed) = self.registry()?.lookup(name, &self.cwd)?;
        if let Some(registered) = shadowed {
            eprintln!(
                "rdb: {name:?} is both the local database at {} and the registered one at {}; using the local one",
                root.display(),
                registered.display()
            );
        }
        Ok((root, mode))
    }

    /// Opens a database by name (local first, then the registry).
    pub fn open(&self, name: &str) -> Result<Database> {
        let (root, _) = self.resolve(name)?;
        Ok(Database::open(&root)?)
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The one place that picks an exit code for an error (docs/CLI.md lists
/// them). Errors of the layers below arrive typed, each with its cause:
/// storage, merge and query errors are looked up here, never where they
/// were raised; `CliError` carries a code the CLI chose for its own checks.
pub(crate) fn exit_code(err: &anyhow::Error) -> i32 {
    if let Some(e) = err.downcast_ref::<StorageError>() {
        return storage_code(e);
    }
    if let Some(e) = err.downcast_ref::<MergeError>() {
        return merge_code(e);
    }
    if let Some(e) = err.downcast_ref::<QueryError>() {
        return query_code(e);
    }
    if let Some(e) = err.downcast_ref::<CliError>() {
        return e.code;
    }
    if let Some(e) = err.downcast_ref::<std::io::Error>() {
        return io_code(e);
    }
    if let Some(e) = err.downcast_ref::<SyncError>() {
        return sync_code(e);
    }
    exit::ERROR
}

/// A damaged record is a damaged store (7); a bad location or topology is
/// a usage error (2); a busy lock is a lock (6); the wire fails with 1.
fn sync_code(e: &SyncError) -> i32 {
    match e {
        SyncError::Storage(s) => storage_code(s),
        SyncError::BadRecord { .. } => exit::DAMAGED,
        SyncError::Config(_) => exit::USAGE,
        SyncError::Busy(_) => exit::LOCKED,
        SyncError::Transport { .. } => exit::ERROR,
    }
}

fn storage_code(e: &StorageError) -> i32 {
    match e {
        StorageError::NotFound { .. } | StorageError::Pruned { .. } => exit::NOT_FOUND,
        StorageError::Csv(_) | StorageError::Invalid { .. } | StorageError::InvalidName { .. } => {
            exit::INVALID
        }
        StorageError::BaseMismatch { .. } | StorageError::Exists { .. } => exit::CONFLICT,
        StorageError::Locked { .. } => exit::LOCKED,
        StorageError::Corrupt { .. } => exit::DAMAGED,
        StorageError::Io { .. } | StorageError::Config { .. } => exit::ERROR,
    }
}

/// A refused merge: content that does not parse is invalid input (exit 4,
/// as for a save of the same bytes), a conflict exits 5.
fn merge_code(e: &MergeError) -> i32 {
    match e {
        MergeError::Storage(s) => storage_code(s),
        MergeError::Csv { .. } => exit::INVALID,
        MergeError::Conflicts { .. } => exit::CONFLICT,
    }
}

/// The query's own fault (syntax, names, types, limits, its time limit)
/// exits 8; a failure below it exits as that failure would.
fn query_code(e: &QueryError) -> i32 {
    match (e.kind, e.cause.as_deref()) {
        (ErrorKind::Storage | ErrorKind::Runtime, Some(Cause::Storage(s))) => storage_code(s),
        (ErrorKind::Storage | ErrorKind::Runtime, Some(Cause::Merge(m))) => merge_code(m),
        (ErrorKind::Storage | ErrorKind::Runtime, Some(Cause::Io(io))) => io_code(io),
        (ErrorKind::Storage | ErrorKind::Runtime, None) => exit::ERROR,
        _ => exit::QUERY,
    }
}

/// `rdb ... | head`: a reader that closed the pipe has what it wanted.
fn io_code(e: &std::io::Error) -> i32 {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        exit::OK
    } else {
        exit::ERROR
    }
}

/// An error of the CLI's own, with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: i32,
}

pub fn fail(code: i32, message: impl Into<String>) -> anyhow::Error {
    CliError {
        message: message.into(),
        code,
    }
    .into()
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    init_logging(cli.verbose);
    let user = cli
        .user
        .or_else(|| std::env::var("REEDBASE_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let ctx = Ctx {
        home: Registry::default_home(),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        user,
    };
    match run(&ctx, cli.command) {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(&e);
            if code != exit::OK {
                eprintln!("rdb: {e:#}");
            }
            code
        }
    }
}

fn run(ctx: &Ctx, command: Command) -> Result<i32> {
    match command {
        Command::DbInit(a) => db::init(ctx, a),
        Command::DbList(f) => db::list(ctx, f),
        Command::DbInfo { db } => db::info(ctx, &db),
        Command::DbQuery {
            db,
            sql,
            format,
            route,
            route_timeout,
        } => {
            if route == "local" {
                query::run(ctx, &db, &sql, format)
            } else {
                let timeout = std::time::Duration::from_secs(route_timeout.max(1));
                health::routed_query(ctx, &db, &sql, format, &route, timeout)
            }
        }
        Command::Metrics { db, format } => health::show_metrics(ctx, &db, format),
        Command::NodeHealth => health::node_health(),
        Command::DbHealth { db, format } => health::db_health(ctx, &db, format.format),
        Command::SyncRemoteQuery {
            path,
            id,
            format,
            writes,
            sql,
        } => health::remote_query(ctx, &path, &id, &sql, format, writes),
        Command::QuerySave { db, name, sql } => query::save(ctx, &db, &name, sql),
        Command::QueryList { db } => query::list(ctx, &db),
        Command::QueryShow { db, name, history } => query::show(ctx, &db, &name, history),
        Command::QueryRun { db, name, format } => query::run_saved(ctx, &db, &name, format),
        Command::QueryDrop { db, name } => query::drop(ctx, &db, &name),
        Command::IndexList { db, format } => query::index_list(ctx, &db, format.format),
        Command::SchemaShow { db, table, history } => schema::show(ctx, &db, &table, history),
        Command::SchemaSet {
            db,
            table,
            file,
            migrate,
        } => match migrate {
            true => schema::migrate(
                ctx,
                &db,
                &table,
                file.as_deref().unwrap_or("-"),
                &[],
                &[],
                false,
            ),
            false => schema::set(ctx, &db, &table, file.as_deref()),
        },
        Command::SchemaMigrate {
            db,
            table,
            to,
            maps,
            drops,
            dry_run,
        } => schema::migrate(ctx, &db, &table, &to, &maps, &drops, dry_run),
        Command::SchemaCheck { db, table, limit } => schema::check(ctx, &db, &table, limit),
        Command::SchemaDiff { db, table, v1, v2 } => {
            schema::diff(ctx, &db, &table, &v1, v2.as_deref())
        }
        Command::SchemaDrop { db, table } => schema::drop(ctx, &db, &table),
        Command::DbConfig { db, key, values } => match key.as_deref() {
            Some("topology") => sync::set_topology(ctx, &db, &values),
            _ if values.len() > 1 => Err(fail(exit::USAGE, "db:config takes one value")),
            key => db::config(ctx, &db, key, values.first().map(String::as_str)),
        },
        Command::DbRegister { path } => db::register(ctx, &path),
        Command::LocationAdd(a) => sync::location_add(ctx, a),
        Command::LocationList { db, format } => sync::location_list(ctx, &db, format),
        Command::LocationRemove { db, name } => sync::location_remove(ctx, &db, &name),
        Command::DbSync { db, other, peer } => {
            sync::db_sync(ctx, &db, other.as_deref(), peer.as_deref())
        }
        Command::SyncRun {
            db,
            interval,
            metrics_listen,
        } => sync::run_forever(ctx, &db, interval, metrics_listen.as_deref()),
        Command::SyncIntegrate {
            target,
            if_free,
            summary,
            after,
        } => sync::integrate(ctx, &target, if_free, summary, &after),
        Command::SyncConflicts { db, format } => sync::list_lost(ctx, &db, format),
        Command::SyncRemoteInfo { path } => sync::remote_info(&path),
        Command::SyncRemoteSummary { path, after } => sync::remote_summary(&path, &after),
        Command::SyncRemoteCreate {
            path,
            name,
            id,
            delimiter,
        } => sync::remote_create(&path, &name, &id, delimiter),
        Command::DbUnregister { db } => db::unregister(ctx, &db),
        Command::TableCreate(a) => table::create(ctx, a),
        Command::TableList(a) => table::list(ctx, a),
        Command::TableImport { db, table, file } => table::import(ctx, &db, &table, &file),
        Command::TableExport { db, table, version } => {
            table::export(ctx, &db, &table, version.as_deref())
        }
        Command::TableDrop { db, table } => table::drop(ctx, &db, &table),
        Command::TableRestore { db, table } => table::restore(ctx, &db, &table),
        Command::VersionList { db, table, format } => version::list(ctx, &db, &table, format),
        Command::Changes {
            db,
            tables,
            since,
            follow,
            format,
        } => version::changes(ctx, &db, &tables, since.as_deref(), follow, format),
        Command::RowHistory {
            db,
            table,
            key,
            since,
            until,
            format,
        } => version::row_history(
            ctx,
            &db,
            &table,
            &key,
            (since.as_deref(), until.as_deref()),
            format,
        ),
        Command::VersionShow { db, table, version } => version::show(ctx, &db, &table, &version),
        Command::VersionDiff(a) => version::diff(ctx, a),
        Command::VersionPrune(a) => retention::prune(ctx, a),
        Command::Backup { db, dir } => retention::backup(ctx, &db, &dir),
        Command::Restore(a) => retention::restore(ctx, a),
        Command::VersionRollback { db, table, version } => {
            version::rollback(ctx, &db, &table, &version)
        }
        Command::Verify {
            db,
            quick,
            threads,
            row_log,
        } => db::verify(
            ctx,
            db.as_deref(),
            reedbase::storage::VerifyOptions {
                quick,
                threads,
                row_log,
            },
        ),
        Command::Mount(a) => mount::run(ctx, a),
        Command::ConflictList { db, format } => conflict::list(ctx, &db, format),
        Command::ConflictShow { db, id } => conflict::show(ctx, &db, &id),
        Command::ConflictResolve(a) => conflict::resolve(ctx, a),
        Command::Umount { mountpoint } => mount::umount(ctx, &mountpoint),
        Command::FrameBegin { db, name } => frame::begin(ctx, &db, &name),
        Command::FrameStage {
            db,
            id,
            table,
            file,
        } => frame::stage(ctx, &db, &id, &table, &file),
        Command::FrameCommit { db, id } => frame::commit(ctx, &db, &id),
        Command::FrameAbort { db, id } => frame::abort(ctx, &db, &id),
        Command::FrameList { db, format } => frame::list(ctx, &db, format),
        Command::FrameShow { db, id } => frame::show(ctx, &db, &id),
        Command::FrameRollback { db, id } => frame::rollback(ctx, &db, &id),
        Command::RestorePointInTime { db, time } => frame::restore_point_in_time(ctx, &db, &time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reedbase::storage::{CsvError, CsvErrorKind};

    fn locked() -> StorageError {
        StorageError::Locked {
            what: "t".into(),
            pid: 7,
            waited_ms: 300,
        }
    }

    fn csv() -> CsvError {
        CsvError {
            line: 2,
            column: None,
            kind: CsvErrorKind::NoHeader,
        }
    }

    #[test]
    fn merge_errors_exit_by_what_they_are() {
        let code = |e: MergeError| exit_code(&e.into());
        assert_eq!(
            code(MergeError::Csv {
                side: "ours",
                error: csv()
            }),
            exit::INVALID
        );
        let conflicts = MergeError::Conflicts {
            conflicts: Vec::new(),
            head: 2,
        };
        assert_eq!(code(conflicts), exit::CONFLICT);
        assert_eq!(code(MergeError::Storage(locked())), exit::LOCKED);
        let damaged = StorageError::corrupt("/db/t/X.bsdiff", "missing");
        assert_eq!(code(MergeError::Storage(damaged)), exit::DAMAGED);
    }

    #[test]
    fn query_errors_exit_by_their_cause() {
        let code = |e: QueryError| exit_code(&e.into());
        assert_eq!(code(locked().into()), exit::LOCKED);
        assert_eq!(code(MergeError::Storage(locked()).into()), exit::LOCKED);
        let conflicts = MergeError::Conflicts {
            conflicts: Vec::new(),
            head: 2,
        };
        assert_eq!(code(conflicts.into()), exit::CONFLICT);
        let eio = StorageError::io("read", "/x", std::io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(code(eio.into()), exit::ERROR);
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(code(QueryError::output(pipe)), exit::OK);
        let other = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(code(QueryError::output(other)), exit::ERROR);
        assert_eq!(code(QueryError::new(ErrorKind::Syntax, "x")), exit::QUERY);
        assert_eq!(
            code(QueryError::new(ErrorKind::Interrupted, "x")),
            exit::QUERY
        );
        // The write's content is not valid CSV: a type error of the query.
        assert_eq!(
            code(MergeError::Storage(StorageError::Csv(csv())).into()),
            exit::QUERY
        );
    }
}
