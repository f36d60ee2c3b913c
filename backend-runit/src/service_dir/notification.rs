//! The `notification-fd` file braid reads in runit service directories
//! (s6's convention): one number N, the descriptor on which `./run` finds
//! the write end of a pipe and writes (a newline, by convention) once it
//! is ready to serve. Until then the service does not count as up.
//!
//! Only the first line matters; white space around the number is ignored.
//! Descriptors 0 to 2 are the service's standard streams, so N is at
//! least 3.

use std::fmt;
use std::path::{Path, PathBuf};

/// The file does not name a usable descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: PathBuf,
    pub text: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: not a descriptor number from 3 to {MAX_FD}: {}",
            self.file.display(),
            self.text
        )
    }
}

impl std::error::Error for ParseError {}

/// Highest descriptor number the engine accepts for readiness.
const MAX_FD: i32 = 1024;

/// The descriptor number in `text`, read from `file`.
pub fn parse(text: &str, file: &Path) -> Result<i32, ParseError> {
    let first = text.lines().next().unwrap_or("").trim();
    match first.parse::<i32>() {
        Ok(fd) if (3..=MAX_FD).contains(&fd) && first.bytes().all(|b| b.is_ascii_digit()) => Ok(fd),
        _ => Err(ParseError {
            file: file.to_path_buf(),
            text: first.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_errors() {
        let f = Path::new("svc/x/notification-fd");
        assert_eq!(parse("3\n", f), Ok(3));
        assert_eq!(parse(" 12 \nignored\n", f), Ok(12));
        // 1025 and up: found by tests/fuzz_service_dir.rs, accepted here
        // then refused by the engine (a Debug-worded fatal error).
        for bad in ["", "2", "-4", "+4", "four", "4 5", "1025", "2147483647"] {
            let err = parse(bad, f).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("svc/x/notification-fd: not a descriptor number from 3 to 1024: {bad}")
            );
        }
    }
}
