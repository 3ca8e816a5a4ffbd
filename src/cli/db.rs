//! `db:*` commands and `verify`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use reedbase::storage::io::{Exposure, exposed_paths};
use reedbase::storage::{Config, Database, DbEntry, Mode, RealIo, Registry, StorageError};

use super::output::{FormatArg, human_bytes, print_rows};
use super::{Ctx, exit, fail};

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    pub name: String,
    /// In ./.reedbase of the current directory (found from subdirectories too).
    #[arg(long, conflicts_with = "global")]
    pub local: bool,
    /// Under $REEDBASE_HOME/databases/<name> (the default).
    #[arg(long)]
    pub global: bool,
    /// Field delimiter of the database's tables.
    #[arg(long, default_value = "|")]
    pub delimiter: char,
    /// Also create it at this location (`[name=]path` or `[name=][user@]host:path`), as
    /// `rdb location:add` does; repeatable. The name defaults to the host or the last
    /// path component.
    #[arg(long = "location", value_name = "[NAME=]SPEC")]
    pub locations: Vec<String>,
    /// The ssh command for those locations.
    #[arg(long)]
    pub ssh: Option<String>,
}

/// Where a new database called `name` lives: `./.reedbase` when `local`,
/// else under `$REEDBASE_HOME/databases/`.
pub fn new_root(ctx: &Ctx, name: &str, local: bool) -> Result<(PathBuf, Mode)> {
    reedbase::storage::names::validate(name)?;
    Ok(if local {
        (ctx.cwd.join(reedbase::storage::LOCAL_DIR), Mode::Local)
    } else {
        (Registry::load(&ctx.home)?.global_root(name), Mode::Global)
    })
}

/// Registers database `name` at `root` first (the registry refuses a
/// duplicate name under its lock), then runs `create`; takes the
/// registration back when that fails.
pub fn register_then<T>(
    ctx: &Ctx,
    name: &str,
    root: &Path,
    mode: Mode,
    create: impl FnOnce() -> Result<T>,
) -> Result<T> {
    Registry::update(&ctx.home, |reg| {
        reg.add(
            name,
            DbEntry {
                path: root.to_path_buf(),
                mode,
            },
        )
    })?;
    create().inspect_err(|_| {
        let _ = Registry::update(&ctx.home, |reg| reg.remove(name).map(|_| ()));
    })
}

pub fn init(ctx: &Ctx, a: InitArgs) -> Result<i32> {
    let (root, mode) = new_root(ctx, &a.name, a.local)?;
    register_then(ctx, &a.name, &root, mode, || {
        Ok(Database::init(
            Arc::new(RealIo),
            &root,
            &a.name,
            a.delimiter,
        )?)
    })?;
    eprintln!(
        "created {} database {:?} at {}",
        mode.as_str(),
        a.name,
        root.display()
    );
    let mut code = exit::OK;
    for spec in &a.locations {
        let (name, spec) = super::sync::name_of_spec(spec);
        let add = super::sync::AddArgs {
            db: a.name.clone(),
            name,
            spec,
            ssh: a.ssh.clone(),
            rdb: None,
            install_to: super::sync::REMOTE_RDB.to_string(),
            self_name: None,
            self_url: None,
        };
        code = code.max(super::sync::location_add(ctx, add)?);
    }
    Ok(code)
}

