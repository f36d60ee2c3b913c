//! The `dinit` program: braid as a dinit daemon (user mode), with the
//! control socket that both braid's and the real `dinitctl` drive.
//!
//! One `Daemon` value holds what the socket handlers, the engine listener
//! and the loader share (service bookkeeping, the console, connections);
//! it sits in an `Rc<RefCell>` because every runtime callback needs it.
//! No borrow of it is held across a call into the runtime that may run
//! callbacks (`command` followed by a settle, `run_until`).

mod cgroup;
mod connection;
mod console;
mod environment;
mod follow;
mod options;
mod server;
mod services;
mod status;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use std::time::Duration;

use braid_core::engine::{Command, Engine, Notification, ServiceEvent, ServiceId};
use braid_core::runtime::{Options as RuntimeOptions, Runtime};
use nix::sys::signal::{SigHandler, Signal};

use crate::description::{
    default_service_dirs, process_env, read_env_file, Context, Environment, Loader,
};
use crate::protocol::{Info, ServiceEvent as WireEvent, ShutdownType};
use connection::{ConnId, Connection};
use console::Console;
use options::{Level, Parsed};
use services::Services;

/// What the daemon's callbacks share.
#[derive(Debug)]
pub(crate) struct Daemon {
    services: Services,
    console: Console,
    conns: HashMap<ConnId, Connection>,
    next_conn: ConnId,
    /// Services whose last start failed: their stop is not announced.
    start_failed: HashSet<ServiceId>,
    /// The shutdown a client asked for.
    shutdown: Option<ShutdownType>,
    /// SHUTDOWN REMAIN: keep running once everything has stopped.
    remain: bool,
    /// The listening socket's registration.
    listener: Option<braid_core::runtime::SourceToken>,
}

pub(crate) type Shared = Rc<RefCell<Daemon>>;

/// The text dinit appends to a service's log buffer when it restarts.
const RESTART_NOTE: &[u8] = b"\n(dinit: note: service restarted)\n";

/// The `dinit` program.
pub fn main(argv: Vec<OsString>) -> i32 {
    match embed(&argv) {
        Ok(daemon) => daemon.run(),
        Err(code) => code,
    }
}

/// A dinit daemon set up inside another program (turnstile's dinit
/// backend): the control socket listens, the named services are loaded and
/// starting and the ready fd was written, but the loop is not running yet.
/// The program may add its own fd sources, listeners and signal handlers to
/// `runtime`, then calls [`Embedded::run`].
#[derive(Debug)]
pub struct Embedded {
    pub runtime: Runtime,
    shared: Shared,
    socket_path: Vec<u8>,
}

impl Embedded {
    /// Runs until no service is active (or a shutdown completes), removes
    /// the socket, and returns the exit code `dinit` would.
    pub fn run(self) -> i32 {
        let Embedded {
            mut runtime,
            shared,
            socket_path,
        } = self;
        let code = run(&mut runtime, &shared);
        remove_socket(&socket_path);
        if shared.borrow().shutdown == Some(ShutdownType::Reboot) {
            // As dinit does in user mode: die by the signal a reboot means.
            // SAFETY: restoring the default disposition has no preconditions.
            let _ = unsafe { nix::sys::signal::signal(Signal::SIGINT, SigHandler::SigDfl) };
            let _ = nix::sys::signal::raise(Signal::SIGINT);
        }
        code
    }
}

