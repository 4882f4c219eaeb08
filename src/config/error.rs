//! Config errors that point at the file, line and key a user has to fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column; 0 when the problem has no single place (e.g. a missing file).
    pub line: usize,
    pub column: usize,
    /// The dotted key the problem is about, e.g. `connections[0].source`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one config file; `check` prints them all.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Turns byte offsets in one source text into file:line:column errors.
pub struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Locator { file, text }
    }

    /// An error at `span` (byte offsets into the text) about `key`.
    pub fn error(
        &self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = span.map_or((0, 0), |s| self.line_column(s.start));
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    /// An error for a TOML syntax or shape error; the key is read from the text
    /// at the error's position because toml does not expose it separately.
    pub fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        let span = error.span();
        let key = span
            .as_ref()
            .map(|s| self.key_before(s.start))
            .unwrap_or_default();
        self.error(span, key, error.message().trim().to_string())
    }

    /// Where `key = …` is written (outside comments), for values that carry
    /// no position of their own.
    pub fn key_span(&self, key: &str) -> Option<Range<usize>> {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            let code = line.split('#').next().unwrap_or_default();
            let found = code.match_indices(key).find(|&(at, _)| {
                let before = code[..at].chars().next_back();
                let starts_word = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
                let after = code[at + key.len()..].trim_start();
                starts_word && after.starts_with('=')
            });
            if let Some((at, _)) = found {
                return Some(offset + at..offset + at + key.len());
            }
            offset += line.len();
        }
        None
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    /// The `key` in `key = value` nearest before `offset` on its line, or the
    /// table header (`[server]`, `[[sources]]`) when the error is about a table.
    fn key_before(&self, offset: usize) -> String {
        let start = self.text[..offset.min(self.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = &self.text[start..end];
        let upto = &line[..(offset - start).min(line.len())];
        if let Some(eq) = upto.rfind('=') {
            let name = upto[..eq]
                .trim_end()
                .rsplit(|c: char| c == '{' || c == ',' || c.is_whitespace())
                .next()
                .unwrap_or("");
            return name.trim_matches('"').to_string();
        }
        let line = line.trim();
        if line.starts_with('[') {
            return line.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        // The error points at a key itself (e.g. an unknown field).
        line.split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"')
            .to_string()
    }
}
