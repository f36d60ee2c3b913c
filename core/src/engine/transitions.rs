//! Starting and stopping: activation, holds on dependencies, waiting for
//! them, stopping dependents first, and the commands users give.

use nix::sys::signal::Signal;

use super::record::Backlink;
use super::{
    Command, CommandError, Engine, LogLevel, Role, ServiceEvent, ServiceId, State, StopReason,
    TimerKind, Work,
};
use crate::spec::{DepKind, Kind, RestartMode};

impl Engine {
    /// Returns the state the command wants (for the "already there" answer).
    pub(super) fn apply_command(
        &mut self,
        id: ServiceId,
        cmd: Command,
    ) -> Result<Option<State>, CommandError> {
        let r = self.rec(id);
        let stopped_or_stopping = matches!(r.state, State::Stopped | State::Stopping);
        let running = matches!(r.state, State::Started | State::Starting);
        match cmd {
            Command::Start { pin } => {
                if self.shutting_down {
                    return Err(CommandError::ShuttingDown);
                }
                if r.pin_stopped && stopped_or_stopping {
                    return Err(CommandError::PinnedStopped);
                }
                self.mark_active(id);
                let r = self.rec_mut(id);
                r.once = false;
                if pin {
                    r.pin_started = true;
                }
                Ok(Some(State::Started))
            }
            Command::Once => {
                if self.shutting_down {
                    return Err(CommandError::ShuttingDown);
                }
                if r.pin_stopped && stopped_or_stopping {
                    return Err(CommandError::PinnedStopped);
                }
                self.mark_active(id);
                self.rec_mut(id).once = true;
                self.notify(id, ServiceEvent::ProcessChanged);
                Ok(Some(State::Started))
            }
            Command::Wake { pin } => {
                if self.shutting_down {
                    return Err(CommandError::ShuttingDown);
                }
                if r.pin_stopped && stopped_or_stopping {
                    return Err(CommandError::PinnedStopped);
                }
                let mut found = false;
                for i in 0..self.rec(id).dependents.len() {
                    let b = self.rec(id).dependents[i];
                    let active = matches!(self.rec(b.from).state, State::Started | State::Starting);
                    let e = self.edge(b);
                    if active && e.kind.holds() && !e.holding {
                        found = true;
                        self.edge_mut(b).holding = true;
                        self.require(id);
                    }
                }
                if pin {
                    self.rec_mut(id).pin_started = true;
                }
                if !found && self.rec(id).state != State::Started {
                    return Err(CommandError::NotApplicable);
                }
                Ok(Some(State::Started))
            }
            Command::Stop { pin, gentle } => {
                if r.pin_started && running {
                    return Err(CommandError::PinnedStarted);
                }
                if gentle {
                    let holders = self.hard_holders(id);
                    if !holders.is_empty() {
                        return Err(CommandError::HasDependents(holders));
                    }
                }
                if pin {
                    self.rec_mut(id).pin_stopped = true;
                }
                self.clear_active(id);
                let r = self.rec_mut(id);
                r.target = State::Stopped;
                r.once = false;
                self.notify(id, ServiceEvent::ProcessChanged);
                self.push(Work::Stop(id));
                Ok(Some(State::Stopped))
            }
            Command::Release { pin } => {
                if pin {
                    self.rec_mut(id).pin_stopped = true;
                }
                self.clear_active(id);
                if self.rec(id).pin_stopped {
                    self.rec_mut(id).target = State::Stopped;
                    self.push(Work::Stop(id));
                }
                Ok(Some(State::Stopped))
            }
            Command::Restart { gentle } => {
                if self.shutting_down {
                    return Err(CommandError::ShuttingDown);
                }
                if r.state != State::Started {
                    return Err(CommandError::NotApplicable);
                }
                if gentle {
                    let holders = self.hard_holders(id);
                    if !holders.is_empty() {
                        return Err(CommandError::HasDependents(holders));
                    }
                }
                self.restart(id);
                Ok(None)
            }
            Command::Unpin => {
                let r = self.rec_mut(id);
                r.pin_started = false;
                r.pin_stopped = false;
                // Unpinned and unrequired: let go of its dependencies.
                self.push(Work::SyncHolds(id));
                let r = self.rec(id);
                let dep_going = r.deps.iter().any(|e| {
                    e.kind.is_hard() && self.rec(e.to).target == State::Stopped && e.holding
                });
                if r.state == State::Started && (r.required_by == 0 || dep_going) {
                    self.rec_mut(id).target = State::Stopped;
                    self.push(Work::Stop(id));
                } else if r.required_by > 0 && r.target == State::Started {
                    self.push(Work::Start(id));
                }
                Ok(None)
            }
            Command::Pause | Command::Continue | Command::Signal(_) => {
                let Some(_) = r.procs.main_pid else {
                    return Err(CommandError::NoProcess);
                };
                let signal = match cmd {
                    Command::Pause => Signal::SIGSTOP,
                    Command::Continue => Signal::SIGCONT,
                    Command::Signal(s) => s,
                    _ => unreachable!("matched above"),
                };
                let group = false;
                self.emit(super::Effect::Signal {
                    service: id,
                    role: Role::Main,
                    signal,
                    group,
                });
                match cmd {
                    Command::Pause => self.rec_mut(id).paused = true,
                    Command::Continue => self.rec_mut(id).paused = false,
                    _ => {}
                }
                if matches!(cmd, Command::Pause | Command::Continue) {
                    self.notify(id, ServiceEvent::ProcessChanged);
                }
                Ok(None)
            }
            Command::Trigger(value) => {
                if r.spec.kind != Kind::Triggered {
                    return Err(CommandError::NotApplicable);
                }
                self.rec_mut(id).trigger = value;
                let r = self.rec(id);
                if value && r.state == State::Starting && !r.waiting_deps {
                    self.started(id);
                }
                Ok(None)
            }
        }
    }

