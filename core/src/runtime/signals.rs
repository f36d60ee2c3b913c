//! Signals as poll events, through a self-pipe.
//!
//! A signalfd only sees signals that every thread blocks; a process with
//! threads braid does not control (a test harness, a library) would have the
//! signal delivered elsewhere and lost. So braid installs a real handler,
//! which any thread may run: it records the signal in a per-receiver pending
//! set and writes a byte to that receiver's pipe to wake its poll.
//!
//! Pipes live in a fixed table of slots that are created once and never
//! closed, so the handler can never write to an fd that was closed and
//! reused. Each `SignalPipe` claims a slot while it exists.

use std::io;
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

const SLOTS: usize = 8;

struct Slot {
    /// Write end of the slot's pipe, or -1 until the pipe is created.
    write_fd: AtomicI32,
    /// Whether a `SignalPipe` currently owns the slot.
    active: AtomicBool,
    /// Bit `n` set: signal `n` arrived since the owner last looked.
    pending: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot {
    write_fd: AtomicI32::new(-1),
    active: AtomicBool::new(false),
    pending: AtomicU64::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY_SLOT; SLOTS];

/// Read ends of the slots' pipes, created on first use and kept forever.
static READ_ENDS: Mutex<[Option<RawFd>; SLOTS]> = Mutex::new([None; SLOTS]);

extern "C" fn on_signal(signo: libc::c_int) {
    let saved = Errno::last_raw();
    for slot in &TABLE {
        if !slot.active.load(Ordering::Acquire) {
            continue;
        }
        slot.pending
            .fetch_or(1u64 << (signo as u32 % 64), Ordering::AcqRel);
        let fd = slot.write_fd.load(Ordering::Acquire);
        if fd >= 0 {
            let byte = signo as u8;
            // SAFETY: write(2) is async-signal-safe; a full pipe just means
            // a wake-up is already pending.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    }
    Errno::set_raw(saved);
}

/// Makes `signal` be delivered to every `SignalPipe` instead of having its
/// default action, and unblocks it in the calling thread: a blocked mask is
/// inherited across exec (a parent that waits on a signalfd, such as dinit's
/// test runner, blocks SIGCHLD), and a blocked signal never reaches the
/// handler. Idempotent.
pub fn catch(signal: Signal) -> io::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP,
        SigSet::empty(),
    );
    // SAFETY: the handler only touches atomics and calls write(2).
    unsafe { sigaction(signal, &action) }?;
    SigSet::from(signal).thread_unblock()?;
    Ok(())
}

/// Receives the caught signals of this process; register `fd()` for
/// readability with the poll, and call `drain` when it is readable.
#[derive(Debug)]
pub struct SignalPipe {
    slot: usize,
    read_fd: RawFd,
}

impl SignalPipe {
    pub fn new() -> io::Result<SignalPipe> {
        let mut read_ends = READ_ENDS.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (0..SLOTS)
            .find(|&i| !TABLE[i].active.load(Ordering::Acquire))
            .ok_or_else(|| io::Error::other("too many runtimes in one process"))?;
        let read_fd = match read_ends[slot] {
            Some(fd) => fd,
            None => {
                let flags = OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
                let (r, w) = nix::unistd::pipe2(flags)?;
                let (r, w) = (r.into_raw_fd(), w.into_raw_fd());
                TABLE[slot].write_fd.store(w, Ordering::Release);
                read_ends[slot] = Some(r);
                r
            }
        };
        let pipe = SignalPipe { slot, read_fd };
        pipe.drain_bytes();
        TABLE[slot].pending.store(0, Ordering::Release);
        TABLE[slot].active.store(true, Ordering::Release);
        Ok(pipe)
    }

    pub fn fd(&self) -> RawFd {
        self.read_fd
    }

    /// The signals that arrived since the last call, lowest number first.
    pub fn drain(&self) -> Vec<Signal> {
        self.drain_bytes();
        let pending = TABLE[self.slot].pending.swap(0, Ordering::AcqRel);
        (1..64)
            .filter(|n| pending & (1u64 << n) != 0)
            .filter_map(|n| Signal::try_from(n).ok())
            .collect()
    }

    fn drain_bytes(&self) {
        let mut buf = [0u8; 256];
        loop {
            match nix::unistd::read(self.read_fd, &mut buf) {
                Ok(0) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        TABLE[self.slot].active.store(false, Ordering::Release);
    }
}
