//! Helpers shared by the runtime tests: scratch directories, bounded waits
//! on processes and pipes, and cleanup of what a test started.

#![allow(dead_code)] // each test file uses a different subset

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Tests in one file run on several threads; a runtime reaps every child of
/// the process, so tests that start processes take turns.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("braid-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills a process group (and reaps its leader) when dropped.
pub struct KillOnDrop(pub Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-self.0.as_raw()), Signal::SIGKILL);
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

/// Waits (at most `timeout`) for a child to exit, without polling: a pidfd
/// becomes readable when the process exits.
pub fn wait_exit(pid: Pid, timeout: Duration) -> WaitStatus {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) } as RawFd;
    assert!(raw >= 0, "pidfd_open: {}", Errno::last());
    // SAFETY: the syscall returned a fresh fd.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut fds = [PollFd::new(pidfd_borrow(&pidfd), PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::try_from(timeout).unwrap()).expect("poll pidfd");
    assert_eq!(n, 1, "process {pid} did not exit within {timeout:?}");
    waitpid(pid, Some(WaitPidFlag::WNOHANG)).expect("waitpid")
}

fn pidfd_borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}

/// Reads `fd` until end of file; fails the test if that takes longer than
/// `timeout`.
pub fn read_to_eof(fd: &OwnedFd, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no end of file within {timeout:?}; got {out:?}"
        );
        let mut fds = [PollFd::new(pidfd_borrow(fd), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::try_from(left).unwrap()).expect("poll") == 0 {
            continue;
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Reads what `fd` holds now, without waiting for more.
pub fn read_available(fd: &OwnedFd) -> Vec<u8> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).expect("set O_NONBLOCK");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) | Err(Errno::EAGAIN) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// A pipe for capturing a child's output: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn read_file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
