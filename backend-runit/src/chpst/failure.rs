//! How chpst ends when it cannot exec: the exit code and the exact bytes it
//! writes to stderr.

use crate::errstr::errstr;
use nix::errno::Errno;

const FATAL: &[u8] = b"chpst: fatal: ";

/// A reason to stop before exec'ing the program.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) code: i32,
    pub(super) text: Vec<u8>,
}

impl Failure {
    /// `usage: PROG` + `usage` + blank line, exit 100; `before` (an option
    /// problem line or the version line) comes first.
    pub(super) fn usage(before: Vec<u8>, progname: &[u8], usage: &[u8]) -> Self {
        let mut text = before;
        text.extend_from_slice(b"usage: ");
        text.extend_from_slice(progname);
        text.extend_from_slice(usage);
        text.extend_from_slice(b"\n\n");
        Failure { code: 100, text }
    }

    /// `chpst: fatal: PARTS...: ERRTEXT`, exit 111.
    pub(super) fn sys(parts: &[&[u8]], e: Errno) -> Self {
        let mut text = FATAL.to_vec();
        for p in parts {
            text.extend_from_slice(p);
            text.extend_from_slice(b": ");
        }
        text.extend_from_slice(errstr(e as i32).as_bytes());
        text.push(b'\n');
        Failure { code: 111, text }
    }

    /// `chpst: fatal: WHAT: DETAIL`, exit 111 (no errno text).
    pub(super) fn plain(what: &[u8], detail: &[u8]) -> Self {
        let mut text = FATAL.to_vec();
        text.extend_from_slice(what);
        text.extend_from_slice(b": ");
        text.extend_from_slice(detail);
        text.push(b'\n');
        Failure { code: 111, text }
    }

    /// Exit quietly with `code` (setlock -x).
    pub(super) fn silent(code: i32) -> Self {
        Failure {
            code,
            text: Vec::new(),
        }
    }
}

/// Writes a `chpst: warning: ...` line at once (stderr may be closed; then
/// the line is lost, as in runit).
pub(super) fn warn(parts: &[&[u8]]) {
    let mut text = b"chpst: warning: ".to_vec();
    for p in parts {
        text.extend_from_slice(p);
    }
    text.push(b'\n');
    let _ = nix::unistd::write(std::io::stderr(), &text);
}
