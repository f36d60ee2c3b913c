//! The readiness gate: a set of services and a promise. It opens when every
//! one of them is started (ready), fails as soon as one of them fails —
//! naming the service and the reason — and fails when its deadline passes
//! with some still not ready. Both turnstile backends use it: runit sessions
//! build it from `core_services` in `turnstile-ready/conf`, dinit sessions
//! from the services ordered `before = login.target` that boot brings up.
//!
//! The gate is event-driven: [`Gate::observe`] is fed the engine's
//! notifications (the server installs it as a runtime listener), and the
//! deadline is a timerfd in the same event loop. Nothing polls or sleeps.
//!
//! # The gate protocol
//!
//! The service manager serves its gate on a Unix stream socket (in the
//! login's private `srv.<pid>` directory); turnstile's `ready` action
//! connects to it and blocks until the gate has decided. The client sends
//! nothing; the server writes LF-terminated UTF-8 lines, then closes:
//!
//! 1. `braid-gate 1 <ms>` — the greeting: protocol version 1 and the
//!    milliseconds left before the gate times out on the server's side.
//! 2. `waiting: <name> <name> ...` — the services not ready yet, at connect
//!    and again each time one becomes ready (names are separated by single
//!    spaces; a name's own newlines are sent as spaces).
//! 3. The verdict, last: `open`, or `failed: <service>: <reason>`.
//!
//! Clients connecting after the verdict get the greeting and the verdict at
//! once. The client gives up a short grace after the announced deadline, so
//! a stuck manager cannot hold a login forever.

mod client;
mod server;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use braid_core::engine::StopReason;
use braid_core::engine::{Engine, ExitStatus, Notification, ServiceEvent, ServiceId, State};

pub use client::{wait, WaitError};
pub use server::{serve, ServeError, ServedGate};

/// turnstile's default `login_timeout`; the gate's own default stays a
/// little under it (see [`DEFAULT_TIMEOUT`]).
pub const TURNSTILE_LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The gate gives up a little before turnstiled would drop the login, so
/// that the failure (which services, why) reaches the log first.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(55);

/// How the gate was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Failed { service: String, reason: String },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Open => f.write_str("open"),
            Verdict::Failed { service, reason } => write!(f, "failed: {service}: {reason}"),
        }
    }
}

/// A set of services and what has been decided about them.
#[derive(Debug, Clone)]
pub struct Gate {
    members: Vec<(ServiceId, String)>,
    pending: BTreeSet<ServiceId>,
    /// A member that failed while its process still ran (it closed its
    /// readiness channel, say): the verdict waits for the process to end
    /// so that the reason can tell how it ended.
    failing: Option<ServiceId>,
    /// (subject, member): the subject going down while the member is
    /// pending fails the member (see [`Gate::watch_subject`]).
    subjects: Vec<(ServiceId, ServiceId)>,
    verdict: Option<Verdict>,
}

