//! The runtime: one thread, one `mio::Poll`, executing the engine's effects
//! with real processes and feeding back what happens.
//!
//! Every turn of the loop drains the engine's effects (launch, signal, read a
//! pid file, arm a timer, notify, log), feeding the resulting events back,
//! then sleeps in `poll` until an fd is ready or the next timer is due. With
//! no timer armed it sleeps until the kernel has something to say: nothing
//! wakes an idle braid.
//!
//! # Extension points for backends
//!
//! A backend builds a `Runtime` around an `Engine` it has loaded, then adds:
//!
//! - **fd sources** (`register_fd`): a control socket, FIFOs, inotify. The
//!   handler owns its fd and is called with `&mut Runtime` when the fd is
//!   ready, so it can issue engine commands (`command`), load specs
//!   (`engine_mut().load`), register more fds (an accepted connection) or
//!   ask the loop to exit. Polling is edge-triggered: a handler must read
//!   (or accept, or write) until `WouldBlock` before returning.
//! - **listeners** (`add_listener`): called for every `Notify` effect, in
//!   order, with `&mut Runtime` (to read `engine().status`, write to a
//!   client's connection, or issue further commands).
//! - **signal handlers** (`on_signal`): SIGTERM and SIGINT default to
//!   "stop all services, exit 0 once all are stopped"; SIGHUP, SIGUSR1 and
//!   SIGUSR2 keep their default action until a handler is set.
//! - **a loader** (`set_loader`), asked for services the engine needs but
//!   does not have (chain-to; its error text follows "Couldn't chain to
//!   service NAME: " in the log), and **a log sink** (`set_log_sink`), given
//!   the engine's log lines (stderr by default).
//! - **in-memory logs** (`log_buffer`, `clear_log_buffer`) of services whose
//!   output is `Output::Buffer`, and **an output tap** (`set_output_tap`,
//!   `tap_output`) given what such services write as it is read, for
//!   followers.
//! - **a control connector** (`set_control_connector`), asked for the
//!   process's end of a new control connection whenever a service whose
//!   spec has `control_fd_var` is launched.
//!
//! - **a process record** (`record_processes`): a file naming the
//!   processes braid launched, so that the next braid on the session can
//!   stop what a killed one left running (`leftovers::reclaim`).
//!
//! Handlers and listeners must not call `run`, `turn` or `run_until`.
//!
//! # Children
//!
//! The runtime reaps every child of the process (`waitpid(-1)`), and makes
//! the process a child subreaper (so that double-forking daemons come back
//! to it): while a `Runtime` exists, nothing else in the process may wait
//! for children of its own.
//!
//! When a service's main process exits while the service is being stopped,
//! what is left of its process group is stopped too (see `leftovers`).
//!
//! SIGXFSZ is caught and ignored: a file braid writes (a log, the event
//! log) that reaches `RLIMIT_FSIZE` fails that write instead of killing
//! braid. Services get the default action back, as with every handler.

pub mod env_block;
pub mod envdir;
pub mod event_log;
pub mod launch;
pub mod leftovers;
pub mod logfile;
pub mod output;
pub mod reaper;
pub mod signals;
pub mod timers;

mod effects;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::Signal;

use crate::engine::{
    Command, CommandError, CommandOutcome, Engine, Event, LogLevel, LogLine, Notification, Role,
    ServiceId, State, Time,
};
use leftovers::{Record, Sweeps};
use output::{OutputPipe, ReadSink};
use reaper::Children;
use signals::SignalPipe;
use timers::Timers;

/// The token of the signal pipe; sources use `index + 1`.
const SIGNAL_TOKEN: Token = Token(0);

/// Settings that differ between the faces braid wears.
#[derive(Debug, Clone)]
pub struct Options {
    /// Appended to a service's in-memory log when its process is relaunched
    /// (only if the log is not empty and the whole text fits; a leading
    /// newline is dropped if the log already ends with one).
    pub restart_note: Option<Vec<u8>>,
    /// Give children the default SIGPIPE action even though braid ignores
    /// SIGPIPE (dinit's children inherit "ignored"; runit's do not).
    pub reset_sigpipe: bool,
    /// Make this process a child subreaper, so that daemons which
    /// double-fork are reparented to braid and can be supervised.
    pub subreaper: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            restart_note: None,
            reset_sigpipe: true,
            subreaper: true,
        }
    }
}

