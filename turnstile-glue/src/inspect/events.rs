//! Reading braid's session event logs (written by
//! `braid_core::runtime::event_log`; the format is documented there and in
//! `doc/STATUS-JSON.md`), finding the one of a session, and folding it into
//! a [`Session`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use braid_core::runtime::event_log::log_dir;
use serde_json::Value;

use super::session::{Edge, Exit, Face, Live, Session};

/// One state change of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub t: f64,
    pub name: String,
    pub state: String,
    pub target: String,
    pub pid: Option<i64>,
    pub restarts: u32,
    pub reason: String,
    pub exit: Option<Exit>,
}

/// A whole log: its header and records, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Log {
    pub path: PathBuf,
    pub pid: i64,
    pub face: String,
    /// The control socket (dinit) or service directory (runit) it serves.
    pub serves: Option<PathBuf>,
    /// Unix time the log was begun.
    pub begun: f64,
    /// Services in the order first described, with their links.
    pub services: Vec<(String, Vec<(String, String)>)>,
    pub changes: Vec<Change>,
}

/// Reads the log at `path` (with its rotated predecessor `PATH.1`, if any).
pub fn read(path: &Path) -> io::Result<Log> {
    let mut log = Log {
        path: path.to_path_buf(),
        ..Log::default()
    };
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    if let Ok(text) = fs::read_to_string(&old) {
        fold(&mut log, &text);
    }
    let text = fs::read_to_string(path)?;
    fold(&mut log, &text);
    if log.face.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a braid event log", path.display()),
        ));
    }
    Ok(log)
}

fn fold(log: &mut Log, text: &str) {
    // A line cut short (the writer was killed mid-write) is skipped.
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let t = v["t"].as_f64().unwrap_or(0.0);
        let name = display_name(v["name"].as_str().unwrap_or_default());
        match v["type"].as_str() {
            Some("session") => {
                if log.face.is_empty() {
                    log.begun = t;
                }
                log.pid = v["pid"].as_i64().unwrap_or(0);
                log.face = v["face"].as_str().unwrap_or_default().to_string();
                log.serves = v["socket"]
                    .as_str()
                    .or_else(|| v["dir"].as_str())
                    .map(PathBuf::from);
            }
            Some("service") => {
                let deps = v["deps"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|d| {
                                let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                                (display_name(&s("name")), s("kind"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                match log.services.iter_mut().find(|(n, _)| *n == name) {
                    Some(entry) => entry.1 = deps,
                    None => log.services.push((name, deps)),
                }
            }
            Some("change") => log.changes.push(Change {
                t,
                name,
                state: v["state"].as_str().unwrap_or_default().to_string(),
                target: v["target"].as_str().unwrap_or_default().to_string(),
                pid: v["pid"].as_i64(),
                restarts: v["restarts"].as_u64().unwrap_or(0) as u32,
                reason: v["reason"].as_str().unwrap_or_default().to_string(),
                exit: exit_of(&v["exit"]),
            }),
            _ => {}
        }
    }
}

/// The runit face names a logger `.log:NAME` in its engine; users know it
/// as `NAME/log` (as `sv` shows it).
fn display_name(engine_name: &str) -> String {
    match engine_name.strip_prefix(".log:") {
        Some(service) => format!("{service}/log"),
        None => engine_name.to_string(),
    }
}

fn exit_of(v: &Value) -> Option<Exit> {
    if let Some(code) = v["code"].as_i64() {
        return Some(Exit::Code(code));
    }
    v["signal"].as_str().map(|s| Exit::Signal(s.to_string()))
}

/// The log of the live braid process serving `serves` (a socket or a
/// directory) as `face`, if there is one.
pub fn find(face: &str, serves: &Path) -> Option<Log> {
    let want = std::path::absolute(serves).ok()?;
    live_logs()
        .into_iter()
        .filter(|l| l.face == face && l.serves.as_deref() == Some(want.as_path()))
        .max_by(|a, b| a.begun.total_cmp(&b.begun))
}

/// The most recently begun live log of `face` (e.g. `demo`).
pub fn latest(face: &str) -> Option<Log> {
    live_logs()
        .into_iter()
        .filter(|l| l.face == face)
        .max_by(|a, b| a.begun.total_cmp(&b.begun))
}

/// Logs of processes that still exist.
fn live_logs() -> Vec<Log> {
    let Some(dir) = log_dir() else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|p| read(&p).ok())
        .filter(|l| {
            i32::try_from(l.pid).is_ok_and(|pid| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            })
        })
        .collect()
}

/// Folds a log into `session`: services it names are added, their links
/// added where the files gave none, and each service's live state
/// completed (restart count, last exit, since) or, for services no
/// interface reported, taken from its last change.
pub fn apply(session: &mut Session, log: &Log) {
    for (name, deps) in &log.services {
        session.ensure(name, Face::Engine);
        if session.edges_from(name).next().is_none() {
            for (to, kind) in deps {
                session.edges.push(Edge {
                    from: name.clone(),
                    to: to.clone(),
                    kind: kind.clone(),
                    at: None,
                });
            }
        }
    }
    for s in &mut session.services {
        let mine: Vec<&Change> = log.changes.iter().filter(|c| c.name == s.name).collect();
        let Some(last) = mine.last() else { continue };
        // When the state last changed.
        let since = mine
            .iter()
            .rev()
            .take_while(|c| c.state == last.state)
            .last()
            .map(|c| c.t);
        match &mut s.live {
            Some(live) => {
                live.restarts = Some(last.restarts);
                if live.last_exit.is_none() {
                    live.last_exit = last.exit.clone();
                }
                if live.stop_reason.is_none() {
                    live.stop_reason = Some(last.reason.clone());
                }
                if live.since.is_none() && live.state == last.state {
                    live.since = since;
                }
            }
            None => {
                s.live = Some(Live {
                    state: last.state.clone(),
                    target: Some(last.target.clone()),
                    ready: last.state == "started",
                    pid: last.pid,
                    since,
                    last_exit: last.exit.clone(),
                    restarts: Some(last.restarts),
                    stop_reason: Some(last.reason.clone()),
                    paused: false,
                })
            }
        }
    }
}
