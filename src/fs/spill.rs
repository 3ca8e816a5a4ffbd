//! Contents of scratch files (editors' swap and temp files, `sed -i`'s and
//! rsync's temp files): in memory while small, in an anonymous file next to
//! the database once a file is large or the mount's memory budget for them
//! is spent. Every byte counts against one total budget per mount; a write
//! beyond it fails with ENOSPC, as on a full disk.
//!
//! Invariant: `Budget::mem` is the sum of the in-memory lengths and
//! `Budget::total` the sum of the lengths of every live [`SpillBuf`] of the
//! budget (each buffer returns its share when dropped).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file past this size goes to disk whatever the memory budget.
const LARGE_FILE: u64 = 16 << 20;

type MakeFile = dyn Fn() -> io::Result<File> + Send + Sync;

pub struct Budget {
    mem_limit: u64,
    total_limit: u64,
    mem: AtomicU64,
    total: AtomicU64,
    /// Makes an anonymous file for a buffer that spills.
    make_file: Box<MakeFile>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("mem", &self.mem)
            .field("total", &self.total)
            .finish()
    }
}

impl Budget {
    pub fn new(mem_limit: u64, total_limit: u64, make_file: Box<MakeFile>) -> Arc<Budget> {
        Arc::new(Budget {
            mem_limit,
            total_limit,
            mem: AtomicU64::new(0),
            total: AtomicU64::new(0),
            make_file,
        })
    }

    /// Bytes held in memory and in all, for tests and statistics.
    #[cfg(test)]
    pub fn used(&self) -> (u64, u64) {
        (
            self.mem.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

/// One scratch file's bytes.
#[derive(Debug)]
pub struct SpillBuf {
    budget: Arc<Budget>,
    mem: Vec<u8>,
    file: Option<File>,
    len: u64,
}

impl SpillBuf {
    pub fn new(budget: &Arc<Budget>) -> SpillBuf {
        SpillBuf {
            budget: Arc::clone(budget),
            mem: Vec::new(),
            file: None,
            len: 0,
        }
    }

    /// A buffer holding `data` (text moved out of a versioned file, bytes
    /// kept after a failure).
    pub fn with(budget: &Arc<Budget>, data: &[u8]) -> io::Result<SpillBuf> {
        let mut b = SpillBuf::new(budget);
        b.write(0, data)?;
        Ok(b)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `size` bytes at `offset`.
    pub fn read(&self, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let start = offset.min(self.len);
        let end = start.saturating_add(u64::from(size)).min(self.len);
        match &self.file {
            None => Ok(self.mem[start as usize..end as usize].to_vec()),
            Some(f) => {
                let mut buf = vec![0u8; (end - start) as usize];
                f.read_exact_at(&mut buf, start)?;
                Ok(buf)
            }
        }
    }

    /// All the bytes.
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        match &self.file {
            None => Ok(self.mem.clone()),
            Some(f) => {
                let mut all = vec![0u8; self.len as usize];
                f.read_exact_at(&mut all, 0)?;
                Ok(all)
            }
        }
    }

    /// Accounts a change of length to `new_len`, moving the bytes to disk
    /// first when memory cannot take them.
    fn grow_to(&mut self, new_len: u64) -> io::Result<()> {
        let b = &self.budget;
        let growth = new_len.saturating_sub(self.len);
        if growth > 0 && b.total.load(Ordering::Relaxed) + growth > b.total_limit {
            return Err(no_space());
        }
        if self.file.is_none()
            && growth > 0
            && (new_len > LARGE_FILE || b.mem.load(Ordering::Relaxed) + growth > b.mem_limit)
        {
            let f = (b.make_file)()?;
            f.write_all_at(&self.mem, 0)?;
            b.mem.fetch_sub(self.mem.len() as u64, Ordering::Relaxed);
            self.mem = Vec::new();
            self.file = Some(f);
        }
        Ok(())
    }

    fn account(&mut self, new_len: u64) {
        let b = &self.budget;
        if new_len >= self.len {
            b.total.fetch_add(new_len - self.len, Ordering::Relaxed);
        } else {
            b.total.fetch_sub(self.len - new_len, Ordering::Relaxed);
        }
        if self.file.is_none() {
            let old = self.mem.len() as u64;
            if new_len >= old {
                b.mem.fetch_add(new_len - old, Ordering::Relaxed);
            } else {
                b.mem.fetch_sub(old - new_len, Ordering::Relaxed);
            }
        }
        self.len = new_len;
    }

    /// Writes `data` at `offset`; a gap before it reads as zeros.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset.checked_add(data.len() as u64).ok_or_else(no_space)?;
        let new_len = end.max(self.len);
        self.grow_to(new_len)?;
        match &self.file {
            Some(f) => {
                f.write_all_at(data, offset)?;
                self.account(new_len);
            }
            None => {
                self.account(new_len);
                if self.mem.len() < new_len as usize {
                    self.mem.resize(new_len as usize, 0);
                }
                self.mem[offset as usize..end as usize].copy_from_slice(data);
            }
        }
        Ok(())
    }

    /// Cuts or extends (with zeros) to `len` bytes.
    pub fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.grow_to(len)?;
        match &self.file {
            Some(f) => {
                f.set_len(len)?;
                self.account(len);
            }
            None => {
                self.account(len);
                self.mem.resize(len as usize, 0);
            }
        }
        Ok(())
    }
}

impl Drop for SpillBuf {
    fn drop(&mut self) {
        self.account(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(mem: u64, total: u64) -> Arc<Budget> {
        Budget::new(mem, total, Box::new(tempfile::tempfile))
    }

    #[test]
    fn buffers_spill_past_the_memory_budget_and_stop_at_the_total() {
        let b = budget(10, 100);
        let mut a = SpillBuf::new(&b);
        a.write(0, b"12345678").unwrap();
        assert_eq!(b.used(), (8, 8));
        // Past the memory budget: the bytes move to a file, unchanged.
        a.write(8, b"9abc").unwrap();
        assert_eq!(b.used(), (0, 12));
        assert_eq!(a.to_vec().unwrap(), b"123456789abc");
        // A hole reads as zeros; a cut shortens.
        a.write(14, b"z").unwrap();
        assert_eq!(a.read(11, 10).unwrap(), b"c\0\0z");
        a.set_len(3).unwrap();
        assert_eq!(a.to_vec().unwrap(), b"123");
        // Beyond the total: ENOSPC, nothing written.
        let mut c = SpillBuf::new(&b);
        let err = c.write(0, &[1u8; 98]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert!(c.is_empty());
        drop(a);
        drop(c);
        assert_eq!(b.used(), (0, 0), "dropped buffers return their bytes");
    }

    #[test]
    fn memory_buffers_behave_like_files() {
        let b = budget(1 << 20, 1 << 20);
        let mut a = SpillBuf::with(&b, b"hello").unwrap();
        a.write(7, b"!").unwrap();
        assert_eq!(a.to_vec().unwrap(), b"hello\0\0!");
        a.set_len(2).unwrap();
        assert_eq!(a.read(0, 100).unwrap(), b"he");
        assert_eq!(b.used(), (2, 2));
    }
}