    /// Sets the explicit mark (a hold of its own) and wants the service up.
    fn mark_active(&mut self, id: ServiceId) {
        let now = self.now;
        let r = self.rec_mut(id);
        // A manual start opens a new restart-limit window.
        r.restart_window_start = now;
        r.restart_count = 0;
        r.target = State::Started;
        if !r.explicit {
            r.explicit = true;
            r.required_by += 1;
        }
        self.notify(id, ServiceEvent::ProcessChanged);
        self.push(Work::Start(id));
    }

    fn clear_active(&mut self, id: ServiceId) {
        self.drop_explicit(id);
    }

    /// Started dependents that hold this service through a hard link.
    fn hard_holders(&self, id: ServiceId) -> Vec<ServiceId> {
        let mut holders: Vec<ServiceId> = self
            .rec(id)
            .dependents
            .iter()
            .filter(|b| {
                let e = self.edge(**b);
                e.kind.is_hard()
                    && e.holding
                    && matches!(self.rec(b.from).state, State::Started | State::Starting)
            })
            .map(|b| b.from)
            .collect();
        // As dinit: in the order the links were made (a dependent links
        // once its own dependencies have loaded), not by id.
        let mut seen = std::collections::HashSet::new();
        holders.retain(|h| seen.insert(*h));
        holders
    }

    /// Adds a hold; the first one makes the service wanted, and it takes
    /// hold of its own dependencies (as dinit: when it becomes required, not
    /// when it starts).
    pub(super) fn require(&mut self, id: ServiceId) {
        let r = self.rec_mut(id);
        r.required_by += 1;
        if r.required_by == 1 {
            r.target = State::Started;
            self.push(Work::Start(id));
            self.push(Work::SyncHolds(id));
        }
    }

