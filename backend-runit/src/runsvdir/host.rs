//! Everything the runit face keeps inside the runtime: the supervisors
//! (one per service directory), which engine service belongs to which
//! mirror, the scan of the services directory, and the deadlines.
//!
//! The runtime calls in through these doors, all registered here:
//!
//! - the listener, on every engine notification: rewrite that mirror's
//!   files at once (so intermediate states such as "finish, no pid yet"
//!   are written as runsv writes them);
//! - the wake pipe, read on the next loop turn, after the engine's effects
//!   have been executed (a stop's signals are sent): run `control/d` /
//!   `control/x`, move exit sequences on, start services waiting for their
//!   dependencies. Only asked for when there is such work;
//! - the control FIFOs, the timerfd, and the pidfd of a running
//!   `control/X` hook (see [`crate::mirror::hooks`]): a command waiting
//!   for its hook resumes when the hook exits, and the loop never waits.
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use braid_core::engine::{Command, Notification, ServiceEvent, ServiceId, State, StopReason};
use braid_core::runtime::{HandlerResult, Runtime};
use braid_core::spec::ServiceSpec;
use mio::Interest;
use nix::fcntl::OFlag;

use super::scan::Scan;
use super::supervisor::{Job, RunningHook, Supervisor};
use super::timer::{Action, Timers};
use crate::errstr::errstr;
use crate::mirror::control::{self, Context, Step};
use crate::mirror::hooks::{self, Ended};
use crate::mirror::Mirror;
use crate::service_dir::{self, RESTART_DELAY};
use crate::supervise::{Want, Which};

/// Which program the host serves.
#[derive(Debug)]
pub enum Mode {
    /// `runsv DIR`: exit 0 once its one supervisor has exited.
    Runsv,
    /// `runsvdir DIR`: supervisors come and go with the directory's entries.
    Runsvdir(Scan),
}

#[derive(Debug)]
pub struct Host {
    this: Weak<RefCell<Host>>,
    supervisors: HashMap<u64, Supervisor>,
    next_key: u64,
    by_id: HashMap<ServiceId, (u64, Which)>,
    dirty: HashSet<u64>,
    /// Some service started: those waiting for their dependencies may go.
    started_any: bool,
    wake_read: OwnedFd,
    wake_write: OwnedFd,
    /// A byte is in the wake pipe already.
    wake_pending: bool,
    pub timers: Timers,
    pub mode: Mode,
    /// Exit with this code once every supervisor has exited.
    exit_when_empty: Option<i32>,
}

