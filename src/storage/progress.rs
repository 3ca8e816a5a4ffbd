//! How a long commit tells its caller how far it got (the CLI draws a
//! progress bar from it). Storage only reports; it knows nothing of how, or
//! whether, that is shown.

use std::fmt;

/// Hears the phases of a commit and the bytes each has done. Called from
/// the committing thread and, while storing, from worker threads.
pub trait Progress: Sync {
    /// A phase begins (`"validating"`, `"storing"`); `total` is its work in
    /// bytes, 0 when it is not counted.
    fn phase(&self, name: &'static str, total: u64);
    /// `n` more bytes of the current phase are done.
    fn advance(&self, n: u64);
}

impl fmt::Debug for dyn Progress + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress")
    }
}
