//! Stopping a running query from outside: a time limit
//! (`query_timeout_ms`), or its reader gone (the mount cancels the query
//! of a reader that was killed). Execution calls [`Interrupt::check`] in
//! every loop over rows; the check costs an atomic increment, and looks at
//! the clock and the flag every `EVERY` calls, and at whether the query is
//! still wanted (`watch`) at most every `WATCH_EVERY`. No thread watches a
//! query: a query that finishes fast pays nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::error::{ErrorKind, QueryError};

const EVERY: u32 = 1024;
const WATCH_EVERY: Duration = Duration::from_millis(50);

type Gone = Box<dyn Fn() -> bool + Send + Sync>;

#[derive(Default)]
pub struct Interrupt {
    cancelled: AtomicBool,
    /// When the query must stop, and the limit that set it (for the message).
    deadline: Option<(Instant, u64)>,
    ticks: AtomicU32,
    /// Says whether the one who asked for the query is gone.
    gone: OnceLock<Gone>,
    started: Option<Instant>,
    /// Milliseconds after `started` of the last look at `gone`.
    watched_at_ms: AtomicU64,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupt")
            .field("cancelled", &self.cancelled)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Interrupt {
    /// A query may run `timeout_ms` from now (0: no limit).
    pub fn with_timeout(timeout_ms: u64) -> Interrupt {
        Interrupt {
            deadline: (timeout_ms > 0).then(|| {
                (
                    Instant::now() + Duration::from_millis(timeout_ms),
                    timeout_ms,
                )
            }),
            started: Some(Instant::now()),
            ..Interrupt::default()
        }
    }

    /// Cancels the query once `gone` says its reader went away (looked at
    /// during the query's own checks, at most every `WATCH_EVERY`).
    pub fn watch(&self, gone: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.gone.set(Box::new(gone));
    }

    /// Stops the query at its next check (its reader went away).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Fails once the query was cancelled or ran out of time.
    pub fn check(&self) -> Result<(), QueryError> {
        if !self
            .ticks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(EVERY)
        {
            return Ok(());
        }
        self.check_now()
    }

    pub fn check_now(&self) -> Result<(), QueryError> {
        if let (Some(gone), Some(started)) = (self.gone.get(), self.started) {
            let now = started.elapsed().as_millis() as u64;
            let last = self.watched_at_ms.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= WATCH_EVERY.as_millis() as u64 {
                self.watched_at_ms.store(now, Ordering::Relaxed);
                if gone() {
                    self.cancel();
                }
            }
        }
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(QueryError::new(
                ErrorKind::Interrupted,
                "query cancelled: its reader went away",
            ));
        }
        match self.deadline {
            Some((at, ms)) if Instant::now() >= at => Err(QueryError::new(
                ErrorKind::Interrupted,
                format!("query stopped after {ms} ms (query_timeout_ms)"),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_stops_at_its_deadline_or_when_cancelled() {
        let i = Interrupt::with_timeout(1);
        std::thread::sleep(Duration::from_millis(5));
        let e = i.check_now().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Interrupted);
        assert!(e.message.contains("query_timeout_ms"), "{e}");
        let i = Interrupt::with_timeout(0);
        assert!(i.check_now().is_ok(), "no limit");
        i.cancel();
        // The next checked call sees it.
        let first_fails = (0..EVERY + 1).any(|_| i.check().is_err());
        assert!(first_fails);
    }
}
