//! Processes braid must not lose track of: those a previous braid left
//! running when it was killed, and those a stopped service left behind in
//! its process group.
//!
//! # The process record
//!
//! With a record file set (`Runtime::record_processes`), the runtime keeps
//! in it, before every sleep in `poll`, the processes it launched and still
//! waits for. A process's line holds its pid, the kernel's start time of
//! that pid (so a reused pid is never mistaken for ours), the stop signal,
//! the stop timeout and the service's name; a line `- PID` says that
//! process is gone. Lines are appended as processes come and go (one write
//! per loop turn), so a turn costs what changed, not what runs; when the
//! file has grown to several times the live set it is rewritten with the
//! live processes only (a temporary file renamed over it, so a reader
//! always sees one whole record). Every process braid launches leads a
//! session and a process group of its own (`setsid`), so the pid names its
//! group too.
//!
//! After braid was killed (SIGKILL, OOM) its services keep running,
//! re-parented to init or to the nearest subreaper, and the next braid on
//! the same session would start them a second time. [`reclaim`] reads the
//! record that braid left, stops what is left of each group with the
//! service's own stop signal (SIGKILL once its stop timeout has passed),
//! and returns what it found, before the new braid starts anything.
//!
//! Why stop rather than adopt: a process that is not braid's child cannot
//! be waited for, so braid would never learn its exit status (runit's
//! `finish` arguments, dinit's restart-on-failure), and the pipes it was
//! given (its log pipe, readiness pipe, in-memory log buffer) had braid's
//! ends, which died with braid. An adopted service would run on with a
//! broken log and an unknowable end; a restarted one is fully supervised.
//!
//! # Sweeping a stopped service's group
//!
//! When a service's main process exits while the service is being stopped,
//! whatever is left in its process group (children it put in the
//! background) gets the stop signal (and SIGCONT), and SIGKILL when the
//! stop timeout has passed. Processes that left the group (`setsid`,
//! `setpgid`: double-forking daemons) are out of braid's reach; cgroups
//! would reach them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::reaper::Children;
use crate::engine::{Engine, ServiceId, Time};

/// The stop timeout used when a service has none (waits forever): braid
/// does not wait forever for processes nobody supervises any more.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How often `reclaim` looks whether the groups it signalled are gone: a
/// process group has no fd to wait on, and its members are not braid's
/// children.
const RECLAIM_POLL: Duration = Duration::from_millis(20);

/// A record file is rewritten with the live processes only once it has more
/// lines than this many times their number (plus `COMPACT_SLACK`), so
/// that rewriting costs a constant per change.
const COMPACT_FACTOR: usize = 4;
const COMPACT_SLACK: usize = 64;

/// The process record file (see the module documentation).
#[derive(Debug)]
pub struct Record {
    path: PathBuf,
    /// The record, open for appending; `None` until it is first written
    /// whole, and after a failure.
    file: Option<fs::File>,
    /// Lines in the file.
    lines: usize,
    /// The processes the file names as live, with their start times.
    start_times: HashMap<Pid, u64>,
    /// The children's change count at the last write.
    pub written: Option<u64>,
    /// A failed write was reported (once, until a write succeeds).
    failed: bool,
}

