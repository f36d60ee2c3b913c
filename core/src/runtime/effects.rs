//! Executing the engine's effects.

use std::collections::hash_map::Entry;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpgid, Pid};

use super::env_block::EnvBlock;
use super::launch::{Launch, NotifyTarget, Stdin, Stdout};
use super::logfile::RotatingFile;
use super::output::{LogBuffer, OutputPipe, ReadSink, Store};
use super::{BufferState, Runtime, Source};
use crate::engine::{
    Command, Daemon, Effect, Event, LaunchFailure, LaunchStage, LogLevel, LogLine, Notification,
    Role, ServiceEvent, ServiceId, State,
};
use crate::spec::{Kind, Output, Readiness, SocketSpec};

impl Runtime {
    /// Feeds pending events to the engine and executes its effects until
    /// neither is left. Handlers may call it so that what a command caused
    /// (launches, notifications to clients) happens before they answer.
    pub fn execute_effects(&mut self) {
        loop {
            while let Some(event) = self.pending_events.pop_front() {
                let now = self.now();
                self.engine.event(now, event);
            }
            let effects = self.engine.take_effects();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                self.execute(effect);
            }
        }
    }

    fn execute(&mut self, effect: Effect) {
        match effect {
            Effect::Spawn {
                service,
                role,
                extra_args,
            } => {
                // Success is told once the exec is confirmed (`launched`).
                if let Err(failure) = self.spawn(service, role, &extra_args) {
                    self.stats.spawn_failures += 1;
                    self.pending_events.push_back(Event::SpawnFailed {
                        service,
                        role,
                        failure,
                    });
                }
            }
            Effect::Signal {
                service,
                role,
                signal,
                group,
            } => self.send_signal(service, role, signal, group),
            Effect::ReadPidFile { service } => self.read_pid_file(service),
            Effect::ArmTimer { timer, at } => self.timers.arm(timer, at),
            Effect::CancelTimer { timer } => self.timers.cancel(timer),
            Effect::ChainTo { name } => self.chain_to(&name),
            Effect::Notify(notification) => self.notify(&notification),
            Effect::Log(line) => self.log(&line),
        }
    }

    /// Launches a service's process with all its settings, without waiting
    /// for its exec: the status pipe is watched, and `launched` reports.
    fn spawn(
        &mut self,
        service: ServiceId,
        role: Role,
        extra_args: &[OsString],
    ) -> Result<(), LaunchFailure> {
        let spec = self.engine.spec(service).clone();
        let spec = &spec;
        let main = role == Role::Main;
        let fd_err = |stage| {
            move |e: io::Error| LaunchFailure {
                stage,
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)),
            }
        };

        // Create what outlives the process first, so that the borrows below
        // are all shared.
        let producer = match (&spec.input_from, main) {
            (Some(name), true) => Some(self.engine.reference(name).ok_or(LaunchFailure {
                stage: LaunchStage::SetupStdinOutErr,
                errno: Errno::ENOENT,
            })?),
            _ => None,
        };
        if let Some(producer) = producer {
            if let Entry::Vacant(slot) = self.pipes.entry(producer) {
                slot.insert(OutputPipe::new(false).map_err(fd_err(LaunchStage::SetupStdinOutErr))?);
            }
        }
        match &spec.output {
            Output::Pipe if !self.pipes.contains_key(&service) => {
                let pipe = OutputPipe::new(false).map_err(fd_err(LaunchStage::SetupStdinOutErr))?;
                self.pipes.insert(service, pipe);
            }
            Output::Buffer { size } => {
                self.read_output(service, || ReadSink::memory(*size))
                    .map_err(fd_err(LaunchStage::SetupStdinOutErr))?;
                if main {
                    self.fill_sink(service);
                    let state = self.buffers.get_mut(&service).expect("made above");
                    if state.sink.buffer().is_none() {
                        // Reloaded from a rotated log file.
                        state.sink.store = Store::Memory(LogBuffer::new(*size));
                    }
                    if state.launched {
                        if let (Some(note), Some(buffer)) =
                            (&self.options.restart_note, state.sink.buffer_mut())
                        {
                            buffer.note_restart(note);
                        }
                    }
                    state.launched = true;
                }
            }
            Output::File {
                path,
                mode,
                rotate: Some(rotation),
            } => {
                let open = || RotatingFile::open(path, *mode, *rotation);
                let made = self.read_output(service, || open().and_then(ReadSink::file));
                let made_now = made.map_err(fd_err(LaunchStage::OpenLogFile))?;
                if main && !made_now {
                    // Reopened at each launch, as a process opens its log
                    // file: a file removed meanwhile is started again.
                    self.fill_sink(service);
                    let file = open().map_err(fd_err(LaunchStage::OpenLogFile))?;
                    let state = self.buffers.get_mut(&service).expect("made above");
                    state.sink.store = Store::File(file);
                }
            }
            _ => {}
        }
        if let (Some(socket), true) = (&spec.socket, main) {
            if let Entry::Vacant(slot) = self.sockets.entry(service) {
                slot.insert(
                    open_socket(socket).map_err(fd_err(LaunchStage::SetupActivationSocket))?,
                );
            }
        }
        let notify = match (&spec.readiness, main) {
            (Readiness::NotifyFd(n), true) => Some(NotifyTarget::Fd(*n)),
            (Readiness::NotifyEnvVar(var), true) => Some(NotifyTarget::EnvVar(var.clone())),
            _ => None,
        };
        let notify_pipe = match notify {
            Some(_) => {
                let (r, w) =
                    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| LaunchFailure {
                        stage: LaunchStage::ArrangeFds,
                        errno,
                    })?;
                fcntl(r.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|errno| {
                    LaunchFailure {
                        stage: LaunchStage::ArrangeFds,
                        errno,
                    }
                })?;
                Some((r, w))
            }
            None => None,
        };

        let control = match &spec.control_fd_var {
            Some(var) if main || (role == Role::Stop && spec.kind == Kind::Scripted) => {
                Some((self.control_connection(service)?, var))
            }
            _ => None,
        };

        if self.base_env_block.is_none() {
            self.base_env_block = Some(EnvBlock::new(&self.base_env)?);
        }
        let base_env = self.base_env_block.as_ref().expect("made above");
        let mut launch =
            Launch::service_on(spec, role, extra_args, base_env).ok_or(LaunchFailure {
                stage: LaunchStage::DoExec,
                errno: Errno::ENOENT,
            })?;
        launch.reset_sigpipe(self.options.reset_sigpipe);
        launch.stdout_only(spec.flags.stderr_inherited);
        if let Some(producer) = producer {
            launch.stdin(Stdin::Fd(self.pipes[&producer].read_end()));
        }
        launch.stdout(match &spec.output {
            Output::Inherit => Stdout::Inherit,
            Output::Discard => Stdout::Null,
            Output::File {
                path,
                mode,
                rotate: None,
            } => Stdout::File {
                path: path.clone(),
                mode: *mode,
            },
            Output::Buffer { .. } | Output::File { .. } => {
                Stdout::Fd(self.buffers[&service].sink.pipe.write_end())
            }
            Output::Pipe => Stdout::Fd(self.pipes[&service].write_end()),
        });
        if let (Some((_, w)), Some(target)) = (&notify_pipe, notify) {
            launch.notify(w.as_fd(), target);
        }
        if let (Some(fd), true) = (self.sockets.get(&service), main) {
            launch.socket(fd.as_fd());
        }
        if let Some((fd, var)) = &control {
            launch.control(fd.as_fd(), var.as_str());
        }
        let pending = launch.start()?;
        drop(launch);
        // The process has its copy; the backend sees the connection close
        // when every process holding it is gone.
        drop(control);

        let pid = pending.pid;
        self.children.insert(pid, service, role);
        let status_fd = pending.status_fd().as_raw_fd();
        let slot = self.add_source(Source::Launch {
            service,
            role,
            pending,
        });
        self.launching.insert(pid.as_raw(), slot);
        let registered = self.poll.registry().register(
            &mut SourceFd(&status_fd),
            Token(slot + 1),
            Interest::READABLE,
        );
        if let Some((read, _write)) = notify_pipe {
            self.watch_readiness(service, read);
        }
        if registered.is_err() {
            // Cannot watch it: learn the outcome now instead.
            self.launching.remove(&pid.as_raw());
            self.launched(slot);
        }
        Ok(())
    }

    /// A new control connection from the backend's connector.
    fn control_connection(&mut self, service: ServiceId) -> Result<OwnedFd, LaunchFailure> {
        let failure = |errno| LaunchFailure {
            stage: LaunchStage::SetupControlSocket,
            errno,
        };
        let Some(mut connector) = self.control_connector.take() else {
            return Err(failure(Errno::ENOTSUP));
        };
        let made = connector(self, service);
        self.control_connector.get_or_insert(connector);
        made.map_err(|e| {
            failure(Errno::from_raw(
                e.raw_os_error().unwrap_or(Errno::EIO as i32),
            ))
        })
    }

    /// Makes the pipe braid reads a service's output from, with `make`,
    /// unless the service has one; whether it made it.
    fn read_output(
        &mut self,
        service: ServiceId,
        make: impl FnOnce() -> io::Result<ReadSink>,
    ) -> io::Result<bool> {
        if self.buffers.contains_key(&service) {
            return Ok(false);
        }
        let sink = make()?;
        let fd = sink.pipe.read_end().as_raw_fd();
        let slot = self.add_source(Source::LogBuffer { service });
        let token = Token(slot + 1);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
        {
            self.remove_source(slot);
            return Err(e);
        }
        self.buffers.insert(
            service,
            BufferState {
                sink,
                launched: false,
                unsent: Vec::new(),
                failing: false,
            },
        );
        Ok(true)
    }

    fn watch_readiness(&mut self, service: ServiceId, fd: OwnedFd) {
        if let Some(old) = self.readiness.remove(&service) {
            self.remove_source(old);
        }
        let raw = fd.as_raw_fd();
        let slot = self.add_source(Source::Readiness {
            service,
            fd,
            seen_data: false,
        });
        let registered =
            self.poll
                .registry()
                .register(&mut SourceFd(&raw), Token(slot + 1), Interest::READABLE);
        match registered {
            Ok(()) => {
                self.readiness.insert(service, slot);
            }
            Err(e) => {
                self.remove_source(slot);
                self.log_text(
                    LogLevel::Error,
                    Some(service),
                    format!("cannot watch readiness: {e}"),
                );
                self.pending_events
                    .push_back(Event::ReadinessLost { service });
            }
        }
    }

    /// Sends `signal` to the process (or its process group) of `role`.
    fn send_signal(&mut self, service: ServiceId, role: Role, signal: Signal, group: bool) {
        let Some(pid) = self.children.pid(service, role).or_else(|| {
            // A daemon braid cannot wait for (not its child) is still known
            // to the engine.
            let status = self.engine.status(service);
            (role == Role::Main)
                .then_some(status.pid)
                .flatten()
                .map(Pid::from_raw)
        }) else {
            return;
        };
        let target = if group {
            match getpgid(Some(pid)) {
                // Never signal braid's own group through a service.
                Ok(pgid) if Ok(pgid) != getpgid(None) => Pid::from_raw(-pgid.as_raw()),
                _ => pid,
            }
        } else {
            pid
        };
        if let Err(errno) = kill(target, signal) {
            if errno != Errno::ESRCH {
                self.log_text(
                    LogLevel::Warn,
                    Some(service),
                    format!("cannot send {signal} to process {pid}: {}", errno.desc()),
                );
            }
        }
    }

    /// Reads a background service's pid file and starts watching the daemon.
    fn read_pid_file(&mut self, service: ServiceId) {
        let Kind::BackgroundProcess { pid_file } = &self.engine.spec(service).kind else {
            return;
        };
        let result = read_pid(pid_file).and_then(|pid| self.adopt(service, pid));
        let exited = match &result {
            Ok(daemon) => self.children.orphan_exit(Pid::from_raw(daemon.pid)),
            Err(_) => None,
        };
        self.pending_events
            .push_back(Event::PidFileRead { service, result });
        if let Some(status) = exited {
            self.pending_events.push_back(Event::Exited {
                service,
                role: Role::Main,
                status,
            });
        }
    }

    /// Decides whether the daemon `pid` can be supervised: a child of braid
    /// (reparented to it) is tracked; an exited one is reported by the
    /// caller; another live process is accepted but cannot be waited for.
    fn adopt(&mut self, service: ServiceId, pid: i32) -> Result<Daemon, String> {
        let invalid = || format!("pid read from pidfile ({pid}) is not valid");
        let target = Pid::from_raw(pid);
        let supervised = Daemon {
            pid,
            supervised: true,
        };
        if self.children.has_orphan(target) {
            return Ok(supervised);
        }
        let flags = nix::sys::wait::WaitPidFlag::WEXITED
            | nix::sys::wait::WaitPidFlag::WNOHANG
            | nix::sys::wait::WaitPidFlag::WNOWAIT;
        match nix::sys::wait::waitid(nix::sys::wait::Id::Pid(target), flags) {
            Ok(_) => {
                self.children.insert(target, service, Role::Main);
                Ok(supervised)
            }
            Err(Errno::ECHILD) => match kill(target, None) {
                Err(Errno::ESRCH) => Err(invalid()),
                _ => {
                    self.log_text(
                        LogLevel::Warn,
                        Some(service),
                        format!(
                            "{}: unable to supervise process with pid {pid}",
                            self.engine.name(service)
                        ),
                    );
                    Ok(Daemon {
                        pid,
                        supervised: false,
                    })
                }
            },
            Err(_) => Err(invalid()),
        }
    }

    fn chain_to(&mut self, name: &str) {
        let Some(mut loader) = self.loader.take() else {
            self.log_text(
                LogLevel::Error,
                None,
                format!("Couldn't chain to service {name}: no loader"),
            );
            return;
        };
        let loaded = loader(self, name);
        self.loader.get_or_insert(loader);
        match loaded {
            Ok(id) => {
                let _ = self.command(id, Command::Start { pin: false });
            }
            Err(why) => self.log_text(
                LogLevel::Error,
                None,
                format!("Couldn't chain to service {name}: {why}"),
            ),
        }
    }

    fn notify(&mut self, notification: &Notification) {
        if notification.event == ServiceEvent::Stopped {
            let status = self.engine.status(notification.service);
            if status.state == State::Stopped && status.target == State::Stopped {
                self.sockets.remove(&notification.service);
            }
        }
        let mut listeners = std::mem::take(&mut self.listeners);
        for listener in &mut listeners {
            listener(self, notification);
        }
        // Listeners added while these ran go after them.
        listeners.append(&mut self.listeners);
        self.listeners = listeners;
    }

    pub(super) fn log(&mut self, line: &LogLine) {
        match &mut self.log_sink {
            Some(sink) => sink(&self.engine, line),
            None => eprintln!("braid: {}", line.text),
        }
    }

    fn log_text(&mut self, level: LogLevel, service: Option<ServiceId>, text: String) {
        self.log(&LogLine {
            level,
            service,
            text,
        });
    }
}

