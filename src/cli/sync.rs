//! `rdb location:*`, `db:sync`, `sync:*`: one database in many locations
//! (docs/SYNC.md). The `sync:remote-*` commands are what a location runs
//! on a remote host over SSH; people need not call them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use reedbase::storage::{Database, RealIo};
use reedbase::sync::transport::Remote;
use reedbase::sync::{
    Inventory, Location, Locations, Round, Site, SyncError, TopologyKind, Url, peer_status,
};

use super::output::{FormatArg, print_rows};
use super::{Ctx, exit, fail};

/// The format of the sync files this binary reads and writes; a remote
/// with another refuses to become a location.
pub const SYNC_FORMAT: u32 = 1;

/// Where `location:add` installs `rdb` on a remote that lacks it (relative
/// to the remote user's home).
pub const REMOTE_RDB: &str = ".reedbase/bin/rdb";

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    pub db: String,
    /// The location's name (letters, digits, _ and -).
    pub name: String,
    /// A path on this machine, or [user@]host:path over SSH.
    pub spec: String,
    /// The ssh command to reach it (default: ssh -o BatchMode=yes -o ConnectTimeout=10).
    #[arg(long)]
    pub ssh: Option<String>,
    /// rdb on the remote host (default: rdb on its PATH; installed to ~/.reedbase/bin/rdb when missing).
    #[arg(long)]
    pub rdb: Option<String>,
    /// Where to install rdb on the remote when it has none.
    #[arg(long, default_value = REMOTE_RDB)]
    pub install_to: String,
    /// This location's own name in the list (default: the host name).
    #[arg(long = "as")]
    pub self_name: Option<String>,
    /// How other locations reach this one (default: its path on this machine).
    #[arg(long)]
    pub self_url: Option<String>,
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = if ok {
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        "here".into()
    } else {
        clean
    }
}

/// The locations list of `db`, starting one with this location in it:
/// reached at `self_url` (default: its path here) with `ssh` (the command
/// this location uses for the others: one cluster, one way in), its `rdb`
/// being the one running now.
fn list_or_new(
    db: &Database,
    self_name: Option<&str>,
    self_url: Option<&str>,
    ssh: Option<&str>,
) -> Result<Locations> {
    let mut l = Locations::load(db)?.unwrap_or_default();
    let node = db.config().node.clone();
    if l.me(&node).is_none() {
        let root = db.root().to_path_buf();
        let rdb = std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string());
        l.locations.push(Location {
            name: self_name.map_or_else(host_name, str::to_string),
            url: self_url.map_or_else(|| root.display().to_string(), str::to_string),
            node,
            ssh: ssh.map(str::to_string),
            rdb,
        });
    } else if let Some(url) = self_url
        && let Some(me) = l.locations.iter_mut().find(|x| x.node == node)
    {
        me.url = url.to_string();
    }
    Ok(l)
}

/// What `sync:remote-info` prints for the database at `path`.
fn describe(path: &Path) -> String {
    if !path.join("config.toml").exists() {
        return format!("format {SYNC_FORMAT}\nabsent\n");
    }
    match Database::open(path) {
        Ok(db) => format!(
            "format {SYNC_FORMAT}\nid {}\nnode {}\nname {}\n",
            db.config().id,
            db.config().node,
            db.name()
        ),
        Err(e) => format!("format {SYNC_FORMAT}\nerror {e}\n"),
    }
}

fn field<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
}

