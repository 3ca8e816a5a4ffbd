//! `<db>/<table>/schema.toml`: the table's declared column types
//! (docs/MOUNT.md, "Schemas"). Part of `core`. Reading it gives
//! the current schema; any save (`>`, `cp`, `sed -i`, an editor) checks the
//! text and stores it as a new version; `rm` removes it (also a version).
//! A bad schema fails the save with EINVAL, says why in `@status` and keeps
//! its bytes in `@rejected/`; the table keeps its last good schema.

use crate::fs::core::*;

impl ReedFs {
    /// The schema's text and mtime: the time of its version, or now for a
    /// save in progress (which makes the file exist before its first close).
    pub(in crate::fs::core) fn schema_file_in(
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
    pub(in crate::fs::core) fn schema_in(
        &self,
        inner: &Inner,
        db: usize,
        table: &str,
    ) -> Result<bool> {
        let target = EditTarget::Schema(table.to_string());
        let editing = inner.handles.values().any(
            |h| matches!(h, Handle::VirtualEdit { db: d, target: t, .. } if *d == db && *t == target),
        );
        Ok(editing || self.dbs[db].db.schema_exists(table)?)
    }

    /// Attributes of `schema.toml`.
    pub(in crate::fs::core) fn schema_attr(
        &self,
        inner: &Inner,
        ino: u64,
        node: &Node,
    ) -> Result<Attr> {
        let Node::Schema(db, t) = node else {
            return Err(FsError::NotFound);
        };
        let (text, mtime) = self.schema_file_in(inner, *db, t)?;
        Ok(self.file_attr(ino, text.len() as u64, FILE_PERM, mtime))
    }

    /// Opens `schema.toml`: its text, or for writing an edit saved at the
    /// close.
    pub(in crate::fs::core) fn schema_open(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        node: &Node,
        how: Opening,
    ) -> Result<(u64, Caching)> {
        if how.writes() {
            self.check_writable(node)?;
        }
        let Node::Schema(db, t) = node else {
            return Err(FsError::NotFound);
        };
        let h = if how.writes() {
            let buf = if how.trunc {
                Vec::new()
            } else {
                self.schema_file_in(&inner, *db, t)
                    .map(|(b, _)| b)
                    .unwrap_or_default()
            };
            Handle::VirtualEdit {
                db: *db,
                target: EditTarget::Schema(t.clone()),
                buf,
                dirty: how.trunc,
            }
        } else {
            let data = Arc::new(self.schema_file_in(&inner, *db, t)?.0);
            Handle::Virtual { data }
        };
        Ok((Self::new_fh(&mut inner, h), Caching::Direct))
    }

    /// `create` of `schema.toml` in table directory `table`: an empty edit.
    pub(in crate::fs::core) fn create_schema(
        &self,
        inner: &mut Inner,
        db: usize,
        table: &str,
        flags: i32,
    ) -> Result<(Attr, u64, Caching)> {
        if inner.pending_tables.contains(&(db, table.to_string())) {
            return Err(FsError::NotPermitted(
                "save the table's current.csv before its schema",
            ));
        }
        let node = Node::Schema(db, table.to_string());
        if flags & libc::O_EXCL != 0 && self.schema_file_in(inner, db, table).is_ok() {
            return Err(FsError::Exists);
        }
        Ok(self.create_edit(inner, db, node, EditTarget::Schema(table.to_string())))
    }

    /// Checks and stores `text` as table `table`'s schema.
    pub(in crate::fs::core) fn save_schema(
        &self,
        db: usize,
        table: &str,
        text: &[u8],
        caller: Caller,
    ) -> Result<()> {
        let mdb = &self.dbs[db].db;
        let user = user_name(caller.uid);
        self.save_revision(
            db,
            format!("{table}/{}", SCHEMA),
            (&format!("{table}-schema"), "toml"),
            text,
            |t| mdb.check_schema(table, t).map_err(|e| e.to_string()),
            |t| Ok(mdb.set_schema(table, Some(t), &user)?.version),
        )
    }

    /// `rm <table>/schema.toml`.
    pub(in crate::fs::core) fn delete_schema(
        &self,
        db: usize,
        table: &str,
        caller: Caller,
    ) -> Result<()> {
        let rev = self.dbs[db]
            .db
            .set_schema(table, None, &user_name(caller.uid))?;
        self.status[db].push(Event::Saved {
            file: format!("{table}/{}", SCHEMA),
            version: format!("{} (removed)", rev.version),
        });
        Ok(())
    }

    /// A rename in a table directory onto or away from `schema.toml`: a
    /// scratch file onto it saves its content (`sed -i`, atomic saves);
    /// moving it away (an editor's backup) keeps the text in the scratch
    /// file and removes the schema. `current.csv` is not a schema's source
    /// or target.
    pub(in crate::fs::core) fn rename_schema(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        db: usize,
        table: &str,
        name: &str,
        newname: &str,
        caller: Caller,
    ) -> Result<()> {
        if name == CURRENT || newname == CURRENT {
            return Err(FsError::NotPermitted(
                "schema.toml and current.csv do not replace each other",
            ));
        }
        if newname == SCHEMA {
            return self.save_scratch_onto(inner, db, table, name, |text| {
                self.save_schema(db, table, &text, caller)
            });
        }
        let (data, _) = self.schema_file_in(&inner, db, table)?;
        let file = self.owned_scratch(&data, FILE_PERM)?;
        Self::add_scratch(&mut inner, db, table, newname, file);
        drop(inner);
        self.delete_schema(db, table, caller)
    }
}
