//! Processes: launching, what their exits mean for the service, readiness,
//! timeouts and automatic restarts.

use std::ffi::OsString;

use nix::sys::signal::Signal;

use super::{
    Effect, Engine, Event, ExitStatus, LogLevel, Role, ServiceEvent, ServiceId, State, StopReason,
    TimerId, TimerKind,
};
use crate::spec::{Kind, Readiness, RestartMode};

impl Engine {
    pub(super) fn spawn(&mut self, id: ServiceId, role: Role, extra_args: Vec<OsString>) {
        self.emit(Effect::Spawn {
            service: id,
            role,
            extra_args,
        });
    }

    pub(super) fn launch_main(&mut self, id: ServiceId) {
        let now = self.now;
        let r = self.rec_mut(id);
        if r.auto_restart {
            r.restarts_total += 1;
        }
        r.auto_restart = false;
        r.procs.main_launching = true;
        r.procs.last_launch = Some(now);
        r.procs.exec_failure = None;
        r.procs.interrupted_by_us = false;
        self.spawn(id, Role::Main, Vec::new());
    }

    /// Signals the main process (or its group), and a running stop
    /// command's group when killing.
    pub(super) fn signal_main(&mut self, id: ServiceId, signal: Signal) {
        let r = self.rec(id);
        let group = !r.spec.flags.signal_process_only;
        let finish_running = r.procs.finish_running;
        if r.procs.main_pid.is_some() {
            self.emit(Effect::Signal {
                service: id,
                role: Role::Main,
                signal,
                group,
            });
        }
        if finish_running && signal == Signal::SIGKILL {
            self.emit(Effect::Signal {
                service: id,
                role: Role::Finish,
                signal,
                group: true,
            });
        }
    }

    pub(super) fn apply_event(&mut self, event: Event) {
        match event {
            Event::Spawned { service, role, pid } => self.on_spawned(service, role, pid),
            Event::SpawnFailed {
                service,
                role,
                failure,
            } => {
                let name = self.name(service).to_string();
                self.log(
                    LogLevel::Error,
                    service,
                    format!("{name}: execution failed - {failure}"),
                );
                match role {
                    Role::Main => {
                        let r = self.rec_mut(service);
                        r.procs.main_launching = false;
                        r.procs.exec_failure = Some(failure);
                        if r.spec.flags.exec_failure_is_exit && r.state == State::Starting {
                            // As if it had started and exited with 111.
                            self.started(service);
                            self.on_main_exit(service, ExitStatus::Exited(111));
                            return;
                        }
                        self.notify(service, ServiceEvent::ProcessChanged);
                        self.main_gone(service, None);
                    }
                    Role::Stop => {
                        // Fall back to the stop signal.
                        self.rec_mut(service).procs.stop_running = false;
                        let sig = self
                            .rec(service)
                            .spec
                            .stop_signal
                            .unwrap_or(Signal::SIGKILL);
                        self.signal_main(service, sig);
                        self.stop_command_done(service);
                    }
                    Role::Finish => {
                        self.rec_mut(service).procs.finish_running = false;
                        let status = self.rec(service).procs.last_exit;
                        self.main_gone(service, status);
                    }
                    Role::Check => {
                        self.rec_mut(service).procs.check_running = false;
                        self.retry_check(service);
                    }
                }
            }
            Event::Exited {
                service,
                role,
                status,
            } => self.on_exited(service, role, status),
            Event::Ready { service } => {
                let r = self.rec(service);
                if r.state == State::Starting && r.procs.main_pid.is_some() && !r.waiting_deps {
                    self.started(service);
                }
            }
            Event::ReadinessLost { service } => {
                let r = self.rec(service);
                if r.state == State::Starting && r.procs.main_alive() {
                    self.fail_start(service, StopReason::Failed);
                }
            }
            Event::PidFileRead { service, result } => {
                let r = self.rec(service);
                if r.state != State::Starting {
                    return;
                }
                match result {
                    Ok(daemon) => {
                        let procs = &mut self.rec_mut(service).procs;
                        procs.main_pid = Some(daemon.pid);
                        procs.unsupervised = !daemon.supervised;
                        self.notify(service, ServiceEvent::ProcessChanged);
                        self.started(service);
                    }
                    Err(why) => {
                        let name = self.name(service).to_string();
                        self.log(LogLevel::Error, service, format!("{name}: {why}"));
                        self.fail_start(service, StopReason::Failed);
                    }
                }
            }
            Event::TimerFired(TimerId { service, kind }) => {
                if !self.rec_mut(service).timers.clear(kind) {
                    return; // cancelled or re-armed since
                }
                self.on_timer(service, kind);
            }
        }
    }

