//! One service directory under supervision: what one runsv process is in
//! runit, here a few records inside braid's single process.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use braid_core::runtime::SourceToken;
use braid_core::spec::ServiceSpec;

use crate::mirror::control::After;
use crate::mirror::Mirror;
use crate::supervise::{Want, Which};

#[derive(Debug)]
pub struct Supervisor {
    /// runsv's name for the directory in messages (`runsv NAME: ...`):
    /// the entry name under runsvdir, the argument of `runsv`.
    pub label: String,
    /// The directory, as `/proc/self/fd/N` of `dir_fd`: like runsv, which
    /// lives inside its directory, braid follows it when it is renamed.
    pub dir: PathBuf,
    pub dir_fd: OwnedFd,
    pub service: Mirror,
    pub logger: Option<Mirror>,
    /// The control FIFOs' registrations, released before the mirrors close.
    pub tokens: Vec<SourceToken>,
    /// `control/t` replaced the TERM of a stop: the spec to put back (with
    /// its stop signal) once the service is down.
    pub restore: Option<Box<ServiceSpec>>,
    /// The `control/X` hook running now; runsv waits for a hook before it
    /// reads its next command, so the service's FIFO is not read meanwhile.
    pub hook: Option<RunningHook>,
    /// Work waiting for the hook (or for the effects of the last command):
    /// `control/d`/`control/x` after a stop, letters from SIGTERM or the
    /// entry's removal.
    pub jobs: VecDeque<Job>,
    /// A stop's signals are not sent yet (they are, at the end of the loop
    /// turn): `control/d`/`control/x`, queued first, must wait for them.
    pub await_effects: bool,
    /// Its entry is gone (or runsvdir is shutting down): when it exits it
    /// does not come back.
    pub removed: bool,
}

/// A hook being waited for.
#[derive(Debug)]
pub struct RunningHook {
    /// The registration of its pidfd.
    pub token: SourceToken,
    /// The command it decides, resumed once it has exited.
    pub then: Option<u8>,
}

/// Something a supervisor does in turn with the commands on its FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// A control letter.
    Letter(u8),
    /// Run `control/<letter>` (its result is ignored).
    Hook(char),
}

impl Supervisor {
    pub fn mirror_mut(&mut self, which: Which) -> Option<&mut Mirror> {
        match which {
            Which::Service => Some(&mut self.service),
            Which::Log => self.logger.as_mut(),
        }
    }

    pub fn mirrors_mut(&mut self) -> impl Iterator<Item = &mut Mirror> {
        std::iter::once(&mut self.service).chain(self.logger.as_mut())
    }

    /// Keeps what a command left to do.
    pub fn absorb(&mut self, after: After) {
        if let Some(hook) = after.hook {
            self.jobs.push_front(Job::Hook(hook));
            self.await_effects = true;
        }
        if after.restore.is_some() {
            self.restore = after.restore;
        }
    }

    /// Whether the deferred pass (after the turn's effects) has work here.
    pub fn needs_settle(&self) -> bool {
        self.await_effects || self.restore.is_some() || self.service.want == Want::Exit
    }
}