impl Record {
    pub fn new(path: PathBuf) -> Record {
        Record {
            path,
            file: None,
            lines: 0,
            start_times: HashMap::new(),
            written: None,
            failed: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Brings the file up to date with `children`: appends what changed
    /// since the last write (from the children's journal, which the
    /// runtime keeps while there is a record), or writes it whole the
    /// first time, after a failure, or when it has grown too long. Returns
    /// the error text the first time a write fails.
    pub fn write(&mut self, children: &mut Children, engine: &Engine) -> Option<String> {
        self.written = Some(children.changes());
        let journal = children.take_journal();
        let result = match &mut self.file {
            Some(file) => {
                let mut text = String::new();
                for (pid, change) in journal {
                    match change {
                        Some(service) => {
                            if let Some(start) = proc_stat(pid.as_raw()).map(|s| s.start_time) {
                                self.start_times.insert(pid, start);
                                push_line(&mut text, pid, start, service, engine);
                                self.lines += 1;
                            } // else already gone; its exit is on its way
                        }
                        None => {
                            if self.start_times.remove(&pid).is_some() {
                                let _ = writeln!(text, "- {}", pid.as_raw());
                                self.lines += 1;
                            }
                        }
                    }
                }
                file.write_all(text.as_bytes())
            }
            None => Ok(()),
        };
        let too_long = self.lines > COMPACT_FACTOR * self.start_times.len() + COMPACT_SLACK;
        let result = match result {
            Ok(()) if self.file.is_some() && !too_long => Ok(()),
            _ => self.rewrite(children, engine),
        };
        match result {
            Ok(()) => {
                self.failed = false;
                None
            }
            Err(e) => {
                self.file = None;
                let first = !self.failed;
                self.failed = true;
                first.then(|| {
                    format!(
                        "cannot write the process record {}: {e}",
                        self.path.display()
                    )
                })
            }
        }
    }

    /// Writes the file whole with the live `children` and opens it for
    /// appending.
    fn rewrite(&mut self, children: &Children, engine: &Engine) -> io::Result<()> {
        self.file = None;
        let mut text = String::new();
        let mut seen = HashMap::with_capacity(children.len());
        for (pid, service, _role) in children.iter() {
            let start = match self.start_times.get(&pid) {
                Some(&t) => Some(t),
                None => proc_stat(pid.as_raw()).map(|s| s.start_time),
            };
            let Some(start) = start else {
                continue; // already gone; its exit is on its way
            };
            seen.insert(pid, start);
            push_line(&mut text, pid, start, service, engine);
        }
        self.lines = seen.len();
        self.start_times = seen;
        write_atomically(&self.path, text.as_bytes())?;
        self.file = Some(
            fs::OpenOptions::new()
                .append(true)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                .open(&self.path)?,
        );
        Ok(())
    }
}

/// Appends the line of a live process.
fn push_line(text: &mut String, pid: Pid, start: u64, service: ServiceId, engine: &Engine) {
    let spec = engine.spec(service);
    let signal = spec.stop_signal.unwrap_or(Signal::SIGTERM) as i32;
    let grace = spec.stop_timeout.unwrap_or(DEFAULT_GRACE).as_millis();
    let _ = writeln!(
        text,
        "{} {start} {signal} {grace} {}",
        pid.as_raw(),
        spec.name.as_str().escape_default()
    );
}

/// Writes `path.tmp` (never following a symlink planted there) and renames
/// it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    fs::rename(&tmp, path)
}

/// What a process left by a previous braid was, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The service's name as recorded (escaped: printable ASCII).
    pub service: String,
    /// The pid, and the process group it led.
    pub pid: i32,
    /// How many processes were still in its group or session.
    pub processes: usize,
    /// It had to be killed with SIGKILL after its stop timeout.
    pub killed: bool,
}

/// One line of the record.
#[derive(Debug)]
struct Entry {
    pid: i32,
    start_time: u64,
    signal: Signal,
    grace: Duration,
    service: String,
}

fn parse_entry(line: &str) -> Option<Entry> {
    let mut fields = line.splitn(5, ' ');
    let pid: i32 = fields.next()?.parse().ok()?;
    let start_time = fields.next()?.parse().ok()?;
    let signal = Signal::try_from(fields.next()?.parse::<i32>().ok()?).ok()?;
    let grace = Duration::from_millis(fields.next()?.parse().ok()?);
    let service = fields.next()?.to_string();
    (pid > 1).then_some(Entry {
        pid,
        start_time,
        signal,
        grace,
        service,
    })
}

/// The processes a record names as live: each process line, unless a later
/// `- PID` line says it is gone. Lines that do not parse (a torn last line)
/// are skipped.
fn live_entries(text: &str) -> Vec<Entry> {
    let mut live: Vec<Entry> = Vec::new();
    for line in text.lines() {
        if let Some(gone) = line.strip_prefix("- ") {
            if let Ok(pid) = gone.parse::<i32>() {
                live.retain(|e| e.pid != pid);
            }
        } else if let Some(entry) = parse_entry(line) {
            live.retain(|e| e.pid != entry.pid);
            live.push(entry);
        }
    }
    live
}

/// Stops every process group a previous braid recorded in `path` that is
/// still running, waiting (bounded by each service's stop timeout, then
/// SIGKILL and at most one more second) until they are gone, and removes
/// the record. A missing record means nothing was left.
pub fn reclaim(path: &Path) -> io::Result<Vec<Leftover>> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&text);
    let me = std::process::id() as i32;
    let entries: Vec<Entry> = live_entries(&text)
        .into_iter()
        .filter(|e| e.pid != me)
        .collect();

    let table = process_table();
    let mut left = Vec::new();
    for entry in entries {
        // The leader, if alive, must be the very process braid launched;
        // if it is gone, its pid cannot have been reused while members of
        // its group or session remain, so those are braid's too.
        if let Some(leader) = table.iter().find(|p| p.pid == entry.pid) {
            if leader.start_time != entry.start_time {
                continue;
            }
        }
        let members = members(&table, entry.pid);
        if members.is_empty() {
            continue;
        }
        signal_members(entry.pid, &members, entry.signal);
        left.push((entry, members.len()));
    }

    let start = Instant::now();
    let mut results: Vec<Leftover> = left
        .iter()
        .map(|(e, n)| Leftover {
            service: e.service.clone(),
            pid: e.pid,
            processes: *n,
            killed: false,
        })
        .collect();
    let last_deadline = left.iter().map(|(e, _)| e.grace).max().unwrap_or_default();
    let mut pending: Vec<usize> = (0..left.len()).collect();
    let mut kill_sent_at: Option<Instant> = None;
    while !pending.is_empty() {
        let table = process_table();
        pending.retain(|&i| {
            let (entry, _) = &left[i];
            let members = members(&table, entry.pid);
            if members.is_empty() {
                return false;
            }
            if start.elapsed() >= entry.grace && !results[i].killed {
                results[i].killed = true;
                signal_members(entry.pid, &members, Signal::SIGKILL);
            }
            true
        });
        if pending.is_empty() {
            break;
        }
        if start.elapsed() >= last_deadline {
            let at = *kill_sent_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= Duration::from_secs(1) {
                break; // unkillable (D state); nothing more braid can do
            }
        }
        std::thread::sleep(RECLAIM_POLL);
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok(results)
}