/// Makes sure the database exists at `loc` (creating it as a location of
/// `db`); returns its node id.
fn create_there(db: &Database, loc: &mut Location, install_to: &str) -> Result<String> {
    let id = db.config().id.clone();
    let check = |info: &str| -> Result<Option<String>> {
        let format = field(info, "format").and_then(|f| f.parse::<u32>().ok());
        if format != Some(SYNC_FORMAT) {
            return Err(fail(
                exit::ERROR,
                format!(
                    "{}: its rdb speaks sync format {}, this one {SYNC_FORMAT}; install the same version there",
                    loc.name,
                    format.map_or("?".into(), |f| f.to_string())
                ),
            ));
        }
        if let Some(e) = field(info, "error") {
            return Err(fail(exit::ERROR, format!("{}: {e}", loc.name)));
        }
        match field(info, "id") {
            None => Ok(None),
            Some(other) if other == id => Ok(field(info, "node").map(str::to_string)),
            Some(other) => Err(fail(
                exit::CONFLICT,
                format!(
                    "{} holds another database (id {other}); a location is never written over",
                    loc.url
                ),
            )),
        }
    };
    match loc.url()? {
        Url::Path(path) => {
            if let Some(node) = check(&describe(&path))? {
                return Ok(node);
            }
            let there = Database::init_location(
                Arc::new(RealIo),
                &path,
                db.name(),
                db.config().delimiter,
                &id,
            )?;
            Ok(there.config().node.clone())
        }
        Url::Ssh { path, .. } => {
            let remote = Remote::new(loc)?;
            let info = match remote.rdb(&["sync:remote-info", &path]) {
                Ok(info) => info,
                Err(SyncError::Transport {
                    detail,
                    unreachable: false,
                    ..
                }) if detail.starts_with("exit 127") && loc.rdb.is_none() => {
                    eprintln!(
                        "{}: no rdb there; installing this one as ~/{install_to}",
                        loc.name
                    );
                    remote.install_rdb(install_to)?;
                    loc.rdb = Some(install_to.to_string());
                    Remote::new(loc)?.rdb(&["sync:remote-info", &path])?
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(node) = check(&info)? {
                return Ok(node);
            }
            let delim = db.config().delimiter.to_string();
            let out = Remote::new(loc)?.rdb(&[
                "sync:remote-create",
                &path,
                "--name",
                db.name(),
                "--id",
                &id,
                "--delimiter",
                &delim,
            ])?;
            field(&out, "node")
                .map(str::to_string)
                .ok_or_else(|| fail(exit::ERROR, format!("{}: rdb there said {out:?}", loc.name)))
        }
    }
}

pub fn location_add(ctx: &Ctx, a: AddArgs) -> Result<i32> {
    let db = ctx.open(&a.db)?;
    let mut list = list_or_new(
        &db,
        a.self_name.as_deref(),
        a.self_url.as_deref(),
        a.ssh.as_deref(),
    )?;
    if list.locations.iter().any(|l| l.name == a.name) {
        return Err(fail(
            exit::CONFLICT,
            format!("a location named {:?} exists", a.name),
        ));
    }
    let mut loc = Location {
        name: a.name.clone(),
        url: absolute_spec(ctx, &a.spec)?,
        node: String::new(),
        ssh: a.ssh.clone(),
        rdb: a.rdb.clone(),
    };
    loc.node = create_there(&db, &mut loc, &a.install_to)?;
    if loc.node == db.config().node {
        return Err(fail(
            exit::CONFLICT,
            format!("{} is this location itself", loc.url),
        ));
    }
    // How this site reaches it stays here (never in the travelling list).
    reedbase::sync::set_access(
        &db,
        &loc.name,
        reedbase::sync::Access {
            ssh: loc.ssh.clone(),
            rdb: loc.rdb.clone(),
        },
    )?;
    list.locations.push(loc);
    list.save(&db)?;
    eprintln!("added location {:?}; first sync:", a.name);
    let r = reedbase::sync::round(&db, &ctx.user, Some(&a.name))?;
    Ok(print_round(&r))
}

/// `[name=]spec` of `db:init --location`: the name given, else the host
/// (without the user) or the path's last component, made a valid name.
pub fn name_of_spec(arg: &str) -> (String, String) {
    if let Some((name, spec)) = arg.split_once('=')
        && reedbase::storage::names::validate(name).is_ok()
    {
        return (name.to_string(), spec.to_string());
    }
    let base = match Url::parse(arg) {
        Ok(Url::Ssh { host, .. }) => host.rsplit('@').next().unwrap_or(&host).to_string(),
        _ => arg
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(arg)
            .to_string(),
    };
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    (
        if name.is_empty() {
            "location".into()
        } else {
            name
        },
        arg.to_string(),
    )
}

/// A local path made absolute (other locations and later runs resolve it
/// from elsewhere); a remote spec as given.
fn absolute_spec(ctx: &Ctx, spec: &str) -> Result<String> {
    Ok(match Url::parse(spec)? {
        Url::Path(p) if p.is_relative() => ctx.cwd.join(p).display().to_string(),
        _ => spec.to_string(),
    })
}

pub fn location_list(ctx: &Ctx, db: &str, f: FormatArg) -> Result<i32> {
    let db = ctx.open(db)?;
    let list = Locations::load(&db)?.unwrap_or_default();
    let status = peer_status(&db)?;
    let node = db.config().node.clone();
    let rows: Vec<Vec<String>> = list
        .locations
        .iter()
        .map(|l| {
            let s = status.get(&l.name);
            vec![
                l.name.clone(),
                l.url.clone(),
                l.node.clone(),
                if l.node == node {
                    "this".into()
                } else {
                    state_of(s)
                },
                s.filter(|s| s.last_success_us > 0)
                    .map_or(String::new(), |s| {
                        reedbase::storage::names::format_ts_human(s.last_success_us)
                    }),
            ]
        })
        .collect();
    print_rows(
        f.format,
        &["name", "url", "node", "state", "last_sync"],
        &rows,
    )?;
    Ok(exit::OK)
}

fn state_of(s: Option<&reedbase::sync::PeerStatus>) -> String {
    match s {
        None => "never synced".into(),
        Some(s) if s.last_error.is_empty() => "reachable".into(),
        Some(s) if s.unreachable => format!("unreachable: {}", s.last_error),
        Some(s) => format!("failing: {}", s.last_error),
    }
}

pub fn location_remove(ctx: &Ctx, db: &str, name: &str) -> Result<i32> {
    let db = ctx.open(db)?;
    let mut list = Locations::load(&db)?.unwrap_or_default();
    let before = list.locations.len();
    if list.me(&db.config().node).is_some_and(|m| m.name == name) {
        return Err(fail(
            exit::USAGE,
            "a location cannot remove itself; remove it from another one",
        ));
    }
    list.locations.retain(|l| l.name != name);
    if list.locations.len() == before {
        return Err(fail(exit::NOT_FOUND, format!("no location named {name:?}")));
    }
    list.pairs
        .retain(|p| !p.split(['-', '<', '>']).any(|w| w.trim() == name));
    if list.hub.as_deref() == Some(name) {
        list.topology = TopologyKind::Mesh;
        list.hub = None;
    }
    list.save(&db)?;
    eprintln!("removed location {name:?} (its files stay where they are)");
    Ok(exit::OK)
}

/// `db:config <db> topology mesh | hub <name> | pairs "<a> -> <b>" ...`
pub fn set_topology(ctx: &Ctx, db: &str, args: &[String]) -> Result<i32> {
    let db = ctx.open(db)?;
    let mut list = list_or_new(&db, None, None, None)?;
    match args.first().map(String::as_str) {
        Some("mesh") => {
            list.topology = TopologyKind::Mesh;
            list.hub = None;
            list.pairs.clear();
        }
        Some("hub") if args.len() == 2 => {
            list.topology = TopologyKind::Hub;
            list.hub = Some(args[1].clone());
            list.pairs.clear();
        }
        Some("pairs") if args.len() >= 2 => {
            list.topology = TopologyKind::Pairs;
            list.hub = None;
            list.pairs = args[1..].to_vec();
        }
        None => {
            println!(
                "topology = {}",
                match list.topology {
                    TopologyKind::Mesh => "mesh".to_string(),
                    TopologyKind::Hub => format!("hub {}", list.hub.clone().unwrap_or_default()),
                    TopologyKind::Pairs => format!("pairs {}", list.pairs.join(", ")),
                }
            );
            return Ok(exit::OK);
        }
        _ => {
            return Err(fail(
                exit::USAGE,
                "topology is: mesh | hub <location> | pairs \"a -> b\" \"a <-> c\" ...",
            ));
        }
    }
    list.save(&db)?;
    Ok(exit::OK)
}

/// Prints what a round did, a line per peer; the exit code says whether
/// every peer worked.
pub fn print_round(r: &Round) -> i32 {
    let mut code = exit::OK;
    for p in &r.peers {
        match &p.error {
            None => eprintln!(
                "{}: received {} records ({} bytes), sent {} ({} bytes){}, {} ms",
                p.name,
                p.pulled.files,
                p.pulled.bytes,
                p.pushed.files,
                p.pushed.bytes,
                if p.integrated {
                    ", integrated there"
                } else {
                    ""
                },
                p.millis
            ),
            Some(e) => {
                code = exit::ERROR;
                eprintln!(
                    "{}: {}: {e}",
                    p.name,
                    if p.unreachable {
                        "unreachable"
                    } else {
                        "failed"
                    }
                );
            }
        }
    }
    for t in &r.local.tables {
        eprintln!(
            "  {}: {} new records{}{}",
            t.table,
            t.records,
            t.version
                .as_ref()
                .map_or(String::new(), |v| format!(", version {v}")),
            if t.lost > 0 {
                format!(", {} values kept as sync conflicts", t.lost)
            } else {
                String::new()
            }
        );
    }
    for bad in &r.local.refused {
        eprintln!("  refused: {bad}");
    }
    if r.local.held_back > 0 {
        eprintln!(
            "  {} records wait for the rest of their frame",
            r.local.held_back
        );
    }
    code
}

/// `db:sync <db> [<other>]`: one round with every peer; with a second
/// registered database, that one becomes a location first.
pub fn db_sync(ctx: &Ctx, name: &str, other: Option<&str>, peer: Option<&str>) -> Result<i32> {
    let db = ctx.open(name)?;
    let mut only = peer.map(str::to_string);
    if let Some(other) = other {
        let (root, _) = ctx.resolve(other)?;
        let there = Database::open(&root)?;
        if there.config().id != db.config().id {
            join(&db, &root, &there)?;
        }
        let mut list = list_or_new(&db, None, None, None)?;
        let there = Database::open(&root)?;
        if let Some(l) = list
            .locations
            .iter()
            .find(|l| l.node == there.config().node)
        {
            only = Some(l.name.clone());
        } else {
            let mut loc_name = other.to_string();
            while list.locations.iter().any(|l| l.name == loc_name) {
                loc_name.push('_');
            }
            list.locations.push(Location {
                name: loc_name.clone(),
                url: root.display().to_string(),
                node: there.config().node.clone(),
                ssh: None,
                rdb: None,
            });
            list.save(&db)?;
            only = Some(loc_name);
        }
    }
    let r = reedbase::sync::round(&db, &ctx.user, only.as_deref())?;
    Ok(print_round(&r))
}

/// A database that never synced takes `db`'s id, so it can become one of
/// its locations; its tables then travel as snapshots and merge by the
/// convergence rule.
fn join(db: &Database, root: &Path, there: &Database) -> Result<()> {
    if there.sync_dir().exists() {
        return Err(fail(
            exit::CONFLICT,
            format!(
                "{} is a location of another database (id {}); it cannot join {}",
                root.display(),
                there.config().id,
                db.name()
            ),
        ));
    }
    let id = db.config().id.clone();
    Database::update_config(root, |c| {
        c.id = id;
        Ok(())
    })?;
    eprintln!(
        "{} joins database {} as a location",
        root.display(),
        db.name()
    );
    Ok(())
}

/// `sync:integrate <db or path>`: integrate what this location holds.
pub fn integrate(
    ctx: &Ctx,
    target: &str,
    if_free: bool,
    summary: bool,
    after: &[String],
) -> Result<i32> {
    let path = PathBuf::from(target);
    let db = if path.join("config.toml").exists() {
        Database::open(&path)?
    } else {
        ctx.open(target)?
    };
    let site = Site::new(&db, &ctx.user);
    if if_free {
        if !site.integrate_if_free()? {
            println!("busy");
        }
        if summary {
            print!(
                "I {}\n{}",
                db.config().id,
                Inventory::of(&db)?.answer(&questions(after))
            );
        }
        return Ok(exit::OK);
    }
    let r = site.integrate()?;
    print_round(&Round {
        local: r,
        peers: Vec::new(),
    });
    Ok(exit::OK)
}

/// `--after <dir>=<name>` arguments.
fn questions(after: &[String]) -> Vec<(String, String)> {
    after
        .iter()
        .filter_map(|a| {
            a.split_once('=')
                .map(|(d, n)| (d.to_string(), n.to_string()))
        })
        .collect()
}

/// `sync:remote-summary <path>`: what the database there holds, touching nothing.
pub fn remote_summary(path: &Path, after: &[String]) -> Result<i32> {
    let db = Database::open(path)?;
    print!(
        "I {}\n{}",
        db.config().id,
        Inventory::of(&db)?.answer(&questions(after))
    );
    Ok(exit::OK)
}

/// The locations part of `db:info`.
pub fn info(db: &Database, out: &mut impl std::io::Write) -> Result<()> {
    let states = reedbase::sync::locations_state(db)?;
    if states.is_empty() {
        return Ok(());
    }
    let health = super::health::probes_for_info(db);
    let lags = reedbase::sync::lag(db).unwrap_or_default();
    let health_of = |name: &str| {
        health
            .iter()
            .find(|(n, _)| n == name)
            .map_or("health unknown".to_string(), |(_, h)| h.clone())
    };
    let topology = Locations::load(db)?.map(|l| match l.topology {
        TopologyKind::Mesh => "mesh".to_string(),
        TopologyKind::Hub => format!("hub {}", l.hub.unwrap_or_default()),
        TopologyKind::Pairs => format!("pairs {}", l.pairs.join(", ")),
    });
    writeln!(
        out,
        "distributed:     {} locations, topology {}",
        states.len(),
        topology.unwrap_or_default()
    )?;
    for s in states {
        if s.me {
            writeln!(
                out,
                "  {} (this location): {}, {}",
                s.name,
                s.url,
                health_of(&s.name)
            )?;
            continue;
        }
        let state = match &s.unreachable {
            Some(why) => format!("Unhealthy (unreachable: {why})"),
            None => health_of(&s.name),
        };
        writeln!(out, "  {}: {}, {state}", s.name, s.url)?;
        let last = s
            .status
            .as_ref()
            .filter(|p| p.last_success_us > 0)
            .map_or("never".to_string(), |p| {
                reedbase::storage::names::format_ts_human(p.last_success_us)
            });
        let (sent, received) = s
            .status
            .as_ref()
            .map_or((0, 0), |p| (p.bytes_sent, p.bytes_received));
        let lag = lags.get(&s.name).copied().unwrap_or(0);
        let lag = match &s.unreachable {
            None => format!(
                "lag: it lacks {} records, we lack {}",
                s.they_lack, s.we_lack
            ),
            Some(_) => format!("lag: {lag} records made here since the last sync"),
        };
        writeln!(
            out,
            "    last sync {last}; {lag}; sent {sent} bytes, received {received} bytes"
        )?;
        if let Some(e) = s
            .status
            .as_ref()
            .map(|p| &p.last_error)
            .filter(|e| !e.is_empty())
        {
            writeln!(out, "    last error: {e}")?;
        }
    }
    for r in Site::new(db, "").refused()? {
        writeln!(out, "  refused: {r}")?;
    }
    Ok(())
}

pub fn remote_info(path: &Path) -> Result<i32> {
    print!("{}", describe(path));
    Ok(exit::OK)
}

pub fn remote_create(path: &Path, name: &str, id: &str, delimiter: char) -> Result<i32> {
    if path.join("config.toml").exists() {
        return Err(fail(
            exit::CONFLICT,
            format!("{} holds a database", path.display()),
        ));
    }
    let db = Database::init_location(Arc::new(RealIo), path, name, delimiter, id)?;
    println!("node {}", db.config().node);
    Ok(exit::OK)
}

/// `sync:run <db>`: what a mount daemon does for a distributed database,
/// without a mount: a round after local commits, records that arrive
/// integrated at once, a round every `interval` seconds; until killed. A
/// failed round is reported and retried with backoff, never fatal.
pub fn run_forever(ctx: &Ctx, name: &str, interval: u64, listen: Option<&str>) -> Result<i32> {
    let db = ctx.open(name)?;
    if Locations::load(&db)?.is_none() {
        return Err(fail(
            exit::USAGE,
            format!("database {name} has no locations: add one with `rdb location:add`"),
        ));
    }
    let report: reedbase::sync::daemon::Reporter = Box::new(|r: &Round| {
        print_round(r);
    });
    let syncer = reedbase::sync::Syncer::start(
        db.root().to_path_buf(),
        ctx.user.clone(),
        std::time::Duration::from_secs(interval.max(1)),
        Some(report),
    )?;
    let _metrics = super::health::serve_metrics(ctx, &[&db], listen)?;
    let _health = reedbase::sync::health::Prober::start(
        db.root().to_path_buf(),
        std::time::Duration::from_secs(db.config().health_interval_seconds.max(1)),
    )?;
    eprintln!("syncing {name} (Ctrl-C to stop)");
    while syncer.is_running() {
        std::thread::park_timeout(std::time::Duration::from_secs(1));
    }
    Err(fail(
        exit::NOT_FOUND,
        format!("database {name} is gone; stopped syncing"),
    ))
}

pub fn list_lost(ctx: &Ctx, name: &str, f: FormatArg) -> Result<i32> {
    let db = ctx.open(name)?;
    let site = Site::new(&db, &ctx.user);
    let mut rows = Vec::new();
    for table in db.table_names()? {
        for l in site.lost(&table)? {
            let v = |o: &Option<String>| o.clone().unwrap_or_else(|| "(no row)".into());
            rows.push(vec![
                table.clone(),
                l.record.clone(),
                l.lost.key.clone(),
                l.lost.column.clone(),
                v(&l.lost.lost),
                v(&l.lost.kept),
            ]);
        }
    }
    print_rows(
        f.format,
        &["table", "record", "key", "column", "lost", "kept"],
        &rows,
    )?;
    Ok(exit::OK)
}
