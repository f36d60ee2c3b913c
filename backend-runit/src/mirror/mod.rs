//! The `supervise/` mirror: what runsv would show for a process braid's
//! engine supervises, kept on disk byte for byte so that runit's `sv` (or
//! any script reading the files) cannot tell the difference.
//!
//! A [`Mirror`] holds one `supervise/` directory (lock, `control` and `ok`
//! FIFOs, via [`Supervise`]) and the few things runsv knows that the engine
//! does not: the user's want (`u`, `d`/`o`, `x`), the "got TERM" flag, the
//! paused flag (runsv sets it even with no process) and the time of the
//! last change (runsv's, which does not move when `./finish` starts).
//! Everything else — is there a process, is it `./run` or `./finish`, its
//! pid — is read from the engine each time the files are rewritten.
//!
//! A service with a `notification-fd` file is up only once it said it is
//! ready. Until then the files show it down and wanted up (`down: NAME:
//! 3s, normally up, want up`), as runsv shows a service waiting to be
//! restarted: `sv start`, `sv up -w` and `sv check` wait for "run with a
//! pid" and so wait for readiness, and `sv status` does not call a
//! service running that cannot serve yet. Its "since" time is then the
//! moment it became ready.

pub mod control;
pub mod hooks;

use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use braid_core::engine::{Role, ServiceId, State};
use braid_core::runtime::Runtime;
use braid_core::spec::Readiness;

use crate::supervise::{
    Record, RunState, SetupError, Supervise, SuperviseFiles, Tai64N, UpdateWarning, Want, Which,
};

/// One supervised process's `supervise/` directory and runsv's view of it.
#[derive(Debug)]
pub struct Mirror {
    pub id: ServiceId,
    pub which: Which,
    supervise: Supervise,
    files: SuperviseFiles,
    /// What the user last asked for: `u` up, `d`/`o` down, `x` exit.
    pub want: Want,
    /// It exited before it was ready (the engine counts that as a failed
    /// start, runsv as an exit): started again after runsv's delay.
    pub relaunch_pending: bool,
    /// The process that last reported readiness, for a service that
    /// reports it (`None` for the others: they are up once running).
    ready_pid: Option<Option<u32>>,
    since: Tai64N,
    got_term: bool,
    paused: bool,
    /// The process last seen (state, pid), to notice starts and exits.
    seen: (RunState, Option<u32>),
    written: Option<Record>,
    pid_written: Option<Option<u32>>,
}

impl Mirror {
    /// Sets up the `supervise/` directory of `service_dir` (or of its
    /// `log/`) as runsv does, with its first status written: down, since
    /// now. Returns the warnings of that first write too.
    pub fn open(
        service_dir: &Path,
        which: Which,
        id: ServiceId,
        want: Want,
    ) -> Result<(Mirror, Vec<UpdateWarning>), SetupError> {
        let initial = Record {
            since: Tai64N::now(),
            pid: None,
            paused: false,
            want,
            got_term: false,
            state: RunState::Down,
        };
        // runsv's "pid changed" flag starts set, and is cleared by the
        // service's first write: the logger's pid file waits for a logger.
        let write_pid = which == Which::Service;
        let (supervise, report) = Supervise::open(service_dir, which, &initial, write_pid)?;
        let files = SuperviseFiles::new(&supervise.dir);
        let mirror = Mirror {
            id,
            which,
            supervise,
            files,
            want,
            relaunch_pending: false,
            ready_pid: None,
            since: initial.since,
            got_term: false,
            paused: false,
            seen: (RunState::Down, None),
            written: Some(initial),
            pid_written: write_pid.then_some(None),
        };
        Ok((mirror, report.warnings))
    }

    /// The control FIFO's read end, to register with the runtime.
    pub fn control_fd(&self) -> RawFd {
        self.supervise.control().as_raw_fd()
    }

    /// The next command byte waiting in the control FIFO.
    pub fn read_command(&self) -> Option<u8> {
        self.supervise.read_command().ok().flatten()
    }

