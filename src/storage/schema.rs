//! A table's optional schema, `schema.toml` (docs/FORMAT.md section 12),
//! kept as revisions under `tables/<table>/schema/` so it is versioned like
//! the table.
//!
//! ```toml
//! [columns]
//! id = "integer"
//! price = "real"
//! zip = "text"
//! ```
//!
//! A declared type replaces inference for its column in queries, with
//! SQLite's column affinity (docs/QUERY.md, "Types"). Columns left out are
//! inferred. Key and uniqueness constraints are not part of it yet: the key
//! is the table's first column.

use std::collections::BTreeMap;

use super::error::{Result, StorageError};

/// A column's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Integer,
    Real,
    Text,
}

/// A parsed `schema.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Declared types by column name.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnType>,
}

/// Largest schema text.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

impl Schema {
    /// Parses a schema; with `header`, checks that every declared column
    /// exists (as a save does).
    pub fn parse(text: &str, table: &str, header: Option<&[String]>) -> Result<Schema> {
        let bad = |reason: String| StorageError::Invalid {
            what: format!("schema.toml of {table}"),
            reason,
        };
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(bad(format!("longer than {MAX_SCHEMA_BYTES} bytes")));
        }
        let raw: toml::Table = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        if raw.contains_key("key") || raw.contains_key("unique") {
            return Err(bad(
                "key and unique constraints are not supported yet; the key is the first column"
                    .into(),
            ));
        }
        let schema: Schema = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        if let Some(header) = header
            && let Some(missing) = schema.columns.keys().find(|c| !header.contains(c))
        {
            return Err(bad(format!(
                "column {missing:?} is not in the table (columns: {})",
                header.join(", ")
            )));
        }
        Ok(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_and_refuses_what_it_cannot_honour() {
        let header = ["id".to_string(), "price".to_string(), "zip".to_string()];
        let s = Schema::parse(
            "[columns]\nprice = \"real\"\nzip = \"text\"\n",
            "t",
            Some(&header),
        )
        .unwrap();
        assert_eq!(s.columns["price"], ColumnType::Real);
        assert_eq!(s.columns.len(), 2);
        assert_eq!(
            Schema::parse("", "t", Some(&header)).unwrap(),
            Schema::default()
        );
        // Read back later (no header check), a missing column is no error.
        assert!(Schema::parse("[columns]\nnope = \"text\"\n", "t", None).is_ok());
        for (text, says) in [
            ("[columns]\nprice = \"money\"\n", "unknown variant"),
            (
                "[columns]\nnope = \"text\"\n",
                "column \"nope\" is not in the table",
            ),
            ("key = \"zip\"\n", "not supported yet"),
            ("colums = 1\n", "unknown field"),
            ("[columns\n", "schema.toml of t"),
        ] {
            let e = Schema::parse(text, "t", Some(&header))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