    /// Drops a hold; the last one lets the service stop, and it lets go of
    /// its dependencies at once (they stop after it, as they must wait for
    /// their hard dependents). Its stop is handled before that letting go
    /// (last in, first out), as dinit stops it before it propagates.
    pub(super) fn release(&mut self, id: ServiceId) {
        if self.drop_hold(id) {
            self.push(Work::Stop(id));
        }
    }

    /// Drops one hold on `id`. When it was the last (and nothing pins the
    /// service started), the service's target becomes Stopped, its own
    /// holds are queued to be let go, and `true` says the caller is to stop
    /// it.
    fn drop_hold(&mut self, id: ServiceId) -> bool {
        let r = self.rec_mut(id);
        debug_assert!(r.required_by > 0, "release without a hold");
        r.required_by = r.required_by.saturating_sub(1);
        if r.required_by > 0 || r.pin_started {
            return false;
        }
        r.target = State::Stopped;
        self.push(Work::SyncHolds(id));
        true
    }

    /// Clears the explicit mark, dropping its hold.
    pub(super) fn drop_explicit(&mut self, id: ServiceId) {
        let r = self.rec_mut(id);
        if r.explicit {
            r.explicit = false;
            self.release(id);
        }
    }

    /// Makes the holds on dependencies match whether the service is wanted
    /// (required or pinned started, and not forced down for good): takes
    /// every link that holds, or lets every one go. Idempotent, so the
    /// queue's order cannot matter.
    pub(super) fn sync_holds(&mut self, id: ServiceId) {
        let r = self.rec(id);
        let wanted = (r.required_by > 0 || r.pin_started) && r.target == State::Started;
        if wanted {
            // In the order listed, as dinit requires them: the
            // last-in-first-out queue then begins the last one first.
            for i in 0..self.rec(id).deps.len() {
                let e = &mut self.rec_mut(id).deps[i];
                let to = e.to;
                if e.kind.holds() && !e.holding {
                    e.holding = true;
                    self.require(to);
                }
            }
            return;
        }
        // In order, each one let go of starting to stop at once, as dinit
        // does: that decides the order of the stops (see `release_now`).
        for i in 0..self.rec(id).deps.len() {
            let e = &mut self.rec_mut(id).deps[i];
            let to = e.to;
            if e.holding {
                e.holding = false;
                self.release_now(to);
            }
        }
    }

    /// `release`, except that a dependency nothing requires any more starts
    /// stopping at once instead of through the queue (its own holds are
    /// let go through the queue). So dependencies let go of together join
    /// the transition queue in the order they are listed, before anything
    /// their own dependencies cause, as in dinit. Not recursive: stopping
    /// only queues work for the dependents.
    fn release_now(&mut self, id: ServiceId) {
        if self.drop_hold(id) {
            self.do_stop(id);
        }
    }

    /// Brings a service toward Started, if its target says so.
    pub(super) fn do_start(&mut self, id: ServiceId) {
        let r = self.rec(id);
        if r.target != State::Started {
            return;
        }
        match r.state {
            State::Started | State::Starting => {}
            State::Stopping => {
                // Still waiting for dependents and nothing was signalled yet:
                // simply go back up. Otherwise it starts again once stopped.
                if r.waiting_dependents && !r.procs.stop_running {
                    self.rec_mut(id).waiting_dependents = false;
                    self.set_state(id, State::Started);
                    self.notify(id, ServiceEvent::StopCancelled);
                }
            }
            State::Stopped => {
                if r.pin_stopped || !r.loaded {
                    self.fail_start(id, StopReason::DepFailed);
                    return;
                }
                self.set_state(id, State::Starting);
                let r = self.rec_mut(id);
                r.stop_reason = StopReason::Normal;
                r.start_skipped = false;
                r.waiting_deps = true;
                r.deps_scanned = 0;
                self.sync_holds(id);
                // As dinit: queued now only if nothing is to wait for;
                // otherwise the dependencies it waits for queue it (and a
                // recheck follows once the queues are empty).
                match self.deps_ready(id) {
                    DepsReady::Yes => self.push(Work::Transition(id)),
                    DepsReady::Failed => self.push(Work::DepFailed(id)),
                    DepsReady::No(_) => self.push(Work::Recheck(id)),
                }
                self.wake_stopping_deps(id);
            }
        }
    }

