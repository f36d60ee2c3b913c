//! The session event log: every service's state changes, with wall-clock
//! times, appended as JSON lines to one file per supervisor process, so that
//! `braid timeline`, `braid why` and `braid status --json` can tell what
//! happened and when. Neither runit's `supervise/` files nor dinit's control
//! protocol keep that history; this is braid's one addition for it.
//!
//! # Where
//!
//! `$BRAID_EVENT_DIR/events-PID.jsonl` if that variable is set (empty:
//! no log at all), else `$XDG_RUNTIME_DIR/braid/events-PID.jsonl`, else
//! `/tmp/braid-UID/events-PID.jsonl`. When the file grows past
//! [`MAX_BYTES`] it is renamed to `events-PID.jsonl.1` (replacing the
//! previous one) and a new file is begun, so a session keeps at most twice
//! that. Files of processes that no longer exist are removed when a new log
//! is opened.
//!
//! # What
//!
//! Each line is one JSON object with a `"type"`:
//!
//! - `session` (first line of every file): `pid`, `face` (`dinit`, `runit`
//!   or `demo`), and `socket` (dinit) or `dir` (runit): how a user names
//!   the session.
//! - `service` (before a service's first change in each file): `name` and
//!   `deps`, a list of `{"name", "kind"}` (kinds as `DepKind` in
//!   lower-case with dashes: `hard`, `prepared-by`, `milestone`,
//!   `waits-for`, `soft`, `after`, `before`).
//! - `change`: `name`, `state` (`stopped`, `starting`, `started`,
//!   `stopping`), `target`, `pid` (or null), `restarts` (automatic
//!   relaunches so far), `reason` (why it last stopped), `exit` (the last
//!   exit as `{"code": N}` or `{"signal": "SIGTERM"}`, or null).
//!
//! Every line has `t`, seconds since the Unix epoch (fractional). A change
//! of state carries the time the engine made it, even when it is written
//! later (a service waiting for its dependencies is seen when one of them
//! moves).
//!
//! Writing is best effort: a log that cannot be written is given up
//! silently, never the session.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Runtime;
use crate::engine::{Engine, ExitStatus, Notification, ServiceId, State, StopReason, Time};
use crate::spec::DepKind;

/// Size at which a log file is rotated.
pub const MAX_BYTES: u64 = 1 << 20;

/// How the session is named to its users.
#[derive(Debug, Clone)]
pub enum Session {
    /// A dinit-face daemon listening on this control socket.
    Dinit { socket: PathBuf },
    /// A runit-face supervisor of this service directory.
    Runit { dir: PathBuf },
    /// `braid demo`.
    Demo,
}

/// The directory event logs go to, or `None` when logging is turned off.
pub fn log_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BRAID_EVENT_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Some(Path::new(&d).join("braid")),
        _ => Some(PathBuf::from(format!(
            "/tmp/braid-{}",
            nix::unistd::getuid().as_raw()
        ))),
    }
}

/// The last values written for one service.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    state: State,
    target: State,
    pid: Option<i32>,
    restarts: u32,
}

struct Writer {
    path: PathBuf,
    file: File,
    written: u64,
    header: String,
    seen: HashMap<ServiceId, Seen>,
    /// Services described in the current file.
    described: Vec<bool>,
}

/// Starts the event log of this process and adds the listener that feeds
/// it. Does nothing when logging is off or the file cannot be created.
pub fn install(rt: &mut Runtime, session: Session) {
    let Some(dir) = log_dir() else { return };
    let Some(mut writer) = Writer::open(&dir, &session) else {
        return;
    };
    rt.add_listener(move |rt, n| writer.on_notification(rt, n));
}

/// Makes sure `dir` is a directory of this user's that nobody else may
/// write to (created 0700 if missing): under `/tmp`, another user could
/// have made it first, or planted a symlink, to have braid truncate a file
/// of theirs choosing.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(
            "not a private directory of this user",
        ));
    }
    Ok(())
}

/// Creates or truncates a log file, mode 0600, never through a symlink.
fn open_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

impl Writer {
    fn open(dir: &Path, session: &Session) -> Option<Writer> {
        private_dir(dir).ok()?;
        remove_stale(dir);
        let pid = std::process::id();
        let path = dir.join(format!("events-{pid}.jsonl"));
        let mut header = format!("{{\"type\":\"session\",\"pid\":{pid},");
        match session {
            Session::Dinit { socket } => {
                header.push_str("\"face\":\"dinit\",\"socket\":");
                push_str(&mut header, &absolute(socket));
            }
            Session::Runit { dir } => {
                header.push_str("\"face\":\"runit\",\"dir\":");
                push_str(&mut header, &absolute(dir));
            }
            Session::Demo => header.push_str("\"face\":\"demo\""),
        }
        let file = open_private(&path).ok()?;
        let mut w = Writer {
            path,
            file,
            written: 0,
            header,
            seen: HashMap::new(),
            described: Vec::new(),
        };
        w.begin_file(wall_now());
        Some(w)
    }

