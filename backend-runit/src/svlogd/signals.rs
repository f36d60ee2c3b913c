//! The signals svlogd acts on, received through a signalfd so they are
//! taken only while waiting for input, as runit unblocks them only there.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, BorrowedFd};

/// The signalfd for TERM, CHLD, ALRM and HUP (blocked for normal delivery).
#[derive(Debug)]
pub(super) struct Signals(SignalFd);

impl Signals {
    pub(super) fn new() -> nix::Result<Signals> {
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGTERM,
            Signal::SIGCHLD,
            Signal::SIGALRM,
            Signal::SIGHUP,
        ] {
            set.add(s);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals(fd))
    }

    /// The signals received since the last call, in arrival order.
    pub(super) fn take(&mut self) -> Vec<Signal> {
        let mut got = Vec::new();
        while let Ok(Some(info)) = self.0.read_signal() {
            if let Ok(s) = Signal::try_from(info.ssi_signo as i32) {
                got.push(s);
            }
        }
        got
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