/// Parses `argv` (argv[0] included) as `dinit` does and sets the daemon
/// up; `Err` is the exit code when it should not run (help, version, a
/// bad option, a socket that cannot be opened).
pub fn embed(argv: &[OsString]) -> Result<Embedded, i32> {
    let opts = match options::parse(argv) {
        Parsed::Run(o) => o,
        Parsed::Done => return Err(0),
        Parsed::Failed => return Err(1),
    };
    ignore_terminal_signals();
    if let Some(fd) = opts.ready_fd.filter(|fd| *fd > 2) {
        // Not for the services we launch.
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    let mut console = Console::new(opts.quiet, opts.console_level, opts.log_level);
    let socket_path = opts
        .socket_path
        .clone()
        .unwrap_or_else(|| options::default_socket_path(opts.system));

    let rt_options = RuntimeOptions {
        restart_note: Some(RESTART_NOTE.to_vec()),
        reset_sigpipe: false,
        ..RuntimeOptions::default()
    };
    let mut rt = match Runtime::with_options(Engine::new(), rt_options) {
        Ok(rt) => rt,
        Err(e) => {
            console.log(Level::Error, &format!("cannot set up the event loop: {e}"));
            return Err(1);
        }
    };
    // As dinit: found before the control socket is opened; a base that
    // cannot be told only fails the services that need it.
    let cgroup_base = match cgroup::base(opts.cgroup_path.as_deref()) {
        Ok(base) => base,
        Err(warning) => {
            console.log(Level::Warn, warning);
            None
        }
    };
    let listener = match server::open(&socket_path) {
        Ok(l) => l,
        Err(text) => {
            console.log(Level::Error, &text);
            return Err(1);
        }
    };
    // The socket is ours, so no other instance runs on this session: stop
    // what a killed one left running before starting anything.
    let record = record_path(&socket_path);
    match braid_core::runtime::leftovers::reclaim(&record) {
        Ok(found) => {
            for l in found {
                console.log(Level::Warn, &leftover_text(&l));
            }
        }
        Err(e) => console.log(
            Level::Error,
            &format!("cannot read {}: {}", record.display(), io_strerror(&e)),
        ),
    }
    rt.record_processes(record);
    // braid's session event log, for `braid timeline` (not a dinit feature).
    braid_core::runtime::event_log::install(
        &mut rt,
        braid_core::runtime::event_log::Session::Dinit {
            socket: std::path::PathBuf::from(OsStr::from_bytes(&socket_path)),
        },
    );
    let dirs = if opts.service_dirs.is_empty() {
        default_service_dirs(opts.system)
    } else {
        opts.service_dirs.clone()
    };
    if let Some(path) = &opts.log_file {
        if let Err(e) = console.open_log_file(path) {
            console.log(
                Level::Error,
                &format!("Setting up log failed: {}", io_strerror(&e)),
            );
            remove_socket(&socket_path);
            return Err(1);
        }
    }
    let mut context = Context {
        env: Environment::default(),
        original: process_env(),
        full_name_in_env: false,
    };
    if let Some(file) = &opts.env_file {
        let read = read_env_file(
            std::path::Path::new(file),
            std::path::Path::new("."),
            &mut context.env,
            &mut |_| {},
        );
        if let Err(e) = read {
            console.log(
                Level::Error,
                &format!("Cannot read environment file '{file}': {}", io_strerror(&e)),
            );
            remove_socket(&socket_path);
            return Err(1);
        }
    }
    environment::sync(&mut rt, &context);

    let mut loader = Loader::new(dirs, context);
    loader.cgroup_base = cgroup_base;
    let shared: Shared = Rc::new(RefCell::new(Daemon {
        services: Services::new(loader),
        console,
        conns: HashMap::new(),
        next_conn: 0,
        start_failed: HashSet::new(),
        shutdown: None,
        remain: false,
        listener: None,
    }));
    match server::register(&mut rt, &shared, listener) {
        Ok(token) => shared.borrow_mut().listener = Some(token),
        Err(e) => {
            shared.borrow_mut().console.log(
                Level::Error,
                &format!("Error listening on control socket: {e}"),
            );
            remove_socket(&socket_path);
            return Err(1);
        }
    }
    install_callbacks(&mut rt, &shared);
    environment::watch_env_dir(&mut rt, &shared);
    let s = shared.clone();
    let path = socket_path.clone();
    let installed = rt.on_signal(Signal::SIGUSR1, move |rt: &mut Runtime, _| {
        reopen_socket(rt, &s, &path);
    });
    if let Err(e) = installed {
        shared
            .borrow_mut()
            .console
            .log(Level::Warn, &format!("cannot catch SIGUSR1: {e}"));
    }

    for name in &opts.services {
        let loaded = {
            let mut d = shared.borrow_mut();
            let d = &mut *d;
            d.services.load(rt.engine_mut(), &mut d.console, name)
        };
        match loaded {
            Ok(id) => {
                let _ = rt.command(id, Command::Start { pin: false });
                connection::settle(&mut rt);
            }
            Err(failure) => shared
                .borrow_mut()
                .console
                .log(Level::Error, &failure.startup_log_text()),
        }
    }
    if let Some(fd) = opts.ready_fd {
        report_ready(fd, &socket_path);
    }
    Ok(Embedded {
        runtime: rt,
        shared,
        socket_path,
    })
}

/// Runs the loop until no service is active (unless told to remain).
fn run(rt: &mut Runtime, shared: &Shared) -> i32 {
    let done = |rt: &mut Runtime| rt.engine().all_stopped() && !shared.borrow().remain;
    loop {
        match rt.run_until(Duration::from_secs(3600), done) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                shared
                    .borrow_mut()
                    .console
                    .log(Level::Error, &format!("event loop failed: {e}"));
                return 1;
            }
        }
    }
    // Last words to clients (the replies to a SHUTDOWN, say) before the
    // sockets close.
    for c in shared.borrow_mut().conns.values_mut() {
        c.flush();
    }
    0
}