fn io_err(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Host {
    /// Creates the host and plugs it into `rt`.
    pub fn install(rt: &mut Runtime, mode: Mode) -> io::Result<Rc<RefCell<Host>>> {
        let (wake_read, wake_write) =
            nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io_err)?;
        let timers = Timers::new().map_err(io_err)?;
        let (wake_fd, timer_fd) = (wake_read.as_raw_fd(), timers.fd());
        let host = Rc::new_cyclic(|this| {
            RefCell::new(Host {
                this: this.clone(),
                supervisors: HashMap::new(),
                next_key: 0,
                by_id: HashMap::new(),
                dirty: HashSet::new(),
                started_any: false,
                wake_read,
                wake_write,
                wake_pending: false,
                timers,
                mode,
                exit_when_empty: None,
            })
        });
        let weak = Rc::downgrade(&host);
        rt.add_listener(move |rt, n| {
            if let Some(h) = weak.upgrade() {
                h.borrow_mut().on_notify(rt, n);
            }
        });
        let weak = Rc::downgrade(&host);
        rt.register_fd(
            wake_fd,
            Interest::READABLE,
            move |rt: &mut Runtime, _, _| {
                if let Some(h) = weak.upgrade() {
                    h.borrow_mut().on_wake(rt);
                }
                HandlerResult::Keep
            },
        )?;
        let weak = Rc::downgrade(&host);
        rt.register_fd(
            timer_fd,
            Interest::READABLE,
            move |rt: &mut Runtime, _, _| {
                if let Some(h) = weak.upgrade() {
                    h.borrow_mut().on_timer(rt);
                }
                HandlerResult::Keep
            },
        )?;
        Ok(host)
    }

    /// Whether a supervisor for the service called `name` is still there.
    pub fn has_name(&self, name: &str) -> bool {
        self.supervisors.values().any(|s| s.label == name)
    }

    /// Asks for a deferred pass on the next loop turn.
    fn wake(&mut self) {
        if !std::mem::replace(&mut self.wake_pending, true) {
            let _ = nix::unistd::write(&self.wake_write, b"w");
        }
    }

    // ----- starting a supervisor -----

    /// Supervises the service directory `dir` as the engine service `name`
    /// (runsv's startup): load, set up `supervise/` (and `log/supervise/`),
    /// listen on the control FIFOs, start what is wanted up. Problems are
    /// printed as runsv prints them, naming the directory `label`; `None`
    /// means nothing is supervised.
    pub fn start(&mut self, rt: &mut Runtime, dir: &Path, label: &str, name: &str) -> Option<u64> {
        let fatal = |msg: &dyn std::fmt::Display| eprintln!("runsv {label}: fatal: {msg}");
        let dir_fd = match nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            // SAFETY: `open` just returned this fd and nothing else owns it.
            Ok(fd) => unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            Err(e) => {
                fatal(&service_dir::LoadError::ChangeDir(io_err(e)));
                return None;
            }
        };
        let dir = PathBuf::from(format!("/proc/self/fd/{}", dir_fd.as_raw_fd()));
        let sd = match service_dir::load(&dir, name) {
            Ok(sd) => sd,
            Err(e) => {
                fatal(&e);
                return None;
            }
        };
        for w in &sd.warnings {
            eprintln!("runsv {label}: warning: {w}");
        }
        let service_id = match load_or_reload(rt, sd.service.clone()) {
            Ok(id) => id,
            Err(e) => {
                fatal(&e);
                return None;
            }
        };
        let want_of = |down: bool| if down { Want::Down } else { Want::Up };
        let (service, warnings) = match Mirror::open(
            &sd.path,
            Which::Service,
            service_id,
            want_of(sd.service.starts_down),
        ) {
            Ok(m) => m,
            Err(e) => {
                fatal(&e);
                retire(rt, service_id);
                return None;
            }
        };
        for w in warnings {
            eprintln!("runsv {label}: warning: {w}");
        }
        let mut service = service;
        service.set_readiness(&sd.service.readiness);
        let logger = match &sd.logger {
            None => None,
            Some(spec) => {
                let opened = load_or_reload(rt, spec.clone()).and_then(|id| {
                    Mirror::open(&sd.path, Which::Log, id, want_of(spec.starts_down)).map_err(|e| {
                        retire(rt, id);
                        e.to_string()
                    })
                });
                match opened {
                    Ok((m, warnings)) => {
                        for w in warnings {
                            eprintln!("runsv {label}: warning: {w}");
                        }
                        Some(m)
                    }
                    Err(e) => {
                        fatal(&e);
                        drop(service);
                        retire(rt, service_id);
                        return None;
                    }
                }
            }
        };

        let key = self.next_key;
        self.next_key += 1;
        let mut sup = Supervisor {
            label: label.to_string(),
            dir: sd.path.clone(),
            dir_fd,
            service,
            logger,
            tokens: Vec::new(),
            restore: None,
            hook: None,
            jobs: VecDeque::new(),
            await_effects: false,
            removed: false,
        };
        for m in sup.mirrors_mut() {
            self.by_id.insert(m.id, (key, m.which));
        }
        let fds: Vec<(i32, Which)> = sup
            .mirrors_mut()
            .map(|m| (m.control_fd(), m.which))
            .collect();
        for (fd, which) in fds {
            let weak = self.this.clone();
            let handler = move |rt: &mut Runtime, _, _| {
                if let Some(h) = weak.upgrade() {
                    h.borrow_mut().on_control(rt, key, which);
                }
                HandlerResult::Keep
            };
            match rt.register_fd(fd, Interest::READABLE, handler) {
                Ok(token) => sup.tokens.push(token),
                Err(e) => eprintln!(
                    "runsv {label}: warning: unable to watch control: {}",
                    crate::errstr::io_errstr(&e)
                ),
            }
        }
        // runsv starts the logger first.
        let wanted: Vec<ServiceId> = sup
            .logger
            .iter()
            .chain(std::iter::once(&sup.service))
            .filter(|m| m.want == Want::Up)
            .map(|m| m.id)
            .collect();
        self.supervisors.insert(key, sup);
        for id in wanted {
            let _ = rt.command(id, Command::Start { pin: false });
        }
        Some(key)
    }

    // ----- the exit sequence -----

    /// Makes a supervisor exit as runsv does on `x` or SIGTERM: the service
    /// is stopped (for good, if `removed`), then the logger, then the
    /// supervisor goes away.
    pub fn exit(&mut self, rt: &mut Runtime, key: u64, removed: bool) {
        let Some(sup) = self.supervisors.get_mut(&key) else {
            return;
        };
        sup.removed |= removed;
        sup.jobs.push_back(Job::Letter(b'x'));
        self.drive(rt, key);
    }

    /// Every supervisor exits; then the program exits with `code`.
    pub fn shutdown(&mut self, rt: &mut Runtime, code: i32) {
        self.exit_when_empty = Some(code);
        let keys: Vec<u64> = self.supervisors.keys().copied().collect();
        for key in keys {
            self.exit(rt, key, true);
        }
        if self.supervisors.is_empty() {
            rt.exit(code);
        }
    }

    /// The supervisor is done: close its `supervise/` directories and take
    /// its services out of the engine.
    fn finish(&mut self, rt: &mut Runtime, key: u64) {
        let Some(sup) = self.supervisors.remove(&key) else {
            return;
        };
        for token in sup.tokens.iter().chain(sup.hook.as_ref().map(|h| &h.token)) {
            rt.deregister_fd(*token);
        }
        let ids: Vec<ServiceId> = std::iter::once(sup.service.id)
            .chain(sup.logger.as_ref().map(|m| m.id))
            .collect();
        let removed = sup.removed;
        let Supervisor {
            service,
            logger,
            dir_fd,
            ..
        } = sup;
        // Closing the mirrors releases the locks: `sv` now sees no runsv.
        drop((service, logger));
        for id in ids.into_iter().rev() {
            self.by_id.remove(&id);
            retire(rt, id);
        }
        drop(dir_fd);
        match &mut self.mode {
            Mode::Runsv => rt.exit(0),
            Mode::Runsvdir(scan) => {
                scan.forget(key);
                if let Some(code) = self.exit_when_empty {
                    if self.supervisors.is_empty() {
                        rt.exit(code);
                    }
                } else {
                    // runsvdir notices a dead runsv and starts it again; an
                    // entry that went away may have a successor waiting.
                    let after = if removed {
                        std::time::Duration::ZERO
                    } else {
                        RESTART_DELAY
                    };
                    self.timers.arm(after, Action::Rescan);
                }
            }
        }
    }

    // ----- the runtime's calls -----

    fn on_notify(&mut self, rt: &mut Runtime, n: &Notification) {
        let Some(&(key, which)) = self.by_id.get(&n.service) else {
            return;
        };
        let Some(sup) = self.supervisors.get_mut(&key) else {
            return;
        };
        let exiting = sup.service.want == Want::Exit;
        let label = sup.label.clone();
        let Some(m) = sup.mirror_mut(which) else {
            return;
        };
        let status = rt.engine().status(m.id);
        match n.event {
            ServiceEvent::Started => {
                self.started_any = true;
                if let Some(failure) = status.exec_failure {
                    // Counted as a start and an exit with 111 (runsv's
                    // child prints this and exits 111).
                    let what = match which {
                        Which::Service => "./run",
                        Which::Log => "log/./run",
                    };
                    eprintln!(
                        "runsv {label}: fatal: unable to start {what}: {}",
                        errstr(failure.errno as i32)
                    );
                    m.touch();
                }
            }
            ServiceEvent::FailedStart
                if status.stop_reason == StopReason::Failed && m.want == Want::Up && !exiting =>
            {
                // It exited (or closed its notification fd) before it was
                // ready. runsv restarts whatever exits, a second later.
                m.relaunch_pending = true;
                self.timers.arm(RESTART_DELAY, Action::Relaunch(m.id));
            }
            _ => {}
        }
        for w in m.refresh(rt) {
            eprintln!("runsv {label}: warning: {w}");
        }
        let settle = sup.needs_settle();
        if settle {
            self.dirty.insert(key);
        }
        if settle || self.started_any {
            self.wake();
        }
    }

    fn on_control(&mut self, rt: &mut Runtime, key: u64, which: Which) {
        if which == Which::Service {
            self.drive(rt, key);
            return;
        }
        // No hooks on a logger's FIFO: every letter applies at once.
        let Some(sup) = self.supervisors.get_mut(&key) else {
            return;
        };
        let Supervisor {
            label, dir, logger, ..
        } = sup;
        let Some(m) = logger else {
            return;
        };
        while let Some(letter) = m.read_command() {
            let ctx = Context { dir, label };
            if let Step::Done(after) = control::apply(rt, m, ctx, letter) {
                debug_assert!(after.hook.is_none() && after.restore.is_none());
            }
            for w in m.refresh(rt) {
                eprintln!("runsv {label}: warning: {w}");
            }
        }
    }

    /// Runs a supervisor's waiting jobs, then the commands on its
    /// service's FIFO, one at a time, until a hook (or the turn's effects)
    /// must be waited for or there is nothing left.
    fn drive(&mut self, rt: &mut Runtime, key: u64) {
        loop {
            let Some(sup) = self.supervisors.get_mut(&key) else {
                return;
            };
            if sup.hook.is_some() || sup.await_effects {
                break;
            }
            let job = match sup.jobs.pop_front() {
                Some(job) => job,
                None => match sup.service.read_command() {
                    Some(letter) => Job::Letter(letter),
                    None => break,
                },
            };
            self.run_job(rt, key, job);
        }
        if self
            .supervisors
            .get(&key)
            .is_some_and(Supervisor::needs_settle)
        {
            self.dirty.insert(key);
            self.wake();
        }
    }

    fn run_job(&mut self, rt: &mut Runtime, key: u64, job: Job) {
        let Some(sup) = self.supervisors.get_mut(&key) else {
            return;
        };
        match job {
            Job::Letter(letter) => {
                let ctx = Context {
                    dir: &sup.dir,
                    label: &sup.label,
                };
                match control::apply(rt, &mut sup.service, ctx, letter) {
                    Step::Done(after) => sup.absorb(after),
                    Step::Hook(hook) => self.start_hook(rt, key, hook, Some(letter)),
                }
            }
            Job::Hook(hook) => {
                if hooks::exists(&sup.dir, &sup.label, hook) {
                    self.start_hook(rt, key, hook, None);
                }
            }
        }
        if let Some(sup) = self.supervisors.get_mut(&key) {
            for w in sup.service.refresh(rt) {
                eprintln!("runsv {}: warning: {w}", sup.label);
            }
        }
    }

    /// Launches `control/<hook>` and watches for its exit; `then` is the
    /// letter it decides.
    fn start_hook(&mut self, rt: &mut Runtime, key: u64, hook: char, then: Option<u8>) {
        let Some(sup) = self.supervisors.get_mut(&key) else {
            return;
        };
        // Its stdout is the log pipe, as runsv gives it.
        let stdout = sup
            .logger
            .as_ref()
            .and_then(|_| rt.output_pipe(sup.service.id));
        let Some(running) = hooks::launch(&sup.dir, &sup.label, hook, stdout) else {
            self.resume(rt, key, then, false);
            return;
        };
        let fd = running.pidfd.as_raw_fd();
        let weak = self.this.clone();
        let handler = move |rt: &mut Runtime, _, _| match running.ended(rt) {
            Ended::Not => HandlerResult::Keep,
            ended => {
                if let Some(h) = weak.upgrade() {
                    h.borrow_mut().hook_ended(rt, key, ended == Ended::Handled);
                }
                HandlerResult::Remove
            }
        };
        match rt.register_fd(fd, Interest::READABLE, handler) {
            Ok(token) => sup.hook = Some(RunningHook { token, then }),
            Err(e) => {
                eprintln!(
                    "runsv {}: warning: unable to wait for child control/{hook}: {}",
                    sup.label,
                    crate::errstr::io_errstr(&e)
                );
                self.resume(rt, key, then, false);
            }
        }
    }

    fn hook_ended(&mut self, rt: &mut Runtime, key: u64, handled: bool) {
        let Some(hook) = self
            .supervisors
            .get_mut(&key)
            .and_then(|sup| sup.hook.take())
        else {
            return;
        };
        self.resume(rt, key, hook.then, handled);
        self.drive(rt, key);
    }

    /// Finishes the command a hook decided.
    fn resume(&mut self, rt: &mut Runtime, key: u64, then: Option<u8>, handled: bool) {
        let (Some(letter), Some(sup)) = (then, self.supervisors.get_mut(&key)) else {
            return;
        };
        let after = control::resume(rt, &mut sup.service, letter, handled);
        sup.absorb(after);
        for w in sup.service.refresh(rt) {
            eprintln!("runsv {}: warning: {w}", sup.label);
        }
    }

    fn on_wake(&mut self, rt: &mut Runtime) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(self.wake_read.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
        self.wake_pending = false;
        let keys: Vec<u64> = self.dirty.drain().collect();
        for key in keys {
            self.settle(rt, key);
        }
        if std::mem::take(&mut self.started_any) {
            self.start_waiting(rt);
        }
    }

    /// After a turn's effects: run post-stop hooks and the commands that
    /// waited for them, put back a spec, and move the exit sequence on.
    fn settle(&mut self, rt: &mut Runtime, key: u64) {
        let Some(sup) = self.supervisors.get_mut(&key) else {
            return;
        };
        sup.await_effects = false;
        if sup.service.is_down(rt) {
            if let Some(spec) = sup.restore.take() {
                let _ = rt.engine_mut().reload(sup.service.id, *spec);
            }
        }
        self.drive(rt, key);
        let Some(sup) = self.supervisors.get_mut(&key) else {
            return;
        };
        // runsv goes on with the exit only once its hooks are done.
        let busy = sup.hook.is_some() || !sup.jobs.is_empty() || sup.await_effects;
        if busy || sup.service.want != Want::Exit || !sup.service.is_down(rt) {
            return;
        }
        let service = sup.service.id;
        match &mut sup.logger {
            Some(log) if !log.is_down(rt) => {
                if log.want != Want::Exit {
                    // runsv closes its ends of the log pipe: the logger
                    // reads end of file once the service's processes are
                    // gone, and exits by itself. The engine is told to
                    // wait for that, without a signal or a restart.
                    log.want = Want::Exit;
                    rt.close_output_pipe(service);
                    let mut quiet = rt.engine().spec(log.id).clone();
                    quiet.stop_signal = None;
                    let _ = rt.engine_mut().reload(log.id, quiet);
                    let _ = rt.command(
                        log.id,
                        Command::Stop {
                            pin: false,
                            gentle: false,
                        },
                    );
                    for w in log.refresh(rt) {
                        eprintln!("runsv {}: warning: {w}", sup.label);
                    }
                }
            }
            _ => self.finish(rt, key),
        }
    }

    /// Starts services wanted up that are down because a dependency was,
    /// once all their dependencies are up (never pulling one up that was
    /// stopped on purpose).
    fn start_waiting(&mut self, rt: &mut Runtime) {
        let mut starts = Vec::new();
        for sup in self.supervisors.values() {
            let m = &sup.service;
            if m.want != Want::Up || m.relaunch_pending {
                continue;
            }
            let engine = rt.engine();
            let status = engine.status(m.id);
            if status.target == State::Started || status.state != State::Stopped {
                continue;
            }
            let deps_up = engine
                .dependencies(m.id)
                .iter()
                .all(|(d, _)| engine.status(*d).state == State::Started);
            if deps_up {
                starts.push(m.id);
            }
        }
        for id in starts {
            let _ = rt.command(id, Command::Start { pin: false });
        }
    }

    fn on_timer(&mut self, rt: &mut Runtime) {
        for action in self.timers.take_due() {
            match action {
                Action::Relaunch(id) => self.relaunch(rt, id),
                Action::Rescan => self.rescan(rt),
                Action::Dot => {
                    let _ = nix::unistd::write(std::io::stderr(), b".");
                    self.timers.arm(super::proctitle::DOT_INTERVAL, Action::Dot);
                }
            }
        }
    }

    fn relaunch(&mut self, rt: &mut Runtime, id: ServiceId) {
        let Some(&(key, which)) = self.by_id.get(&id) else {
            return;
        };
        let Some(m) = self
            .supervisors
            .get_mut(&key)
            .and_then(|s| s.mirror_mut(which))
        else {
            return;
        };
        if !m.relaunch_pending {
            return;
        }
        m.relaunch_pending = false;
        if m.want == Want::Up {
            let _ = rt.command(id, Command::Start { pin: false });
        }
        let _ = m.refresh(rt);
    }

    /// Scans the services directory (runsvdir only).
    pub fn rescan(&mut self, rt: &mut Runtime) {
        let Mode::Runsvdir(scan) = &mut self.mode else {
            return;
        };
        let unwatched = match &mut scan.watch {
            Some(watch) => {
                watch.retry();
                !watch.is_watching()
            }
            None => false,
        };
        if unwatched {
            // No directory to watch yet: look again every second, as
            // runsvdir does while it cannot scan.
            self.timers
                .arm(std::time::Duration::from_secs(1), Action::Rescan);
        }
        let Mode::Runsvdir(scan) = &mut self.mode else {
            return;
        };
        let plan = scan.plan();
        for key in plan.gone {
            self.exit(rt, key, true);
        }
        for (slot, path, name) in plan.new {
            // A replaced entry's predecessor still holds its name; the
            // rescan after it exits starts this one.
            if self.has_name(&name) {
                continue;
            }
            let key = self.start(rt, &path, &name, &name);
            if let Mode::Runsvdir(scan) = &mut self.mode {
                scan.started(slot, key);
            }
            if key.is_none() {
                // Like a runsv that died at startup: tried again at
                // runsvdir's next look.
                self.timers
                    .arm(std::time::Duration::from_secs(5), Action::Rescan);
            }
        }
    }

    /// The services directory changed (or its watch says something).
    pub fn on_watch(&mut self, rt: &mut Runtime) {
        let changed = match &mut self.mode {
            Mode::Runsvdir(Scan {
                watch: Some(watch), ..
            }) => watch.drain(),
            _ => false,
        };
        if changed {
            self.rescan(rt);
        }
    }
}

/// Loads a spec, or replaces the spec of a service of that name left in
/// the engine (stopped and pinned down) by a supervisor that went away.
fn load_or_reload(rt: &mut Runtime, spec: ServiceSpec) -> Result<ServiceId, String> {
    let engine = rt.engine_mut();
    match engine.lookup(&spec.name) {
        Some(id) => {
            engine.reload(id, spec).map_err(|e| format!("{e:?}"))?;
            let _ = rt.command(id, Command::Unpin);
            Ok(id)
        }
        None => engine.load(spec).map_err(|e| match e {
            braid_core::engine::LoadError::Cycle(names) => {
                format!("dependency cycle: {}", names.join(" -> "))
            }
            other => format!("{other:?}"),
        }),
    }
}

/// Takes a service out of the engine; one that others depend on stays,
/// pinned down so that they cannot start it.
fn retire(rt: &mut Runtime, id: ServiceId) {
    if rt.engine_mut().unload(id).is_err() {
        let _ = rt.command(
            id,
            Command::Stop {
                pin: true,
                gentle: false,
            },
        );
    }
}