pub fn list(ctx: &Ctx, f: FormatArg) -> Result<i32> {
    let reg = ctx.registry()?;
    let mut rows = Vec::new();
    let mut names: Vec<(String, DbEntry)> = reg
        .entries()
        .iter()
        .map(|(n, e)| (n.clone(), e.clone()))
        .collect();
    // A local database above the working directory that is not registered
    // still shows; one that is refused (a symlink, another user's) is named.
    let local = Registry::find_local(&ctx.cwd).unwrap_or_else(|e| {
        eprintln!("rdb: warning: {}", e.report());
        None
    });
    if let Some(local) = local
        && let Ok(cfg) = Config::load(&RealIo, &local.join("config.toml"))
        && !names.iter().any(|(_, e)| same_path(&e.path, &local))
    {
        names.push((
            cfg.name,
            DbEntry {
                path: local,
                mode: Mode::Local,
            },
        ));
    }
    for (name, e) in names {
        let (tables, versions, size) = match Database::open(&e.path) {
            Ok(db) => {
                let s = db.summaries().unwrap_or_default();
                let live = s.iter().filter(|t| !t.dropped).count();
                let versions: u64 = s.iter().map(|t| t.versions).sum();
                (
                    live.to_string(),
                    versions.to_string(),
                    human_bytes(db.disk_usage()),
                )
            }
            Err(_) => ("-".into(), "-".into(), "missing".into()),
        };
        rows.push(vec![
            name,
            e.mode.as_str().into(),
            e.path.display().to_string(),
            tables,
            versions,
            size,
        ]);
    }
    print_rows(
        f.format,
        &["name", "mode", "location", "tables", "versions", "size"],
        &rows,
    )?;
    Ok(exit::OK)
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

pub fn info(ctx: &Ctx, name: &str) -> Result<i32> {
    let (root, mode) = ctx.resolve(name)?;
    let db = Database::open(&root)?;
    warn_exposed(name, &root, &db.exposure());
    let c = db.config();
    let mut out = std::io::stdout().lock();
    writeln!(out, "name:            {}", c.name)?;
    writeln!(out, "mode:            {}", mode.as_str())?;
    writeln!(out, "location:        {}", root.display())?;
    writeln!(out, "id:              {}", c.id)?;
    writeln!(out, "node:            {}", c.node)?;
    writeln!(out, "delimiter:       {:?}", c.delimiter)?;
    writeln!(out, "conflict policy: {:?}", c.conflict_policy)?;
    writeln!(out, "keyframe every:  {} versions", c.keyframe_every)?;
    writeln!(out, "size on disk:    {}", human_bytes(db.disk_usage()))?;
    // What a mount of it may hold in memory; what it holds now is in the
    // mount's `@status`.
    writeln!(
        out,
        "mount memory:    indices {} MiB, scratch files {} MiB in memory ({} MiB with disk), parsed tables: each head, versions asked for AS OF in the last minute, 1 GiB at most; live use: <mount>/@status",
        c.index_memory_mb, c.scratch_memory_mb, c.scratch_max_mb
    )?;
    let tables = db.summaries()?;
    writeln!(
        out,
        "tables:          {}",
        tables.iter().filter(|t| !t.dropped).count()
    )?;
    for t in tables {
        let state = if t.dropped { " (dropped)" } else { "" };
        writeln!(
            out,
            "  {}{state}: {} rows, {} versions, {}",
            t.name,
            t.rows,
            t.versions,
            human_bytes(t.size)
        )?;
    }
    super::sync::info(&db, &mut out)?;
    Ok(exit::OK)
}

pub fn register(ctx: &Ctx, path: &Path) -> Result<i32> {
    let root: PathBuf = path.canonicalize().map_err(|e| {
        fail(
            exit::NOT_FOUND,
            format!("cannot open {}: {e}", path.display()),
        )
    })?;
    let cfg = Config::load(&RealIo, &root.join("config.toml")).map_err(|e| match e {
        StorageError::Io { .. } => fail(
            exit::NOT_FOUND,
            format!(
                "{} holds no ReedBase database (no config.toml)",
                root.display()
            ),
        ),
        other => other.into(),
    })?;
    // The checks every open makes (a symlink inside, another user's
    // directory): refused now rather than at each later command.
    Database::open(&root)?;
    let mode = if root
        .file_name()
        .is_some_and(|n| n == reedbase::storage::LOCAL_DIR)
    {
        Mode::Local
    } else {
        Mode::Global
    };
    Registry::update(&ctx.home, |reg| {
        reg.add(
            &cfg.name,
            DbEntry {
                path: root.clone(),
                mode,
            },
        )
    })?;
    eprintln!("registered {:?} at {}", cfg.name, root.display());
    Ok(exit::OK)
}

pub fn unregister(ctx: &Ctx, name: &str) -> Result<i32> {
    let e = Registry::update(&ctx.home, |reg| reg.remove(name))?;
    eprintln!(
        "unregistered {name:?} (its files stay at {})",
        e.path.display()
    );
    Ok(exit::OK)
}

/// Warns on stderr when other users may read or write part of the store at
/// `root` (one path named, and the fix). Not damage: the exit code stays.
fn warn_exposed(what: &str, root: &Path, e: &Exposure) {
    if let Some((path, mode)) = &e.first {
        eprintln!(
            "rdb: warning: {what}: other users can read or write {} file(s) or directories of the store, e.g. {} (mode {mode:04o}); fix: chmod -R go-rwx {}",
            e.count,
            path.display(),
            root.display()
        );
    }
}

pub fn verify(
    ctx: &Ctx,
    name: Option<&str>,
    opts: reedbase::storage::VerifyOptions,
) -> Result<i32> {
    let targets: Vec<(String, PathBuf)> = match name {
        Some(n) => vec![(n.to_string(), ctx.resolve(n)?.0)],
        None => ctx
            .registry()?
            .entries()
            .iter()
            .map(|(n, e)| (n.clone(), e.path.clone()))
            .collect(),
    };
    if name.is_none() {
        // $REEDBASE_HOME itself: the registry, and the daemons' logs (which
        // hold query texts); global databases are checked one by one below.
        let databases = ctx.home.join("databases");
        let skip: Vec<PathBuf> = std::fs::read_dir(&databases)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        warn_exposed("REEDBASE_HOME", &ctx.home, &exposed_paths(&ctx.home, &skip));
    }
    let mut damaged = false;
    let mut out = std::io::stdout().lock();
    for (name, root) in targets {
        let db = match Database::open(&root) {
            Ok(db) => db,
            Err(e) => {
                writeln!(out, "{name}: cannot open: {}", e.report())?;
                damaged = true;
                continue;
            }
        };
        warn_exposed(&name, &root, &db.exposure());
        let report = db.verify_with(opts)?;
        if report.problems.is_empty() {
            writeln!(
                out,
                "{name}: ok ({} tables, {} versions checked{})",
                report.tables,
                report.versions,
                if opts.quick { ", quick" } else { "" }
            )?;
        } else {
            damaged = true;
            writeln!(
                out,
                "{name}: {} problem(s) in {} tables, {} versions",
                report.problems.len(),
                report.tables,
                report.versions
            )?;
            for p in report.problems {
                writeln!(out, "  {}: {}", p.table, p.what)?;
            }
        }
        // Notes (a stale current.csv) are not damage: they never set exit 7.
        for n in report.notes {
            writeln!(out, "  note: {}: {}", n.table, n.what)?;
        }
    }
    Ok(if damaged { exit::DAMAGED } else { exit::OK })
}

/// `db:config <db> [key [value]]`: shows the settings, or sets one.
pub fn config(ctx: &Ctx, name: &str, key: Option<&str>, value: Option<&str>) -> Result<i32> {
    use reedbase::storage::ConflictPolicy;
    let (root, _) = ctx.resolve(name)?;
    let show = |c: &Config| {
        println!(
            "conflict_policy = {}",
            match c.conflict_policy {
                ConflictPolicy::Reject => "reject",
                ConflictPolicy::LastWriterWins => "last-writer-wins",
            }
        );
        println!("keyframe_every = {}", c.keyframe_every);
        println!("pack_bytes = {}", c.pack_bytes);
        println!("lock_timeout_ms = {}", c.lock_timeout_ms);
        println!("auto_index_after = {}", c.auto_index_after);
        println!("index_memory_mb = {}", c.index_memory_mb);
        println!("max_join_rows = {}", c.max_join_rows);
        println!("max_rows_in_memory = {}", c.max_rows_in_memory);
        println!("query_timeout_ms = {}", c.query_timeout_ms);
        println!("scratch_memory_mb = {}", c.scratch_memory_mb);
        println!("scratch_max_mb = {}", c.scratch_max_mb);
        println!("health_interval_seconds = {}", c.health_interval_seconds);
        println!("health_max_cpu_percent = {}", c.health_max_cpu_percent);
        println!(
            "health_max_memory_percent = {}",
            c.health_max_memory_percent
        );
        println!("keep_versions = {}", c.keep_versions);
        println!("keep_since = {:?}", c.keep_since);
    };
    let (Some(key), Some(value)) = (key, value) else {
        let cfg = Config::load(&RealIo, &root.join("config.toml"))?;
        show(&cfg);
        return Ok(exit::OK);
    };
    let number = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| format!("{key} takes a whole number, not {v:?}"))
    };
    let cfg = Database::update_config(&root, |c| {
        match key {
            "conflict_policy" => {
                c.conflict_policy = match value {
                    "reject" => ConflictPolicy::Reject,
                    "last-writer-wins" => ConflictPolicy::LastWriterWins,
                    other => {
                        return Err(format!(
                            "conflict_policy is reject or last-writer-wins, not {other:?}"
                        ));
                    }
                }
            }
            "keyframe_every" => c.keyframe_every = number(value)?,
            "pack_bytes" => c.pack_bytes = number(value)?,
            "lock_timeout_ms" => c.lock_timeout_ms = number(value)?,
            "auto_index_after" => c.auto_index_after = number(value)?.max(1),
            "index_memory_mb" => c.index_memory_mb = number(value)?,
            "max_join_rows" => c.max_join_rows = number(value)?,
            "max_rows_in_memory" => c.max_rows_in_memory = number(value)?.max(1),
            "query_timeout_ms" => c.query_timeout_ms = number(value)?,
            "scratch_memory_mb" => c.scratch_memory_mb = number(value)?,
            "scratch_max_mb" => c.scratch_max_mb = number(value)?,
            "health_interval_seconds" => c.health_interval_seconds = number(value)?.max(1),
            "health_max_cpu_percent" => c.health_max_cpu_percent = number(value)?,
            "health_max_memory_percent" => c.health_max_memory_percent = number(value)?,
            "keep_versions" => c.keep_versions = number(value)?,
            "keep_since" => c.keep_since = value.trim().to_string(),
            other => {
                return Err(format!(
                    "unknown setting {other:?} (conflict_policy, keyframe_every, pack_bytes, lock_timeout_ms, auto_index_after, index_memory_mb, max_join_rows, max_rows_in_memory, query_timeout_ms, scratch_memory_mb, scratch_max_mb, health_interval_seconds, health_max_cpu_percent, health_max_memory_percent, keep_versions, keep_since)"
                ));
            }
        }
        Ok(())
    })
    .map_err(|e| match e {
        // The setting or value typed is refused: invalid input. A failure
        // to read or write config.toml keeps its own code.
        StorageError::Config { .. } => fail(exit::INVALID, e.to_string()),
        e => e.into(),
    })?;
    show(&cfg);
    eprintln!("saved; a running mount uses it after it is remounted");
    Ok(exit::OK)
}
