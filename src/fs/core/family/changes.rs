//! `<db>/@changes`, `<db>/@changes.json` and the same in a table directory:
//! the change feed as files (docs/MOUNT.md, "Change feed"). A read returns
//! what was committed since the reader's last read, or waits for the next
//! commit: `cat db/@changes` follows like a pipe.
//!
//! Each open file is a follower with its own cursor into the durable
//! history (`storage::feed::Feed`): a slow reader loses nothing, it is read
//! ahead by at most `READ_AHEAD` bytes and then simply not polled until it
//! reads. One poller (`feed_tick`, run by the adapter's feed thread) reads
//! the store outside every lock of the namespace and answers waiting reads;
//! commits through the mount wake it at once (`feed_notify`), others are
//! seen at its next tick. The adapter never blocks a request thread: a read
//! with nothing to give hands over a waiter, called when data comes, at
//! unmount (EOF) or at the close.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::fs::core::*;
use crate::storage::feed::{CSV_HEADER, Feed, FeedFormat};

/// What a waiting read is answered with: its bytes (empty: end of file).
pub type FeedWaiter = Box<dyn FnOnce(Result<Vec<u8>>) + Send>;

/// Bytes a follower is read ahead at most before its reader reads.
const READ_AHEAD: usize = 1 << 20;

/// One open feed file.
struct Follower {
    db: usize,
    feed: Feed,
    format: FeedFormat,
    /// Lines read from the store, not yet read by the reader.
    buf: Vec<u8>,
    /// Reads waiting for data, in arrival order, with what each asked for.
    waiters: std::collections::VecDeque<(FeedWaiter, usize)>,
    /// No more data will come (unmount, or the store failed): EOF once
    /// `buf` is read.
    ended: bool,
}

/// The followers of a mount.
#[derive(Default)]
pub(in crate::fs) struct Feeds {
    followers: Mutex<HashMap<u64, Follower>>,
    /// Set by a commit or a waiting read: the poller should look now.
    pending: Mutex<bool>,
    wake: Condvar,
}

impl std::fmt::Debug for Feeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeds").finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes up to `size` bytes from the front of `buf`.
fn take(buf: &mut Vec<u8>, size: usize) -> Vec<u8> {
    let n = size.min(buf.len());
    buf.drain(..n).collect()
}

impl ReedFs {
    /// Opens a feed file: a follower from now on (its CSV starts with the header).
    pub(in crate::fs::core) fn changes_open(
        &self,
        inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        let Node::Changes(db, table, json) = node else {
            return Err(FsError::NotFound);
        };
        drop(inner);
        let tables: Vec<String> = table.iter().cloned().collect();
        let feed = Feed::from_now(&self.dbs[*db].db, &tables)?;
        let format = if *json {
            FeedFormat::Json
        } else {
            FeedFormat::Csv
        };
        let buf = match format {
            FeedFormat::Csv => CSV_HEADER.as_bytes().to_vec(),
            FeedFormat::Json => Vec::new(),
        };
        let mut inner = lock(&self.inner);
        let fh = Self::new_fh(&mut inner, Handle::Feed);
        drop(inner);
        locked(&self.feeds.followers).insert(
            fh,
            Follower {
                db: *db,
                feed,
                format,
                buf,
                waiters: Default::default(),
                ended: false,
            },
        );
        Ok((fh, Caching::Direct))
    }

    /// Whether `fh` is an open feed file (its reads go to [`Self::read_feed`]).
    pub fn is_feed(&self, fh: u64) -> bool {
        locked(&self.feeds.followers).contains_key(&fh)
    }

