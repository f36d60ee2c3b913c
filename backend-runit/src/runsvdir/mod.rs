//! `runsvdir [-P] dir [log]`: supervises every service directory in `dir`
//! from this one process — no runsv per service — with a `supervise/`
//! mirror that runit's own `sv` controls as it controls runsv.
//!
//! Differences from runit's runsvdir, by design: changes to `dir` are seen
//! through inotify at once (runsvdir looks every five seconds); `-P` is
//! accepted and has no further effect, since braid starts every service in
//! a session of its own anyway; SIGTERM makes braid exit at once, as
//! runsvdir does, but the services it leaves running are then no longer
//! supervised (runsvdir's runsv children stay behind and keep supervising).

pub mod host;
pub mod leftovers;
pub mod proctitle;
pub mod scan;
pub mod session_env;
pub mod supervisor;
pub mod timer;
pub mod watch;

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::rc::Rc;

use braid_core::engine::Engine;
use braid_core::runtime::{HandlerResult, Options, Runtime};
use mio::Interest;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{SigHandler, Signal};

use host::{Host, Mode};
use proctitle::ProcTitle;
use scan::Scan;
use timer::Action;
use watch::Watch;

/// The `runsvdir` program.
pub fn main(argv: Vec<OsString>) -> i32 {
    let prog = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runsvdir".into());
    let mut args = argv.iter().skip(1).peekable();
    // Only `-P` and `--` are options; any other `-x` is the directory.
    if let Some(first) = args.peek() {
        let b = first.as_bytes();
        if b.first() == Some(&b'-') && matches!(b.get(1), Some(b'P' | b'-')) {
            args.next();
        }
    }
    let Some(dir) = args.next() else {
        eprint!("usage: {prog} [-P] dir\n\n");
        return 1;
    };
    let dir = PathBuf::from(dir);
    let log = args.next();
    match run(&dir, log) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "runsvdir {}: fatal: {}",
                dir.display(),
                crate::errstr::io_errstr(&e)
            );
            100
        }
    }
}

/// A runtime set up as runit's supervisors behave: engine log lines are
/// not printed (runsv prints its own), no subreaper, and SIGINT keeps its
/// default action (it kills runsv and runsvdir outright).
pub(crate) fn runtime() -> io::Result<Runtime> {
    let options = Options {
        restart_note: None,
        reset_sigpipe: true,
        subreaper: false,
    };
    let mut rt = Runtime::with_options(Engine::new(), options)?;
    rt.set_log_sink(|_, _| {});
    // SAFETY: restores the default action; no handler code is involved.
    unsafe { nix::sys::signal::signal(Signal::SIGINT, SigHandler::SigDfl) }
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    Ok(rt)
}

fn run(dir: &std::path::Path, log: Option<&OsString>) -> io::Result<i32> {
    let title = match log {
        Some(log) if log.len() < proctitle::MIN_LEN => {
            let warn = |m: &str| eprintln!("runsvdir {}: warning: {m}", dir.display());
            warn("log must have at least seven characters.");
            warn("log service disabled.");
            None
        }
        Some(log) => Some(log_to_title(log.as_bytes())?),
        None => None,
    };

    let (mut rt, host) = setup(dir)?;
    if let Some((mut title, read)) = title {
        let fd = read.as_raw_fd();
        rt.register_fd(fd, Interest::READABLE, move |_: &mut Runtime, _, _| {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = nix::unistd::read(read.as_raw_fd(), &mut buf) {
                title.push(&buf[..n]);
            }
            HandlerResult::Keep
        })?;
        host.borrow_mut()
            .timers
            .arm(proctitle::DOT_INTERVAL, Action::Dot);
    }

    // SIGTERM: leave at once. SIGHUP: stop every service, then exit 111.
    rt.on_signal(Signal::SIGTERM, |rt, _| rt.exit(0))?;
    let weak = Rc::downgrade(&host);
    rt.on_signal(Signal::SIGHUP, move |rt, _| {
        if let Some(h) = weak.upgrade() {
            h.borrow_mut().shutdown(rt, 111);
        }
    })?;

    host.borrow_mut().rescan(&mut rt);
    rt.run()
}

/// A runtime with the runit face plugged in and `dir` watched, before the
/// first scan.
fn setup(dir: &std::path::Path) -> io::Result<(Runtime, Rc<std::cell::RefCell<Host>>)> {
    let mut rt = runtime()?;
    leftovers::take_over(&mut rt, dir);
    let mut scan = Scan::new(dir.to_path_buf());
    scan.watch = Some(Watch::new(dir).map_err(|e| io::Error::from_raw_os_error(e as i32))?);
    let watch_fd = scan.watch.as_ref().map(Watch::fd);
    let host = Host::install(&mut rt, Mode::Runsvdir(scan))?;
    session_env::install(&mut rt);
    // braid's session event log, for `braid timeline` (not a runit feature).
    braid_core::runtime::event_log::install(
        &mut rt,
        braid_core::runtime::event_log::Session::Runit {
            dir: dir.to_path_buf(),
        },
    );

    if let Some(fd) = watch_fd {
        let weak = Rc::downgrade(&host);
        rt.register_fd(fd, Interest::READABLE, move |rt: &mut Runtime, _, _| {
            if let Some(h) = weak.upgrade() {
                h.borrow_mut().on_watch(rt);
            }
            HandlerResult::Keep
        })?;
    }
    Ok((rt, host))
}

/// runsvdir on a directory inside another program (turnstile's runit
/// backend): the first scan is done, so the services found are loaded and
/// starting, but the loop is not running yet. The program adds its own fd
/// sources, listeners and signal handlers to `runtime`, then runs it.
#[derive(Debug)]
pub struct Embedded {
    pub runtime: Runtime,
    host: Rc<std::cell::RefCell<Host>>,
}

impl Embedded {
    /// What runsvdir does on SIGHUP, for the program's own handlers: stop
    /// every service, then make the loop return the code given.
    pub fn shutdown_fn(&self) -> impl Fn(&mut Runtime, i32) + 'static {
        let weak = Rc::downgrade(&self.host);
        move |rt, code| {
            if let Some(h) = weak.upgrade() {
                h.borrow_mut().shutdown(rt, code);
            }
        }
    }
}

/// Sets up runsvdir on `dir` for embedding (see [`Embedded`]).
pub fn embed(dir: &std::path::Path) -> io::Result<Embedded> {
    let (mut runtime, host) = setup(dir)?;
    host.borrow_mut().rescan(&mut runtime);
    Ok(Embedded { runtime, host })
}

/// Points fd 2 at a pipe whose read end feeds the process title.
fn log_to_title(arg: &[u8]) -> io::Result<(ProcTitle, OwnedFd)> {
    let title = ProcTitle::find(arg)?;
    let errno = |e: nix::errno::Errno| io::Error::from_raw_os_error(e as i32);
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(errno)?;
    fcntl(read.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(errno)?;
    nix::unistd::dup2(write.as_raw_fd(), 2).map_err(errno)?;
    Ok((title, read))
}
