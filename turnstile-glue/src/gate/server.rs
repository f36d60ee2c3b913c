//! Serving a gate on a Unix socket from inside braid's event loop (the
//! protocol is described in the parent module).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use braid_core::runtime::{HandlerResult, Ready, Runtime, SourceToken};
use mio::Interest;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use super::{Gate, Verdict};

/// Why a gate could not be served.
#[derive(Debug)]
pub struct ServeError {
    pub what: String,
    pub error: io::Error,
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.error)
    }
}

impl std::error::Error for ServeError {}

fn err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ServeError {
    let what = what.into();
    move |error| ServeError { what, error }
}

/// A gate being served; the handle tells what was decided.
#[derive(Debug, Clone)]
pub struct ServedGate {
    shared: Rc<RefCell<Shared>>,
}

impl ServedGate {
    pub fn verdict(&self) -> Option<Verdict> {
        self.shared.borrow().gate.verdict().cloned()
    }

    /// The socket clients connect to.
    pub fn path(&self) -> PathBuf {
        self.shared.borrow().path.clone()
    }
}

/// One connected client and what is still to be written to it.
struct Conn {
    stream: UnixStream,
    out: Vec<u8>,
    /// The verdict is queued: close once `out` is written.
    finished: bool,
}

struct Shared {
    gate: Gate,
    path: PathBuf,
    deadline: Instant,
    timeout: Duration,
    conns: HashMap<SourceToken, Conn>,
    timer: Option<SourceToken>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("gate", &self.gate)
            .field("path", &self.path)
            .field("clients", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Shared {
    /// The lines describing the gate now: `waiting: ...` or the verdict.
    fn state_line(&self) -> (String, bool) {
        match self.gate.verdict() {
            Some(v) => (format!("{v}\n"), true),
            None => {
                let names: Vec<String> = self
                    .gate
                    .pending()
                    .iter()
                    .map(|n| n.replace('\n', " "))
                    .collect();
                (format!("waiting: {}\n", names.join(" ")), false)
            }
        }
    }

    /// Queues the current state for every client and writes what it can;
    /// returns the clients that are done (to be closed).
    fn broadcast(&mut self) -> Vec<SourceToken> {
        let (line, last) = self.state_line();
        let mut done = Vec::new();
        for (token, conn) in self.conns.iter_mut() {
            if conn.finished {
                continue;
            }
            conn.out.extend_from_slice(line.as_bytes());
            conn.finished = last;
            if conn.flush() {
                done.push(*token);
            }
        }
        done
    }
}

impl Conn {
    /// Writes what it can; returns whether the connection should close
    /// (verdict written, or the client is gone).
    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        self.finished
    }

    /// Reads and discards what the client sent; returns whether it hung up.
    fn drain(&mut self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}

/// Closes finished clients: off the loop first, then the socket.
fn close(rt: &mut Runtime, shared: &mut Shared, tokens: Vec<SourceToken>) {
    for token in tokens {
        rt.deregister_fd(token);
        shared.conns.remove(&token);
    }
}

/// Serves `gate` on a new socket at `path` in `rt`'s loop: it follows the
/// engine's notifications and fails when `timeout` has passed undecided.
/// The socket is removed when the runtime (which owns the gate) is dropped.
pub fn serve(
    rt: &mut Runtime,
    gate: Gate,
    path: &Path,
    timeout: Duration,
) -> Result<ServedGate, ServeError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path).map_err(err(format!("removing {}", path.display())))?;
        }
    }
    let listener = UnixListener::bind(path).map_err(err(format!("binding {}", path.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(err("making the gate socket non-blocking"))?;
    let shared = Rc::new(RefCell::new(Shared {
        gate,
        path: path.to_path_buf(),
        deadline: Instant::now() + timeout,
        timeout,
        conns: HashMap::new(),
        timer: None,
    }));

    if shared.borrow().gate.verdict().is_none() {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|e| err("creating the gate timer")(e.into()))?;
        timer
            .set(
                Expiration::OneShot(TimeSpec::from_duration(
                    timeout.max(Duration::from_nanos(1)),
                )),
                TimerSetTimeFlags::empty(),
            )
            .map_err(|e| err("arming the gate timer")(e.into()))?;
        let fd = timer.as_fd().as_raw_fd();
        let s = shared.clone();
        let token = rt
            .register_fd(fd, Interest::READABLE, move |rt: &mut Runtime, token, _| {
                // Drain the expiration count (the timer is non-blocking).
                let _ = timer.wait();
                let mut sh = s.borrow_mut();
                let after = sh.timeout;
                sh.gate.time_out(after);
                sh.timer = None;
                let done = sh.broadcast();
                close(rt, &mut sh, done);
                rt.deregister_fd(token);
                HandlerResult::Remove
            })
            .map_err(err("watching the gate timer"))?;
        shared.borrow_mut().timer = Some(token);
    }

    let s = shared.clone();
    rt.add_listener(move |rt, n| {
        let mut sh = s.borrow_mut();
        if !sh.gate.observe(rt.engine(), n) {
            return;
        }
        let done = sh.broadcast();
        close(rt, &mut sh, done);
        if sh.gate.verdict().is_some() {
            if let Some(timer) = sh.timer.take() {
                rt.deregister_fd(timer);
            }
        }
    });

    let s = shared.clone();
    let listen_fd = listener.as_raw_fd();
    rt.register_fd(
        listen_fd,
        Interest::READABLE,
        move |rt: &mut Runtime, _token, _ready: Ready| {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => accept(rt, &s, stream),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // A client that vanished before we accepted it, or fd
                    // exhaustion: try again on the next connection.
                    Err(_) => break,
                }
            }
            HandlerResult::Keep
        },
    )
    .map_err(err("watching the gate socket"))?;
    Ok(ServedGate { shared })
}

/// Greets a new client with the deadline and the gate's state.
fn accept(rt: &mut Runtime, shared: &Rc<RefCell<Shared>>, stream: UnixStream) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let fd = stream.as_raw_fd();
    let s = shared.clone();
    let registered = rt.register_fd(
        fd,
        Interest::READABLE | Interest::WRITABLE,
        move |rt: &mut Runtime, token, ready: Ready| {
            let mut sh = s.borrow_mut();
            let Some(conn) = sh.conns.get_mut(&token) else {
                return HandlerResult::Remove;
            };
            let mut gone = false;
            if ready.readable || ready.read_closed {
                gone |= conn.drain();
            }
            gone |= ready.error || conn.flush();
            if gone {
                close(rt, &mut sh, vec![token]);
                return HandlerResult::Remove;
            }
            HandlerResult::Keep
        },
    );
    let Ok(token) = registered else {
        return;
    };
    let mut sh = shared.borrow_mut();
    let left = sh.deadline.saturating_duration_since(Instant::now());
    let (line, last) = sh.state_line();
    let mut conn = Conn {
        stream,
        out: format!("braid-gate 1 {}\n{line}", left.as_millis()).into_bytes(),
        finished: last,
    };
    let done = conn.flush();
    sh.conns.insert(token, conn);
    if done {
        close(rt, &mut sh, vec![token]);
    }
}
