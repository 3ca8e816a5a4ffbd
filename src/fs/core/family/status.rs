//! `<db>/@status`: what the mount did lately (commits, refusals, where
//! refused bytes were kept), the queries running and the memory they hold,
//! and the store's recovery notes (docs/MOUNT.md, "The tree"); and
//! `<db>/@metrics`, the process's metrics of the database in Prometheus'
//! text format (docs/METRICS.md). Read-only, generated on each open outside
//! the namespace lock; the events themselves are `fs/status.rs`.

use crate::fs::core::*;

impl ReedFs {
    /// Attributes of `@status` (no namespace lock).
    pub(in crate::fs::core) fn status_attr(&self, ino: u64, node: &Node) -> Result<Attr> {
        let len = match node {
            Node::Status(db) => self.status_text(*db).len(),
            Node::Metrics(db) => self.metrics_text(*db).len(),
            _ => return Err(FsError::NotFound),
        } as u64;
        Ok(self.file_attr(ino, len, READ_ONLY_PERM, SystemTime::now()))
    }

    /// Opens `@status`: its text as of now.
    pub(in crate::fs::core) fn status_open(
        &self,
        inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        drop(inner);
        let data = Arc::new(match node {
            Node::Status(db) => self.status_text(*db),
            Node::Metrics(db) => self.metrics_text(*db),
            _ => return Err(FsError::NotFound),
        });
        Ok(self.open_data(data, Caching::Direct))
    }

    /// The content of `@metrics`: this database's series and the
    /// process-wide ones, with the query caches' memory as of now.
    fn metrics_text(&self, db: usize) -> Vec<u8> {
        self.note_cache_memory();
        crate::metrics::render(Some(self.dbs[db].db.name()), crate::metrics::Format::Text)
    }

    /// Sets the query-memory gauges of every mounted database.
    pub fn note_cache_memory(&self) {
        let m = crate::metrics::global();
        for (i, d) in self.dbs.iter().enumerate() {
            let u = self.queries[i].usage();
            for (cache, bytes) in [
                ("parsed_tables", u.parsed_bytes),
                ("results", u.result_bytes),
                ("indices", u.index_bytes),
            ] {
                m.cache_bytes
                    .with_label_values(&[d.db.name(), cache])
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
    }

    /// The content of `@status`.
    fn status_text(&self, db: usize) -> Vec<u8> {
        let mut text = self.status[db].render(&self.dbs[db].name);
        text.push_str(&format!(
            "\nqueries running: {} (all databases)",
            self.queries_running
                .load(std::sync::atomic::Ordering::Relaxed)
        ));
        let u = self.queries[db].usage();
        let mib = |b: u64| b.div_ceil(1 << 20);
        text.push_str(&format!(
            "\nquery memory: {} parsed table versions {} MiB, results {} MiB, indices {} MiB\n",
            u.parsed_versions,
            mib(u.parsed_bytes),
            mib(u.result_bytes),
            mib(u.index_bytes)
        ));
        for note in self.dbs[db].db.recovery_notes() {
            text.push_str(&note);
            text.push('\n');
        }
        text.into_bytes()
    }
}
