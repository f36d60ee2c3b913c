//! `-l`/`-L` and `setlock`: take an flock that the program inherits.

use super::failure::Failure;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, Flock, FlockArg};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;

/// What a failure to open or lock does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnFailure {
    /// Report it and exit 111.
    Fatal,
    /// Exit 0 without a word (`setlock -x`).
    ExitZero,
}

/// Opens `file` for appending (created 0600) and locks it exclusively,
/// waiting or not. The descriptor stays open across exec so the program
/// holds the lock.
pub(super) fn take(file: &[u8], wait: bool, on_failure: OnFailure) -> Result<(), Failure> {
    let fail = |what: &[u8], e: nix::errno::Errno| match on_failure {
        OnFailure::Fatal => Failure::sys(&[what, file], e),
        OnFailure::ExitZero => Failure::silent(0),
    };
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(std::ffi::OsStr::from_bytes(file));
    let f = opened.map_err(|e| {
        fail(
            b"unable to open lock",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    let how = if wait {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockExclusiveNonblock
    };
    let locked = Flock::lock(f, how).map_err(|(_, e)| fail(b"unable to lock", e))?;
    // std opens close-on-exec; the program must inherit the lock.
    fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&*locked),
        FcntlArg::F_SETFD(FdFlag::empty()),
    )
    .map_err(|e| fail(b"unable to lock", e))?;
    // Keep descriptor and lock for the rest of this process (and its exec).
    std::mem::forget(locked);
    Ok(())
}
