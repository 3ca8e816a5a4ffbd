//! `<db>/@status`: what the mount did lately (commits, refusals, where
//! refused bytes were kept), the queries running and the memory they hold,
//! and the store's recovery notes (docs/MOUNT.md, "The tree"). Read-only, generated from the store outside the namespace
//! lock; the events themselves are `fs/status.rs`.

use crate::fs::core::*;

impl ReedFs {
    /// Attributes of `@status` (no namespace lock).
    pub(in crate::fs::core) fn status_attr(&self, ino: u64, node: &Node) -> Result<Attr> {
        let Node::Status(db) = node else {
            return Err(FsError::NotFound);
        };
        let len = self.status_text(*db).len() as u64;
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
        let Node::Status(db) = node else {
            return Err(FsError::NotFound);
        };
        drop(inner);
        let data = Arc::new(self.status_text(*db));
        Ok(self.open_data(data, Caching::Direct))
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
