//! The engine: every service's state and the rules that move it, with no
//! I/O. See `doc/DESIGN.md` for the rules.

mod io;

pub use io::*;

use crate::spec::{DepKind, ServiceSpec, SpecError};

/// A command from a user or a backend, aimed at one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Mark the service active and start it (and what it needs).
    Start {
        pin: bool,
    },
    /// Start it only because some active dependent wants it.
    Wake {
        pin: bool,
    },
    /// Clear the active mark and stop it, its hard dependents too.
    /// `gentle`: refuse if a started hard dependent would have to stop.
    Stop {
        pin: bool,
        gentle: bool,
    },
    /// Clear the active mark; stop it if nothing else needs it.
    Release {
        pin: bool,
    },
    /// Stop and start again, with hard dependents.
    Restart {
        gentle: bool,
    },
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

mod graph;
mod process;
mod record;
pub mod sim;
mod transitions;

pub use record::Status;

use std::collections::{HashMap, VecDeque};

use record::Record;

/// Deferred work inside one engine step. Propagation goes through this
/// queue instead of recursion so that a chain of ten thousand services does
/// not grow the stack. Counts (holds) change at once; only the transitions
/// they cause are queued, so no order of the queue can see a count out of
/// step. The queue is last-in first-out, as dinit's is, so that services
/// queued together are handled in the order dinit handles them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Start(ServiceId),
    Stop(ServiceId),
    /// Stop whatever the target says (a hard dependency is going down).
    ForceStop(ServiceId),
    /// dinit's transition: a starting service whose dependencies are
    /// there goes up, a stopping one whose hard dependents are down goes
    /// down. Queued as dinit queues it (see `queue_transition`).
    Transition(ServiceId),
    /// A service that began starting in this step: are its dependencies
    /// there? A safety net run once both queues are empty, so that no
    /// service is left waiting where braid's notifications differ from
    /// dinit's; it does not take part in dinit's order.
    Recheck(ServiceId),
    /// A dependency this starting service was waiting for failed.
    DepFailed(ServiceId),
    /// Take or let go of dependencies to match whether it is wanted.
    SyncHolds(ServiceId),
}

impl Engine {
    /// Queues work: transitions (a service going down once its dependents
    /// are) apart from propagation, as dinit keeps its stop queue apart.
    fn push(&mut self, work: Work) {
        match work {
            Work::Transition(id) => self.queue_transition(id),
            Work::Recheck(_) => self.rechecks.push(work),
            _ => self.queue.push_back(work),
        }
    }

    /// Adds a service to the transition queue unless it is queued already,
    /// as dinit does, including dinit's reading of "queued": the entry at
    /// the bottom of a longer queue does not count, so a service queued
    /// first of several and queued again gets a second entry on top (and
    /// runs from both). This decides which of several dependents a
    /// dependency that came up starts first.
    fn queue_transition(&mut self, id: ServiceId) {
        let entries = self.rec(id).transition_entries;
        let only_at_bottom = entries == 1
            && self.transitions.len() > 1
            && self.transitions.front() == Some(&Work::Transition(id));
        if entries > 0 && !only_at_bottom {
            return;
        }
        self.rec_mut(id).transition_entries += 1;
        self.transitions.push_back(Work::Transition(id));
    }

    /// dinit's transition step for one service.
    fn execute_transition(&mut self, id: ServiceId) {
        match self.rec(id).state {
            State::Starting => self.check_deps(id),
            State::Stopping => self.check_dependents(id),
            State::Started | State::Stopped => {}
        }
    }
}

/// Every service's state and the rules that move it. Pure: feed it
/// commands and events, execute what `take_effects` returns.
#[derive(Debug, Default)]
pub struct Engine {
    /// Boxed: a record is large, and the vector grows by doubling, so
    /// keeping records out of line keeps that slack to a pointer each.
    #[allow(clippy::vec_box)] // deliberate: measured in benches/engine.rs
    records: Vec<Box<Record>>,
    by_name: HashMap<String, ServiceId>,
    /// Propagation work (see `run_queue`).
    queue: VecDeque<Work>,
    /// Transitions, run when no propagation is pending.
    transitions: VecDeque<Work>,
    /// `Work::Recheck`s, run when both queues are empty.
    rechecks: Vec<Work>,
    effects: Vec<Effect>,
    now: Time,
    shutting_down: bool,
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// The loaded service called `name` (placeholders are not found).
    pub fn lookup(&self, name: &str) -> Option<ServiceId> {
        self.by_name
            .get(name)
            .copied()
            .filter(|id| self.rec(*id).loaded)
    }

    /// The id a name stands for, loaded or only referred to so far (a
    /// placeholder keeps its id when the service is loaded).
    pub fn reference(&self, name: &str) -> Option<ServiceId> {
        self.by_name.get(name).copied()
    }

    pub fn spec(&self, id: ServiceId) -> &ServiceSpec {
        &self.rec(id).spec
    }

    pub fn name(&self, id: ServiceId) -> &str {
        &self.rec(id).spec.name
    }

