//! The published rtcd benchmark tables as data: `scenarios/tables/c6i.toml` and `c7i.toml`, parsed into
//! validated rows. Schema: `scenarios/tables/README.md`.
//!
//! Every figure keeps its published text; parse and validation errors carry `file:line:col` from the TOML
//! spans, and unknown keys are rejected so a typo cannot silently drop a figure.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::catalog::{self, Family, Instance};
use super::flow::CallMix;
use super::quantity::{Bitrate, Bytes, Percent, Published};

/// Why a table file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Invalid {
        path: String,
        line: usize,
        col: usize,
        message: String,
    },
}

impl TableError {
    /// An error at a byte span of the file's text.
    pub(crate) fn at(path: &str, text: &str, span: Option<Range<usize>>, message: String) -> Self {
        let (line, col) = line_col(text, span.map_or(0, |s| s.start));
        TableError::Invalid {
            path: path.to_owned(),
            line,
            col,
            message,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Deserializes a TOML document, mapping toml's error to `file:line:col: message`.
pub(crate) fn parse_toml<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, TableError> {
    toml::from_str(text).map_err(|e| TableError::at(path, text, e.span(), e.message().to_owned()))
}

/// Reads a file to text.
pub(crate) fn read(path: &Path) -> Result<String, TableError> {
    std::fs::read_to_string(path).map_err(|source| TableError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// "yes" or "no", as the tables print the screen-sharing column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YesNo {
    Yes,
    No,
}

/// Where figures were published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The published document.
    pub document: String,
    /// The section of that document holding the table.
    pub section: String,
    /// Where this project's specs reproduce and discuss the table.
    pub reproduced_in: String,
}

/// What the table says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMeta {
    pub family: Family,
    /// The caption above the table, as published.
    pub title: String,
    /// When the table was published (ISO date).
    pub published: String,
    /// Versions under test, as stated by the source (or "not stated").
    pub versions: String,
    /// Media samples, as stated by the source (or "not stated").
    pub media: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    table: TableMeta,
    sources: BTreeMap<String, Source>,
    row: Vec<Spanned<RawRow>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    row: Spanned<u32>,
    calls: u32,
    users_per_call: u32,
    unmuted_per_call: u32,
    screen_sharing: YesNo,
    cpu: Published<Percent>,
    memory: Published<Bytes>,
    bandwidth_in: Published<Bitrate>,
    bandwidth_out: Published<Bitrate>,
    instance: Spanned<String>,
    source: Spanned<String>,
}

/// One published row, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkRow {
    /// 1-based position in the published table.
    pub row: u32,
    pub calls: u32,
    pub users_per_call: u32,
    pub unmuted_per_call: u32,
    pub screen_sharing: YesNo,
    pub cpu: Published<Percent>,
    pub memory: Published<Bytes>,
    pub bandwidth_in: Published<Bitrate>,
    pub bandwidth_out: Published<Bitrate>,
    pub instance: &'static Instance,
    /// Key into the table's sources.
    pub source: String,
}

impl BenchmarkRow {
    /// The lt run behind the row: "Screen sharing = yes" is one sharer in every call (§2.4 mapping).
    pub fn mix(&self) -> CallMix {
        let screen = match self.screen_sharing {
            YesNo::Yes => self.calls,
            YesNo::No => 0,
        };
        // Invariant: validated by `BenchmarkTable::parse` before a row is built.
        CallMix::new(
            self.calls,
            self.users_per_call,
            self.unmuted_per_call,
            screen,
            0,
        )
        .expect("row mix validated at parse time")
    }

    /// Busy vCPUs: published CPU% times the instance's vCPU count (calls-loadtest.md §2.5).
    pub fn busy_vcpus(&self) -> f64 {
        self.cpu.value().0 / 100.0 * f64::from(self.instance.vcpus)
    }

