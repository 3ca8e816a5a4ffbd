//! The families of paths of the mount, one file each (docs/ARCHITECTURE.md,
//! the map of `src/fs/`). A family's file owns everything about its nodes:
//! what a name in its directories is (`child`), what they list, their
//! attributes, opening them, and the writes, creates, renames and removals
//! it allows. The operations of `core` (`child`, `readdir`, `attr_of`,
//! `attr_from_storage`, `open`, `create`, `unlink`, `rename`, ...) only
//! dispatch: one arm per family.
//!
//! Families whose files are generated from the store (`@versions/`,
//! `@as-of/`, `@status`, `@rejected/`, `@conflicts/`) compute those
//! attributes and contents without the namespace lock: their attribute
//! functions take no `Inner`.

use super::{Kind, Node};

pub(super) mod as_of;
pub(super) mod changes;
pub(super) mod conflicts;
pub(super) mod frames;
pub(super) mod queries;
pub(super) mod rejected;
pub(super) mod schema;
pub(super) mod status;
pub(super) mod tables;
pub(super) mod versions;

/// Entries of a directory listing: node, kind, name.
pub(super) type Listing = Vec<(Node, Kind, String)>;

/// The families' names in a database directory, in listing order (listed
/// with `--show-virtual`; always reachable by name).
pub(super) fn db_entries(db: usize) -> [(&'static str, Node, Kind); 9] {
    [
        ("@status", Node::Status(db), Kind::File),
        ("@changes", Node::Changes(db, None, false), Kind::File),
        ("@changes.json", Node::Changes(db, None, true), Kind::File),
        ("@metrics", Node::Metrics(db), Kind::File),
        ("@rejected", Node::Rejected(db), Kind::Dir),
        ("@conflicts", Node::Conflicts(db), Kind::Dir),
        ("@as-of", Node::AsOfRoot(db), Kind::Dir),
        ("@frames", Node::FramesRoot(db), Kind::Dir),
        ("@query", Node::QueryRoot(db), Kind::Dir),
    ]
}

/// The families' names in a table directory, likewise.
pub(super) fn table_entries(db: usize, table: &str) -> [(&'static str, Node, Kind); 4] {
    let t = || Some(table.to_string());
    [
        (
            "@versions",
            Node::Versions(db, table.to_string()),
            Kind::Dir,
        ),
        ("@rows", Node::Rows(db, table.to_string()), Kind::Dir),
        ("@changes", Node::Changes(db, t(), false), Kind::File),
        ("@changes.json", Node::Changes(db, t(), true), Kind::File),
    ]
}
