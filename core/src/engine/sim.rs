//! A simulated world for the engine: a clock, a process table and timers,
//! all in memory. Tests and benchmarks use it to run the real state machine
//! at any scale without starting a single process.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{
    Command, CommandError, CommandOutcome, Effect, Engine, Event, ExitStatus, LaunchFailure,
    LaunchStage, Notification, Role, ServiceEvent, ServiceId, State, Time, TimerId,
};
use crate::spec::ServiceSpec;

/// How a simulated program behaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// `exec` fails with ENOENT.
    pub exec_fails: bool,
    /// Exits by itself this long after launch, with this status.
    pub exits_after: Option<(Duration, ExitStatus)>,
    /// Writes to its readiness channel this long after launch.
    pub ready_after: Option<Duration>,
    /// Takes this long to exit after a stop signal (None: at once).
    pub stop_delay: Option<Duration>,
    /// Ignores the stop signal (only SIGKILL ends it).
    pub ignores_term: bool,
    /// A background daemon that is not braid's child (cannot be waited for).
    pub unsupervised_daemon: bool,
}

#[derive(Debug, Clone)]
enum Scheduled {
    Exit {
        service: ServiceId,
        role: Role,
        pid: i32,
        status: ExitStatus,
    },
    Ready {
        service: ServiceId,
        pid: i32,
    },
    Timer(TimerId),
}

/// One notification with the time it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub at: Time,
    pub service: String,
    pub event: ServiceEvent,
}

/// The engine plus a simulated clock and process table.
#[derive(Debug, Default)]
pub struct World {
    pub engine: Engine,
    pub now: Time,
    behaviours: HashMap<String, Behaviour>,
    /// Role behaviours other than Main (stop, finish, check commands): exit 0
    /// at once unless given here.
    role_exit: HashMap<(String, Role), ExitStatus>,
    running: HashMap<(ServiceId, Role), i32>,
    next_pid: i32,
    schedule: BTreeMap<(Time, u64), Scheduled>,
    seq: u64,
    timers: HashMap<TimerId, (Time, u64)>,
    /// Every notification, in order.
    pub seen: Vec<Seen>,
    /// Every effect, in order (for assertions on signals, spawns, logs).
    pub effects: Vec<Effect>,
    /// Spawns of a main process that was already running (must stay 0).
    pub double_spawns: usize,
    pub spawns: usize,
}

impl World {
    pub fn new() -> World {
        World {
            next_pid: 100,
            ..World::default()
        }
    }

    /// Loads a spec; panics on a load error (tests load valid specs).
    pub fn load(&mut self, spec: ServiceSpec) -> ServiceId {
        let name = spec.name.clone();
        self.engine
            .load(spec)
            .unwrap_or_else(|e| panic!("loading {name}: {e:?}"))
    }

    pub fn behave(&mut self, name: &str, b: Behaviour) {
        self.behaviours.insert(name.to_string(), b);
    }

    /// Makes a non-main command of `name` exit with `status`.
    pub fn role_exits(&mut self, name: &str, role: Role, status: ExitStatus) {
        self.role_exit.insert((name.to_string(), role), status);
    }

