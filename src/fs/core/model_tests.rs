//! The mount core against a model of a file: random interleavings of
//! open (truncating, appending, read-write), write, ftruncate, fsync,
//! close and `sed -i`-style renames from several handles. The model is a
//! plain file for one writer at a time, appends that land at the end at
//! their close from any number of writers, and the merge rule
//! (`merge::merge3`) for rewrites that overlap another commit. After every
//! step the head equals the model's bytes; at the end every stored version
//! is a valid table.

use std::ffi::OsStr;

use proptest::prelude::*;

use super::tests::{ME, TABLE, close, create_new, fs, users};
use super::*;

const SLOTS: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `>` and `cp`: O_TRUNC, a blind write.
    Trunc,
    /// `>>`: O_APPEND.
    Append,
    /// vim, nano, Python `r+`: the head, edited in place.
    ReadWrite,
}

#[derive(Debug, Clone)]
enum Op {
    Open(usize, Mode),
    /// Writes this many new rows at the end of the handle's file.
    Write(usize, u8),
    Truncate(usize),
    Fsync(usize),
    Close(usize),
    /// `sed -i` by another process: read, temp file, rename.
    SedAppendRow,
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        1 => (
            slot.clone(),
            prop_oneof![
                Just(Mode::Trunc),
                Just(Mode::Append),
                Just(Mode::ReadWrite)
            ]
        )
            .prop_map(|(s, m)| Op::Open(s, m)),
        3 => (slot.clone(), 1u8..4).prop_map(|(s, n)| Op::Write(s, n)),
        1 => slot.clone().prop_map(Op::Truncate),
        1 => slot.clone().prop_map(Op::Fsync),
        2 => slot.prop_map(Op::Close),
        1 => Just(Op::SedAppendRow),
    ]
}

/// One open handle, in the model and in the core.
struct Open {
    fh: u64,
    caller: Caller,
    append: bool,
    /// The handle's file as its writer made it (append: its own bytes).
    buf: Vec<u8>,
    /// The version it merges against (`None`: a blind write) and its bytes.
    base: Option<(u64, Vec<u8>)>,
    dirty: bool,
}

struct Model {
    head: Vec<u8>,
    /// Versions made so far (the head's sequence number).
    seq: u64,
    next_row: u32,
    next_pid: u32,
}

impl Model {
    fn rows(&mut self, view_empty: bool, n: u8) -> Vec<u8> {
        let mut out = Vec::new();
        if view_empty {
            out.extend_from_slice(b"id|name\n");
        }
        for _ in 0..n {
            self.next_row += 1;
            out.extend_from_slice(format!("k{}|v{}\n", self.next_row, self.next_row).as_bytes());
        }
        out
    }

    fn caller(&mut self) -> Caller {
        self.next_pid += 1;
        // Beyond any pid_max: never a real process's id.
        Caller {
            pid: 2_000_000_000 + self.next_pid,
            ..ME
        }
    }

    /// A commit of `content` made at the model's head: a new version when
    /// the bytes change.
    fn set_head(&mut self, content: Vec<u8>) {
        if content != self.head {
            self.head = content;
            self.seq += 1;
        }
    }

    /// What closing `h` must do: `Ok(true)` committed, `Ok(false)` nothing
    /// to commit, `Err(())` refused (head unchanged).
    fn close(&mut self, h: &mut Open) -> Result<bool, ()> {
        if !h.dirty {
            return Ok(false);
        }
        h.dirty = false;
        if h.append {
            let mut c = self.head.clone();
            c.extend_from_slice(&h.buf);
            self.set_head(c);
            h.buf.clear();
            return Ok(true);
        }
        let merged = match &h.base {
            None => h.buf.clone(),
            Some((seq, _)) if *seq == self.seq => h.buf.clone(),
            Some((_, base)) => {
                match merge::merge3(base, &h.buf, &self.head, b'|', Default::default()) {
                    // A merge is validated like any content: a merge of
                    // two rewrites of the header can make a row without a
                    // key, and the commit refuses it.
                    Ok(m)
                        if m.conflicts.is_empty()
                            && (m.content.is_empty()
                                || crate::storage::TableIndex::parse(&m.content, b'|').is_ok()) =>
                    {
                        m.content
                    }
                    _ => return Err(()),
                }
            }
        };
        self.set_head(merged);
        if h.base.is_some() {
            h.base = Some((self.seq, self.head.clone()));
        }
        Ok(true)
    }
}

fn fs_head(fs: &ReedFs) -> Vec<u8> {
    super::tests::head(fs)
}

