//! The engine's record of one service: its spec, its place in the graph and
//! where it is in its life.

use super::io::{ExitStatus, LaunchFailure, ServiceId, State, StopReason, Time, TimerKind};
use crate::spec::{DepKind, ServiceSpec};

/// One dependency link, stored on the dependent: "this starts after `to`".
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub to: ServiceId,
    pub kind: DepKind,
    /// Whether this dependent currently holds (requires) `to`.
    pub holding: bool,
}

/// Where an edge pointing at a service lives: `records[from].deps[edge]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backlink {
    pub from: ServiceId,
    pub edge: u32,
}

/// Which timers of a service are armed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timers(u8);

impl Timers {
    fn bit(kind: TimerKind) -> u8 {
        1 << (kind as u8)
    }
    pub fn set(&mut self, kind: TimerKind) {
        self.0 |= Self::bit(kind);
    }
    /// Clears the bit; returns whether it was set.
    pub fn clear(&mut self, kind: TimerKind) -> bool {
        let was = self.0 & Self::bit(kind) != 0;
        self.0 &= !Self::bit(kind);
        was
    }
    pub fn is_set(self, kind: TimerKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }
}

/// The processes of one service, as far as the engine knows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Processes {
    /// A launch of the main process was requested and not yet reported.
    pub main_launching: bool,
    pub main_pid: Option<i32>,
    pub stop_running: bool,
    pub finish_running: bool,
    pub check_running: bool,
    pub last_exit: Option<ExitStatus>,
    pub exec_failure: Option<LaunchFailure>,
    pub last_launch: Option<Time>,
    /// braid itself sent SIGINT to interrupt a start.
    pub interrupted_by_us: bool,
    /// The main pid names a daemon braid cannot see exit.
    pub unsupervised: bool,
}

impl Processes {
    /// Whether the main process (or its finish command) still exists.
    pub fn main_alive(&self) -> bool {
        self.main_launching || self.main_pid.is_some() || self.finish_running
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub spec: ServiceSpec,
    /// False for a placeholder: a name something refers to that was never
    /// loaded. Placeholders are never listed and cannot start.
    pub loaded: bool,
    pub state: State,
    pub target: State,
    /// Started explicitly (by a user), not only because something needs it.
    pub explicit: bool,
    /// Holds from the explicit mark and from dependents.
    pub required_by: u32,
    pub pin_started: bool,
    pub pin_stopped: bool,
    pub deps: Vec<Edge>,
    /// One entry per edge pointing at this service: the dependent and the
    /// index of the edge in its `deps`.
    pub dependents: Vec<Backlink>,
    pub stop_reason: StopReason,
    /// Starting, and still waiting for dependencies.
    pub waiting_deps: bool,
    /// How far through `deps` the waiting check has seen all satisfied.
    pub deps_scanned: usize,
    /// Stopping, and still waiting for hard dependents to stop.
    pub waiting_dependents: bool,
    /// How far through `dependents` the waiting check has seen all down.
    pub dependents_scanned: usize,
    /// Entries for this service in the engine's transition queue.
    pub transition_entries: u32,
    /// The next launch is an automatic restart (subject to the delay).
    pub auto_restart: bool,
    /// A dependency went down while this could not be interrupted: stop it
    /// as soon as it has started.
    pub force_stop_pending: bool,
    /// The current stop is a restart requested by a user.
    pub user_restart: bool,
    /// Start once: do not restart when the process exits.
    pub once: bool,
    pub paused: bool,
    pub trigger: bool,
    pub start_skipped: bool,
    pub procs: Processes,
    pub timers: Timers,
    pub restart_window_start: Time,
    pub restart_count: u32,
    /// Automatic restarts since load, for status displays.
    pub restarts_total: u32,
    /// When the state last changed.
    pub since: Time,
}

impl Record {
    pub fn new(spec: ServiceSpec, loaded: bool) -> Record {
        Record {
            spec,
            loaded,
            state: State::Stopped,
            target: State::Stopped,
            explicit: false,
            required_by: 0,
            pin_started: false,
            pin_stopped: false,
            deps: Vec::new(),
            dependents: Vec::new(),
            stop_reason: StopReason::Normal,
            waiting_deps: false,
            deps_scanned: 0,
            transition_entries: 0,
            waiting_dependents: false,
            dependents_scanned: 0,
            auto_restart: false,
            force_stop_pending: false,
            user_restart: false,
            once: false,
            paused: false,
            trigger: false,
            start_skipped: false,
            procs: Processes::default(),
            timers: Timers::default(),
            restart_window_start: Time::ZERO,
            restart_count: 0,
            restarts_total: 0,
            since: Time::ZERO,
        }
    }
}

/// A snapshot of one service for displays and mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub target: State,
    pub explicit: bool,
    pub pinned_started: bool,
    pub pinned_stopped: bool,
    pub stop_reason: StopReason,
    /// The running main process (scripted: the running start or stop command).
    pub pid: Option<i32>,
    pub last_exit: Option<ExitStatus>,
    pub exec_failure: Option<LaunchFailure>,
    pub paused: bool,
    /// Started with "once": will not be restarted.
    pub once: bool,
    pub finish_running: bool,
    pub start_skipped: bool,
    pub waiting_for_deps: bool,
    pub since: Time,
    pub restarts: u32,
}