    /// A service that waits for its dependencies no longer keeps a
    /// stopping dependency from going down.
    fn wake_stopping_deps(&mut self, id: ServiceId) {
        for i in 0..self.rec(id).deps.len() {
            let to = self.rec(id).deps[i].to;
            if self.rec(to).state == State::Stopping {
                self.push(Work::Transition(to));
            }
        }
    }

    /// A starting service: launch it once everything it waits for is there.
    pub(super) fn check_deps(&mut self, id: ServiceId) {
        let r = self.rec(id);
        if r.state != State::Starting || !r.waiting_deps {
            return;
        }
        match self.deps_ready(id) {
            DepsReady::Yes => {
                self.rec_mut(id).waiting_deps = false;
                self.bring_up(id);
            }
            DepsReady::No(i) => self.rec_mut(id).deps_scanned = i,
            DepsReady::Failed => self.push(Work::DepFailed(id)),
        }
    }

    /// Whether everything a starting service waits for is there.
    fn deps_ready(&self, id: ServiceId) -> DepsReady {
        // Links before the cursor were seen satisfied; resuming there keeps a
        // service with thousands of dependencies from rescanning them all
        // each time one of them starts.
        let r = self.rec(id);
        let first = r.deps_scanned;
        for (i, e) in r.deps.iter().enumerate().skip(first) {
            let dep = self.rec(e.to);
            let wait = match e.kind {
                DepKind::Hard | DepKind::PreparedBy | DepKind::Milestone => {
                    if dep.state == State::Stopped && (dep.pin_stopped || !dep.loaded) && e.holding
                    {
                        // It will never start.
                        return DepsReady::Failed;
                    }
                    dep.state != State::Started
                }
                DepKind::WaitsFor => {
                    dep.state == State::Starting || {
                        // Acquired but not begun yet (still queued).
                        dep.state == State::Stopped && dep.target == State::Started && dep.loaded
                    }
                }
                // Ordering: wait for what is starting, or about to (wanted
                // in this same step but not begun yet).
                DepKind::After | DepKind::Before => {
                    dep.state == State::Starting
                        || (dep.state == State::Stopped
                            && dep.target == State::Started
                            && dep.loaded
                            && !dep.pin_stopped)
                }
                DepKind::Soft => false,
            };
            if wait {
                return DepsReady::No(i);
            }
        }
        DepsReady::Yes
    }

    /// A hard dependency failed while this service waited for it.
    pub(super) fn dependency_failed(&mut self, id: ServiceId) {
        let r = self.rec(id);
        if r.state == State::Starting && r.waiting_deps {
            self.fail_start(id, StopReason::DepFailed);
        }
    }

    /// Dependencies are there: do what this kind does to start.
    pub(super) fn bring_up(&mut self, id: ServiceId) {
        match self.rec(id).spec.kind {
            Kind::Internal => self.started(id),
            Kind::Triggered => {
                if self.rec(id).trigger {
                    self.started(id);
                }
            }
            Kind::Process | Kind::BackgroundProcess { .. } | Kind::Scripted => {
                let r = self.rec(id);
                if r.auto_restart {
                    if let Some(last) = r.procs.last_launch {
                        let ready_at = last + r.spec.restart.delay;
                        if self.now < ready_at {
                            let wait = ready_at.saturating_sub(self.now);
                            self.arm_timer(id, TimerKind::RestartDelay, wait);
                            return;
                        }
                    }
                }
                self.launch_main(id);
                if let Some(t) = self.rec(id).spec.start_timeout {
                    self.arm_timer(id, TimerKind::StartTimeout, t);
                }
            }
        }
    }