    fn on_spawned(&mut self, id: ServiceId, role: Role, pid: i32) {
        match role {
            Role::Main => {
                let r = self.rec_mut(id);
                r.procs.main_launching = false;
                r.procs.main_pid = Some(pid);
                self.notify(id, ServiceEvent::ProcessChanged);
                let r = self.rec(id);
                match r.state {
                    State::Starting if r.spec.kind == Kind::Process => match &r.spec.readiness {
                        Readiness::OnExec => self.started(id),
                        Readiness::NotifyFd(_) | Readiness::NotifyEnvVar(_) => {}
                        Readiness::CheckCommand { .. } => self.run_check(id),
                    },
                    State::Stopping if !r.waiting_dependents => {
                        // A stop came while it was being launched.
                        self.bring_down(id);
                    }
                    _ => {}
                }
            }
            Role::Finish => {
                self.rec_mut(id).procs.finish_running = true;
                self.notify(id, ServiceEvent::ProcessChanged);
            }
            Role::Stop | Role::Check => {}
        }
    }

    fn on_exited(&mut self, id: ServiceId, role: Role, status: ExitStatus) {
        match role {
            Role::Main => {
                if self.rec(id).procs.main_pid.is_none() {
                    return;
                }
                self.on_main_exit(id, status);
            }
            Role::Finish => {
                self.rec_mut(id).procs.finish_running = false;
                self.notify(id, ServiceEvent::ProcessChanged);
                let status = self.rec(id).procs.last_exit;
                self.main_gone(id, status);
            }
            Role::Stop => {
                self.rec_mut(id).procs.stop_running = false;
                self.stop_command_done(id);
            }
            Role::Check => {
                self.rec_mut(id).procs.check_running = false;
                let r = self.rec(id);
                if r.state == State::Starting && r.procs.main_pid.is_some() {
                    if status.success() {
                        self.started(id);
                    } else {
                        self.retry_check(id);
                    }
                }
            }
        }
    }

    /// The main process exited: run the finish command if there is one
    /// (the service's process is gone only once it is done).
    fn on_main_exit(&mut self, id: ServiceId, status: ExitStatus) {
        let r = self.rec_mut(id);
        r.procs.main_pid = None;
        r.procs.last_exit = Some(status);
        r.paused = false;
        self.notify(id, ServiceEvent::ProcessChanged);
        if self.rec(id).spec.finish.is_some() {
            let (code, sig) = match status {
                ExitStatus::Exited(c) => (c.to_string(), "0".to_string()),
                ExitStatus::Signaled(s) => ("-1".to_string(), (s as i32).to_string()),
            };
            self.rec_mut(id).procs.finish_running = true;
            self.spawn(id, Role::Finish, vec![code.into(), sig.into()]);
            return;
        }
        self.main_gone(id, Some(status));
    }

    fn run_check(&mut self, id: ServiceId) {
        self.rec_mut(id).procs.check_running = true;
        self.spawn(id, Role::Check, Vec::new());
    }

    fn retry_check(&mut self, id: ServiceId) {
        if let Readiness::CheckCommand { interval, .. } = self.rec(id).spec.readiness {
            self.arm_timer(id, TimerKind::CheckRetry, interval);
        }
    }

