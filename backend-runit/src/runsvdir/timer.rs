//! Deadlines of the runit face (relaunch a service that exited before it
//! was ready, a second later,
//! bring back a supervisor after `sv exit`, the proctitle's dot every 15
//! minutes) on one timerfd registered with the runtime, so that nothing
//! polls: the fd is armed for the earliest deadline only.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use braid_core::engine::ServiceId;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// What to do when a deadline passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start again a process that exited before it was ready, if it is
    /// still wanted up.
    Relaunch(ServiceId),
    /// Scan the services directory again (a supervisor exited).
    Rescan,
    /// Write the proctitle log's periodic dot.
    Dot,
}

/// Pending deadlines and the timerfd that wakes the loop for the first.
#[derive(Debug)]
pub struct Timers {
    fd: TimerFd,
    pending: Vec<(Instant, Action)>,
}

impl Timers {
    pub fn new() -> nix::Result<Timers> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(Timers {
            fd,
            pending: Vec::new(),
        })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Runs `action` once `after` has passed (an action already pending
    /// keeps the earlier of the two deadlines).
    pub fn arm(&mut self, after: Duration, action: Action) {
        let at = Instant::now() + after;
        match self.pending.iter_mut().find(|(_, a)| *a == action) {
            Some(entry) => entry.0 = entry.0.min(at),
            None => self.pending.push((at, action)),
        }
        self.rearm();
    }

    /// The actions that are due, in deadline order; re-arms for the rest.
    pub fn take_due(&mut self) -> Vec<Action> {
        // Reading clears the expiration count; it may already be zero.
        let mut buf = [0u8; 8];
        let _ = nix::unistd::read(self.fd(), &mut buf);
        let now = Instant::now();
        self.pending.sort_by_key(|(at, _)| *at);
        let due = self.pending.iter().take_while(|(at, _)| *at <= now).count();
        let actions = self.pending.drain(..due).map(|(_, a)| a).collect();
        self.rearm();
        actions
    }

    fn rearm(&self) {
        let Some(first) = self.pending.iter().map(|(at, _)| *at).min() else {
            let _ = self.fd.unset();
            return;
        };
        // A zero value would disarm the timer: wait at least a nanosecond.
        let wait = first
            .saturating_duration_since(Instant::now())
            .max(Duration::from_nanos(1));
        let _ = self.fd.set(
            Expiration::OneShot(TimeSpec::from_duration(wait)),
            TimerSetTimeFlags::empty(),
        );
    }
}