    /// The service is up (ready).
    pub(super) fn started(&mut self, id: ServiceId) {
        self.cancel_timer(id, TimerKind::StartTimeout);
        self.set_state(id, State::Started);
        self.notify(id, ServiceEvent::Started);
        if std::mem::take(&mut self.rec_mut(id).force_stop_pending) {
            self.push(Work::ForceStop(id));
        }
        // Soft holders that were released while it was down take it again.
        for i in 0..self.rec(id).dependents.len() {
            let b = self.rec(id).dependents[i];
            let d_state = self.rec(b.from).state;
            let active = matches!(d_state, State::Started | State::Starting);
            let e = self.edge(b);
            if active && !e.holding && e.kind.holds() && !e.kind.is_hard() {
                self.edge_mut(b).holding = true;
                self.rec_mut(id).required_by += 1;
            }
            if d_state == State::Starting && self.rec(b.from).waiting_deps {
                self.push(Work::Transition(b.from));
            }
        }
        if self.rec(id).target == State::Stopped {
            self.push(Work::Stop(id));
        }
    }

    /// Starting failed: the service stops, and what needed it fails too.
    pub(super) fn fail_start(&mut self, id: ServiceId, reason: StopReason) {
        self.cancel_timer(id, TimerKind::StartTimeout);
        self.cancel_timer(id, TimerKind::RestartDelay);
        self.cancel_timer(id, TimerKind::CheckRetry);
        let r = self.rec_mut(id);
        r.stop_reason = reason;
        r.waiting_deps = false;
        r.force_stop_pending = false;
        r.pin_started = false;
        r.target = State::Stopped;
        r.auto_restart = false;
        self.drop_explicit(id);
        self.notify(id, ServiceEvent::FailedStart);
        for i in 0..self.rec(id).dependents.len() {
            let b = self.rec(id).dependents[i];
            if self.rec(b.from).state != State::Starting {
                continue;
            }
            let e = self.edge(b);
            let waits_hard = e.holding && (e.kind.is_hard() || e.kind == DepKind::Milestone);
            if waits_hard {
                self.push(Work::DepFailed(b.from));
            } else {
                self.push(Work::Transition(b.from));
            }
        }
        if self.rec(id).procs.main_alive() {
            // Stopping until the process is gone (start timeout, lost
            // readiness); `stopped` completes it.
            self.set_state(id, State::Stopping);
            if !self.rec(id).procs.interrupted_by_us {
                self.bring_down(id);
            }
        } else {
            self.stopped(id);
        }
    }

    /// Brings a service toward Stopped: hard dependents first.
    pub(super) fn do_stop(&mut self, id: ServiceId) {
        let r = self.rec(id);
        if r.target != State::Stopped {
            return;
        }
        if r.pin_started {
            return;
        }
        match r.state {
            State::Stopped | State::Stopping => {}
            State::Starting => {
                let launched = r.procs.main_alive();
                let interruptible = !launched
                    || r.timers.is_set(TimerKind::RestartDelay)
                    || r.spec.flags.start_interruptible;
                if !interruptible {
                    // It stops once it has started.
                    return;
                }
                self.cancel_timer(id, TimerKind::StartTimeout);
                self.cancel_timer(id, TimerKind::RestartDelay);
                self.cancel_timer(id, TimerKind::CheckRetry);
                self.notify(id, ServiceEvent::StartCancelled);
                self.rec_mut(id).waiting_deps = false;
                if launched {
                    let name = self.name(id).to_string();
                    let pid = self.rec(id).procs.main_pid.unwrap_or(-1);
                    self.log(
                        LogLevel::Info,
                        id,
                        format!(
                            "Interrupting start of service {name} with pid {pid} (with SIGINT)."
                        ),
                    );
                    self.rec_mut(id).procs.interrupted_by_us = true;
                    self.signal_main(id, Signal::SIGINT);
                    self.set_state(id, State::Stopping);
                    if let Some(t) = self.rec(id).spec.stop_timeout {
                        self.arm_timer(id, TimerKind::StopTimeout, t);
                    }
                } else {
                    self.begin_stopping(id);
                }
            }
            State::Started => self.begin_stopping(id),
        }
    }

