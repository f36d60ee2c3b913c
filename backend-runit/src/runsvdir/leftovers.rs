//! What a killed braid left running in the same services directory.
//!
//! runit's runsv processes outlive runsvdir, so restarting runsvdir never
//! runs a service twice. braid supervises from one process: when it is
//! killed (or told SIGTERM, which leaves services running as runsvdir
//! does), the services stay, unsupervised. So that the next braid on the
//! directory does not start them a second time, braid keeps the list of
//! processes it launched in `DIR/.braid/processes` (runsvdir skips entries
//! whose names begin with a dot; a subdirectory, so that rewriting the
//! record does not wake the directory watch), and on startup stops what
//! that list names before the first scan (see
//! `braid_core::runtime::leftovers` for how, and why not adopt them).
//!
//! `DIR/.braid/lock` is held while braid runs: a second braid on the same
//! directory must not stop the first one's services. It finds the lock
//! taken, leaves the record alone, and meets runsv's own per-service locks.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use braid_core::runtime::leftovers::{self, Leftover};
use braid_core::runtime::Runtime;

/// Takes the directory's braid lock, stops what the previous braid left,
/// and has `rt` keep the record. Problems are warnings: supervision goes
/// on without the record.
pub fn take_over(rt: &mut Runtime, dir: &Path) {
    let warn = |msg: &dyn std::fmt::Display| {
        eprintln!("runsvdir {}: warning: {msg}", dir.display());
    };
    let state = dir.join(".braid");
    if let Err(e) = private_dir(&state) {
        warn(&format_args!(
            "cannot keep the process record in {}: {e}",
            state.display()
        ));
        return;
    }
    match lock(&state.join("lock")) {
        Ok(true) => {}
        Ok(false) => {
            warn(&"another braid supervises this directory; not stopping its services");
            return;
        }
        Err(e) => {
            warn(&format_args!("cannot lock {}: {e}", state.display()));
            return;
        }
    }
    let record = state.join("processes");
    match leftovers::reclaim(&record) {
        Ok(found) => {
            for l in &found {
                eprintln!("runsv {}: warning: {}", l.service, text(l));
            }
        }
        Err(e) => warn(&format_args!("cannot read {}: {e}", record.display())),
    }
    rt.record_processes(record);
}

fn text(l: &Leftover) -> String {
    format!(
        "stopped {} process{} (group {}) left running by a previous instance{}",
        l.processes,
        if l.processes == 1 { "" } else { "es" },
        l.pid,
        if l.killed { ", with SIGKILL" } else { "" }
    )
}

/// `dir`, created 0700 if missing; refused if it is not a directory of
/// this user's that only this user may write to (no symlink either).
fn private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(io::Error::other("not a private directory of this user"));
    }
    Ok(())
}

/// Takes an exclusive lock on `path`, held for the rest of the process's
/// life (its close-on-exec descriptor is deliberately never closed).
/// `Ok(false)`: another process holds it.
fn lock(path: &Path) -> io::Result<bool> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(nix::libc::EWOULDBLOCK) => Ok(false),
            _ => Err(e),
        };
    }
    let _held = file.into_raw_fd();
    Ok(true)
}