    fn stop_command_done(&mut self, id: ServiceId) {
        let r = self.rec(id);
        if r.state == State::Stopping && !r.procs.main_alive() && !r.waiting_dependents {
            self.stopped(id);
        }
    }

    /// The main process is gone (exited, or never launched: `status` None)
    /// and its finish command, if any, is done.
    fn main_gone(&mut self, id: ServiceId, status: Option<ExitStatus>) {
        let r = self.rec(id);
        let kind = r.spec.kind.clone();
        match r.state {
            State::Stopped => {}
            State::Starting => {
                if r.procs.main_alive() {
                    return;
                }
                let Some(status) = status else {
                    self.fail_start(id, StopReason::ExecFailed);
                    return;
                };
                match kind {
                    Kind::Scripted => {
                        let skipped = status == ExitStatus::Signaled(Signal::SIGINT)
                            && r.spec.flags.skippable
                            && !r.procs.interrupted_by_us;
                        if status.success() || skipped {
                            self.rec_mut(id).start_skipped = skipped;
                            self.started(id);
                        } else {
                            let name = self.name(id).to_string();
                            let text = match status {
                                ExitStatus::Exited(c) => {
                                    format!("Service {name} command failed with exit code {c}")
                                }
                                ExitStatus::Signaled(s) => format!(
                                    "Service {name} command terminated due to signal {}",
                                    s as i32
                                ),
                            };
                            self.log(LogLevel::Error, id, text);
                            self.fail_start(id, StopReason::Failed);
                        }
                    }
                    Kind::BackgroundProcess { .. } if status.success() => {
                        self.emit(Effect::ReadPidFile { service: id });
                    }
                    _ => self.fail_start(id, StopReason::Failed),
                }
            }
            State::Started => {
                if status.is_none() {
                    // A smooth-recovery relaunch could not be launched.
                    self.give_up(id, StopReason::Terminated);
                    return;
                }
                if kind.has_main_process() {
                    self.terminated(id, status);
                }
            }
            State::Stopping => {
                if kind == Kind::Scripted && !r.waiting_dependents && !r.procs.stop_running {
                    // An interrupted start command finished: run the stop
                    // command if it succeeded or was killed.
                    let ran_ok =
                        status.is_some_and(|s| s.success() || matches!(s, ExitStatus::Signaled(_)));
                    if ran_ok && r.spec.stop.is_some() && r.stop_reason != StopReason::Failed {
                        self.bring_down(id);
                        return;
                    }
                }
                if !self.rec(id).procs.stop_running && !self.rec(id).waiting_dependents {
                    self.stopped(id);
                }
            }
        }
    }

    /// A started process exited by itself.
    fn terminated(&mut self, id: ServiceId, status: Option<ExitStatus>) {
        let name = self.name(id).to_string();
        match status {
            Some(ExitStatus::Exited(0)) | None => {}
            Some(ExitStatus::Exited(c)) => self.log(
                LogLevel::Error,
                id,
                format!("Service {name} process terminated with exit code {c}"),
            ),
            Some(ExitStatus::Signaled(s)) => self.log(
                LogLevel::Error,
                id,
                format!("Service {name} terminated due to signal {}", s as i32),
            ),
        }
        let r = self.rec(id);
        let policy = &r.spec.restart;
        if policy.smooth_recovery && r.target == State::Started && !self.shutting_down {
            if self.restart_allowed(id) {
                self.rec_mut(id).auto_restart = true;
                self.relaunch_smoothly(id);
            } else {
                self.give_up(id, StopReason::Terminated);
            }
            return;
        }
        let wants = match policy.mode {
            RestartMode::Always => true,
            RestartMode::Never => false,
            RestartMode::OnFailure => match status {
                Some(ExitStatus::Exited(c)) => c != 0,
                Some(ExitStatus::Signaled(s)) => !matches!(
                    s,
                    Signal::SIGHUP
                        | Signal::SIGINT
                        | Signal::SIGUSR1
                        | Signal::SIGUSR2
                        | Signal::SIGTERM
                ),
                None => true,
            },
        };
        let restart = r.target == State::Started && !r.once && !self.shutting_down && wants;
        let restart = restart && self.restart_allowed(id);
        let r = self.rec_mut(id);
        r.stop_reason = StopReason::Terminated;
        if restart {
            r.auto_restart = true;
        } else {
            r.target = State::Stopped;
            self.drop_explicit(id);
        }
        self.begin_stopping(id);
    }

