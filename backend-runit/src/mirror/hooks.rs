//! `control/X` hooks: executables in a service's `control/` directory that
//! customise what a control letter does. runsv runs one as `control/X` in
//! the service directory, with its stdout on the log pipe when there is a
//! logger, and waits for it; exit 0 means "handled", and the signal the
//! letter stands for is then not sent.
//!
//! braid supervises every service in one loop, which a hook must not
//! block. So a hook is launched (with the runtime's [`Launch`], as the
//! services are) and watched through a pidfd registered with the runtime:
//! the loop goes on, and the host resumes the command when the pidfd says
//! the hook has exited. The pidfd's handler collects the exit status
//! itself (`waitid` on the pidfd, so never another process's). The
//! runtime reaps every child too, and may get there first when the hook
//! exits while the runtime is about to reap another child; the status is
//! then lost and the hook counts as not having handled the command, so the
//! signal is sent as it would be without a hook.

use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use braid_core::engine::ExitStatus;
use braid_core::runtime::launch::{Launch, Stdout};
use braid_core::runtime::Runtime;
use nix::errno::Errno;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};

use crate::errstr::{errstr, io_errstr};
use crate::service_dir::hook_path;

/// Whether runsv would run `control/<letter>`: it exists and has the
/// owner-execute bit. Other problems than its absence are warned about
/// as runsv does (and the hook is not run).
pub fn exists(dir: &Path, label: &str, letter: char) -> bool {
    match hook_path(dir, letter).metadata() {
        Ok(meta) => meta.permissions().mode() & 0o100 != 0,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            eprintln!(
                "runsv {label}: warning: unable to stat control/{letter}: {}",
                io_errstr(&e)
            );
            false
        }
    }
}

/// A hook that is running.
#[derive(Debug)]
pub struct Running {
    pid: i32,
    /// Readable once the hook has exited.
    pub pidfd: OwnedFd,
}

/// How a hook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Still running (the pidfd's readiness was not its exit).
    Not,
    /// It handled the command: runsv's test is "exit code 0", read as the
    /// high byte of the wait status, so a hook killed by a signal counts.
    Handled,
    /// It exited with another code, or its status was lost.
    NotHandled,
}

/// Launches `control/<letter>` of the service directory `dir` (which must
/// exist, see [`exists`]) with runsv's environment, `stdout` as its stdout
/// (braid's when `None`). `None` when it could not be run: the message
/// runsv's child prints is printed, and the hook counts as not handling
/// the command (runsv's child exits 111).
pub fn launch(
    dir: &Path,
    label: &str,
    letter: char,
    stdout: Option<std::os::fd::BorrowedFd<'_>>,
) -> Option<Running> {
    let mut launch = Launch::new([format!("control/{letter}")]);
    launch.envs(std::env::vars_os()).working_dir(dir);
    match stdout {
        Some(fd) => launch.stdout(Stdout::Fd(fd)).stdout_only(true),
        None => launch.stdout(Stdout::Inherit),
    };
    let failed = |errno: Errno| {
        // runsv's child prints this, with a literal `?`.
        eprintln!(
            "runsv {label}: fatal: unable to run control/?: {}",
            errstr(errno as i32)
        );
        None
    };
    let pid = match launch.spawn() {
        Ok(pid) => pid,
        Err(failure) => return failed(failure.errno),
    };
    match pidfd_open(pid.as_raw()) {
        Ok(pidfd) => Some(Running {
            pid: pid.as_raw(),
            pidfd,
        }),
        Err(errno) => {
            // Not watchable: let it run, and count it as not handling.
            eprintln!(
                "runsv {label}: warning: unable to wait for child control/{letter}: {}",
                errstr(errno as i32)
            );
            None
        }
    }
}

impl Running {
    /// Collects the hook's exit, if it has exited: from its pidfd, or from
    /// the runtime when the loop reaped it first.
    pub fn ended(&self, rt: &mut Runtime) -> Ended {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG;
        match waitid(Id::PIDFd(self.pidfd.as_fd()), flags) {
            Ok(WaitStatus::Exited(_, 0) | WaitStatus::Signaled(..)) => Ended::Handled,
            Ok(WaitStatus::Exited(..)) => Ended::NotHandled,
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => Ended::Not,
            Err(Errno::ECHILD) => match rt.reaped_exit(self.pid) {
                Some(ExitStatus::Exited(0) | ExitStatus::Signaled(_)) => Ended::Handled,
                Some(ExitStatus::Exited(_)) | None => Ended::NotHandled,
            },
            Ok(_) | Err(_) => Ended::NotHandled,
        }
    }
}

/// A pidfd for `pid` (Linux 5.3; `waitid` on it, 5.4).
fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // no memory is passed.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this fd (close-on-exec by default)
    // and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
