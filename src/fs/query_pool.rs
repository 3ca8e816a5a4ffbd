//! Threads that run the queries of `@query/` opens, so a slow query never
//! holds one of the mount's request threads: `cat current.csv`, `ls` and
//! saves keep their own threads whatever queries run. Bounded: `THREADS`
//! queries run at once, at most `QUEUE` wait; an open beyond that fails at
//! once with EAGAIN ("try again") instead of queueing without end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

const THREADS: usize = 4;
const QUEUE: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

pub struct QueryPool {
    tx: SyncSender<Job>,
    /// Jobs sent and not finished (waiting or running).
    pending: Arc<AtomicUsize>,
}

impl QueryPool {
    pub fn start() -> std::io::Result<QueryPool> {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let pending = Arc::new(AtomicUsize::new(0));
        for i in 0..THREADS {
            let (rx, pending) = (Arc::clone(&rx), Arc::clone(&pending));
            std::thread::Builder::new()
                .name(format!("rdb-query-{i}"))
                .spawn(move || work(&rx, &pending))?;
        }
        Ok(QueryPool { tx, pending })
    }

    /// Runs `job(reply)` on a query thread; when `THREADS + QUEUE` jobs
    /// are already pending, gives `reply` back unrun (to answer EAGAIN).
    pub fn run<R: Send + 'static>(
        &self,
        reply: R,
        job: impl FnOnce(R) + Send + 'static,
    ) -> Result<(), R> {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= THREADS + QUEUE {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(reply);
        }
        // Every worker lives as long as the pool's sender, so a send only
        // fails once the workers are gone; the job (and its reply) is then
        // dropped, and fuser answers a dropped reply with an error.
        if self.tx.send(Box::new(move || job(reply))).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }
}

fn work(rx: &Mutex<Receiver<Job>>, pending: &AtomicUsize) {
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            // The mount is gone.
            Err(_) => return,
        };
        job();
        pending.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_off_the_caller_and_the_queue_is_bounded() {
        let pool = QueryPool::start().unwrap();
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate_rx));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
        let mut accepted = 0;
        for i in 0..THREADS + QUEUE + 5 {
            let (gate, done) = (Arc::clone(&gate), done_tx.clone());
            let ran = pool.run(i, move |i| {
                let _ = gate.lock().unwrap().recv();
                let _ = done.send(i);
            });
            if ran.is_ok() {
                accepted += 1;
            } else {
                assert_eq!(ran, Err(i), "the refused reply comes back");
            }
        }
        assert_eq!(accepted, THREADS + QUEUE, "the rest refused at once");
        for _ in 0..accepted {
            gate_tx.send(()).unwrap();
        }
        for _ in 0..accepted {
            done_rx.recv().unwrap();
        }
    }
}