    pub fn id(&self, name: &str) -> ServiceId {
        self.engine
            .lookup(name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    pub fn state(&self, name: &str) -> State {
        self.engine.status(self.id(name)).state
    }

    pub fn cmd(&mut self, name: &str, cmd: Command) -> Result<CommandOutcome, CommandError> {
        let id = self.id(name);
        let r = self.engine.command(self.now, id, cmd);
        self.execute();
        r
    }

    pub fn stop_all(&mut self) {
        self.engine.stop_all(self.now);
        self.execute();
    }

    /// The main process of `name` exits now with `status`.
    pub fn exit(&mut self, name: &str, status: ExitStatus) {
        let id = self.id(name);
        if self.running.remove(&(id, Role::Main)).is_some() {
            self.engine.event(
                self.now,
                Event::Exited {
                    service: id,
                    role: Role::Main,
                    status,
                },
            );
            self.execute();
        }
    }

    /// Reports readiness of `name` now.
    pub fn ready(&mut self, name: &str) {
        let id = self.id(name);
        self.engine.event(self.now, Event::Ready { service: id });
        self.execute();
    }

    pub fn pid(&self, name: &str) -> Option<i32> {
        self.running.get(&(self.id(name), Role::Main)).copied()
    }

    pub fn running_count(&self) -> usize {
        self.running.len()
    }

    /// Runs scheduled happenings up to `now + d`, advancing the clock.
    pub fn advance(&mut self, d: Duration) {
        self.execute();
        let until = self.now + d;
        while let Some((&(at, seq), _)) = self.schedule.iter().next() {
            if at > until {
                break;
            }
            let what = self.schedule.remove(&(at, seq)).expect("key just seen");
            self.now = at;
            self.happen(what);
        }
        self.now = until;
    }

    /// Runs everything scheduled until nothing is left (bounded by `limit`
    /// of simulated time). Returns whether it settled.
    pub fn settle(&mut self, limit: Duration) -> bool {
        self.execute();
        let until = self.now + limit;
        while let Some((&(at, _), _)) = self.schedule.iter().next() {
            if at > until {
                return false;
            }
            self.advance(at.saturating_sub(self.now));
        }
        true
    }

    /// Notifications for one service, in order.
    pub fn events_of(&self, name: &str) -> Vec<ServiceEvent> {
        self.seen
            .iter()
            .filter(|s| s.service == name && s.event != ServiceEvent::ProcessChanged)
            .map(|s| s.event)
            .collect()
    }

    /// Log texts, in order.
    pub fn logs(&self) -> Vec<String> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Log(l) => Some(l.text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Signals sent to `name`'s main process, in order.
    pub fn signals_to(&self, name: &str) -> Vec<Signal> {
        let id = self.id(name);
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Signal {
                    service,
                    role: Role::Main,
                    signal,
                    ..
                } if *service == id => Some(*signal),
                _ => None,
            })
            .collect()
    }

    fn at(&mut self, after: Duration, what: Scheduled) {
        self.seq += 1;
        self.schedule.insert((self.now + after, self.seq), what);
    }

    fn happen(&mut self, what: Scheduled) {
        match what {
            Scheduled::Exit {
                service,
                role,
                pid,
                status,
            } => {
                if self.running.get(&(service, role)) != Some(&pid) {
                    return; // that process is already gone
                }
                self.running.remove(&(service, role));
                self.engine.event(
                    self.now,
                    Event::Exited {
                        service,
                        role,
                        status,
                    },
                );
            }
            Scheduled::Ready { service, pid } => {
                if self.running.get(&(service, Role::Main)) != Some(&pid) {
                    return;
                }
                self.engine.event(self.now, Event::Ready { service });
            }
            Scheduled::Timer(timer) => {
                self.timers.remove(&timer);
                self.engine.event(self.now, Event::TimerFired(timer));
            }
        }
        self.execute();
    }

    /// Executes the engine's effects until it has nothing more to say.
    fn execute(&mut self) {
        loop {
            let effects = self.engine.take_effects();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                self.effects.push(effect.clone());
                self.perform(effect);
            }
        }
    }

    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Spawn { service, role, .. } => self.spawn(service, role),
            Effect::Signal {
                service,
                role,
                signal,
                ..
            } => {
                let Some(&pid) = self.running.get(&(service, role)) else {
                    return;
                };
                let b = self.behaviour(service);
                let status = ExitStatus::Signaled(signal);
                match signal {
                    Signal::SIGKILL => self.at(
                        Duration::ZERO,
                        Scheduled::Exit {
                            service,
                            role,
                            pid,
                            status,
                        },
                    ),
                    Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT
                        if !b.ignores_term =>
                    {
                        self.at(
                            b.stop_delay.unwrap_or_default(),
                            Scheduled::Exit {
                                service,
                                role,
                                pid,
                                status,
                            },
                        )
                    }
                    _ => {}
                }
            }
            Effect::ReadPidFile { service } => {
                self.next_pid += 1;
                let pid = self.next_pid;
                let supervised = !self.behaviour(service).unsupervised_daemon;
                if supervised {
                    self.running.insert((service, Role::Main), pid);
                }
                self.engine.event(
                    self.now,
                    Event::PidFileRead {
                        service,
                        result: Ok(super::Daemon { pid, supervised }),
                    },
                );
            }
            Effect::ArmTimer { timer, at } => {
                if let Some(old) = self.timers.remove(&timer) {
                    self.schedule.remove(&old);
                }
                self.seq += 1;
                self.schedule
                    .insert((at, self.seq), Scheduled::Timer(timer));
                self.timers.insert(timer, (at, self.seq));
            }
            Effect::CancelTimer { timer } => {
                if let Some(old) = self.timers.remove(&timer) {
                    self.schedule.remove(&old);
                }
            }
            Effect::Notify(Notification { service, event }) => {
                let name = self.engine.name(service).to_string();
                self.seen.push(Seen {
                    at: self.now,
                    service: name,
                    event,
                });
            }
            Effect::ChainTo { .. } | Effect::Log(_) => {}
        }
    }

    fn behaviour(&self, id: ServiceId) -> Behaviour {
        self.behaviours
            .get(self.engine.name(id))
            .cloned()
            .unwrap_or_default()
    }

    fn spawn(&mut self, service: ServiceId, role: Role) {
        self.spawns += 1;
        let b = self.behaviour(service);
        if role == Role::Main && self.running.contains_key(&(service, Role::Main)) {
            self.double_spawns += 1;
        }
        if role == Role::Main && b.exec_fails {
            self.engine.event(
                self.now,
                Event::SpawnFailed {
                    service,
                    role,
                    failure: LaunchFailure {
                        stage: LaunchStage::DoExec,
                        errno: nix::errno::Errno::ENOENT,
                    },
                },
            );
            return;
        }
        self.next_pid += 1;
        let pid = self.next_pid;
        self.running.insert((service, role), pid);
        self.engine
            .event(self.now, Event::Spawned { service, role, pid });
        match role {
            Role::Main => {
                if let Some(after) = b.ready_after {
                    self.at(after, Scheduled::Ready { service, pid });
                }
                let kind_exits = !self.engine.spec(service).kind.has_main_process()
                    || matches!(
                        self.engine.spec(service).kind,
                        crate::spec::Kind::BackgroundProcess { .. }
                    );
                let exit = b.exits_after.or(if kind_exits {
                    // Scripted and background launchers finish at once.
                    Some((Duration::ZERO, ExitStatus::Exited(0)))
                } else {
                    None
                });
                if let Some((after, status)) = exit {
                    self.at(
                        after,
                        Scheduled::Exit {
                            service,
                            role,
                            pid,
                            status,
                        },
                    );
                }
            }
            other => {
                let name = self.engine.name(service).to_string();
                let status = self
                    .role_exit
                    .get(&(name, other))
                    .copied()
                    .unwrap_or(ExitStatus::Exited(0));
                self.at(
                    Duration::ZERO,
                    Scheduled::Exit {
                        service,
                        role: other,
                        pid,
                        status,
                    },
                );
            }
        }
    }
}
