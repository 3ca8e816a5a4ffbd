//! The progress bar of `table:create` and `table:import`: on stderr, only
//! when stderr is a terminal and only once the operation has run for a
//! second; scripts and tests see nothing. Storage reports its phases through
//! [`reedbase::storage::Progress`]; the bar is drawn here.

use std::io::{IsTerminal, Read};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reedbase::storage::Progress;

/// How long an operation runs before its bar shows.
const SHOW_AFTER: Duration = Duration::from_secs(1);

pub struct Bar {
    bar: ProgressBar,
    /// Tells the thread that would show the bar that the work is over.
    done: Option<mpsc::Sender<()>>,
    shower: Option<JoinHandle<()>>,
}

impl Bar {
    /// A bar that shows after [`SHOW_AFTER`] when stderr is a terminal.
    pub fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if !std::io::stderr().is_terminal() {
            return Bar {
                bar,
                done: None,
                shower: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let shown = bar.clone();
        let shower = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(SHOW_AFTER) {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Bar {
            bar,
            done: Some(tx),
            shower: Some(shower),
        }
    }

    /// Reads `r`, `len` bytes long when known (0: unknown), into one
    /// buffer sized up front: the buffer that is then committed, no copy.
    pub fn read_from(&self, mut r: impl Read, len: u64) -> std::io::Result<Vec<u8>> {
        const STEP: usize = 4 << 20;
        self.phase("reading", len);
        // One byte more than the length, so reaching the end needs no regrowth.
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
        loop {
            if buf.len() == buf.capacity() {
                buf.reserve(STEP);
            }
            let room = (buf.capacity() - buf.len()).min(STEP) as u64;
            let n = r.by_ref().take(room).read_to_end(&mut buf)?;
            if n == 0 {
                return Ok(buf);
            }
            self.bar.inc(n as u64);
        }
    }
}

impl Progress for Bar {
    fn phase(&self, name: &'static str, total: u64) {
        let style = if total > 0 {
            ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
            )
        } else {
            ProgressStyle::with_template("{msg:>10} {spinner} {elapsed}")
        };
        if let Ok(style) = style {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(name);
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // The shower thread ends at once when told, or has shown the bar.
        self.done.take();
        if let Some(t) = self.shower.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}