/// Which ways an fd became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// The peer closed its writing side (EOF follows the buffered data).
    pub read_closed: bool,
    pub write_closed: bool,
    pub error: bool,
}

impl Ready {
    fn of(event: &mio::event::Event) -> Ready {
        Ready {
            readable: event.is_readable(),
            writable: event.is_writable(),
            read_closed: event.is_read_closed(),
            write_closed: event.is_write_closed(),
            error: event.is_error(),
        }
    }
}

/// What a source handler wants after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerResult {
    Keep,
    /// Deregister the fd and drop the handler (which closes the fd it owns).
    Remove,
}

/// Names a registered fd source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceToken(usize);

/// Called when its fd is ready. The handler owns the fd.
pub trait FdHandler {
    fn on_ready(&mut self, rt: &mut Runtime, token: SourceToken, ready: Ready) -> HandlerResult;
}

impl<F> FdHandler for F
where
    F: FnMut(&mut Runtime, SourceToken, Ready) -> HandlerResult,
{
    fn on_ready(&mut self, rt: &mut Runtime, token: SourceToken, ready: Ready) -> HandlerResult {
        self(rt, token, ready)
    }
}

pub type Listener = Box<dyn FnMut(&mut Runtime, &Notification)>;
pub type SignalHandler = Box<dyn FnMut(&mut Runtime, Signal)>;
pub type LogSink = Box<dyn FnMut(&Engine, &LogLine)>;
/// Loads the named service into the engine (it must not be loaded yet).
pub type Loader = Box<dyn FnMut(&mut Runtime, &str) -> Result<ServiceId, String>>;
/// Given a tapped service's new output; returns whether it still wants it.
pub type OutputTap = Box<dyn FnMut(ServiceId, &[u8]) -> bool>;
/// Opens a control connection for a process of the service, serves the
/// backend's end, and returns the process's end (close-on-exec in braid).
pub type ControlConnector = Box<dyn FnMut(&mut Runtime, ServiceId) -> io::Result<OwnedFd>>;

/// Counters, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Returns from `poll`.
    pub wakeups: u64,
    pub spawned: u64,
    pub spawn_failures: u64,
    /// Exits of known processes reported to the engine.
    pub reaped: u64,
}

enum Source {
    /// A child forked but not yet known to have exec'd: its status pipe.
    Launch {
        service: ServiceId,
        role: Role,
        pending: launch::Pending,
    },
    /// The read end of a process's readiness pipe.
    Readiness {
        service: ServiceId,
        fd: OwnedFd,
        seen_data: bool,
    },
    /// The read end of a service's output pipe that braid reads (an
    /// in-memory log or a rotated log file).
    LogBuffer { service: ServiceId },
    /// A backend's fd; the handler is out of its slot while it runs.
    Backend {
        fd: RawFd,
        handler: Option<Box<dyn FdHandler>>,
        /// Handled with braid's own pipes, before signals.
        early: bool,
    },
}

/// A service's `Output::Buffer` or rotated `Output::File`: the sink,
/// whether a process was launched into it before (to mark restarts), what
/// was read but not yet given to the output tap, and whether writing its
/// file fails (reported once, when it starts failing).
struct BufferState {
    sink: ReadSink,
    launched: bool,
    unsent: Vec<u8>,
    failing: bool,
}

