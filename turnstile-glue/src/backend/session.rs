//! What both backends do alike: checking `run`'s arguments, `ready`,
//! `stop`, writing the ready string to turnstiled's FIFO, and the fds a
//! manager must not pass on.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::conf::Values;
use crate::gate;

/// `run`'s arguments, checked.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub fifo: PathBuf,
    pub srvdir: PathBuf,
    pub confdir: PathBuf,
    pub home: PathBuf,
}

/// The gate socket's name in the srv dir.
pub const GATE_SOCKET: &str = "gate";

/// The conf key (braid's own) for the gate's deadline, in seconds.
pub const TIMEOUT_KEY: &str = "ready_timeout";

/// Checks `run FIFO SRVDIR CONFDIR` and `HOME`; `Err` is the exit status
/// (69: not a FIFO or not a directory, 70: bad HOME), already reported.
pub fn run_args(face: &str, args: &[OsString]) -> Result<RunArgs, i32> {
    let [fifo, srvdir, confdir] = args else {
        eprintln!("{face}: usage: {face} run FIFO SRVDIR CONFDIR");
        return Err(69);
    };
    let is_fifo = std::fs::metadata(fifo).is_ok_and(|m| m.file_type().is_fifo());
    let is_dir = std::fs::metadata(srvdir).is_ok_and(|m| m.is_dir());
    if !is_fifo || !is_dir {
        eprintln!(
            "{face}: invalid arguments: {} must be a FIFO and {} a directory",
            Path::new(fifo).display(),
            Path::new(srvdir).display()
        );
        return Err(69);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    if home.is_empty() || !Path::new(&home).is_dir() {
        eprintln!("{face}: invalid home directory {:?}", home);
        return Err(70);
    }
    Ok(RunArgs {
        fifo: fifo.into(),
        srvdir: srvdir.into(),
        confdir: confdir.into(),
        home: home.into(),
    })
}

/// The gate's deadline from a conf's `ready_timeout` (seconds; default
/// [`gate::DEFAULT_TIMEOUT`]).
pub fn gate_timeout(face: &str, values: &Values) -> Duration {
    let raw = values.get(TIMEOUT_KEY);
    if raw.is_empty() {
        return gate::DEFAULT_TIMEOUT;
    }
    match raw.to_str().and_then(|s| s.trim().parse::<f64>().ok()) {
        Some(secs) if secs > 0.0 && secs.is_finite() => Duration::from_secs_f64(secs),
        _ => {
            eprintln!(
                "{face}: ignoring {TIMEOUT_KEY}={:?} (not a positive number of seconds)",
                raw
            );
            gate::DEFAULT_TIMEOUT
        }
    }
}

/// Makes every inherited fd above stderr close-on-exec: turnstiled can
/// leak other logins' FIFO read ends into `run`, and services must not
/// inherit them.
pub fn seal_inherited_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
}

/// Writes the ready string, NUL-terminated, to turnstiled's FIFO and
/// closes it. turnstiled holds the read end open, so the open does not
/// block; without a reader it fails (ENXIO) instead of hanging.
pub fn write_ready_string(fifo: &Path, text: &OsStr) -> Result<(), String> {
    let fd = open(
        fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {}", fifo.display(), e.desc()))?;
    // SAFETY: `open` just returned this fd and nothing else owns it.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    let mut written = 0;
    while written < bytes.len() {
        match nix::unistd::write(fd.as_fd(), &bytes[written..]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(format!("writing to {}: {}", fifo.display(), e.desc())),
        }
    }
    Ok(())
}

/// `ready STRING`: waits on the gate whose socket path is STRING.
pub fn ready(face: &str, args: &[OsString]) -> i32 {
    let [arg] = args else {
        eprintln!("{face}: usage: {face} ready GATE-SOCKET");
        return 69;
    };
    let path = Path::new(arg);
    let is_socket =
        path.is_absolute() && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if !is_socket {
        eprintln!("{face}: invalid readiness gate {:?}", arg);
        return 69;
    }
    match gate::wait(path, gate::TURNSTILE_LOGIN_TIMEOUT) {
        Ok(()) => 0,
        Err(gate::WaitError::Failed { service, reason }) => {
            eprintln!("{face}: login not ready: service {service} failed: {reason}");
            1
        }
        Err(e) => {
            eprintln!("{face}: login not ready: {e}");
            1
        }
    }
}

/// `stop PID`: sends `signal` to the manager. A manager that is already
/// gone is not an error (turnstiled may ask twice).
pub fn stop(face: &str, args: &[OsString], signal: Signal) -> i32 {
    let pid = match args {
        [pid] => pid
            .to_str()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|p| *p > 1),
        _ => None,
    };
    let Some(pid) = pid else {
        eprintln!("{face}: stop: not a process id: {:?}", args);
        return 69;
    };
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => 0,
        Err(e) => {
            eprintln!("{face}: stop: cannot signal {pid}: {}", e.desc());
            1
        }
    }
}

/// `mkdir -p`, with the path in the error.
pub fn make_dirs(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))
}

/// The braid binary, to name in generated scripts and services.
pub fn braid_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the braid binary: {e}"))
}

/// How long what services left behind gets to exit after SIGTERM, and how
/// long the sweep may take in all (well inside turnstiled's 60 s).
pub const SWEEP_GRACE: Duration = Duration::from_secs(2);
pub const SWEEP_BOUND: Duration = Duration::from_secs(5);

/// Makes this process a child subreaper: whatever a service leaves behind
/// (a daemon it spawned, a child of a shell that was stopped) comes back
/// to the manager instead of escaping the session.
pub fn become_subreaper() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Once every service has stopped: ends what they left behind. Each
/// remaining child (orphans came back to the subreaper) gets SIGTERM and
/// SIGCONT, then SIGKILL once `grace` has passed, and is reaped; their own
/// children come back in turn. Gives up after `bound`.
pub fn sweep_children(grace: Duration, bound: Duration) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let start = std::time::Instant::now();
    let mut termed = std::collections::HashSet::new();
    loop {
        while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if st == WaitStatus::StillAlive {
                break;
            }
        }
        let children = own_children();
        let elapsed = start.elapsed();
        if children.is_empty() || elapsed >= bound {
            return;
        }
        for pid in &children {
            let pid = Pid::from_raw(*pid);
            if elapsed >= grace {
                let _ = kill(pid, Signal::SIGKILL);
            } else if termed.insert(pid) {
                let _ = kill(pid, Signal::SIGTERM);
                let _ = kill(pid, Signal::SIGCONT);
            }
        }
        let until = if elapsed < grace { grace } else { bound };
        wait_any_exit(&children, until.saturating_sub(elapsed));
    }
}

/// This process's children (from /proc: every thread's list).
fn own_children() -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids
}

/// Blocks until one of `pids` exits or `timeout` passes (through pidfds:
/// no polling).
fn wait_any_exit(pids: &[i32], timeout: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::{FromRawFd, OwnedFd};
    let fds: Vec<OwnedFd> = pids
        .iter()
        .filter_map(|pid| {
            // SAFETY: pidfd_open takes a pid and flags, returns a new fd.
            let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, *pid, 0) };
            // SAFETY: a non-negative return is a new fd we own.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
        })
        .collect();
    if fds.is_empty() {
        return;
    }
    let mut polls: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let _ = poll(
        &mut polls,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
    );
}