    /// Enters Stopping and stops hard dependents; the service's own stop
    /// action follows once they are down. As dinit: it joins the transition
    /// queue now only if no hard dependent is up; otherwise the next
    /// dependent (of any kind) to reach Stopped queues it, and it stops if
    /// no hard dependent keeps it by then (see `dependent_is_down`).
    pub(super) fn begin_stopping(&mut self, id: ServiceId) {
        self.set_state(id, State::Stopping);
        let r = self.rec_mut(id);
        r.waiting_dependents = true;
        r.dependents_scanned = 0;
        let dependents_down = self.rec(id).dependents.iter().all(|b| {
            let dr = self.rec(b.from);
            !self.edge(*b).kind.is_hard()
                || dr.state == State::Stopped
                || (dr.state == State::Starting && dr.waiting_deps)
        });
        self.stop_dependents(id);
        if dependents_down {
            self.push(Work::Transition(id));
        }
    }

    /// Hard dependents of a stopping service stop too. If the service is
    /// going down for good they stay down (reason: dependency failed);
    /// if it is restarting they come back when it does, as their own
    /// restart setting allows.
    fn stop_dependents(&mut self, id: ServiceId) {
        let for_good = self.rec(id).target == State::Stopped;
        let user_restart = self.rec(id).user_restart;
        for i in 0..self.rec(id).dependents.len() {
            let b = self.rec(id).dependents[i];
            let d = b.from;
            let dr = self.rec(d);
            if dr.state == State::Stopped && dr.target == State::Stopped {
                continue;
            }
            let e = self.edge(b);
            let hard = e.kind.is_hard()
                || (e.kind == DepKind::Milestone && e.holding && dr.state == State::Starting);
            if !hard {
                continue;
            }
            if dr.target == State::Stopped {
                // Going down for reasons of its own (released, stopped):
                // it keeps its reason, and only has to be down first.
                self.push(Work::ForceStop(d));
                continue;
            }
            let keeps_running = !for_good
                && (user_restart || dr.spec.restart.mode == RestartMode::Always)
                && !dr.once;
            let dr = self.rec_mut(d);
            if for_good {
                dr.stop_reason = StopReason::DepFailed;
            } else {
                dr.stop_reason = StopReason::DepRestart;
            }
            if keeps_running {
                dr.user_restart = user_restart;
            } else {
                dr.target = State::Stopped;
                self.drop_explicit(d);
            }
            let dr = self.rec(d);
            if dr.state == State::Stopped {
                // Waiting to restart: stays down.
                self.push(Work::Stop(d));
                continue;
            }
            self.push(Work::ForceStop(d));
        }
    }

    /// Stops a service regardless of its target (it keeps its target, so
    /// it comes back if that says Started).
    pub(super) fn force_stop(&mut self, id: ServiceId) {
        let r = self.rec(id);
        if r.pin_started {
            return;
        }
        match r.state {
            State::Started => self.begin_stopping(id),
            State::Starting => {
                let target = r.target;
                self.rec_mut(id).target = State::Stopped;
                self.do_stop(id);
                self.rec_mut(id).target = target;
                if self.rec(id).state == State::Starting {
                    // Not interruptible: it stops once it has started, and
                    // comes back if its target still says so.
                    self.rec_mut(id).force_stop_pending = true;
                }
            }
            State::Stopped | State::Stopping => {}
        }
    }