/// Sends `signal` (and SIGCONT, so that a stopped process sees it) to a
/// group and to each member of its session outside the group.
fn signal_members(group: i32, members: &[i32], signal: Signal) {
    let _ = kill(Pid::from_raw(-group), signal);
    for &pid in members {
        let _ = kill(Pid::from_raw(pid), signal);
    }
    if signal != Signal::SIGKILL {
        let _ = kill(Pid::from_raw(-group), Signal::SIGCONT);
        for &pid in members {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

/// Live (not zombie) processes whose process group or session is `leader`.
fn members(table: &[ProcStat], leader: i32) -> Vec<i32> {
    table
        .iter()
        .filter(|p| (p.pgid == leader || p.sid == leader) && p.state != 'Z')
        .map(|p| p.pid)
        .collect()
}

/// What braid reads of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy)]
struct ProcStat {
    pid: i32,
    state: char,
    pgid: i32,
    sid: i32,
    /// Clock ticks after boot at which the process started.
    start_time: u64,
}

fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may contain anything: split after
    // its last ')'.
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // Fields from 3 (state) on; start time is field 22.
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        pgid: fields.get(2)?.parse().ok()?,
        sid: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn process_table() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// Process groups of stopped services that still had members, to be
/// killed at their deadline.
#[derive(Debug, Default)]
pub struct Sweeps {
    /// (deadline, the pid of the group's former leader).
    pending: Vec<(Time, i32)>,
}

impl Sweeps {
    /// The main process `pid` of a service being stopped has exited: give
    /// what is left of its group `signal` now (unless `signalled_already`:
    /// the group got the stop signal with it) and SIGKILL at `deadline`.
    pub fn begin(
        &mut self,
        pid: i32,
        signal: Option<Signal>,
        signalled_already: bool,
        deadline: Time,
    ) {
        let group = Pid::from_raw(-pid);
        if kill(group, None) == Err(Errno::ESRCH) {
            return; // nothing left
        }
        if !signalled_already {
            if let Some(signal) = signal {
                let _ = kill(group, signal);
            }
        }
        let _ = kill(group, Signal::SIGCONT);
        self.pending.push((deadline, pid));
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.pending.iter().map(|(at, _)| *at).min()
    }

    /// Kills the groups whose deadline has come.
    pub fn run_due(&mut self, now: Time) {
        self.pending.retain(|&(at, pid)| {
            if at > now {
                return true;
            }
            // The leader was reaped: the number stays taken while members
            // of its group remain. If it now names a live group leader,
            // the old group is gone and that new one is not ours.
            let reused = proc_stat(pid).is_some_and(|s| s.pgid == pid && s.state != 'Z');
            if !reused {
                let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
            }
            false
        });
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_bad_lines_are_skipped() {
        let e = parse_entry("123 4567 15 10000 my\\tservice").expect("parses");
        assert_eq!(
            (e.pid, e.start_time, e.signal, e.grace, e.service.as_str()),
            (
                123,
                4567,
                Signal::SIGTERM,
                Duration::from_secs(10),
                "my\\tservice"
            )
        );
        assert!(parse_entry("1 4567 15 10 init").is_none(), "never pid 1");
        assert!(parse_entry("x 1 15 10 a").is_none());
        assert!(parse_entry("12 1 99 10 a").is_none(), "not a signal");
        assert!(parse_entry("12 1 15").is_none());
    }

    #[test]
    fn exit_lines_remove_earlier_entries() {
        let text = "10 1 15 100 a\n11 2 15 100 b\n- 10\n12 3 9 100 c\n10 4 15 100 d\n- 11\n- 1";
        let live: Vec<(i32, u64, String)> = live_entries(text)
            .into_iter()
            .map(|e| (e.pid, e.start_time, e.service))
            .collect();
        assert_eq!(live, [(12, 3, "c".into()), (10, 4, "d".into())]);
    }

    #[test]
    fn own_stat_is_read() {
        let me = std::process::id() as i32;
        let s = proc_stat(me).expect("own stat");
        assert_eq!(s.pid, me);
        assert!(s.start_time > 0);
        assert_eq!(s.sid, nix::unistd::getsid(None).expect("sid").as_raw());
    }
}