/// The event loop. See the module documentation.
pub struct Runtime {
    engine: Engine,
    poll: Poll,
    events: Events,
    epoch: Instant,
    options: Options,
    signals: SignalPipe,
    timers: Timers,
    children: Children,
    sources: Vec<Option<Source>>,
    free_sources: Vec<usize>,
    /// The readiness watch of each service's current main process.
    readiness: HashMap<ServiceId, usize>,
    /// Children whose exec is not confirmed yet: pid → their status source.
    launching: HashMap<i32, usize>,
    buffers: HashMap<ServiceId, BufferState>,
    output_tap: Option<OutputTap>,
    /// Services whose output goes to `output_tap`.
    tapped: std::collections::HashSet<ServiceId>,
    /// `Output::Pipe` pipes, by producer; kept for braid's lifetime.
    pipes: HashMap<ServiceId, OutputPipe>,
    /// Activation sockets, kept while the service is up.
    sockets: HashMap<ServiceId, OwnedFd>,
    base_env: IndexMap<OsString, OsString>,
    /// `base_env` prepared for launches; made again after a change.
    base_env_block: Option<env_block::EnvBlock>,
    listeners: Vec<Listener>,
    signal_handlers: HashMap<Signal, Option<SignalHandler>>,
    log_sink: Option<LogSink>,
    loader: Option<Loader>,
    control_connector: Option<ControlConnector>,
    pending_events: VecDeque<Event>,
    exit_code: Option<i32>,
    exit_when_stopped: Option<i32>,
    in_dispatch: bool,
    stats: Stats,
    record: Option<Record>,
    sweeps: Sweeps,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("children", &self.children.len())
            .field("timers", &self.timers.len())
            .field("sources", &(self.sources.len() - self.free_sources.len()))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime for `engine` with default options.
    pub fn new(engine: Engine) -> io::Result<Runtime> {
        Runtime::with_options(engine, Options::default())
    }

