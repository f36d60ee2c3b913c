//! The engine: every service's state and the rules that move it, with no
//! I/O. See `doc/DESIGN.md` for the rules.

mod io;

pub use io::*;

use crate::spec::{ServiceSpec, SpecError};

/// A command from a user or a backend, aimed at one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Mark the service active and start it (and what it needs).
    Start { pin: bool },
    /// Start it only because some active dependent wants it.
    Wake { pin: bool },
    /// Clear the active mark and stop it, its hard dependents too.
    /// `gentle`: refuse if a started hard dependent would have to stop.
    Stop { pin: bool, gentle: bool },
    /// Clear the active mark; stop it if nothing else needs it.
    Release { pin: bool },
    /// Stop and start again, with hard dependents.
    Restart { gentle: bool },
    /// Remove start and stop pins.
    Unpin,
    /// Start the process once: do not restart it when it exits.
    Once,
    /// Stop (SIGSTOP) / continue (SIGCONT) the process.
    Pause,
    Continue,
    /// Send any signal to the main process.
    Signal(nix::sys::signal::Signal),
    /// Set or clear a triggered service's trigger.
    Trigger(bool),
}

/// How a command went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Done or under way.
    Accepted,
    /// The service is already in the wanted state.
    AlreadyThere,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    PinnedStopped,
    PinnedStarted,
    ShuttingDown,
    /// Refused because these started hard dependents would have to stop.
    HasDependents(Vec<ServiceId>),
    /// `wake` found no active dependent; `restart` of a service that is
    /// not started; `trigger` on a service that is not triggered.
    NotApplicable,
    /// The service has no running process to signal.
    NoProcess,
}

/// Why a spec could not be loaded, reloaded, or a dependency changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    Invalid(SpecError),
    /// Adding it would close a dependency cycle: the services on it, in
    /// order, ending with the first again.
    Cycle(Vec<String>),
    /// The change is not allowed in the service's current state.
    NotNow(String),
}
