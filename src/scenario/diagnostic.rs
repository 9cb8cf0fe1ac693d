//! Load errors: every problem of a file as `file:line:col: message`, a source snippet and a hint.

use std::fmt;

use super::plan::Pos;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path as given.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid scenario; all problems are listed.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// All problems found in one scenario file, in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    /// File name as shown in messages.
    pub file: String,
    /// The problems; never empty when returned in [`LoadError::Invalid`].
    pub items: Vec<Diagnostic>,
}

/// One problem at one place.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// File name as shown in messages.
    pub file: String,
    /// 1-based line and column (characters) of the offending text.
    pub pos: Pos,
    /// What is wrong, one line.
    pub message: String,
    /// How to fix it, if there is something useful to say.
    pub hint: Option<String>,
    /// The source line at `pos` (without its newline), for the snippet.
    pub source_line: String,
}

impl Diagnostic {
    /// The first line of the rendering: `file:line:col: message`.
    pub fn headline(&self) -> String {
        format!(
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.col, self.message
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        if self.pos.line > 0 {
            writeln!(f, "{:>5} | {}", self.pos.line, self.source_line)?;
            // Keep tabs so the caret lines up under tab-indented text.
            let pad: String = self
                .source_line
                .chars()
                .take(self.pos.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{:>5} | {pad}^", "")?;
        }
        if let Some(h) = &self.hint {
            writeln!(f, "   = hint: {h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.items.len();
        write!(
            f,
            "\n{}: {n} error{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )
    }
}

/// A problem before it is attached to a file (collected by deserialization and lowering).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Issue {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

impl Issue {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Issue {
            pos,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Turns collected issues into [`Diagnostics`], sorted by position (stable, so two problems at
/// one place keep the order they were found in).
pub(crate) fn finish(file: &str, text: &str, mut issues: Vec<Issue>) -> Diagnostics {
    issues.sort_by_key(|i| (i.pos.line, i.pos.col));
    issues.dedup();
    let lines: Vec<&str> = text.lines().collect();
    let items = issues
        .into_iter()
        .map(|i| Diagnostic {
            file: file.to_owned(),
            pos: i.pos,
            source_line: lines
                .get(i.pos.line.saturating_sub(1) as usize)
                .map(|l| l.trim_end_matches('\r').to_owned())
                .unwrap_or_default(),
            message: i.message,
            hint: i.hint,
        })
        .collect();
    Diagnostics {
        file: file.to_owned(),
        items,
    }
}

/// The closest candidate to a misspelt word, if it is close enough to be a likely typo:
/// a small edit distance (transpositions count once) or a long common prefix.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let budget = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            (
                strsim::osa_distance(word, c),
                strsim::jaro_winkler(word, c),
                c,
            )
        })
        .filter(|(d, jw, _)| *d <= budget || *jw >= 0.85)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| c)
}

/// `" (did you mean 'x'?)"` or nothing.
pub(crate) fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}