    /// A stopping service: once hard dependents are down, stop itself.
    pub(super) fn check_dependents(&mut self, id: ServiceId) {
        let r = self.rec(id);
        if r.state != State::Stopping || !r.waiting_dependents {
            return;
        }
        // Dependents before the cursor were seen down; while this service
        // is stopping none of them can come up again, so the scan resumes
        // where it stopped instead of starting over (a hub with thousands
        // of dependents would otherwise be rescanned once per dependent).
        let mut i = r.dependents_scanned;
        while let Some(&b) = self.rec(id).dependents.get(i) {
            if !self.dependent_is_down(b) {
                self.rec_mut(id).dependents_scanned = i;
                return;
            }
            i += 1;
        }
        if self.producer_still_going_down(id) {
            return;
        }
        self.rec_mut(id).waiting_dependents = false;
        self.bring_down(id);
    }

    /// A consumer of another service's output stops after that service
    /// when both are going down, so that it reads all it wrote (dinit's
    /// order for `consumer-of`, runsv's for `log/`).
    fn producer_still_going_down(&self, id: ServiceId) -> bool {
        let Some(name) = &self.rec(id).spec.input_from else {
            return false;
        };
        let Some(producer) = self.lookup(name) else {
            return false;
        };
        let p = self.rec(producer);
        p.target == State::Stopped && p.state != State::Stopped
    }

    /// The services reading this one's output (usually none or one).
    fn consumers_of(&self, id: ServiceId) -> Vec<ServiceId> {
        if self.rec(id).spec.output != crate::spec::Output::Pipe {
            return Vec::new();
        }
        let name = self.name(id);
        self.ids()
            .filter(|c| self.rec(*c).spec.input_from.as_deref() == Some(name))
            .collect()
    }

    /// Whether this link no longer keeps its target from stopping. A hard
    /// dependent that is up blocks it while it holds it. One that let go
    /// (nothing requires it any more) but is not down yet blocks it only
    /// while it has a process or a stop command to run: dinit lets the
    /// dependency stop then (its check looks at the hold alone). For a
    /// dependent that stops at once that changes only the order of the
    /// stops; otherwise it would take the dependency away while the
    /// dependent's process still runs, which braid does not copy.
    fn dependent_is_down(&self, b: Backlink) -> bool {
        // A milestone matters only until it has started: a dependent still
        // waiting for it is not running, one past it no longer cares.
        let e = self.edge(b);
        if !e.kind.is_hard() {
            return true;
        }
        let dr = self.rec(b.from);
        match dr.state {
            State::Stopped => true,
            State::Starting => dr.waiting_deps,
            State::Started | State::Stopping => {
                // Nothing to wait for: no process now and no stop command.
                let stops_at_once =
                    !dr.procs.main_alive() && !dr.procs.stop_running && dr.spec.stop.is_none();
                !e.holding && stops_at_once
            }
        }
    }

    /// Do what this kind does to stop.
    pub(super) fn bring_down(&mut self, id: ServiceId) {
        let r = self.rec(id);
        let stop_timeout = r.spec.stop_timeout;
        match r.spec.kind {
            Kind::Internal | Kind::Triggered => self.stopped(id),
            Kind::Scripted => {
                if r.procs.main_alive() {
                    // A start command still running (interrupted start).
                    return;
                }
                if r.spec.stop.is_some() && r.stop_reason != StopReason::Failed {
                    self.spawn(id, Role::Stop, Vec::new());
                    self.rec_mut(id).procs.stop_running = true;
                    if let Some(t) = stop_timeout {
                        self.arm_timer(id, TimerKind::StopTimeout, t);
                    }
                } else {
                    self.stopped(id);
                }
            }
            Kind::Process | Kind::BackgroundProcess { .. } => {
                if !r.procs.main_alive() {
                    self.stopped(id);
                    return;
                }
                if r.procs.main_launching {
                    // Signalled once the launch is reported.
                    return;
                }
                if r.spec.stop.is_some() {
                    self.spawn(id, Role::Stop, Vec::new());
                    self.rec_mut(id).procs.stop_running = true;
                } else if let Some(sig) = r.spec.stop_signal {
                    let cont = r.spec.flags.cont_after_stop_signal;
                    self.signal_main(id, sig);
                    if cont {
                        self.signal_main(id, Signal::SIGCONT);
                    }
                }
                if self.rec(id).procs.unsupervised {
                    // braid cannot see it exit: signalled is stopped.
                    let procs = &mut self.rec_mut(id).procs;
                    procs.main_pid = None;
                    procs.unsupervised = false;
                    self.stopped(id);
                    return;
                }
                if let Some(t) = stop_timeout {
                    self.arm_timer(id, TimerKind::StopTimeout, t);
                }
            }
        }
    }