fn run(ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
    let (_d, fs) = fs();
    let t = users(&fs);
    let cur = fs.lookup(t, OsStr::new(CURRENT), ME).unwrap().ino;
    let mut m = Model {
        head: TABLE.to_vec(),
        seq: 1,
        next_row: 0,
        next_pid: 0,
    };
    let mut slots: Vec<Option<Open>> = (0..SLOTS).map(|_| None).collect();
    for op in ops {
        match op {
            Op::Open(s, mode) => {
                if slots[s].is_some() {
                    continue;
                }
                let caller = m.caller();
                let flags = match mode {
                    Mode::Trunc => libc::O_WRONLY | libc::O_TRUNC,
                    Mode::Append => libc::O_WRONLY | libc::O_APPEND,
                    Mode::ReadWrite => libc::O_RDWR,
                };
                let (fh, _) = fs.open(cur, flags, caller).unwrap();
                let (buf, base, dirty) = match mode {
                    Mode::Trunc => (Vec::new(), None, true),
                    Mode::Append => (Vec::new(), Some((m.seq, m.head.clone())), false),
                    Mode::ReadWrite => (m.head.clone(), Some((m.seq, m.head.clone())), false),
                };
                let append = matches!(mode, Mode::Append);
                slots[s] = Some(Open {
                    fh,
                    caller,
                    append,
                    buf,
                    base,
                    dirty,
                });
            }
            Op::Write(s, n) => {
                let Some(h) = slots[s].as_mut() else { continue };
                let view_empty = if h.append {
                    m.head.is_empty() && h.buf.is_empty()
                } else {
                    h.buf.is_empty()
                };
                let rows = m.rows(view_empty, n);
                // The kernel's offset: the size this handle sees.
                let offset = fs.getattr(cur, Some(h.fh)).unwrap().size;
                if !h.append {
                    prop_assert_eq!(offset, h.buf.len() as u64, "a writer's own size");
                }
                fs.write(h.fh, offset, &rows).unwrap();
                h.buf.extend_from_slice(&rows);
                h.dirty = true;
            }
            Op::Truncate(s) => {
                let Some(h) = slots[s].as_mut() else { continue };
                let set = SetAttr {
                    size: Some(0),
                    ..SetAttr::default()
                };
                fs.setattr(cur, Some(h.fh), set).unwrap();
                h.buf.clear();
                h.dirty = true;
                // Cut, an appender's file is what it holds: a whole save
                // from the version it opened.
                h.append = false;
            }
            Op::Fsync(s) => {
                let Some(h) = slots[s].as_ref() else { continue };
                fs.fsync(h.fh, h.caller).unwrap();
            }
            Op::Close(s) => {
                let Some(mut h) = slots[s].take() else {
                    continue;
                };
                let expect = m.close(&mut h);
                let flushed = fs.flush(h.fh, h.caller);
                let released = fs.release(h.fh, h.caller);
                match expect {
                    Ok(_) => {
                        prop_assert!(flushed.is_ok() || released.is_ok(), "{flushed:?}");
                        prop_assert!(released.is_ok(), "{released:?}");
                    }
                    Err(()) => prop_assert!(
                        matches!(flushed, Err(FsError::Stale(_) | FsError::InvalidContent(_))),
                        "expected a refusal, got {flushed:?}"
                    ),
                }
            }
            Op::SedAppendRow => {
                let caller = m.caller();
                let (fr, _) = fs.open(cur, libc::O_RDONLY, caller).unwrap();
                let read = fs.read(fr, 0, u32::MAX).unwrap();
                fs.release(fr, caller).unwrap();
                prop_assert_eq!(&read, &m.head, "a reader reads the head");
                let mut content = read;
                let rows = m.rows(content.is_empty(), 1);
                content.extend_from_slice(&rows);
                let (_, fh, _) = create_new(&fs, t, "sedTmp", caller);
                fs.write(fh, 0, &content).unwrap();
                close(&fs, fh, caller);
                fs.rename(
                    t,
                    OsStr::new("sedTmp"),
                    t,
                    OsStr::new(CURRENT),
                    false,
                    caller,
                )
                .unwrap();
                m.set_head(content);
            }
        }
        let got = fs_head(&fs);
        prop_assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&m.head)
        );
        prop_assert_eq!(fs.getattr(cur, None).unwrap().size, m.head.len() as u64);
    }
    for h in slots.into_iter().flatten() {
        let _ = fs.flush(h.fh, h.caller);
        let _ = fs.release(h.fh, h.caller);
    }
    // Every stored version is a valid table (or emptied), none has a NUL.
    let table = fs.dbs[0].db.table("users").unwrap();
    for v in table.versions().unwrap() {
        let bytes = table.read_version(v.seq).unwrap();
        prop_assert!(!bytes.contains(&0));
        if !bytes.is_empty() {
            prop_assert!(crate::storage::TableIndex::parse(&bytes, b'|').is_ok());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn saves_through_handles_agree_with_a_file_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
