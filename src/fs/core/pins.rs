//! The versions a running mount still needs (docs/FORMAT.md section 4c),
//! published for `rdb version:prune`, which keeps them: the version each
//! live process last read (the merge base of its next save: an editor
//! that renames its file over `current.csv` hours later), the base of each
//! file open for writing, and where each `@frames/` frame began.
//!
//! Each database gets `state/mount-pins-<pid>` (`table|seq|pid|why`
//! lines; pid: the reading process, 0 for the others), rewritten only when
//! it changes; the daemon's main loop publishes every 300 ms, so a prune
//! can miss a read made within that much of it. Readers ignore a file
//! whose mount is gone and a line whose reading process is gone.

use std::collections::BTreeMap;

use crate::fs::core::*;

/// Per database: table -> (oldest version needed, the process whose read
/// it is or 0, by whom).
type MountPins = Vec<BTreeMap<String, (u64, u32, String)>>;

/// The state file of this process's pins.
fn pins_name() -> String {
    format!(
        "{}{}",
        crate::storage::MOUNT_PINS_PREFIX,
        std::process::id()
    )
}

impl ReedFs {
    fn mount_pins(&self) -> MountPins {
        let mut pins: MountPins = vec![BTreeMap::new(); self.dbs.len()];
        let mut add = |db: usize, table: &str, seq: u64, pid: u32, why: String| {
            if let Some(p) = pins.get_mut(db) {
                let e = p
                    .entry(table.to_string())
                    .or_insert((seq, pid, why.clone()));
                if seq < e.0 {
                    *e = (seq, pid, why);
                }
            }
        };
        let inner = lock(&self.inner);
        let mut alive: BTreeMap<u32, bool> = BTreeMap::new();
        for ((pid, db, table), seq) in &inner.last_read {
            let live = *alive
                .entry(*pid)
                .or_insert_with(|| crate::storage::kept::alive(*pid as i32));
            if live {
                add(
                    *db,
                    table,
                    *seq,
                    *pid,
                    format!("process {pid}, which read it, saving"),
                );
            }
        }
        for h in inner.handles.values() {
            if let Handle::CurrentWrite {
                db,
                table,
                base: Some(b),
                ..
            } = h
            {
                add(
                    *db,
                    table,
                    *b,
                    0,
                    "a file open for writing in a mount".into(),
                );
            }
        }
        for ((db, name), f) in &inner.frames {
            for (table, seq) in f.bases() {
                add(
                    *db,
                    table,
                    *seq,
                    0,
                    format!("the mount's frame @frames/{name}"),
                );
            }
        }
        pins
    }

    /// Writes each database's pins where they changed since the last call
    /// (best effort: a failure is logged, and a prune then knows less).
    pub fn publish_pins(&self) {
        let pins = self.mount_pins();
        let mut published = self
            .published_pins
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        published.resize(self.dbs.len(), None);
        for (db, p) in pins.iter().enumerate() {
            let text: String = p
                .iter()
                .map(|(t, (seq, pid, why))| format!("{t}|{seq}|{pid}|{why}\n"))
                .collect();
            if published[db].as_deref() == Some(text.as_str()) {
                continue;
            }
            let r = if text.is_empty() {
                self.dbs[db].db.remove_state(&pins_name())
            } else {
                self.dbs[db].db.write_state(&pins_name(), text.as_bytes())
            };
            match r {
                Ok(()) => published[db] = Some(text),
                Err(e) => {
                    tracing::warn!(db = %self.dbs[db].name, error = %e.report(), "could not publish the versions the mount needs")
                }
            }
        }
    }

    /// Removes this mount's pins files (at unmount).
    pub fn remove_pins(&self) {
        for d in &self.dbs {
            let _ = d.db.remove_state(&pins_name());
        }
    }
}
