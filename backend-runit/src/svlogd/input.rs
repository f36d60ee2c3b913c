//! Standard input: runit's read buffer, and waiting for input, a signal or
//! the next timed rotation.

use super::signals::Signals;
use crate::supervise::Tai64N;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::AsFd;
use std::time::Duration;

/// runit wakes this long after a deadline, never before it.
const LATE: Duration = Duration::from_millis(20);

/// Reads are capped so a huge `-b` does not mean a huge allocation.
const MAX_READ: usize = 1 << 20;

/// What one read of stdin gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// This many bytes are now buffered.
    Data,
    /// End of input.
    Eof,
    /// Nothing yet (woken by a signal or a deadline): try again.
    Again,
    /// A read error (already reported).
    Failed(Errno),
}

/// Bytes read from stdin and not yet consumed.
#[derive(Debug)]
pub(super) struct Input {
    buf: Vec<u8>,
    pos: usize,
    capacity: usize,
    /// Whether the last read ended with a newline (runit's `linecomplete`).
    pub(super) line_complete: bool,
}

impl Input {
    /// Stdin becomes non-blocking, as in runit.
    pub(super) fn new(capacity: usize) -> Input {
        if let Ok(flags) = nix::fcntl::fcntl(0, nix::fcntl::FcntlArg::F_GETFL) {
            let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
            let _ = nix::fcntl::fcntl(0, nix::fcntl::FcntlArg::F_SETFL(flags));
        }
        Input {
            buf: Vec::new(),
            pos: 0,
            capacity,
            line_complete: true,
        }
    }

    /// Buffered bytes not yet taken.
    pub(super) fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next buffered byte.
    pub(super) fn take(&mut self) -> Option<u8> {
        let b = self.buf.get(self.pos).copied()?;
        self.pos += 1;
        Some(b)
    }

    /// Waits until stdin is readable, a signal is pending or `deadline`
    /// passed; returns whether signals are pending.
    pub(super) fn wait(&self, signals: &Signals, deadline: Tai64N) -> bool {
        let now = Tai64N::now();
        let timeout = if deadline < now {
            PollTimeout::ZERO
        } else {
            let ms = (deadline.since(now) + LATE).as_millis();
            PollTimeout::try_from(i32::try_from(ms).unwrap_or(i32::MAX)).unwrap_or(PollTimeout::MAX)
        };
        let stdin = std::io::stdin();
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) => fds[1]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN)),
            Err(_) => false,
        }
    }

    /// Reads up to `len` bytes (at most the buffer size, and never more
    /// than [`MAX_READ`] at once) into the empty buffer.
    pub(super) fn read(&mut self, len: usize) -> Read {
        let len = len.min(self.capacity).min(MAX_READ);
        self.buf.resize(len, 0);
        self.pos = 0;
        let got = nix::unistd::read(0, &mut self.buf);
        match got {
            Ok(0) => {
                self.buf.clear();
                Read::Eof
            }
            Ok(n) => {
                self.buf.truncate(n);
                self.line_complete = self.buf[n - 1] == b'\n';
                Read::Data
            }
            Err(e) => {
                self.buf.clear();
                if matches!(e, Errno::EAGAIN | Errno::EINTR) {
                    Read::Again
                } else {
                    Read::Failed(e)
                }
            }
        }
    }
}