impl Gate {
    /// A gate over the services called `names`, judged on their current
    /// state. A name the engine does not know fails the gate at once.
    pub fn new<S: AsRef<str>>(engine: &Engine, names: &[S]) -> Gate {
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_ref(), n.as_ref())).collect();
        Gate::labelled(engine, &pairs)
    }

    /// A gate over services given as (engine name, name shown to users):
    /// a backend that gates on a helper service of its own (a readiness
    /// probe, say) reports it under the name the user knows.
    pub fn labelled(engine: &Engine, members: &[(&str, &str)]) -> Gate {
        let mut gate = Gate {
            members: Vec::new(),
            pending: BTreeSet::new(),
            failing: None,
            subjects: Vec::new(),
            verdict: None,
        };
        for (name, label) in members {
            match engine.lookup(name) {
                Some(id) => {
                    if !gate.members.iter().any(|(m, _)| *m == id) {
                        gate.members.push((id, label.to_string()));
                        gate.pending.insert(id);
                    }
                }
                None => {
                    gate.verdict.get_or_insert(Verdict::Failed {
                        service: label.to_string(),
                        reason: "no such service".to_string(),
                    });
                }
            }
        }
        let ids: Vec<ServiceId> = gate.pending.iter().copied().collect();
        for id in ids {
            gate.judge(engine, id, None);
        }
        gate.settle();
        gate
    }

    /// Makes `subject` going down (its process exiting) while `member` is
    /// still pending fail `member`: a probe that waits for a service's
    /// readiness check fails as soon as the service itself dies.
    pub fn watch_subject(&mut self, engine: &Engine, member: &str, subject: &str) {
        if let (Some(m), Some(s)) = (engine.lookup(member), engine.lookup(subject)) {
            self.subjects.push((s, m));
        }
    }

    /// The services of the gate, in the order given.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(_, n)| n.as_str())
    }

    /// The services not started yet, in the order given.
    pub fn pending(&self) -> Vec<&str> {
        self.members
            .iter()
            .filter(|(id, _)| self.pending.contains(id))
            .map(|(_, n)| n.as_str())
            .collect()
    }

    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// Takes in one notification; returns whether anything changed (a
    /// service became ready, or the gate was decided).
    pub fn observe(&mut self, engine: &Engine, n: &Notification) -> bool {
        if self.verdict.is_some() {
            return false;
        }
        if let Some(&(_, member)) = self.subjects.iter().find(|(s, _)| *s == n.service) {
            let subject = engine.status(n.service);
            let down = subject.state == State::Stopped
                || (subject.pid.is_none() && subject.last_exit.is_some());
            if self.pending.contains(&member) && down {
                let label = self.label(member).to_string();
                self.verdict = Some(Verdict::Failed {
                    reason: failure_reason(engine, n.service, &label),
                    service: label,
                });
                return true;
            }
        }
        if !self.pending.contains(&n.service) {
            return false;
        }
        let before = self.pending.len();
        self.judge(engine, n.service, Some(n.event));
        self.settle();
        self.verdict.is_some() || self.pending.len() != before
    }

    /// Fails the gate because its deadline passed (if still undecided).
    pub fn time_out(&mut self, after: Duration) {
        if self.verdict.is_some() {
            return;
        }
        if let Some(id) = self.failing {
            self.verdict = Some(Verdict::Failed {
                service: self.label(id).to_string(),
                reason: format!(
                    "failed, and its process was still running after {}",
                    seconds(after)
                ),
            });
            return;
        }
        let pending = self.pending();
        let Some((first, rest)) = pending.split_first() else {
            return;
        };
        let mut reason = format!("not ready within {}", seconds(after));
        if !rest.is_empty() {
            reason.push_str(&format!(" (nor were: {})", rest.join(", ")));
        }
        self.verdict = Some(Verdict::Failed {
            service: first.to_string(),
            reason,
        });
    }

    fn label(&self, id: ServiceId) -> &str {
        self.members
            .iter()
            .find(|(m, _)| *m == id)
            .map_or("", |(_, n)| n.as_str())
    }

    /// Looks at one pending member's state.
    fn judge(&mut self, engine: &Engine, id: ServiceId, event: Option<ServiceEvent>) {
        let status = engine.status(id);
        if status.state == State::Started {
            self.pending.remove(&id);
            return;
        }
        // A member that went down while the gate waited for it failed,
        // however it got there (its start failed, was cancelled because a
        // dependency stopped, or it was stopped).
        let went_down = status.state == State::Stopped
            && (status.stop_reason.is_failure()
                || matches!(
                    event,
                    Some(
                        ServiceEvent::Stopped
                            | ServiceEvent::StartCancelled
                            | ServiceEvent::FailedStart
                    )
                ));
        let failed = self.failing == Some(id)
            || matches!(
                event,
                Some(ServiceEvent::FailedStart | ServiceEvent::StartCancelled)
            )
            || went_down;
        if failed && status.pid.is_some() {
            self.failing = Some(id);
        } else if failed {
            let label = self.label(id).to_string();
            self.verdict = Some(Verdict::Failed {
                reason: failure_reason(engine, id, &label),
                service: label,
            });
        }
    }

    fn settle(&mut self) {
        if self.verdict.is_none() && self.pending.is_empty() {
            self.verdict = Some(Verdict::Open);
        }
    }
}

/// Why a service that should have started did not, in words. `label` is
/// the name the gate reports: a dependency shown under the same name (a
/// probe's own service) is not named again.
fn failure_reason(engine: &Engine, id: ServiceId, label: &str) -> String {
    let status = engine.status(id);
    let blame = |dep: ServiceId, verb: &str| {
        let inner = failure_reason(engine, dep, label);
        if engine.name(dep) == label {
            inner
        } else {
            format!("its dependency {} {verb}: {inner}", engine.name(dep))
        }
    };
    let hard_dep_down = || {
        engine
            .dependencies(id)
            .into_iter()
            .find(|(dep, kind)| kind.is_hard() && engine.status(*dep).state != State::Started)
    };
    match status.stop_reason {
        StopReason::ExecFailed => match &status.exec_failure {
            Some(f) => format!("could not be launched ({f})"),
            None => "could not be launched".to_string(),
        },
        StopReason::TimedOut => "did not become ready within its start timeout".to_string(),
        StopReason::DepFailed => {
            let culprit = engine
                .dependencies(id)
                .into_iter()
                .find(|(dep, kind)| kind.holds() && engine.status(*dep).stop_reason.is_failure());
            match culprit {
                Some((dep, _)) => blame(dep, "failed"),
                None => "a dependency failed".to_string(),
            }
        }
        StopReason::Failed => match status.last_exit {
            Some(exit) => format!("{} before it was ready", exit_text(exit)),
            None => "failed to start".to_string(),
        },
        StopReason::Terminated | StopReason::Normal | StopReason::DepRestart => {
            match (hard_dep_down(), status.last_exit) {
                (Some((dep, _)), _) if dep != id => blame(dep, "stopped"),
                (_, Some(exit)) => format!("{} before it was ready", exit_text(exit)),
                _ => "stopped before it was ready".to_string(),
            }
        }
    }
}

