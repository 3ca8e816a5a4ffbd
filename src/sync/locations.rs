//! Locations and topology: `sync/locations/<version>.toml`, one immutable
//! file per revision, the newest by name in force. The list travels like
//! the records, so every location learns of the others (docs/SYNC.md,
//! "Locations").
//!
//! ```toml
//! topology = "mesh"              # "mesh", "hub" (with hub = "<name>"), or "pairs"
//! pairs = ["a -> b", "a <-> c"]  # with topology = "pairs"
//! [[location]]
//! name = "laptop"
//! url = "/backup/shop"           # a local path, or [user@]host:path
//! node = "9d0aae92"              # the node id of the database there
//! ssh = "ssh -p 2222"            # optional: the ssh command to reach it
//! rdb = "/opt/bin/rdb"           # optional: rdb on that host
//! ```

use serde::{Deserialize, Serialize};

use crate::storage::Database;
use crate::storage::names::{now_us, version_name};

use super::error::{Result, SyncError};

/// One location. `ssh` and `rdb` say how *this* site runs commands to reach
/// it: they are local settings (`state/sync/access.toml`), never taken
/// from the travelling list, so no peer can make another site run a
/// program of its choosing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub name: String,
    pub url: String,
    pub node: String,
    #[serde(default, skip_serializing)]
    pub ssh: Option<String>,
    #[serde(default, skip_serializing)]
    pub rdb: Option<String>,
}

/// This site's way into a location (`state/sync/access.toml`, local).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdb: Option<String>,
}

const ACCESS: &str = "access.toml";

/// This site's access settings, by location name.
pub fn access(db: &Database) -> Result<std::collections::BTreeMap<String, Access>> {
    let Some(bytes) = db.read_sync_state(ACCESS)? else {
        return Ok(Default::default());
    };
    toml::from_str(&String::from_utf8_lossy(&bytes))
        .map_err(|e| SyncError::Config(format!("state/sync/{ACCESS}: {e}")))
}

/// Sets how this site reaches location `name` (local only).
pub fn set_access(db: &Database, name: &str, a: Access) -> Result<()> {
    let mut all = access(db)?;
    all.insert(name.to_string(), a);
    let text = toml::to_string(&all).map_err(|e| SyncError::Config(e.to_string()))?;
    db.write_sync_state(ACCESS, text.as_bytes())?;
    Ok(())
}

/// Where a location is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Url {
    Path(std::path::PathBuf),
    /// `[user@]host` and the path there.
    Ssh {
        host: String,
        path: String,
    },
}

impl Url {
    /// rsync's rule: a `:` before any `/` makes a remote spec.
    pub fn parse(spec: &str) -> Result<Url> {
        let colon = spec.find(':');
        let slash = spec.find('/');
        match colon {
            Some(c) if slash.is_none_or(|s| c < s) => {
                let (host, path) = (&spec[..c], &spec[c + 1..]);
                if host.is_empty() || path.is_empty() || host.starts_with('-') {
                    return Err(SyncError::Config(format!(
                        "{spec:?} is not a location: use a path or [user@]host:path"
                    )));
                }
                Ok(Url::Ssh {
                    host: host.to_string(),
                    path: path.to_string(),
                })
            }
            _ if spec.is_empty() => Err(SyncError::Config("an empty location".into())),
            _ => Ok(Url::Path(spec.into())),
        }
    }
}

