//! A fault-injecting [`Io`] for crash-consistency tests (the redb approach).
//!
//! It performs every operation on the real file system and counts the
//! mutating ones. At operation N it either fails that one call with an errno
//! (a transient error such as EIO or ENOSPC: later calls succeed), or
//! "crashes": the call is torn (half of its bytes reach the disk and stay
//! there), every later call fails, and [`FaultIo::power_cut`] then reverts
//! everything that was not durable yet, following the rules in `io.rs`:
//! file data written without fsync is lost, names created, renamed or removed
//! without an fsync of their directory revert. What remains is a state a real
//! power cut could leave behind; the test reopens the store from it.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::io::{Io, RealIo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Operation N fails with this errno; nothing of it happens.
    Error(i32),
    /// Operation N is torn and the machine stops.
    Crash,
}

#[derive(Debug)]
enum Undo {
    Created(PathBuf),
    DataLost(PathBuf),
    Appended(PathBuf, u64),
    Renamed {
        from: PathBuf,
        to: PathBuf,
        old_to: Option<Vec<u8>>,
    },
    Removed(PathBuf, Vec<u8>),
}

#[derive(Debug, Default)]
struct State {
    ops: u64,
    trigger: Option<(u64, Fault)>,
    crashed: bool,
    undo: Vec<Undo>,
}

#[derive(Debug, Default)]
pub struct FaultIo {
    real: RealIo,
    state: Mutex<State>,
}

fn crashed_error() -> io::Error {
    io::Error::other("simulated crash: the machine is down")
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

impl FaultIo {
    /// A layer that fails operation `n` (1-based, counting mutations only).
    pub fn new(n: u64, fault: Fault) -> Self {
        FaultIo {
            real: RealIo,
            state: Mutex::new(State {
                trigger: Some((n, fault)),
                ..State::default()
            }),
        }
    }

    /// A layer that only counts (to learn how many operations a step takes).
    pub fn counting() -> Self {
        FaultIo::default()
    }

    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked; the state is plain data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reverts every effect that was not durable, newest first.
    pub fn power_cut(&self) {
        let mut st = self.lock();
        st.crashed = true;
        while let Some(u) = st.undo.pop() {
            // Best effort: the files may have been moved by later undos already.
            let _ = match u {
                Undo::Created(p) => std::fs::remove_file(&p),
                Undo::DataLost(p) => std::fs::write(&p, b""),
                Undo::Appended(p, len) => std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .and_then(|f| f.set_len(len)),
                Undo::Renamed { from, to, old_to } => {
                    let r = std::fs::rename(&to, &from);
                    match old_to {
                        Some(bytes) => std::fs::write(&to, bytes),
                        None => r,
                    }
                }
                Undo::Removed(p, bytes) => std::fs::write(&p, bytes),
            };
        }
    }

    /// Counts a mutation; returns what the layer must do with it.
    fn step(&self) -> io::Result<Option<Fault>> {
        let mut st = self.lock();
        if st.crashed {
            return Err(crashed_error());
        }
        st.ops += 1;
        match st.trigger {
            Some((n, fault)) if n == st.ops => {
                if fault == Fault::Crash {
                    st.crashed = true;
                }
                Ok(Some(fault))
            }
            _ => Ok(None),
        }
    }

    fn check_alive(&self) -> io::Result<()> {
        if self.lock().crashed {
            Err(crashed_error())
        } else {
            Ok(())
        }
    }

    fn push(&self, u: Undo) {
        self.lock().undo.push(u);
    }
}

impl Io for FaultIo {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check_alive()?;
        self.real.read(path)
    }

    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        self.check_alive()?;
        self.real.len(path)
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.check_alive()?;
        self.real.read_at(path, offset, len)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.check_alive()?;
        self.real.list(dir)
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        // Directories are treated as durable once made (a simplification the
        // engine does not rely on: it fsyncs the parent after creating one).
        match self.step()? {
            Some(Fault::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::Crash) => Err(crashed_error()),
            None => self.real.create_dir(dir),
        }
    }

    fn write_new(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        match self.step()? {
            Some(Fault::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::Crash) => {
                // Torn: the name and half the bytes survive.
                let _ = self.real.write_new(path, &bytes[..bytes.len() / 2], true);
                Err(crashed_error())
            }
            None => {
                self.real.write_new(path, bytes, sync)?;
                self.push(Undo::Created(path.to_path_buf()));
                if !sync {
                    self.push(Undo::DataLost(path.to_path_buf()));
                }
                Ok(())
            }
        }
    }

    fn append(&self, path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
        let fault = self.step()?;
        let old_len = self.real.len(path)?;
        match fault {
            Some(Fault::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::Crash) => {
                let _ = self.real.append(path, &bytes[..bytes.len() / 2], true);
                Err(crashed_error())
            }
            None => {
                self.real.append(path, bytes, sync)?;
                let mut st = self.lock();
                if old_len.is_none() {
                    st.undo.push(Undo::Created(path.to_path_buf()));
                }
                if sync {
                    // fsync makes all earlier appends to this file durable too.
                    st.undo
                        .retain(|u| !matches!(u, Undo::Appended(p, _) if p == path));
                } else {
                    st.undo
                        .push(Undo::Appended(path.to_path_buf(), old_len.unwrap_or(0)));
                }
                Ok(())
            }
        }
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        match self.step()? {
            Some(Fault::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::Crash) => Err(crashed_error()),
            None => {
                self.real.truncate(path, len)?;
                self.lock()
                    .undo
                    .retain(|u| !matches!(u, Undo::Appended(p, _) if p == path));
                Ok(())
            }
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self.step()? {
            Some(Fault::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::Crash) => Err(crashed_error()),
            None => {
                let old_to = std::fs::read(to).ok();
                self.real.rename(from, to)?;
                self.push(Undo::Renamed {
                    from: from.to_path_buf(),
                    to: to.to_path_buf(),
                    old_to,
                });
                Ok(())
            }
        }
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        match self.step()? {
            Some(Fault::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::Crash) => Err(crashed_error()),
            None => {
                let old = std::fs::read(path).unwrap_or_default();
                self.real.remove(path)?;
                self.push(Undo::Removed(path.to_path_buf(), old));
                Ok(())
            }
        }
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        match self.step()? {
            Some(Fault::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::Crash) => Err(crashed_error()),
            None => self.real.remove_dir_all(dir),
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        match self.step()? {
            Some(Fault::Error(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::Crash) => Err(crashed_error()),
            None => {
                self.real.sync_dir(dir)?;
                let mut st = self.lock();
                // Names in this directory are now durable; data undos of a
                // renamed file follow it to its new name.
                let mut moved: HashMap<PathBuf, PathBuf> = HashMap::new();
                st.undo.retain(|u| match u {
                    Undo::Created(p) | Undo::Removed(p, _) => parent(p) != dir,
                    Undo::Renamed { from, to, .. } if parent(to) == dir => {
                        moved.insert(from.clone(), to.clone());
                        false
                    }
                    _ => true,
                });
                for u in st.undo.iter_mut() {
                    if let Undo::DataLost(p) = u
                        && let Some(to) = moved.get(p)
                    {
                        *p = to.clone();
                    }
                }
                Ok(())
            }
        }
    }
}
