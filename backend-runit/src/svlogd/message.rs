//! svlogd's diagnostics on stderr: `svlogd: info|warning|pausing|fatal: ...`.

use crate::errstr::errstr;
use nix::errno::Errno;
use std::time::Duration;

/// How long svlogd sleeps after a `pausing:` message before retrying.
const PAUSE: Duration = Duration::from_secs(3);

fn emit(prefix: &[u8], parts: &[&[u8]], errno: Option<Errno>) {
    let mut line = prefix.to_vec();
    for p in parts {
        line.extend_from_slice(p);
    }
    if let Some(e) = errno {
        line.extend_from_slice(errstr(e as i32).as_bytes());
    }
    line.push(b'\n');
    let _ = nix::unistd::write(std::io::stderr(), &line);
}

/// `svlogd: info: PARTS`.
pub(super) fn info(parts: &[&[u8]]) {
    emit(b"svlogd: info: ", parts, None);
}

/// `svlogd: fatal: PARTS` without exiting.
pub(super) fn fatal_line(parts: &[&[u8]]) {
    emit(b"svlogd: fatal: ", parts, None);
}

/// `svlogd: warning: PARTS` (no errno text).
pub(super) fn warn(parts: &[&[u8]]) {
    emit(b"svlogd: warning: ", parts, None);
}

/// `svlogd: warning: WHAT: ERRTEXT`.
pub(super) fn warn_errno(what: &[u8], e: Errno) {
    emit(b"svlogd: warning: ", &[what, b": "], Some(e));
}

/// `svlogd: warning: WHAT: NAME: ERRTEXT`.
pub(super) fn warn_sys(what: &[u8], name: &[u8], e: Errno) {
    emit(b"svlogd: warning: ", &[what, b": ", name, b": "], Some(e));
}

/// `svlogd: pausing: WHAT: NAME: ERRTEXT`, then a 3 s sleep: svlogd's way
/// of riding out persistent I/O trouble before retrying.
pub(super) fn pause(what: &[u8], name: &[u8], e: Errno) {
    if name.is_empty() {
        emit(b"svlogd: pausing: ", &[what, b": "], Some(e));
    } else {
        emit(b"svlogd: pausing: ", &[what, b": ", name, b": "], Some(e));
    }
    std::thread::sleep(PAUSE);
}

/// Retries `op` until it succeeds, pausing with a message after each
/// failure.
pub(super) fn retry<T>(what: &[u8], name: &[u8], mut op: impl FnMut() -> Result<T, Errno>) -> T {
    loop {
        match op() {
            Ok(v) => return v,
            Err(e) => pause(what, name, e),
        }
    }
}

/// The errno of an I/O error from the standard library.
pub(super) fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}
