//! One service directory under supervision: what one runsv process is in
//! runit, here a few records inside braid's single process.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use braid_core::runtime::SourceToken;
use braid_core::spec::ServiceSpec;

use crate::mirror::Mirror;
use crate::supervise::Which;

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
    pub restore: Option<ServiceSpec>,
    /// `control/d` / `control/x` to run once the stop's signals are sent.
    pub post_hooks: Vec<char>,
    /// Its entry is gone (or runsvdir is shutting down): when it exits it
    /// does not come back.
    pub removed: bool,
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
}