    /// The process as runsv would see it: run (with `./run`'s pid),
    /// finish (with `./finish`'s), or down.
    pub fn process(&self, rt: &Runtime) -> (RunState, Option<u32>) {
        let status = rt.engine().status(self.id);
        let to_u32 = |p: i32| u32::try_from(p).ok();
        if let Some(pid) = status.pid {
            (RunState::Run, to_u32(pid))
        } else if status.finish_running {
            (
                RunState::Finish,
                rt.pid(self.id, Role::Finish).and_then(to_u32),
            )
        } else {
            (RunState::Down, None)
        }
    }

    /// Makes the files show the service up only once it is ready (its spec
    /// says how it reports readiness), or as soon as it runs.
    pub fn set_readiness(&mut self, readiness: &Readiness) {
        self.ready_pid = (*readiness != Readiness::OnExec).then_some(None);
    }

    /// The process as the files show it: a `./run` that has not reported
    /// readiness yet is not shown at all.
    fn shown(&mut self, rt: &Runtime) -> (RunState, Option<u32>) {
        let (state, pid) = self.process(rt);
        let Some(ready) = &mut self.ready_pid else {
            return (state, pid);
        };
        if state != RunState::Run {
            return (state, pid);
        }
        if rt.engine().status(self.id).state == State::Started {
            *ready = pid;
        }
        if *ready == pid {
            (state, pid)
        } else {
            (RunState::Down, None)
        }
    }

    /// Whether `./run` is running (runsv's "running" for commands).
    pub fn running(&self, rt: &Runtime) -> bool {
        self.process(rt).0 == RunState::Run
    }

    /// Whether no process of this service exists and none is due to start.
    pub fn is_down(&self, rt: &Runtime) -> bool {
        let status = rt.engine().status(self.id);
        status.state == State::Stopped && status.pid.is_none() && !status.finish_running
    }

    pub fn set_got_term(&mut self) {
        self.got_term = true;
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Moves the "since" time to now (runsv does at every start and every
    /// return to down; a failed start is both).
    pub fn touch(&mut self) {
        self.since = Tai64N::now();
    }

    /// The record runsv would write now.
    fn record(&mut self, rt: &Runtime) -> Record {
        let (state, pid) = self.shown(rt);
        if (state, pid) != self.seen {
            match state {
                // A new `./run`: runsv resets its flags when it starts one.
                RunState::Run => {
                    self.since = Tai64N::now();
                    self.got_term = false;
                    self.paused = false;
                }
                RunState::Down => {
                    self.since = Tai64N::now();
                    self.got_term = false;
                }
                // The time stays that of `./run`'s start.
                RunState::Finish => self.got_term = false,
            }
            self.seen = (state, pid);
        }
        let status = rt.engine().status(self.id);
        if status.state == State::Stopping && state == RunState::Run {
            // The engine stopping it (a dependency went down) sent TERM.
            self.got_term = true;
        }
        // Up while the user wants it up (even if it waits for a retry or
        // a dependency), or while the engine keeps it up for a dependent.
        let want = match self.want {
            Want::Exit => Want::Exit,
            Want::Up => Want::Up,
            Want::Down if status.target == State::Started && !status.once => Want::Up,
            Want::Down => Want::Down,
        };
        Record {
            since: self.since,
            pid,
            paused: self.paused,
            want,
            got_term: self.got_term,
            state,
        }
    }

    /// Rewrites `pid` (if it changed), `stat` and `status` when what runsv
    /// would show differs from what was last written.
    pub fn refresh(&mut self, rt: &Runtime) -> Vec<UpdateWarning> {
        let record = self.record(rt);
        if self.written == Some(record) {
            return Vec::new();
        }
        let pid_changed = self.pid_written != Some(record.pid);
        let report = self.files.update(&record, pid_changed);
        if report.pid_written {
            self.pid_written = Some(record.pid);
        }
        self.written = Some(record);
        report.warnings
    }
}