    /// Creates the poll and the signal pipe, catches SIGCHLD, SIGTERM and
    /// SIGINT, and (by default) becomes a child subreaper. The base
    /// environment is this process's environment.
    pub fn with_options(engine: Engine, options: Options) -> io::Result<Runtime> {
        let poll = Poll::new()?;
        let signals = SignalPipe::new()?;
        poll.registry().register(
            &mut SourceFd(&signals.fd()),
            SIGNAL_TOKEN,
            Interest::READABLE,
        )?;
        for sig in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGXFSZ,
        ] {
            signals::catch(sig)?;
        }
        if options.subreaper {
            nix::sys::prctl::set_child_subreaper(true)?;
        }
        let mut signal_handlers: HashMap<Signal, Option<SignalHandler>> = HashMap::new();
        for sig in [Signal::SIGTERM, Signal::SIGINT] {
            signal_handlers.insert(sig, Some(Box::new(stop_all_and_exit)));
        }
        Ok(Runtime {
            engine,
            poll,
            events: Events::with_capacity(256),
            epoch: Instant::now(),
            options,
            signals,
            timers: Timers::new(),
            children: Children::new(),
            sources: Vec::new(),
            free_sources: Vec::new(),
            readiness: HashMap::new(),
            launching: HashMap::new(),
            buffers: HashMap::new(),
            output_tap: None,
            tapped: Default::default(),
            pipes: HashMap::new(),
            sockets: HashMap::new(),
            base_env: std::env::vars_os().collect(),
            base_env_block: None,
            listeners: Vec::new(),
            signal_handlers,
            log_sink: None,
            loader: None,
            control_connector: None,
            pending_events: VecDeque::new(),
            exit_code: None,
            exit_when_stopped: None,
            in_dispatch: false,
            stats: Stats::default(),
            record: None,
            sweeps: Sweeps::default(),
        })
    }

    // ----- the engine -----

    /// Now on the engine's clock (time since the runtime was created).
    pub fn now(&self) -> Time {
        Time(self.epoch.elapsed())
    }

    /// The engine's clock reading for an instant.
    pub fn time_at(&self, instant: Instant) -> Time {
        Time(instant.saturating_duration_since(self.epoch))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, to load specs or change the graph. Effects it produces
    /// are executed by the loop before it next sleeps.
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Applies a command to a service, now.
    pub fn command(&mut self, id: ServiceId, cmd: Command) -> Result<CommandOutcome, CommandError> {
        let now = self.now();
        self.engine.command(now, id, cmd)
    }

    /// Stops every service (shutdown).
    pub fn stop_all(&mut self) {
        let now = self.now();
        self.engine.stop_all(now);
    }

    /// The environment every service's is overlaid on.
    pub fn base_env_mut(&mut self) -> &mut IndexMap<OsString, OsString> {
        self.base_env_block = None;
        &mut self.base_env
    }

    /// The pid of a service's process in `role`, as braid tracks it (for a
    /// background service, the daemon named by its pid file).
    pub fn pid(&self, service: ServiceId, role: Role) -> Option<i32> {
        self.children.pid(service, role).map(|p| p.as_raw())
    }

    /// The exit status of a process a backend launched itself (with
    /// `launch::Launch`) that the loop reaped before the backend could: the
    /// loop reaps every child, so a backend watching its own process asks
    /// here when its own wait finds nothing.
    pub fn reaped_exit(&mut self, pid: i32) -> Option<crate::engine::ExitStatus> {
        self.children.orphan_exit(nix::unistd::Pid::from_raw(pid))
    }

    /// How many processes braid is waiting for.
    pub fn child_count(&self) -> usize {
        self.children.len()
    }

    /// How many engine timers are armed.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How many stopped services' process groups are waiting for their
    /// SIGKILL deadline.
    pub fn sweep_count(&self) -> usize {
        self.sweeps.len()
    }

    // ----- in-memory logs -----

    /// What the service's processes wrote, for `Output::Buffer` services
    /// that have run (`None` otherwise). Reads the pipe first.
    pub fn log_buffer(&mut self, service: ServiceId) -> Option<&[u8]> {
        self.fill_sink(service);
        let state = self.buffers.get(&service)?;
        state.sink.buffer().map(|b| b.contents())
    }

    pub fn clear_log_buffer(&mut self, service: ServiceId) {
        self.fill_sink(service);
        if let Some(b) = self
            .buffers
            .get_mut(&service)
            .and_then(|s| s.sink.buffer_mut())
        {
            b.clear();
        }
    }

    /// Sets what is given the output of tapped services, at the end of
    /// each turn (never from inside a handler) or on `deliver_output`.
    pub fn set_output_tap(&mut self, tap: impl FnMut(ServiceId, &[u8]) -> bool + 'static) {
        self.output_tap = Some(Box::new(tap));
    }

    /// Gives the output tap what `service` writes from now on (what was
    /// read before and not yet delivered is delivered first), until the
    /// tap says it no longer wants it.
    pub fn tap_output(&mut self, service: ServiceId) {
        self.deliver_output();
        self.tapped.insert(service);
    }

    /// Gives the output tap what tapped services wrote and braid has read.
    /// A handler calling this must not hold what the tap borrows.
    pub fn deliver_output(&mut self) {
        let Some(mut tap) = self.output_tap.take() else {
            return;
        };
        let buffers = &mut self.buffers;
        self.tapped
            .retain(|service| match buffers.get_mut(service) {
                Some(state) if !state.unsent.is_empty() => {
                    let bytes = std::mem::take(&mut state.unsent);
                    tap(*service, &bytes)
                }
                _ => true,
            });
        self.output_tap.get_or_insert(tap);
    }

    /// Reads a service's output pipe into its store (and for the tap),
    /// logging when writing its file starts to fail.
    fn fill_sink(&mut self, service: ServiceId) {
        let Some(state) = self.buffers.get_mut(&service) else {
            return;
        };
        let tap = self.tapped.contains(&service).then_some(&mut state.unsent);
        match state.sink.fill(tap) {
            Ok(()) => state.failing = false,
            Err(_) if state.failing => {}
            Err(e) => {
                state.failing = true;
                self.log(&LogLine {
                    level: LogLevel::Error,
                    service: Some(service),
                    text: format!("cannot write the log file: {e}"),
                });
            }
        }
    }

    // ----- output pipes -----

    /// The writing end of a producer's `Output::Pipe`, for programs that
    /// should write into the same log (runit's `control/` hooks).
    pub fn output_pipe(&self, producer: ServiceId) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pipes.get(&producer).map(OutputPipe::write_end)
    }

    /// Closes braid's ends of a producer's `Output::Pipe`, so that its
    /// consumer reads end-of-file once the producer's processes are gone
    /// (runsv's exit sequence). A later launch of the producer makes a new
    /// pipe.
    pub fn close_output_pipe(&mut self, producer: ServiceId) {
        self.pipes.remove(&producer);
    }

    // ----- extension points -----

    /// Watches `fd` (owned by `handler`) for `interest`. Its handler runs
    /// after the turn's exits and timers are handled (a client's request is
    /// answered knowing them).
    pub fn register_fd(
        &mut self,
        fd: RawFd,
        interest: Interest,
        handler: impl FdHandler + 'static,
    ) -> io::Result<SourceToken> {
        self.register_source(fd, interest, Box::new(handler), false)
    }

    /// Like `register_fd`, for a source whose news must be in place before
    /// anything the turn's exits cause is launched (a change of the session
    /// environment, say): its handler runs first in the turn.
    pub fn register_fd_early(
        &mut self,
        fd: RawFd,
        interest: Interest,
        handler: impl FdHandler + 'static,
    ) -> io::Result<SourceToken> {
        self.register_source(fd, interest, Box::new(handler), true)
    }

    fn register_source(
        &mut self,
        fd: RawFd,
        interest: Interest,
        handler: Box<dyn FdHandler>,
        early: bool,
    ) -> io::Result<SourceToken> {
        let slot = self.add_source(Source::Backend {
            fd,
            handler: Some(handler),
            early,
        });
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), Token(slot + 1), interest)
        {
            self.sources[slot] = None;
            self.free_sources.push(slot);
            return Err(e);
        }
        Ok(SourceToken(slot))
    }

    /// Changes what a registered fd is watched for.
    pub fn reregister_fd(&mut self, token: SourceToken, interest: Interest) -> io::Result<()> {
        match self.sources.get(token.0) {
            Some(Some(Source::Backend { fd, .. })) => {
                self.poll
                    .registry()
                    .reregister(&mut SourceFd(fd), Token(token.0 + 1), interest)
            }
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such fd source")),
        }
    }

    /// Stops watching a registered fd and drops its handler. Called from
    /// the handler itself, the handler is dropped once it returns.
    pub fn deregister_fd(&mut self, token: SourceToken) {
        if matches!(
            self.sources.get(token.0),
            Some(Some(Source::Backend { .. }))
        ) {
            self.remove_source(token.0);
        }
    }

    /// Adds a listener for state changes (`Notify` effects).
    pub fn add_listener(&mut self, listener: impl FnMut(&mut Runtime, &Notification) + 'static) {
        self.listeners.push(Box::new(listener));
    }

    /// Catches `signal` and calls `handler` for it, replacing the previous
    /// handler (for SIGTERM and SIGINT: stop all, exit when stopped).
    pub fn on_signal(
        &mut self,
        signal: Signal,
        handler: impl FnMut(&mut Runtime, Signal) + 'static,
    ) -> io::Result<()> {
        signals::catch(signal)?;
        self.signal_handlers.insert(signal, Some(Box::new(handler)));
        Ok(())
    }

    pub fn set_log_sink(&mut self, sink: impl FnMut(&Engine, &LogLine) + 'static) {
        self.log_sink = Some(Box::new(sink));
    }

    /// Keeps the list of processes braid launched in `path`, rewritten
    /// before the loop sleeps whenever it changed, for
    /// [`leftovers::reclaim`] after braid was killed. Call `reclaim` on the
    /// same path first.
    pub fn record_processes(&mut self, path: std::path::PathBuf) {
        self.record = Some(Record::new(path));
        self.children.keep_journal();
    }

    pub fn set_loader(
        &mut self,
        loader: impl FnMut(&mut Runtime, &str) -> Result<ServiceId, String> + 'static,
    ) {
        self.loader = Some(Box::new(loader));
    }

    /// Sets what makes the control connections passed to services whose
    /// spec has `control_fd_var`. Without one, launching such a service
    /// fails at the control socket stage.
    pub fn set_control_connector(
        &mut self,
        connector: impl FnMut(&mut Runtime, ServiceId) -> io::Result<OwnedFd> + 'static,
    ) {
        self.control_connector = Some(Box::new(connector));
    }

    // ----- running -----

    /// Makes `run` return `code` at the end of the current turn.
    pub fn exit(&mut self, code: i32) {
        self.exit_code = Some(code);
    }

    /// Makes `run` return `code` once every service is stopped.
    pub fn exit_when_all_stopped(&mut self, code: i32) {
        self.exit_when_stopped = Some(code);
    }

    /// Runs until `exit` (or a shutdown) says to stop; returns the code.
    pub fn run(&mut self) -> io::Result<i32> {
        loop {
            self.turn(None)?;
            if let Some(code) = self.exit_code {
                return Ok(code);
            }
        }
    }

    /// Runs until `done` holds (checked after every turn, and first) or
    /// `timeout` passes; returns whether `done` held.
    pub fn run_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&mut Runtime) -> bool,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            self.execute_effects();
            if done(self) {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.turn(Some(left))?;
        }
    }

    /// One turn: execute pending effects, wait for an fd, a signal or the
    /// next timer (at most `timeout`), handle what happened, and execute the
    /// effects that produced.
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if self.in_dispatch {
            return Err(io::Error::other("the loop was re-entered from a handler"));
        }
        self.execute_effects();
        self.write_record();
        let next = match (self.timers.next_deadline(), self.sweeps.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let until_timer = next.map(|at| at.saturating_sub(self.now()));
        let timeout = match (timeout, until_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.stats.wakeups += 1;

        self.in_dispatch = true;
        // Braid's own pipes and early sources first, then signals, then the
        // other backends' fds: output and readiness written before a process
        // exited are seen before its exit, and a client's request is
        // answered knowing every exit and expired timer that came before it
        // (and what those caused).
        let mut signalled = false;
        let mut backend = Vec::new();
        let ready: Vec<(Token, Ready)> = self
            .events
            .iter()
            .map(|e| (e.token(), Ready::of(e)))
            .collect();
        for (token, ready) in ready {
            if token == SIGNAL_TOKEN {
                signalled = true;
            } else if matches!(
                self.sources.get(token.0 - 1),
                Some(Some(Source::Backend { early: false, .. }))
            ) {
                backend.push((token.0 - 1, ready));
            } else {
                self.dispatch(token.0 - 1, ready);
            }
        }
        if signalled {
            for signal in self.signals.drain() {
                self.on_caught(signal);
            }
        }
        let now = self.now();
        while let Some(timer) = self.timers.pop_due(now) {
            self.pending_events.push_back(Event::TimerFired(timer));
        }
        if !backend.is_empty() {
            self.execute_effects();
            for (slot, ready) in backend {
                self.dispatch(slot, ready);
            }
        }
        self.sweeps.run_due(now);
        self.in_dispatch = false;

        self.execute_effects();
        self.deliver_output();
        if let Some(code) = self.exit_when_stopped {
            if self.engine.all_stopped() {
                self.exit_code.get_or_insert(code);
            }
        }
        Ok(())
    }

    // ----- inside the loop -----

    fn add_source(&mut self, source: Source) -> usize {
        match self.free_sources.pop() {
            Some(slot) => {
                self.sources[slot] = Some(source);
                slot
            }
            None => {
                self.sources.push(Some(source));
                self.sources.len() - 1
            }
        }
    }

    fn remove_source(&mut self, slot: usize) {
        let Some(source) = self.sources.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let fd = match &source {
            Source::Launch { pending, .. } => pending.status_fd().as_raw_fd(),
            Source::Readiness { fd, .. } => fd.as_raw_fd(),
            Source::LogBuffer { service } => match self.buffers.get(service) {
                Some(state) => state.sink.pipe.read_end().as_raw_fd(),
                None => -1,
            },
            Source::Backend { fd, .. } => *fd,
        };
        // The fd may already be closed by its owner; nothing to undo then.
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        drop(source);
        self.free_sources.push(slot);
    }

    fn dispatch(&mut self, slot: usize, ready: Ready) {
        match self.sources.get_mut(slot) {
            Some(Some(Source::Launch { .. })) => {
                self.launched(slot);
            }
            Some(Some(Source::Readiness {
                service,
                fd,
                seen_data,
            })) => {
                let service = *service;
                let (got_data, eof) = drain(fd.as_raw_fd());
                if got_data && !*seen_data {
                    *seen_data = true;
                    self.pending_events.push_back(Event::Ready { service });
                }
                if eof {
                    if !*seen_data {
                        self.pending_events
                            .push_back(Event::ReadinessLost { service });
                    }
                    self.readiness.remove(&service);
                    self.remove_source(slot);
                }
            }
            Some(Some(Source::LogBuffer { service })) => {
                let service = *service;
                self.fill_sink(service);
            }
            Some(Some(Source::Backend { handler, .. })) => {
                let Some(mut handler) = handler.take() else {
                    return;
                };
                let result = handler.on_ready(self, SourceToken(slot), ready);
                match self.sources.get_mut(slot) {
                    // Still ours (not deregistered, slot not reused).
                    Some(Some(Source::Backend {
                        handler: h @ None, ..
                    })) => {
                        if result == HandlerResult::Keep {
                            *h = Some(handler);
                        } else {
                            self.remove_source(slot);
                        }
                    }
                    _ => drop(handler),
                }
            }
            _ => {}
        }
    }

    /// A launch's outcome is known: tells the engine. Returns whether the
    /// exec succeeded.
    fn launched(&mut self, slot: usize) -> bool {
        let Some(Source::Launch {
            service,
            role,
            pending,
        }) = self.sources.get_mut(slot).and_then(Option::take)
        else {
            return false;
        };
        let fd = pending.status_fd().as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        self.free_sources.push(slot);
        let pid = pending.pid;
        self.launching.remove(&pid.as_raw());
        match pending.finish() {
            Ok(pid) => {
                self.stats.spawned += 1;
                self.pending_events.push_back(Event::Spawned {
                    service,
                    role,
                    pid: pid.as_raw(),
                });
                true
            }
            Err(failure) => {
                self.children.remove(pid);
                if role == Role::Main {
                    if let Some(slot) = self.readiness.remove(&service) {
                        self.remove_source(slot);
                    }
                }
                self.stats.spawn_failures += 1;
                self.pending_events.push_back(Event::SpawnFailed {
                    service,
                    role,
                    failure,
                });
                false
            }
        }
    }

    fn on_caught(&mut self, signal: Signal) {
        if signal == Signal::SIGCHLD {
            self.reap();
            return;
        }
        let Some(slot) = self.signal_handlers.get_mut(&signal) else {
            return;
        };
        let Some(mut handler) = slot.take() else {
            return;
        };
        handler(self, signal);
        if let Some(slot @ None) = self.signal_handlers.get_mut(&signal) {
            *slot = Some(handler);
        }
    }

    /// Rewrites the process record if the children changed.
    fn write_record(&mut self) {
        let Some(record) = &mut self.record else {
            return;
        };
        if record.written == Some(self.children.changes()) {
            return;
        }
        if let Some(err) = record.write(&mut self.children, &self.engine) {
            self.log(&LogLine {
                level: LogLevel::Error,
                service: None,
                text: err,
            });
        }
    }

    fn reap(&mut self) {
        for (service, role, pid, status) in self.children.reap() {
            // Its exec is confirmed (or refused) before its exit is told,
            // even when the status pipe's event is still to come.
            if let Some(slot) = self.launching.remove(&pid.as_raw()) {
                if !self.launched(slot) {
                    continue;
                }
            }
            self.stats.reaped += 1;
            if role == Role::Main && self.engine.status(service).target == State::Stopped {
                let spec = self.engine.spec(service);
                let grace = spec.stop_timeout.unwrap_or(leftovers::DEFAULT_GRACE);
                let deadline = self.now() + grace;
                self.sweeps.begin(
                    pid.as_raw(),
                    spec.stop_signal,
                    !spec.flags.signal_process_only,
                    deadline,
                );
            }
            if role == crate::engine::Role::Main {
                self.fill_sink(service);
                if let Some(slot) = self.readiness.remove(&service) {
                    self.remove_source(slot);
                }
            }
            self.pending_events.push_back(Event::Exited {
                service,
                role,
                status,
            });
        }
    }
}

/// The default for SIGTERM and SIGINT.
fn stop_all_and_exit(rt: &mut Runtime, _: Signal) {
    rt.stop_all();
    rt.exit_when_all_stopped(0);
}

/// Reads a non-blocking fd until it would block: whether anything was read,
/// and whether it reached end of file (or an error).
fn drain(fd: RawFd) -> (bool, bool) {
    let mut buf = [0u8; 512];
    let mut got = false;
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return (got, true),
            Ok(_) => got = true,
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => return (got, false),
            Err(_) => return (got, true),
        }
    }
}
