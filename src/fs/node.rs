//! What every inode number stands for, and the stable mapping between them.
//! Inode numbers are never reused while mounted; `current.csv` of a table
//! always has the same one.

use std::collections::HashMap;

pub const ROOT: u64 = 1;

/// A node of the mounted tree. `usize` is the index of a mounted database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// The mountpoint: the databases (or, mounting one database, its tables).
    Root,
    Db(usize),
    Table(usize, String),
    /// `<table>/current.csv`: the head.
    Current(usize, String),
    /// `<table>/schema.toml`: the declared column types; writing it saves.
    Schema(usize, String),
    /// Any other file or symlink in a table directory (editor swap files,
    /// `sed` temps, backups): usable, never versioned.
    Scratch(usize, String, String),
    /// `<table>/@versions/`
    Versions(usize, String),
    /// `<table>/@versions/<name>.csv` (by sequence number).
    VersionFile(usize, String, u64),
    /// `<table>/@versions/log.csv`
    VersionLog(usize, String),
    /// `<db>/@changes` (CSV) and `@changes.json`, or the same in a table's
    /// directory (the table's changes only): the change feed; a read waits
    /// for the next commit.
    Changes(usize, Option<String>, bool),
    /// `<table>/@rows/`: every name under it is a row's key.
    Rows(usize, String),
    /// `<table>/@rows/<key>.csv`: the row's history (key decoded).
    RowFile(usize, String, String),
    /// `<db>/@status`
    Status(usize),
    /// `<db>/@metrics`: the process's metrics of this database (Prometheus text).
    Metrics(usize),
    /// `<db>/@rejected/`: content that failed validation, by file name.
    Rejected(usize),
    RejectedFile(usize, String),
    /// `<db>/@conflicts/`: refused merges, one `<id>.csv` of cells each.
    Conflicts(usize),
    ConflictFile(usize, String),
    /// `<db>/@as-of/`: time travel; its children are named by times.
    AsOfRoot(usize),
    /// `<db>/@as-of/<time>/` (UTC microseconds): every table as it was then.
    AsOf(usize, u64),
    /// `<db>/@as-of/<time>/<table>.csv`
    AsOfFile(usize, u64, String),
    /// `<db>/@frames/`: frames being staged; mkdir begins one.
    FramesRoot(usize),
    /// `<db>/@frames/<frame>/`: the frame's tables, its `ctl`, scratch files.
    FrameDir(usize, String),
    /// `<db>/@frames/<frame>/<table>.csv`: staged content (or the table as
    /// the frame began); writing it stages.
    FrameTable(usize, String, String),
    /// `<db>/@frames/<frame>/<table>.schema.toml`: the schema staged with
    /// the frame (or the table's schema now); writing it stages a migration.
    FrameSchema(usize, String, String),
    /// `<db>/@frames/<frame>/ctl`: write `commit` or `abort`; read the state.
    FrameCtl(usize, String),
    /// `<db>/@query/`: every name under it is a query.
    QueryRoot(usize),
    /// `<db>/@query/<sql>`: the query's result as CSV (decoded name).
    QueryFile(usize, String),
    /// `<db>/@query/<name>.sql`: a saved query's text; writing it saves.
    SavedQuery(usize, String),
    /// `<db>/@query/<name>.csv` or `.json`: a saved query's result.
    SavedResult(usize, String, ResultFormat),
}

/// How a saved query's result is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultFormat {
    Csv,
    Json,
}

/// The scratch-file directory key of `@query/` (temp files of `sed -i` and
/// editors saving a query). Table names cannot hold `@`.
pub const QUERY_DIR_KEY: &str = "@query";

/// The scratch-file directory key of `@conflicts/` (temp files of `sed -i`
/// and editors resolving a conflict by editing its file).
pub const CONFLICTS_DIR_KEY: &str = "@conflicts";

