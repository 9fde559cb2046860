//! Why a pack was refused: every problem with its file and line.

use std::fmt;

/// One problem in a pack, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// A pack that cannot be activated. Lists every problem found, not only the first.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub struct CompileError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule pack refused ({} problem{})",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl CompileError {
    pub fn one(file: impl Into<String>, line: Option<usize>, reason: impl Into<String>) -> Self {
        CompileError { problems: vec![Problem { file: file.into(), line, reason: reason.into() }] }
    }
}