    /// The service is down.
    pub(super) fn stopped(&mut self, id: ServiceId) {
        self.cancel_timer(id, TimerKind::StopTimeout);
        self.cancel_timer(id, TimerKind::CheckRetry);
        self.set_state(id, State::Stopped);
        let r = self.rec_mut(id);
        r.waiting_dependents = false;
        r.paused = false;
        let restart = r.target == State::Started && !self.shutting_down;
        self.notify(id, ServiceEvent::Stopped);
        if restart {
            self.rec_mut(id).user_restart = false;
            self.push(Work::Start(id));
        } else {
            self.rec_mut(id).user_restart = false;
            self.rec_mut(id).once = false;
            // Soft holders let go; they take it again if it comes back.
            for i in 0..self.rec(id).dependents.len() {
                let b = self.rec(id).dependents[i];
                let e = self.edge(b);
                if e.holding && !e.kind.is_hard() {
                    self.edge_mut(b).holding = false;
                    self.release(id);
                }
            }
            // Its own dependencies were let go when nothing required it
            // any more; a service stopped while still required (forced
            // down) lets go now too.
            self.push(Work::SyncHolds(id));
            self.chain(id);
        }
        for i in 0..self.rec(id).dependents.len() {
            let d = self.rec(id).dependents[i].from;
            if self.rec(d).state == State::Starting {
                self.push(Work::Transition(d));
            }
        }
        for i in 0..self.rec(id).deps.len() {
            let to = self.rec(id).deps[i].to;
            if self.rec(to).state == State::Stopping {
                self.push(Work::Transition(to));
            }
        }
        for consumer in self.consumers_of(id) {
            if self.rec(consumer).state == State::Stopping {
                self.push(Work::Transition(consumer));
            }
        }
    }

    /// chain-to: after a clean exit by itself, start the next service.
    fn chain(&mut self, id: ServiceId) {
        let r = self.rec(id);
        let Some(next) = r.spec.chain_to.clone() else {
            return;
        };
        if self.shutting_down {
            return;
        }
        let clean_exit = r.stop_reason == StopReason::Terminated
            && r.procs.last_exit.is_some_and(|s| s.success());
        if !(r.spec.flags.always_chain || clean_exit) {
            return;
        }
        match self.lookup(&next) {
            Some(next_id) => {
                self.mark_active(next_id);
            }
            None => self.emit(super::Effect::ChainTo { name: next }),
        }
    }

    /// A user restart: stop (hard dependents too) and start again.
    fn restart(&mut self, id: ServiceId) {
        // prepared-by dependencies restart with us (which stops us first).
        let prepared: Vec<ServiceId> = self
            .rec(id)
            .deps
            .iter()
            .filter(|e| e.kind == DepKind::PreparedBy && e.holding)
            .map(|e| e.to)
            .filter(|p| self.rec(*p).state == State::Started)
            .collect();
        self.rec_mut(id).user_restart = true;
        self.rec_mut(id).stop_reason = StopReason::Normal;
        for p in prepared {
            self.rec_mut(p).user_restart = true;
            self.begin_stopping(p);
        }
        if self.rec(id).state == State::Started {
            self.begin_stopping(id);
        }
    }
}

/// What a starting service's dependencies say.
enum DepsReady {
    Yes,
    /// Waiting, for the link at this index first.
    No(usize),
    /// A dependency it needs will never start.
    Failed,
}