    /// A read of feed file `fh`: `answer` gets what is there now, or is
    /// kept until data comes (or the end).
    pub fn read_feed(&self, fh: u64, size: u32, answer: FeedWaiter) {
        let mut followers = locked(&self.feeds.followers);
        let Some(f) = followers.get_mut(&fh) else {
            drop(followers);
            answer(Err(FsError::BadHandle));
            return;
        };
        if f.waiters.is_empty() && (!f.buf.is_empty() || f.ended) {
            let data = take(&mut f.buf, size as usize);
            drop(followers);
            answer(Ok(data));
            return;
        }
        // Reads at once on one descriptor (pread from two threads) wait
        // in turn.
        f.waiters.push_back((answer, size as usize));
        drop(followers);
        self.feed_notify();
    }

    /// The close of feed file `fh`: a waiting read gets EOF.
    pub(in crate::fs::core) fn release_feed(&self, fh: u64) {
        let waiters = locked(&self.feeds.followers)
            .remove(&fh)
            .map(|f| f.waiters)
            .unwrap_or_default();
        for (w, _) in waiters {
            w(Ok(Vec::new()));
        }
    }

    /// Something was committed (or a read waits): the poller looks now.
    pub fn feed_notify(&self) {
        *locked(&self.feeds.pending) = true;
        self.feeds.wake.notify_all();
    }

    /// Waits until notified or `timeout` passed (the poller's pause).
    pub fn feed_wait(&self, timeout: Duration) {
        let mut pending = locked(&self.feeds.pending);
        if !*pending {
            pending = self
                .feeds
                .wake
                .wait_timeout(pending, timeout)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        *pending = false;
    }

    /// Polls every follower with room to read ahead and answers the
    /// waiting reads that now have data. The store is read outside every
    /// lock; only this one thread polls, so cursors never race.
    pub fn feed_tick(&self) {
        let due: Vec<(u64, usize, Feed, FeedFormat)> = locked(&self.feeds.followers)
            .iter()
            .filter(|(_, f)| !f.ended && f.buf.len() < READ_AHEAD)
            .map(|(fh, f)| (*fh, f.db, f.feed.clone(), f.format))
            .collect();
        let mut answers: Vec<(FeedWaiter, Vec<u8>)> = Vec::new();
        let mut behind = false;
        for (fh, db, mut feed, format) in due {
            let polled = feed.poll(&self.dbs[db].db, format);
            behind |= polled.is_ok() && feed.behind();
            let mut followers = locked(&self.feeds.followers);
            let Some(f) = followers.get_mut(&fh) else {
                continue;
            };
            match polled {
                Ok(lines) => {
                    f.feed = feed;
                    f.buf.extend_from_slice(&lines);
                }
                Err(e) => {
                    // A clear line, then EOF: the reader resumes with
                    // `rdb changes --since <the last version it read>`.
                    let line = format!("# rdb: the change feed stopped: {}\n", e.report());
                    f.buf.extend_from_slice(line.as_bytes());
                    f.ended = true;
                }
            }
            Self::answer_waiters(f, &mut answers);
        }
        for (w, data) in answers {
            w(Ok(data));
        }
        if behind {
            // A follower stopped at its bound: the next tick comes at once.
            *locked(&self.feeds.pending) = true;
        }
    }

    /// The waiting reads `f` can answer now: with data while there is
    /// some, then (once ended) with EOF.
    fn answer_waiters(f: &mut Follower, answers: &mut Vec<(FeedWaiter, Vec<u8>)>) {
        while (!f.buf.is_empty() || f.ended)
            && let Some((w, size)) = f.waiters.pop_front()
        {
            answers.push((w, take(&mut f.buf, size)));
        }
    }

    /// Unmount (or a request to stop): every open follower ends; waiting
    /// reads get what was read ahead, then EOF. Files opened later follow
    /// as usual (a refused unmount keeps serving).
    pub fn end_feeds(&self) {
        let mut answers = Vec::new();
        for f in locked(&self.feeds.followers).values_mut() {
            f.ended = true;
            Self::answer_waiters(f, &mut answers);
        }
        for (w, data) in answers {
            w(Ok(data));
        }
    }
}
