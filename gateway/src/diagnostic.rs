//! Positions in user files, so that every build-time error can say `file:line:column`; and
//! [`FileError`], why a user file could not be used.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a source file, printed as `path:line:column` (both 1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The file, as the user named it (relative paths stay relative).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text`.
    pub fn at_offset(path: &Path, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// The `(line, column)` where an apollo-compiler diagnostic starts (`(1, 1)` when unknown).
pub(crate) fn line_column<T: apollo_compiler::diagnostic::ToCliReport>(
    d: &apollo_compiler::diagnostic::Diagnostic<'_, T>,
) -> (usize, usize) {
    d.line_column_range()
        .map_or((1, 1), |r| (r.start.line, r.start.column))
}

/// One problem found in a user file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub position: Position,
    /// What is wrong, and what to write instead where that is known.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position, self.message)
    }
}

/// Several diagnostics reported together, one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds a diagnostic at byte `offset` of `text`.
    pub fn push(&mut self, path: &Path, text: &str, offset: usize, message: impl Into<String>) {
        self.0.push(Diagnostic {
            position: Position::at_offset(path, text, offset),
            message: message.into(),
        });
    }

    /// `Ok(())` when nothing was reported.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Why a user file (the config, an operation document, a manifest to import) could not be
/// used: it could not be read, or it has problems.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has problems, each with its position.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Reads the text file at `path`.
pub(crate) fn read_text(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_line_and_column() {
        let text = "ab\ncdé\nf";
        let p = Position::at_offset(Path::new("x"), text, 7);
        assert_eq!((p.line, p.column), (2, 4));
        assert_eq!(
            Position::at_offset(Path::new("x"), text, 0).to_string(),
            "x:1:1"
        );
        assert_eq!(Position::at_offset(Path::new("x"), text, 9).line, 3);
    }
}
