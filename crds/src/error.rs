//! Configuration errors: each names the field path (`nhrp.servers[0].nbmaAddress`) and what to
//! write instead, so that a user can fix the file without reading the source.

use core::fmt;
use std::path::PathBuf;

/// One problem in a configuration: the field path and what is wrong, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The field path, such as `nhrp.servers[0].nbmaAddress`; `.` is the document itself.
    pub path: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl Issue {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a configuration (or a file it names) was refused. Never carries a secret: messages
/// about the NHRP password or a pre-shared key give lengths and file names, not contents.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse into the spec, or the spec breaks a rule: one issue per line.
    #[error("{}", Lines { file: file.as_ref(), issues })]
    Invalid {
        /// The configuration file, when it was loaded from one.
        file: Option<PathBuf>,
        /// Every problem found (parsing stops at the first; validation reports all).
        issues: Vec<Issue>,
    },
}

impl ConfigError {
    /// The problems found; empty for [`ConfigError::Read`].
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { issues, .. } => issues,
        }
    }

    pub(crate) fn in_file(self, path: PathBuf) -> Self {
        match self {
            ConfigError::Invalid { issues, .. } => ConfigError::Invalid {
                file: Some(path),
                issues,
            },
            read @ ConfigError::Read { .. } => read,
        }
    }
}

struct Lines<'a> {
    file: Option<&'a PathBuf>,
    issues: &'a [Issue],
}

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if let Some(file) = self.file {
                write!(f, "{}: ", file.display())?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// For "unknown field `holdtime`, expected one of networkId, holdTime, ..." and "unknown
/// variant `hubb`, expected `hub` or `spoke`" (serde's wording, with or without backticks
/// around the valid names, and perhaps a location after), the valid name closest to the one
/// written, if any is close.
pub(crate) fn did_you_mean(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (written, rest) = rest.split_once('`')?;
    let written = written.to_ascii_lowercase();
    let expected = rest.split_once("expected ")?.1;
    let expected = expected.split(" at line ").next().unwrap_or(expected);
    let expected = expected.strip_prefix("one of ").unwrap_or(expected);
    expected
        .split(", ")
        .flat_map(|s| s.split(" or "))
        .map(|s| s.trim().trim_matches('`'))
        .map(|valid| (distance(&written, &valid.to_ascii_lowercase()), valid))
        .filter(|&(d, valid)| d <= (valid.len() / 3).max(2))
        .min_by_key(|&(d, _)| d)
        .map(|(_, valid)| valid)
}

/// Levenshtein distance over bytes (the names compared are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(
            did_you_mean("unknown field `holdtime`, expected one of `networkId`, `holdTime`"),
            Some("holdTime")
        );
        assert_eq!(
            did_you_mean("unknown variant `hubb`, expected `hub` or `spoke`"),
            Some("hub")
        );
        assert_eq!(
            did_you_mean("unknown field `zzzzzzzz`, expected `role` or `tunnel`"),
            None
        );
        assert_eq!(
            did_you_mean(
                "unknown field `holdtime`, expected one of networkId, holdTime at line 9, column 3"
            ),
            Some("holdTime")
        );
        assert_eq!(
            did_you_mean("unknown variant `spok`, expected one of hub, spoke at line 1, column 7"),
            Some("spoke")
        );
        assert_eq!(did_you_mean("missing field `role`"), None);
    }
}