    /// "100×8 U2 screen" style label.
    pub fn label(&self) -> String {
        let screen = match self.screen_sharing {
            YesNo::Yes => " +screen",
            YesNo::No => "",
        };
        format!(
            "{}×{} U{}{}",
            self.calls, self.users_per_call, self.unmuted_per_call, screen
        )
    }
}

/// A published table, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkTable {
    pub path: String,
    pub meta: TableMeta,
    pub sources: BTreeMap<String, Source>,
    pub rows: Vec<BenchmarkRow>,
}

impl BenchmarkTable {
    /// Parses and validates a table; `path` names the file in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self, TableError> {
        let raw: RawTable = parse_toml(path, text)?;
        let err =
            |span: Range<usize>, message: String| TableError::at(path, text, Some(span), message);
        let family = raw.table.family;
        let mut rows = Vec::with_capacity(raw.row.len());
        for (index, spanned) in raw.row.into_iter().enumerate() {
            let span = spanned.span();
            let r = spanned.into_inner();
            let expected = u32::try_from(index + 1).unwrap_or(u32::MAX);
            if *r.row.get_ref() != expected {
                return Err(err(
                    r.row.span(),
                    format!(
                        "row number {} out of order: expected {expected}",
                        r.row.get_ref()
                    ),
                ));
            }
            let screen = if r.screen_sharing == YesNo::Yes {
                r.calls
            } else {
                0
            };
            CallMix::new(r.calls, r.users_per_call, r.unmuted_per_call, screen, 0)
                .map_err(|e| err(span.clone(), e.to_string()))?;
            let instance = catalog::lookup(r.instance.get_ref()).ok_or_else(|| {
                err(
                    r.instance.span(),
                    format!("unknown instance type {:?}", r.instance.get_ref()),
                )
            })?;
            if instance.family != family {
                return Err(err(
                    r.instance.span(),
                    format!(
                        "instance {} is not in this table's family {family}",
                        instance.name
                    ),
                ));
            }
            if !raw.sources.contains_key(r.source.get_ref()) {
                let known: Vec<&str> = raw.sources.keys().map(String::as_str).collect();
                return Err(err(
                    r.source.span(),
                    format!(
                        "unknown source {:?}: expected one of {}",
                        r.source.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            if r.cpu.value().0 > 100.0 {
                return Err(err(span, format!("cpu {} is above 100%", r.cpu.text())));
            }
            rows.push(BenchmarkRow {
                row: expected,
                calls: r.calls,
                users_per_call: r.users_per_call,
                unmuted_per_call: r.unmuted_per_call,
                screen_sharing: r.screen_sharing,
                cpu: r.cpu,
                memory: r.memory,
                bandwidth_in: r.bandwidth_in,
                bandwidth_out: r.bandwidth_out,
                instance,
                source: r.source.into_inner(),
            });
        }
        if rows.is_empty() {
            return Err(TableError::at(
                path,
                text,
                None,
                "table has no rows".to_owned(),
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            meta: raw.table,
            sources: raw.sources,
            rows,
        })
    }

    /// Reads and parses a table file.
    pub fn load(path: &Path) -> Result<Self, TableError> {
        let text = read(path)?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// The table shipped with callsbench for a family (embedded at build time).
    pub fn published(family: Family) -> Result<Self, TableError> {
        let (path, text) = match family {
            Family::C6i => (C6I_PATH, C6I_TEXT),
            Family::C7i => (C7I_PATH, C7I_TEXT),
        };
        Self::parse(path, text)
    }
}

const C6I_PATH: &str = "scenarios/tables/c6i.toml";
const C6I_TEXT: &str = include_str!("../../scenarios/tables/c6i.toml");
const C7I_PATH: &str = "scenarios/tables/c7i.toml";
const C7I_TEXT: &str = include_str!("../../scenarios/tables/c7i.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 11), (2, 6));
    }

    #[test]
    fn both_published_tables_parse() {
        assert_eq!(
            BenchmarkTable::published(Family::C6i).unwrap().rows.len(),
            10
        );
        assert_eq!(
            BenchmarkTable::published(Family::C7i).unwrap().rows.len(),
            19
        );
    }
}
