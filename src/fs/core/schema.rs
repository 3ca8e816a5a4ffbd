//! `<db>/<table>/schema.toml`: the table's declared column types
//! (docs/MOUNT.md, "Schemas"). A child module of `core`. Reading it gives
//! the current schema; any save (`>`, `cp`, `sed -i`, an editor) checks the
//! text and stores it as a new version; `rm` removes it (also a version).
//! A bad schema fails the save with EINVAL, says why in `@status` and keeps
//! its bytes in `@rejected/`; the table keeps its last good schema.

use super::{EditTarget, Event, FsError, Inner, ReedFs, Result};

impl ReedFs {
    /// The schema's text and mtime: the time of its version, or now for a
    /// save in progress (which makes the file exist before its first close).
    pub(super) fn schema_file_in(
        &self,
        inner: &Inner,
        db: usize,
        table: &str,
    ) -> Result<(Vec<u8>, std::time::SystemTime)> {
        Self::revision_file_in(inner, db, &EditTarget::Schema(table.to_string()), || {
            let r = self.dbs[db].db.schema_text(table)?;
            Ok(r.map(|r| (r.text, r.ts_us)))
        })
    }

    /// Whether `<table>/schema.toml` exists: stored or being written (a
    /// listing; nothing read).
    pub(super) fn schema_in(&self, inner: &Inner, db: usize, table: &str) -> Result<bool> {
        let target = EditTarget::Schema(table.to_string());
        let editing = inner.handles.values().any(
            |h| matches!(h, super::Handle::VirtualEdit { db: d, target: t, .. } if *d == db && *t == target),
        );
        Ok(editing || self.dbs[db].db.schema_exists(table)?)
    }

    /// Checks and stores `text` as table `table`'s schema.
    pub(super) fn save_schema(&self, db: usize, table: &str, text: &[u8]) -> Result<()> {
        let mdb = &self.dbs[db].db;
        self.save_revision(
            db,
            format!("{table}/{}", crate::storage::SCHEMA),
            (&format!("{table}-schema"), "toml"),
            text,
            |t| {
                let header = mdb.table(table).and_then(|x| x.columns());
                let header = header.map_err(|e| e.to_string())?;
                crate::storage::Schema::parse(t, table, Some(&header))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
            |t| Ok(mdb.set_schema(table, Some(t))?.version),
        )
    }

    /// `rm <table>/schema.toml`.
    pub(super) fn delete_schema(&self, db: usize, table: &str) -> Result<()> {
        let rev = self.dbs[db].db.set_schema(table, None)?;
        self.status[db].push(Event::Saved {
            file: format!("{table}/{}", crate::storage::SCHEMA),
            version: format!("{} (removed)", rev.version),
        });
        Ok(())
    }
}

impl ReedFs {
    /// A rename in a table directory onto or away from `schema.toml`: a
    /// scratch file onto it saves its content (`sed -i`, atomic saves);
    /// moving it away (an editor's backup) keeps the text in the scratch
    /// file and removes the schema. `current.csv` is not a schema's source
    /// or target.
    pub(super) fn rename_schema(
        &self,
        mut inner: std::sync::MutexGuard<'_, Inner>,
        db: usize,
        table: &str,
        name: &str,
        newname: &str,
    ) -> Result<()> {
        use crate::storage::{CURRENT, SCHEMA};
        if name == CURRENT || newname == CURRENT {
            return Err(FsError::NotPermitted(
                "schema.toml and current.csv do not replace each other",
            ));
        }
        if newname == SCHEMA {
            return self.save_scratch_onto(inner, db, table, name, |text| {
                self.save_schema(db, table, &text)
            });
        }
        let (data, _) = self.schema_file_in(&inner, db, table)?;
        let file = self.owned_scratch(&data, super::FILE_PERM)?;
        Self::add_scratch(&mut inner, db, table, newname, file);
        drop(inner);
        self.delete_schema(db, table)
    }
}