    /// Every loaded service, in load order.
    pub fn ids(&self) -> impl Iterator<Item = ServiceId> + '_ {
        (0..self.records.len() as u32)
            .map(ServiceId)
            .filter(|id| self.rec(*id).loaded)
    }

    pub fn len(&self) -> usize {
        self.ids().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn status(&self, id: ServiceId) -> Status {
        let r = self.rec(id);
        Status {
            state: r.state,
            target: r.target,
            explicit: r.explicit,
            pinned_started: r.pin_started,
            pinned_stopped: r.pin_stopped,
            stop_reason: r.stop_reason,
            pid: r.procs.main_pid,
            last_exit: r.procs.last_exit,
            exec_failure: r.procs.exec_failure.clone(),
            paused: r.paused,
            once: r.once,
            finish_running: r.procs.finish_running,
            start_skipped: r.start_skipped,
            waiting_for_deps: r.waiting_deps,
            since: r.since,
            restarts: r.restarts_total,
        }
    }

    /// The services this one depends on, with the kind of each link.
    pub fn dependencies(&self, id: ServiceId) -> Vec<(ServiceId, DepKind)> {
        self.rec(id).deps.iter().map(|e| (e.to, e.kind)).collect()
    }

    /// The services that depend on this one (each once).
    pub fn dependents(&self, id: ServiceId) -> Vec<ServiceId> {
        let mut out: Vec<ServiceId> = self.rec(id).dependents.iter().map(|b| b.from).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether every service is stopped (nothing is running or changing).
    pub fn all_stopped(&self) -> bool {
        self.records
            .iter()
            .all(|r| r.state == State::Stopped && !r.procs.main_alive() && !r.procs.stop_running)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Effects produced since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Applies a command to one service.
    pub fn command(
        &mut self,
        now: Time,
        id: ServiceId,
        cmd: Command,
    ) -> Result<CommandOutcome, CommandError> {
        self.now = now;
        let result = self.apply_command(id, cmd);
        self.run_queue();
        result.map(|wanted| {
            let state = self.rec(id).state;
            match wanted {
                Some(w) if w == state => CommandOutcome::AlreadyThere,
                _ => CommandOutcome::Accepted,
            }
        })
    }

    /// Feeds one event from the world.
    pub fn event(&mut self, now: Time, event: Event) {
        self.now = now;
        self.apply_event(event);
        self.run_queue();
    }

    /// Stops every service (shutdown): unpins, clears every active mark and
    /// refuses further starts.
    ///
    /// As dinit: in load order, a service that nothing else requires once
    /// its own mark is gone starts stopping at once (not through the
    /// queue); one that is still required is left alone here and stops
    /// when its last holder lets go of it during propagation. So services
    /// only reached through their dependents join the transition queue
    /// after the unrequired ones, which decides the order of the stops.
    pub fn stop_all(&mut self, now: Time) {
        self.now = now;
        self.shutting_down = true;
        for i in 0..self.records.len() {
            let id = ServiceId(i as u32);
            let r = self.rec_mut(id);
            let pinned = std::mem::take(&mut r.pin_started);
            r.pin_stopped = false;
            if r.explicit {
                r.explicit = false;
                r.required_by = r.required_by.saturating_sub(1);
            }
            if r.required_by == 0 {
                r.target = State::Stopped;
                self.push(Work::SyncHolds(id));
                self.do_stop(id);
                if pinned {
                    // dinit stops a pinned service when it unpins it, and
                    // runs its queues right then, before the next service.
                    self.run_queue();
                }
            }
        }
        self.run_queue();
    }

    fn rec(&self, id: ServiceId) -> &Record {
        &self.records[id.index()]
    }

    fn rec_mut(&mut self, id: ServiceId) -> &mut Record {
        &mut self.records[id.index()]
    }

    fn emit(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    fn notify(&mut self, service: ServiceId, event: ServiceEvent) {
        self.emit(Effect::Notify(Notification { service, event }));
    }

    fn log(&mut self, level: LogLevel, service: ServiceId, text: String) {
        self.emit(Effect::Log(LogLine {
            level,
            service: Some(service),
            text,
        }));
    }

    fn arm_timer(&mut self, id: ServiceId, kind: TimerKind, after: std::time::Duration) {
        self.rec_mut(id).timers.set(kind);
        let at = self.now + after;
        self.emit(Effect::ArmTimer {
            timer: TimerId { service: id, kind },
            at,
        });
    }

    fn cancel_timer(&mut self, id: ServiceId, kind: TimerKind) {
        if self.rec_mut(id).timers.clear(kind) {
            self.emit(Effect::CancelTimer {
                timer: TimerId { service: id, kind },
            });
        }
    }

    fn set_state(&mut self, id: ServiceId, state: State) {
        let now = self.now;
        let r = self.rec_mut(id);
        r.state = state;
        r.since = now;
    }

    /// Runs queued work as dinit does: every propagation (holds, marking
    /// services to start or stop) first, then one transition (a service
    /// whose dependencies or dependents are settled goes up or down), then
    /// propagation again. Each queue is last in, first out. Rechecks run
    /// when both are empty.
    fn run_queue(&mut self) {
        loop {
            let work = match self.queue.pop_back() {
                Some(work) => work,
                None => match self.transitions.pop_back() {
                    Some(work) => work,
                    None => match self.rechecks.pop() {
                        Some(work) => work,
                        None => break,
                    },
                },
            };
            match work {
                Work::Start(id) => self.do_start(id),
                Work::Stop(id) => self.do_stop(id),
                Work::ForceStop(id) => self.force_stop(id),
                Work::Transition(id) => {
                    self.rec_mut(id).transition_entries -= 1;
                    self.execute_transition(id);
                }
                Work::Recheck(id) => self.check_deps(id),
                Work::DepFailed(id) => self.dependency_failed(id),
                Work::SyncHolds(id) => self.sync_holds(id),
            }
        }
    }
}