fn exit_text(exit: ExitStatus) -> String {
    match exit {
        ExitStatus::Exited(code) => format!("exited with status {code}"),
        ExitStatus::Signaled(sig) => format!("was killed by {sig}"),
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_core::engine::{Command, Effect, Event, Time};
    use braid_core::spec::{DepKind, ServiceSpec};

    fn engine(specs: Vec<ServiceSpec>) -> Engine {
        let mut e = Engine::new();
        for s in specs {
            e.load(s).unwrap();
        }
        e
    }

    fn sh(name: &str) -> ServiceSpec {
        ServiceSpec::process(name, ["/bin/true"])
    }

    /// Feeds every notification the engine produced to the gate.
    fn feed(gate: &mut Gate, e: &mut Engine) {
        for effect in e.take_effects() {
            if let Effect::Notify(n) = effect {
                gate.observe(e, &n);
            }
        }
    }

    fn spawned(e: &mut Engine, name: &str, pid: i32) {
        let service = e.lookup(name).unwrap();
        e.event(
            Time::ZERO,
            Event::Spawned {
                service,
                role: braid_core::engine::Role::Main,
                pid,
            },
        );
    }

    #[test]
    fn unknown_service_fails_at_once() {
        let e = engine(vec![sh("a")]);
        let gate = Gate::new(&e, &["a", "nope"]);
        assert_eq!(
            gate.verdict(),
            Some(&Verdict::Failed {
                service: "nope".into(),
                reason: "no such service".into()
            })
        );
    }

    #[test]
    fn empty_gate_is_open() {
        let e = engine(vec![]);
        let gate = Gate::new::<&str>(&e, &[]);
        assert_eq!(gate.verdict(), Some(&Verdict::Open));
    }

    #[test]
    fn opens_when_the_last_member_starts() {
        let mut e = engine(vec![sh("a"), sh("b")]);
        let mut gate = Gate::new(&e, &["a", "b"]);
        for name in ["a", "b"] {
            let id = e.lookup(name).unwrap();
            e.command(Time::ZERO, id, Command::Start { pin: false })
                .unwrap();
        }
        feed(&mut gate, &mut e);
        assert_eq!(gate.pending(), ["a", "b"]);
        spawned(&mut e, "a", 10);
        feed(&mut gate, &mut e);
        assert_eq!(gate.pending(), ["b"]);
        assert_eq!(gate.verdict(), None);
        spawned(&mut e, "b", 11);
        feed(&mut gate, &mut e);
        assert_eq!(gate.verdict(), Some(&Verdict::Open));
    }

    #[test]
    fn dependency_failure_names_the_dependency() {
        let mut e = engine(vec![sh("db"), sh("web").depends(DepKind::Hard, "db")]);
        let mut gate = Gate::new(&e, &["web"]);
        let web = e.lookup("web").unwrap();
        e.command(Time::ZERO, web, Command::Start { pin: false })
            .unwrap();
        let db = e.lookup("db").unwrap();
        e.event(
            Time::ZERO,
            Event::SpawnFailed {
                service: db,
                role: braid_core::engine::Role::Main,
                failure: braid_core::engine::LaunchFailure {
                    stage: braid_core::engine::LaunchStage::DoExec,
                    errno: nix::errno::Errno::ENOENT,
                },
            },
        );
        feed(&mut gate, &mut e);
        match gate.verdict() {
            Some(Verdict::Failed { service, reason }) => {
                assert_eq!(service, "web");
                assert!(reason.contains("dependency db failed"), "{reason}");
                assert!(reason.contains("No such file"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeout_names_every_pending_service() {
        let e = engine(vec![sh("a"), sh("b"), sh("c")]);
        let mut gate = Gate::new(&e, &["a", "b", "c"]);
        gate.time_out(Duration::from_secs(3));
        assert_eq!(
            gate.verdict().unwrap().to_string(),
            "failed: a: not ready within 3 s (nor were: b, c)"
        );
    }
}