/// The scratch-file directory key of a frame directory. Table names cannot
/// hold `@` or `/`, so it never equals a table's.
pub fn frame_dir_key(frame: &str) -> String {
    format!("@frames/{frame}")
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(
            self,
            Node::Root
                | Node::Db(_)
                | Node::Table(..)
                | Node::Versions(..)
                | Node::Rows(..)
                | Node::Rejected(_)
                | Node::Conflicts(_)
                | Node::AsOfRoot(_)
                | Node::AsOf(..)
                | Node::FramesRoot(_)
                | Node::FrameDir(..)
                | Node::QueryRoot(_)
        )
    }

    /// The database a node belongs to (none for the root of a mount of
    /// several databases).
    pub fn db(&self) -> Option<usize> {
        match self {
            Node::Root => None,
            Node::Db(d)
            | Node::Table(d, _)
            | Node::Current(d, _)
            | Node::Schema(d, _)
            | Node::Scratch(d, ..)
            | Node::Versions(d, _)
            | Node::VersionFile(d, ..)
            | Node::VersionLog(d, _)
            | Node::Rows(d, _)
            | Node::RowFile(d, ..)
            | Node::Changes(d, ..)
            | Node::Status(d)
            | Node::Metrics(d)
            | Node::Rejected(d)
            | Node::RejectedFile(d, _)
            | Node::Conflicts(d)
            | Node::ConflictFile(d, _)
            | Node::AsOfRoot(d)
            | Node::AsOf(d, _)
            | Node::AsOfFile(d, ..)
            | Node::FramesRoot(d)
            | Node::FrameDir(d, _)
            | Node::FrameTable(d, ..)
            | Node::FrameSchema(d, ..)
            | Node::FrameCtl(d, _)
            | Node::QueryRoot(d)
            | Node::QueryFile(d, _)
            | Node::SavedQuery(d, _)
            | Node::SavedResult(d, ..) => Some(*d),
        }
    }

    /// Nodes named by what the reader writes (a query, a time) or by
    /// history: unbounded in number, so their inodes are freed when the
    /// kernel forgets them.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Node::QueryFile(..)
                | Node::SavedResult(..)
                | Node::AsOf(..)
                | Node::AsOfFile(..)
                | Node::VersionFile(..)
                | Node::RowFile(..)
        )
    }

    /// Virtual nodes are generated, read-only, and hidden from listings.
    pub fn is_virtual(&self) -> bool {
        matches!(
            self,
            Node::Versions(..)
                | Node::VersionFile(..)
                | Node::VersionLog(..)
                | Node::Rows(..)
                | Node::RowFile(..)
                | Node::Changes(..)
                | Node::Status(_)
                | Node::Metrics(_)
                | Node::Rejected(_)
                | Node::RejectedFile(..)
                | Node::Conflicts(_)
                | Node::ConflictFile(..)
                | Node::AsOfRoot(_)
                | Node::AsOf(..)
                | Node::AsOfFile(..)
                | Node::QueryRoot(_)
                | Node::QueryFile(..)
                | Node::SavedQuery(..)
                | Node::SavedResult(..)
        )
    }
}

#[derive(Debug, Default)]
pub struct Inodes {
    by_node: HashMap<Node, u64>,
    by_ino: HashMap<u64, Node>,
    next: u64,
    /// The kernel's references to transient inodes (lookups not yet
    /// forgotten): at zero the inode is freed (`forgotten`).
    lookups: HashMap<u64, u64>,
}

impl Inodes {
    pub fn new(root: Node) -> Inodes {
        let mut i = Inodes {
            next: ROOT + 1,
            ..Inodes::default()
        };
        i.by_node.insert(root.clone(), ROOT);
        i.by_ino.insert(ROOT, root);
        i
    }

    /// The inode of `node`, allocated on first use.
    pub fn ino(&mut self, node: &Node) -> u64 {
        if let Some(&i) = self.by_node.get(node) {
            return i;
        }
        let i = self.next;
        self.next += 1;
        self.by_node.insert(node.clone(), i);
        self.by_ino.insert(i, node.clone());
        i
    }

    pub fn node(&self, ino: u64) -> Option<&Node> {
        self.by_ino.get(&ino)
    }

    /// Gives `node`'s inode to `to` (a scratch file renamed: same inode, new name).
    pub fn rename(&mut self, from: &Node, to: Node) {
        if let Some(i) = self.by_node.remove(from) {
            if let Some(old) = self.by_node.remove(&to) {
                self.by_ino.remove(&old);
            }
            self.by_node.insert(to.clone(), i);
            self.by_ino.insert(i, to);
        }
    }

    /// Takes the name away from `node`'s inode but keeps the inode itself
    /// resolvable (a file still open after unlink); `forget` ends it.
    pub fn detach(&mut self, node: &Node) {
        self.by_node.remove(node);
    }

    /// Whether `ino` still has its name.
    pub fn is_named(&self, ino: u64) -> bool {
        self.by_ino
            .get(&ino)
            .is_some_and(|n| self.by_node.get(n) == Some(&ino))
    }

    /// The kernel took a reference to `ino` (a lookup, a listing entry with
    /// attributes). Counted for transient nodes only: the others are few
    /// and live as long as the mount.
    pub fn looked_up(&mut self, ino: u64) {
        if self.by_ino.get(&ino).is_some_and(Node::is_transient) {
            *self.lookups.entry(ino).or_default() += 1;
        }
    }

    /// The kernel dropped `n` references to `ino` (FUSE forget): a
    /// transient inode with none left is freed, so every distinct query or
    /// time ever named does not keep an inode for the life of the mount.
    pub fn forgotten(&mut self, ino: u64, n: u64) {
        let Some(count) = self.lookups.get_mut(&ino) else {
            return;
        };
        *count = count.saturating_sub(n);
        if *count == 0 {
            self.lookups.remove(&ino);
            self.forget(ino);
        }
    }

    /// Inodes allocated and not freed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    pub fn forget(&mut self, ino: u64) {
        if let Some(n) = self.by_ino.remove(&ino)
            && self.by_node.get(&n) == Some(&ino)
        {
            self.by_node.remove(&n);
        }
    }
}
