//! Errors of loading a scenario, each tied to a file position (`path:line:col`).
//!
//! Byte spans from the TOML parser become 1-based line and column numbers here, columns counted in
//! characters so that they match what an editor shows.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A position in a scenario file, printed as `path:line:col` (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as the caller named it.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

impl Location {
    /// The position of byte `offset` of `source` (clamped to the end of the text).
    pub fn at(path: &Path, source: &str, offset: usize) -> Location {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        Location {
            path: path.to_owned(),
            line,
            col,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{}: cannot read the scenario: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, does not match the schema, or holds an illegal combination.
    #[error("{location}: {message}")]
    Invalid {
        /// Where the offending key or value is.
        location: Location,
        /// What was expected, lower case, without a trailing period.
        message: String,
    },
}

impl ScenarioError {
    /// The position of an [`ScenarioError::Invalid`] error.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ScenarioError::Read { .. } => None,
            ScenarioError::Invalid { location, .. } => Some(location),
        }
    }

    /// The message without the position.
    pub fn message(&self) -> String {
        match self {
            ScenarioError::Read { source, .. } => format!("cannot read the scenario: {source}"),
            ScenarioError::Invalid { message, .. } => message.clone(),
        }
    }
}

/// Builds [`ScenarioError::Invalid`] errors for one source text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at the start of `span`.
    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            location: Location::at(self.path, self.text, span.start),
            message: message.into(),
        }
    }

    /// An error at the key whose value occupies `value_span`, so that `unmuted = 9` points at
    /// `unmuted`. Values that are not the right-hand side of `key = value` (array elements, inline
    /// tables' members written without a key in front) keep the value's own position.
    pub fn error_at_key(
        &self,
        value_span: Range<usize>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let start = key_start(self.text, value_span.start).unwrap_or(value_span.start);
        self.error_at(start..value_span.end, message)
    }

    /// Converts a TOML parse or schema error, keeping its position and dropping the snippet that
    /// the TOML crate renders into its `Display`.
    pub fn toml_error(&self, err: &toml::de::Error) -> ScenarioError {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim().trim_end_matches('.').to_owned();
        self.error_at(span, message)
    }
}

/// Finds the start of the bare or quoted key written before `value_start` as `key = value`.
fn key_start(text: &str, value_start: usize) -> Option<usize> {
    let before = text.get(..value_start)?;
    let before = before.trim_end_matches([' ', '\t']);
    let before = before.strip_suffix('=')?;
    let key_end = before.trim_end_matches([' ', '\t']);
    let last = key_end.chars().last()?;
    if last == '"' || last == '\'' {
        let inner = &key_end[..key_end.len() - 1];
        return inner.rfind(last);
    }
    let start = key_end
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + 1);
    (start < key_end.len()).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let path = Path::new("f.toml");
        assert_eq!(Location::at(path, text, 0).to_string(), "f.toml:1:1");
        let x = text.find("\"x").unwrap();
        assert_eq!(Location::at(path, text, x).to_string(), "f.toml:2:6");
        assert_eq!(Location::at(path, text, 999).line, 3);
    }

    #[test]
    fn key_start_backs_up_over_the_equals_sign() {
        let text = "  unmuted = 9\nlist = [1, 2]\n\"quoted key\" = 3";
        assert_eq!(key_start(text, text.find('9').unwrap()), Some(2));
        assert_eq!(key_start(text, text.find('2').unwrap()), None);
        let three = text.find('3').unwrap();
        assert_eq!(key_start(text, three), text.find("\"quoted"));
    }
}
