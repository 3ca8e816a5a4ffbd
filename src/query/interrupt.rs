//! Stopping a running query from outside: a time limit
//! (`query_timeout_ms`), or its reader gone (the mount cancels the query
//! of a reader that was killed). Execution calls [`Interrupt::check`] in
//! every loop over rows; the check costs an atomic increment, and looks at
//! the clock and the flag every `EVERY` calls.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::error::{ErrorKind, QueryError};

const EVERY: u32 = 1024;

#[derive(Debug, Default)]
pub struct Interrupt {
    cancelled: AtomicBool,
    /// When the query must stop, and the limit that set it (for the message).
    deadline: Option<(Instant, u64)>,
    ticks: AtomicU32,
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
            ..Interrupt::default()
        }
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
