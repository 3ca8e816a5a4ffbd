//! `$REEDBASE_HOME/registry.toml`: name -> location of every database, global
//! and local. Names resolve to a local database (found by walking up from the
//! working directory to a `.reedbase/`) first, then to this registry.
//!
//! A `.reedbase/` found that way must be a real directory owned by this user
//! or root (or listed in `REEDBASE_SAFE_DIRECTORIES`): in a directory others
//! can write, such as `/tmp`, anyone could plant one named like a
//! registered database, and a write meant for that database would land in
//! a store they own. Such a `.reedbase/` is refused, never skipped, so the
//! user learns that it is there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::database::CONFIG;
use super::error::{Result, StorageError};
use super::io::{self as sio, RealIo, read_file, replace_file};
use super::lock::LockFile;
use super::{Config, names};

pub const LOCAL_DIR: &str = ".reedbase";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Global,
    Local,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Global => "global",
            Mode::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbEntry {
    pub path: PathBuf,
    pub mode: Mode,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RegistryFile {
    #[serde(default)]
    databases: BTreeMap<String, DbEntry>,
}

#[derive(Debug, Clone)]
pub struct Registry {
    home: PathBuf,
    file: RegistryFile,
}

impl Registry {
    /// `$REEDBASE_HOME`, else `~/.reedbase`.
    pub fn default_home() -> PathBuf {
        if let Some(h) = std::env::var_os("REEDBASE_HOME").filter(|h| !h.is_empty()) {
            return PathBuf::from(h);
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".reedbase")
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    fn path(home: &Path) -> PathBuf {
        home.join("registry.toml")
    }

    pub fn load(home: &Path) -> Result<Registry> {
        let path = Registry::path(home);
        let file = if path.exists() {
            let bytes = read_file(&RealIo, &path)?;
            let text = String::from_utf8_lossy(&bytes);
            toml::from_str(&text).map_err(|e| StorageError::Config {
                path: path.clone(),
                detail: e.to_string(),
            })?
        } else {
            RegistryFile::default()
        };
        Ok(Registry {
            home: home.to_path_buf(),
            file,
        })
    }

    /// Loads, changes and saves the registry under its lock, so concurrent
    /// `rdb` processes never lose each other's entries.
    pub fn update<T>(home: &Path, f: impl FnOnce(&mut Registry) -> Result<T>) -> Result<T> {
        // An existing home is used as it is (a symlinked ~/.reedbase is the
        // user's choice); a new one, and its new parents, get mode 0700.
        if !std::fs::metadata(home).is_ok_and(|m| m.is_dir()) {
            sio::create_private_dir(home).map_err(|e| StorageError::io("create", home, e))?;
        }
        let lock = LockFile::open(&home.join("registry.lock"))?;
        let _g = lock.acquire("the registry", Duration::from_secs(10))?;
        let mut reg = Registry::load(home)?;
        let out = f(&mut reg)?;
        let text = toml::to_string(&reg.file).map_err(|e| StorageError::Config {
            path: Registry::path(home),
            detail: e.to_string(),
        })?;
        replace_file(&RealIo, &Registry::path(home), text.as_bytes())?;
        Ok(out)
    }

    pub fn entries(&self) -> &BTreeMap<String, DbEntry> {
        &self.file.databases
    }

    pub fn get(&self, name: &str) -> Option<&DbEntry> {
        self.file.databases.get(name)
    }

    pub fn add(&mut self, name: &str, entry: DbEntry) -> Result<()> {
        names::validate(name)?;
        if let Some(existing) = self.file.databases.get(name) {
            return Err(StorageError::Exists {
                kind: "database",
                name: format!("{name} (at {})", existing.path.display()),
            });
        }
        self.file.databases.insert(name.to_string(), entry);
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Result<DbEntry> {
        self.file
            .databases
            .remove(name)
            .ok_or_else(|| StorageError::NotFound {
                kind: "database",
                name: name.to_string(),
            })
    }

    /// Where a new global database of this name lives.
    pub fn global_root(&self, name: &str) -> PathBuf {
        self.home.join("databases").join(name)
    }

    /// The nearest `.reedbase/` holding a database, walking up from `cwd`.
    /// It is refused (an error naming it and how to allow it) when it is a
    /// symlink or another user's (`io::check_root`); one this user cannot
    /// even look into is passed over, as it always was.
    pub fn find_local(cwd: &Path) -> Result<Option<PathBuf>> {
        for dir in cwd.ancestors() {
            let local = dir.join(LOCAL_DIR);
            let Ok(m) = std::fs::symlink_metadata(&local) else {
                continue;
            };
            let holds_db = std::fs::symlink_metadata(local.join(CONFIG)).is_ok();
            if m.file_type().is_symlink() {
                // Only a link to a database would have been used.
                if local.join(CONFIG).is_file() {
                    return Err(StorageError::io(
                        "open database",
                        &local,
                        sio::refused(&local, sio::SYMLINK_REASON),
                    ));
                }
                continue;
            }
            if !m.is_dir() || !holds_db {
                continue;
            }
            sio::check_root(&RealIo, &local)?;
            return Ok(Some(local));
        }
        Ok(None)
    }

    /// Resolves a database name: the local database above `cwd` when it has
    /// that name, else the registry entry. A registered database of the
    /// same name elsewhere is logged (the CLI uses [`Self::lookup`] and
    /// says it in its own words).
    pub fn resolve(&self, name: &str, cwd: &Path) -> Result<(PathBuf, Mode)> {
        let (root, mode, shadowed) = self.lookup(name, cwd)?;
        if let Some(other) = shadowed {
            tracing::warn!(
                name,
                used = %root.display(),
                registered = %other.display(),
                "a local database shadows the registered one of the same name"
            );
        }
        Ok((root, mode))
    }

    /// [`Self::resolve`], also returning the location of a registered
    /// database of the same name that the local one shadows.
    pub fn lookup(&self, name: &str, cwd: &Path) -> Result<(PathBuf, Mode, Option<PathBuf>)> {
        if let Some(local) = Registry::find_local(cwd)?
            && let Ok(cfg) = Config::load(&RealIo, &local.join(CONFIG))
            && cfg.name == name
        {
            let shadowed = self
                .get(name)
                .map(|e| e.path.clone())
                .filter(|p| !same_place(p, &local));
            return Ok((local, Mode::Local, shadowed));
        }
        match self.get(name) {
            Some(e) if e.path.join(CONFIG).is_file() => Ok((e.path.clone(), e.mode, None)),
            Some(e) => Err(StorageError::NotFound {
                kind: "database location",
                name: format!(
                    "{name} (registered at {}, which holds no database)",
                    e.path.display()
                ),
            }),
            None => Err(StorageError::NotFound {
                kind: "database",
                name: name.to_string(),
            }),
        }
    }
}

/// Whether two paths name the same directory (by their real paths when both
/// exist).
fn same_place(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