    fn begin_file(&mut self, t: f64) {
        let line = format!("{},\"t\":{t:.6}}}", self.header);
        self.write_line(&line);
        self.described.clear();
    }

    fn write_line(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if self.file.write_all(&bytes).is_ok() {
            self.written += bytes.len() as u64;
        }
    }

    fn rotate_if_full(&mut self, t: f64) {
        if self.written < MAX_BYTES {
            return;
        }
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        let reopened = fs::rename(&self.path, &old)
            .ok()
            .and_then(|_| open_private(&self.path).ok());
        if let Some(file) = reopened {
            self.file = file;
            self.written = 0;
            self.begin_file(t);
        }
    }

    /// Writes what changed in the notified service and its neighbours (a
    /// dependency that began starting because of it, a dependent that was
    /// waiting for it), each with the time the engine changed it.
    fn on_notification(&mut self, rt: &mut Runtime, n: &Notification) {
        let engine = rt.engine();
        let now_engine = rt.now();
        let now_wall = wall_now();
        let mut ids = vec![n.service];
        ids.extend(engine.dependencies(n.service).into_iter().map(|(d, _)| d));
        ids.extend(engine.dependents(n.service));
        for id in ids {
            if engine.lookup(engine.name(id)) != Some(id) {
                continue; // a placeholder
            }
            let status = engine.status(id);
            let seen = Seen {
                state: status.state,
                target: status.target,
                pid: status.pid,
                restarts: status.restarts,
            };
            let before = self.seen.get(&id);
            if before == Some(&seen) || (before.is_none() && never_moved(&seen)) {
                continue;
            }
            let t = if before.map(|b| b.state) != Some(seen.state) {
                wall_time(status.since, now_engine, now_wall)
            } else {
                now_wall
            };
            self.rotate_if_full(t);
            self.describe(engine, id, t);
            let mut line = format!("{{\"type\":\"change\",\"t\":{t:.6},\"name\":");
            push_str(&mut line, engine.name(id));
            let _ = write!(
                line,
                ",\"state\":\"{}\",\"target\":\"{}\",\"pid\":{},\"restarts\":{},\"reason\":\"{}\",\"exit\":{}}}",
                state_name(status.state),
                state_name(status.target),
                status.pid.map_or("null".to_string(), |p| p.to_string()),
                status.restarts,
                reason_name(status.stop_reason),
                exit_json(status.last_exit),
            );
            self.write_line(&line);
            self.seen.insert(id, seen);
        }
    }

    fn describe(&mut self, engine: &Engine, id: ServiceId, t: f64) {
        if self.described.get(id.index()).copied().unwrap_or(false) {
            return;
        }
        let mut line = format!("{{\"type\":\"service\",\"t\":{t:.6},\"name\":");
        push_str(&mut line, engine.name(id));
        line.push_str(",\"deps\":[");
        for (i, (to, kind)) in engine.dependencies(id).into_iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str("{\"name\":");
            push_str(&mut line, engine.name(to));
            let _ = write!(line, ",\"kind\":\"{}\"}}", kind_name(kind));
        }
        line.push_str("]}");
        self.write_line(&line);
        if self.described.len() <= id.index() {
            self.described.resize(id.index() + 1, false);
        }
        self.described[id.index()] = true;
    }
}

/// A service never started and never asked to: nothing to say yet.
fn never_moved(s: &Seen) -> bool {
    s.state == State::Stopped && s.target == State::Stopped && s.pid.is_none() && s.restarts == 0
}

/// Removes logs of processes that no longer exist.
fn remove_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name
            .strip_prefix("events-")
            .and_then(|r| r.split('.').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH);
        if gone {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The engine time `t` on the wall clock, given the two clocks now.
pub fn wall_time(t: Time, now_engine: Time, now_wall: f64) -> f64 {
    now_wall - now_engine.saturating_sub(t).as_secs_f64()
}

/// Appends `s` as a JSON string.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Stopped => "stopped",
        State::Starting => "starting",
        State::Started => "started",
        State::Stopping => "stopping",
    }
}

pub fn reason_name(r: StopReason) -> &'static str {
    match r {
        StopReason::Normal => "normal",
        StopReason::DepRestart => "dependency-restarted",
        StopReason::DepFailed => "dependency-failed",
        StopReason::Failed => "failed",
        StopReason::ExecFailed => "exec-failed",
        StopReason::TimedOut => "timed-out",
        StopReason::Terminated => "terminated",
    }
}

pub fn kind_name(k: DepKind) -> &'static str {
    match k {
        DepKind::Hard => "hard",
        DepKind::PreparedBy => "prepared-by",
        DepKind::Milestone => "milestone",
        DepKind::WaitsFor => "waits-for",
        DepKind::Soft => "soft",
        DepKind::After => "after",
        DepKind::Before => "before",
    }
}

fn exit_json(e: Option<ExitStatus>) -> String {
    match e {
        None => "null".into(),
        Some(ExitStatus::Exited(code)) => format!("{{\"code\":{code}}}"),
        Some(ExitStatus::Signaled(sig)) => format!("{{\"signal\":\"{}\"}}", sig.as_str()),
    }
}