/// Reads at most 20 bytes of a pid file and parses them as C's `strtoull`
/// with base 0 would; the pid must be positive and fit a `pid_t`.
fn read_pid(path: &Path) -> Result<i32, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("read pid file: {}", strerror(&e)))?;
    let mut buf = Vec::with_capacity(20);
    (&mut file)
        .take(20)
        .read_to_end(&mut buf)
        .map_err(|e| format!("could not read from pidfile; {}", strerror(&e)))?;
    // As dinit words it: an unparsable or too large number shows as -1.
    match parse_strtoull(&buf) {
        Some(v) if v > 0 && v <= i32::MAX as u64 => Ok(v as i32),
        Some(0) => Err("pid read from pidfile (0) is not valid".to_string()),
        _ => Err("pid read from pidfile (-1) is not valid".to_string()),
    }
}

fn strerror(e: &io::Error) -> &'static str {
    Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)).desc()
}

/// C `strtoull(s, &end, 0)`: leading white space, an optional sign, then
/// `0x` hex, `0` octal or decimal digits; trailing text is ignored. `None`
/// when there are no digits or the value overflows.
pub(crate) fn parse_strtoull(s: &[u8]) -> Option<u64> {
    let mut i = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        .unwrap_or(s.len());
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let hex_digit_follows = s.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let (radix, start) = match (s.get(i), s.get(i + 1)) {
        (Some(b'0'), Some(b'x' | b'X')) if hex_digit_follows => (16, i + 2),
        (Some(b'0'), _) => (8, i),
        _ => (10, i),
    };
    let digits = s[start..]
        .iter()
        .take_while(|&&b| (b as char).is_digit(radix))
        .count();
    if digits == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in &s[start..start + digits] {
        let d = (b as char).to_digit(radix)? as u64;
        value = value.checked_mul(radix as u64)?.checked_add(d)?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// Creates a service's listening socket: a stale socket file is replaced,
/// any other file at the path is an error.
fn open_socket(spec: &SocketSpec) -> io::Result<OwnedFd> {
    match std::fs::symlink_metadata(&spec.path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(&spec.path)?,
        Ok(_) => return Err(io::Error::from_raw_os_error(Errno::EEXIST as i32)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&spec.path)?;
    if spec.uid.is_some() || spec.gid.is_some() {
        std::os::unix::fs::chown(&spec.path, spec.uid, spec.gid)?;
    }
    std::fs::set_permissions(&spec.path, std::fs::Permissions::from_mode(spec.mode))?;
    Ok(OwnedFd::from(listener))
}

#[cfg(test)]
mod tests {
    use super::parse_strtoull;

    #[test]
    fn strtoull_like_c() {
        assert_eq!(parse_strtoull(b"1234\n"), Some(1234));
        assert_eq!(parse_strtoull(b"  42abc"), Some(42));
        assert_eq!(parse_strtoull(b"0x1F"), Some(31));
        assert_eq!(parse_strtoull(b"017"), Some(15));
        assert_eq!(parse_strtoull(b"0"), Some(0));
        assert_eq!(
            parse_strtoull(b"0x"),
            Some(0),
            "\"0x\" without hex digits reads the 0"
        );
        assert_eq!(parse_strtoull(b"09"), Some(0), "octal stops at 9");
        assert_eq!(parse_strtoull(b"+7"), Some(7));
        assert_eq!(parse_strtoull(b"-1"), Some(u64::MAX));
        assert_eq!(parse_strtoull(b""), None);
        assert_eq!(parse_strtoull(b"pid"), None);
        assert_eq!(parse_strtoull(b"99999999999999999999999"), None);
    }
}