    /// Stops a service that cannot be kept running, dependents too.
    fn give_up(&mut self, id: ServiceId, reason: StopReason) {
        let r = self.rec_mut(id);
        r.stop_reason = reason;
        r.target = State::Stopped;
        self.drop_explicit(id);
        self.begin_stopping(id);
    }

    /// Counts an automatic restart against the limit; false (and a log
    /// line) when the limit is reached.
    fn restart_allowed(&mut self, id: ServiceId) -> bool {
        let now = self.now;
        let r = self.rec_mut(id);
        let limit = r.spec.restart.limit_count;
        if limit == 0 {
            return true;
        }
        if now.saturating_sub(r.restart_window_start) < r.spec.restart.limit_interval {
            if r.restart_count >= limit {
                let name = r.spec.name.clone();
                self.log(
                    LogLevel::Error,
                    id,
                    format!("Service {name} restarting too quickly; stopping."),
                );
                return false;
            }
            r.restart_count += 1;
        } else {
            r.restart_window_start = now;
            r.restart_count = 1;
        }
        true
    }

    /// Relaunches the process of a started service without touching its
    /// state or its dependents (after the restart delay).
    fn relaunch_smoothly(&mut self, id: ServiceId) {
        let r = self.rec(id);
        if let Some(last) = r.procs.last_launch {
            let ready_at = last + r.spec.restart.delay;
            if self.now < ready_at {
                let wait = ready_at.saturating_sub(self.now);
                self.arm_timer(id, TimerKind::RestartDelay, wait);
                return;
            }
        }
        self.launch_main(id);
    }

    fn on_timer(&mut self, id: ServiceId, kind: TimerKind) {
        let name = self.name(id).to_string();
        let r = self.rec(id);
        match kind {
            TimerKind::RestartDelay => match r.state {
                State::Starting => {
                    self.launch_main(id);
                    if let Some(t) = self.rec(id).spec.start_timeout {
                        self.arm_timer(id, TimerKind::StartTimeout, t);
                    }
                }
                State::Started if !r.procs.main_alive() => self.launch_main(id),
                _ => {}
            },
            TimerKind::StartTimeout => {
                if r.state != State::Starting {
                    return;
                }
                let pid = r.procs.main_pid.unwrap_or(-1);
                self.log(
                    LogLevel::Warn,
                    id,
                    format!(
                        "Service {name} with pid {pid} exceeded allowed start time; cancelling."
                    ),
                );
                self.rec_mut(id).procs.interrupted_by_us = true;
                self.signal_main(id, Signal::SIGINT);
                if let Some(t) = self.rec(id).spec.stop_timeout {
                    self.arm_timer(id, TimerKind::StopTimeout, t);
                }
                self.fail_start(id, StopReason::TimedOut);
            }
            TimerKind::StopTimeout => {
                if r.state != State::Stopping {
                    return;
                }
                let pid = r.procs.main_pid.unwrap_or(-1);
                let stop_running = r.procs.stop_running;
                self.log(
                    LogLevel::Warn,
                    id,
                    format!("Service {name} with pid {pid} exceeded allowed stop time; killing."),
                );
                self.signal_main(id, Signal::SIGKILL);
                if stop_running {
                    self.emit(Effect::Signal {
                        service: id,
                        role: Role::Stop,
                        signal: Signal::SIGKILL,
                        group: true,
                    });
                }
            }
            TimerKind::CheckRetry => {
                let r = self.rec(id);
                if r.state == State::Starting && r.procs.main_pid.is_some() {
                    self.run_check(id);
                }
            }
        }
    }
}
