//! A table's optional schema, `schema.toml` (docs/FORMAT.md section 12),
//! kept as revisions under `tables/<table>/schema/` so it is versioned like
//! the table.
//!
//! ```toml
//! [columns]
//! id = "integer"
//! price = "real"
//! [columns.email]
//! type = "text"
//! unique = true
//! ```
//!
//! Its rules (storage/schema_rules.rs) say what valid data is; every
//! commit is checked against them (table/rules.rs). A declared type also
//! replaces inference for its column in queries, with SQLite's column
//! affinity (docs/QUERY.md, "Types"): integer and real as such, boolean,
//! date and datetime as NUMERIC (as SQLite types those names), text and
//! enum as text. Columns left out are inferred.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::Result;
use super::schema_rules::{RuleType, Rules};

/// A column's declared type, as queries use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Integer,
    Real,
    Text,
    /// SQLite's NUMERIC affinity, which its `CREATE TABLE` gives `BOOLEAN`,
    /// `DATE` and `DATETIME`: a value that reads as a number is one, any
    /// other stays text (so ISO dates compare as text, `1`/`0` as numbers).
    Numeric,
}

/// A parsed `schema.toml`.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Declared types by column name (for queries).
    pub columns: BTreeMap<String, ColumnType>,
    /// Every rule, as commits check them.
    pub rules: Arc<Rules>,
}

impl Schema {
    /// The columns declared `unique` or `primary_key`: queries index them
    /// at their first equality lookup, as they do a table's key.
    pub fn unique_columns(&self) -> std::collections::BTreeSet<String> {
        self.rules
            .columns
            .iter()
            .filter(|c| c.unique || c.primary_key)
            .map(|c| c.name.clone())
            .collect()
    }
}

/// Largest schema text.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

impl Schema {
    /// Parses a schema; with `header`, checks that every declared column
    /// exists (as a save does).
    pub fn parse(text: &str, table: &str, header: Option<&[String]>) -> Result<Schema> {
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(super::error::StorageError::Invalid {
                what: format!("schema.toml of {table}"),
                reason: format!("longer than {MAX_SCHEMA_BYTES} bytes"),
            });
        }
        let rules = Rules::parse(text, table, header)?;
        let columns = rules
            .columns
            .iter()
            .map(|c| {
                let t = match c.kind {
                    RuleType::Integer => ColumnType::Integer,
                    RuleType::Real => ColumnType::Real,
                    RuleType::Boolean | RuleType::Date | RuleType::Datetime => ColumnType::Numeric,
                    RuleType::Text | RuleType::Enum => ColumnType::Text,
                };
                (c.name.clone(), t)
            })
            .collect();
        Ok(Schema {
            columns,
            rules: Arc::new(rules),
        })
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
        assert!(
            Schema::parse("", "t", Some(&header))
                .unwrap()
                .columns
                .is_empty()
        );
        // Read back later (no header check), a missing column is no error.
        assert!(Schema::parse("[columns]\nnope = \"text\"\n", "t", None).is_ok());
        for (text, says) in [
            ("[columns]\nprice = \"money\"\n", "unknown type"),
            (
                "[columns]\nnope = \"text\"\n",
                "column \"nope\" is not in the table",
            ),
            ("key = \"zip\"\n", "unknown key"),
            ("colums = 1\n", "unknown key"),
            ("[columns\n", "schema.toml of t"),
        ] {
            let e = Schema::parse(text, "t", Some(&header))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