impl Location {
    pub fn url(&self) -> Result<Url> {
        Url::parse(&self.url)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologyKind {
    #[default]
    Mesh,
    Hub,
    Pairs,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locations {
    #[serde(default)]
    pub topology: TopologyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<String>,
    #[serde(default, rename = "location")]
    pub locations: Vec<Location>,
}

/// A peer of this location and which ways records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub location: Location,
    /// We take its records.
    pub pull: bool,
    /// We give it ours (and those we relay).
    pub push: bool,
}

/// `a -> b`, `a <- b` or `a <-> b`: (from, to, both ways).
fn parse_pair(p: &str) -> Result<(String, String, bool)> {
    let bad = || {
        SyncError::Config(format!(
            "{p:?} is not a pair: use \"a -> b\" or \"a <-> b\""
        ))
    };
    for (arrow, both, flip) in [
        ("<->", true, false),
        ("->", false, false),
        ("<-", false, true),
    ] {
        if let Some((l, r)) = p.split_once(arrow) {
            let (l, r) = (l.trim().to_string(), r.trim().to_string());
            if l.is_empty() || r.is_empty() || l == r {
                return Err(bad());
            }
            return Ok(if flip { (r, l, both) } else { (l, r, both) });
        }
    }
    Err(bad())
}

impl Locations {
    /// The list in force at `db` (none: not distributed).
    pub fn load(db: &Database) -> Result<Option<Locations>> {
        let Some((name, bytes)) = db.newest_locations()? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| SyncError::Config(format!("sync/locations/{name} is not UTF-8")))?;
        let mut l: Locations = toml::from_str(&text)
            .map_err(|e| SyncError::Config(format!("sync/locations/{name}: {e}")))?;
        l.check()?;
        // Commands come from this site's own settings, never from a peer.
        let access = access(db)?;
        for loc in &mut l.locations {
            let a = access.get(&loc.name).cloned().unwrap_or_default();
            loc.ssh = a.ssh;
            loc.rdb = a.rdb;
        }
        Ok(Some(l))
    }

    /// Writes this list as the newest revision.
    pub fn save(&self, db: &Database) -> Result<String> {
        self.check()?;
        let text = toml::to_string(self).map_err(|e| SyncError::Config(e.to_string()))?;
        let newest = db.newest_locations()?.map(|(n, _)| n);
        let mut ts = now_us();
        // After the revision in force, whatever this clock says.
        if let Some(n) = &newest {
            ts = ts.max(super::applied::ts_of(n).saturating_add(1));
        }
        let name = format!("{}.toml", version_name(ts, &db.config().node));
        db.put_locations(&name, text.as_bytes())?;
        Ok(name)
    }

    /// Names unique and valid, the hub and pairs naming locations.
    pub fn check(&self) -> Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for l in &self.locations {
            if crate::storage::names::validate(&l.name).is_err() {
                return Err(SyncError::Config(format!(
                    "{:?} is not a location name (letters, digits, _ and -)",
                    l.name
                )));
            }
            if !names.insert(l.name.as_str()) {
                return Err(SyncError::Config(format!(
                    "two locations named {:?}",
                    l.name
                )));
            }
            l.url()?;
        }
        let known = |n: &str| {
            if names.contains(n) {
                Ok(())
            } else {
                Err(SyncError::Config(format!("no location named {n:?}")))
            }
        };
        match self.topology {
            TopologyKind::Hub => known(self.hub.as_deref().unwrap_or(""))?,
            TopologyKind::Pairs => {
                for p in &self.pairs {
                    let (a, b, _) = parse_pair(p)?;
                    known(&a)?;
                    known(&b)?;
                }
            }
            TopologyKind::Mesh => {}
        }
        Ok(())
    }

    /// The location that is this database (by node id).
    pub fn me(&self, node: &str) -> Option<&Location> {
        self.locations.iter().find(|l| l.node == node)
    }

    /// The peers of the location with node id `node`, with the directions
    /// the topology allows.
    pub fn peers(&self, node: &str) -> Vec<Peer> {
        let Some(me) = self.me(node) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for l in self.locations.iter().filter(|l| l.node != node) {
            let (pull, push) = match self.topology {
                TopologyKind::Mesh => (true, true),
                TopologyKind::Hub => {
                    let hub = self.hub.as_deref().unwrap_or("");
                    let linked = me.name == hub || l.name == hub;
                    (linked, linked)
                }
                TopologyKind::Pairs => {
                    let (mut pull, mut push) = (false, false);
                    for (a, b, both) in self.pairs.iter().filter_map(|p| parse_pair(p).ok()) {
                        if (a == me.name && b == l.name) || (both && b == me.name && a == l.name) {
                            push = true;
                        }
                        if (a == l.name && b == me.name) || (both && b == l.name && a == me.name) {
                            pull = true;
                        }
                    }
                    (pull, push)
                }
            };
            if pull || push {
                out.push(Peer {
                    location: l.clone(),
                    pull,
                    push,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(name: &str, node: &str) -> Location {
        Location {
            name: name.into(),
            url: format!("/srv/{name}"),
            node: node.into(),
            ssh: None,
            rdb: None,
        }
    }

    fn dirs(l: &Locations, node: &str) -> Vec<(String, bool, bool)> {
        l.peers(node)
            .into_iter()
            .map(|p| (p.location.name, p.pull, p.push))
            .collect()
    }

    #[test]
    fn topologies_give_each_location_its_peers_and_directions() {
        let mut l = Locations {
            locations: vec![loc("a", "1"), loc("b", "2"), loc("c", "3")],
            ..Default::default()
        };
        assert_eq!(
            dirs(&l, "1"),
            [("b".into(), true, true), ("c".into(), true, true)]
        );
        l.topology = TopologyKind::Hub;
        l.hub = Some("a".into());
        l.check().unwrap();
        assert_eq!(dirs(&l, "2"), [("a".into(), true, true)]);
        assert_eq!(dirs(&l, "1").len(), 2);
        l.topology = TopologyKind::Pairs;
        l.pairs = vec!["a -> b".into(), "c <-> b".into()];
        l.check().unwrap();
        // a only sends to b; b only receives from a; b and c both ways.
        assert_eq!(dirs(&l, "1"), [("b".into(), false, true)]);
        assert_eq!(
            dirs(&l, "2"),
            [("a".into(), true, false), ("c".into(), true, true)]
        );
        l.pairs = vec!["a -> d".into()];
        assert!(l.check().is_err());
    }

    #[test]
    fn urls_follow_rsync() {
        assert_eq!(
            Url::parse("root@10.0.0.2:/srv/db").unwrap(),
            Url::Ssh {
                host: "root@10.0.0.2".into(),
                path: "/srv/db".into()
            }
        );
        assert_eq!(
            Url::parse("/mnt/a:b").unwrap(),
            Url::Path("/mnt/a:b".into())
        );
        assert!(Url::parse("-oProxyCommand=x:y").is_err());
    }
}