/// Engine events → console lines and client events; engine log lines →
/// the console; `pass-cs-fd` connections; chain-to loads; SIGTERM/SIGINT.
fn install_callbacks(rt: &mut Runtime, shared: &Shared) {
    let s = shared.clone();
    rt.add_listener(move |rt: &mut Runtime, n: &Notification| on_service_event(&s, rt, n));
    follow::install(rt, shared);
    let s = shared.clone();
    rt.set_log_sink(move |_, line| {
        if let Ok(mut d) = s.try_borrow_mut() {
            d.console.engine_line(line.level, &line.text);
        }
    });
    let s = shared.clone();
    rt.set_control_connector(move |rt: &mut Runtime, _| server::passed_connection(rt, &s));
    let s = shared.clone();
    rt.set_loader(move |rt: &mut Runtime, name: &str| {
        let mut d = s.borrow_mut();
        let d = &mut *d;
        d.services
            .load(rt.engine_mut(), &mut d.console, name)
            .map_err(|f| f.control_log_text())
    });
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let s = shared.clone();
        let installed = rt.on_signal(sig, move |rt: &mut Runtime, _| {
            s.borrow_mut().remain = false;
            rt.stop_all();
        });
        if let Err(e) = installed {
            shared
                .borrow_mut()
                .console
                .log(Level::Warn, &format!("cannot catch {sig}: {e}"));
        }
    }
}

fn on_service_event(shared: &Shared, rt: &mut Runtime, n: &Notification) {
    let Some(event) = WireEvent::from_code(n.event as u8) else {
        return;
    };
    let name = rt.engine().name(n.service).to_string();
    let mut dropped = Vec::new();
    {
        let mut d = shared.borrow_mut();
        let d = &mut *d;
        match n.event {
            ServiceEvent::Started => {
                d.start_failed.remove(&n.service);
                d.console.service_started(&name);
            }
            ServiceEvent::FailedStart => {
                d.start_failed.insert(n.service);
                d.console.service_failed(&name);
            }
            // A failed start was announced already.
            ServiceEvent::Stopped if !d.start_failed.remove(&n.service) => {
                d.console.service_stopped(&name);
            }
            _ => {}
        }
        let st = connection::service_status(d, rt, n.service);
        let v1 = status::v1(st);
        for (cid, c) in d.conns.iter_mut() {
            for handle in c.handles_of(n.service) {
                c.send_info(&Info::ServiceEvent5 {
                    handle,
                    event,
                    status: st,
                });
                c.send_info(&Info::ServiceEvent {
                    handle,
                    event,
                    status: v1,
                });
            }
            if c.dead {
                dropped.push((*cid, c.token));
            }
        }
        for (cid, _) in &dropped {
            d.conns.remove(cid);
        }
    }
    for token in dropped.into_iter().filter_map(|(_, t)| t) {
        rt.deregister_fd(token);
    }
}

/// Writes the socket path and a NUL to the ready fd, then closes it (if it
/// is not a standard stream).
fn report_ready(fd: RawFd, path: &[u8]) {
    let mut bytes = path.to_vec();
    bytes.push(0);
    // SAFETY: the fd was checked open at startup and nothing else closes it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = nix::unistd::write(borrowed, &bytes);
    if fd > 2 {
        let _ = nix::unistd::close(fd);
    }
}

/// SIGUSR1: if the socket file was deleted, listen on a new one (as dinit
/// does); a socket that is still there is left alone.
fn reopen_socket(rt: &mut Runtime, shared: &Shared, path: &[u8]) {
    if std::fs::symlink_metadata(OsStr::from_bytes(path)).is_ok() {
        return;
    }
    if let Some(old) = shared.borrow_mut().listener.take() {
        rt.deregister_fd(old);
    }
    let registered = server::open(path).and_then(|listener| {
        server::register(rt, shared, listener)
            .map_err(|e| format!("Error listening on control socket: {e}"))
    });
    match registered {
        Ok(token) => shared.borrow_mut().listener = Some(token),
        Err(text) => shared.borrow_mut().console.log(Level::Error, &text),
    }
}

/// Where braid keeps the list of processes it launched (see
/// `braid_core::runtime::leftovers`): beside the control socket, which
/// names the session.
fn record_path(socket: &[u8]) -> std::path::PathBuf {
    let mut path = socket.to_vec();
    path.extend_from_slice(b".braid-processes");
    std::path::PathBuf::from(OsStr::from_bytes(&path))
}

fn leftover_text(l: &braid_core::runtime::leftovers::Leftover) -> String {
    format!(
        "{}: stopped {} process{} (group {}) left running by a previous instance{}",
        l.service,
        l.processes,
        if l.processes == 1 { "" } else { "es" },
        l.pid,
        if l.killed { ", with SIGKILL" } else { "" }
    )
}

fn remove_socket(path: &[u8]) {
    let _ = std::fs::remove_file(OsStr::from_bytes(path));
}

/// dinit ignores these so that terminal job control cannot stop it, and
/// SIGPIPE so that a vanished client is an error return, not death.
fn ignore_terminal_signals() {
    for sig in [
        Signal::SIGPIPE,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
    ] {
        // SAFETY: setting a disposition to "ignore" installs no handler code.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigIgn) };
    }
}

fn io_strerror(e: &std::io::Error) -> String {
    crate::description::strerror(e.raw_os_error().unwrap_or(nix::libc::EIO))
}
