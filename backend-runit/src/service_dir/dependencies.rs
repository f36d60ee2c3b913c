//! The `dependencies` file braid adds to runit service directories.
//!
//! One service name per line: another entry of the same runsvdir
//! directory. Leading and trailing white space is ignored, and so are
//! blank lines and lines starting with `#`. Each name is a hard dependency:
//! the service starts only once it is up, and stops when it goes down.

use std::fmt;
use std::path::{Path, PathBuf};

/// A line that is not a service name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: not a service name: {}",
            self.file.display(),
            self.line,
            self.text
        )
    }
}

impl std::error::Error for ParseError {}

/// The names listed in `text`, read from `file`, in order, each once.
pub fn parse(text: &str, file: &Path) -> Result<Vec<String>, ParseError> {
    let mut names: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        // runsvdir only supervises entries not starting with `.`.
        if name.contains(['/', '\0']) || name.starts_with('.') {
            return Err(ParseError {
                file: file.to_path_buf(),
                line: i + 1,
                text: name.to_string(),
            });
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_comments_and_errors() {
        let f = Path::new("svc/x/dependencies");
        assert_eq!(
            parse("a\n# c\n\n  b\t\na\n", f).unwrap(),
            ["a".to_string(), "b".to_string()]
        );
        assert_eq!(parse("", f).unwrap(), Vec::<String>::new());
        let err = parse("a\n.hidden\n", f).unwrap_err();
        assert_eq!(
            err.to_string(),
            "svc/x/dependencies:2: not a service name: .hidden"
        );
    }
}
