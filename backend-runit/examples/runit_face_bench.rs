//! braid's runsvdir against Debian's runit (runsvdir plus one runsv per
//! service), measured the same way in one run:
//!
//! - cold start of N service directories (`run` = `exec sleep 1000`),
//!   until every `supervise/status` says "run" with a pid;
//! - memory: VmRSS (and PSS, which shares out shared pages) summed over
//!   the supervisor processes — braid's one process, or runsvdir and every
//!   runsv — not the services;
//! - idle wake-ups per minute: voluntary and involuntary context switches
//!   of those processes over an idle window;
//! - time to notice a new service directory (renamed into the services
//!   directory) until it runs;
//! - time from killing a service's process to its new pid in
//!   `supervise/status` (the median of a few).
//!
//! ```sh
//! cargo build --release -p braid-turnstile
//! cargo run --release -p braid-runit --example runit_face_bench [N ...]
//! ```
//!
//! braid is `$BRAID_BIN` or the `braid` built next to this example. The
//! idle window is `$BENCH_IDLE_SECS` seconds (default 20). Everything
//! started is stopped, and the scratch directories removed, on the way out
//! (also on a failure).

use std::fs;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use braid_runit::supervise::{RunState, SuperviseFiles};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

const REAL_RUNSVDIR: &str = "/usr/bin/runsvdir";
const REAL_RUNSV: &str = "/usr/bin/runsv";
const CRASHES: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Braid,
    Runit,
}

/// One side's figures for one size.
#[derive(Debug, Default, Clone)]
struct Figures {
    cold_start: Duration,
    rss_kib: u64,
    pss_kib: u64,
    processes: usize,
    wakeups_per_min: f64,
    notice_new: Duration,
    crash_restart: Duration,
}

type Result<T> = std::result::Result<T, String>;

fn main() {
    let sizes: Vec<usize> = {
        let given: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if given.is_empty() {
            vec![10, 100, 1000]
        } else {
            given
        }
    };
    let idle = Duration::from_secs(
        std::env::var("BENCH_IDLE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    let braid = match braid_bin() {
        Some(b) => b,
        None => {
            eprintln!("braid binary not found: cargo build --release -p braid-turnstile, or set BRAID_BIN");
            std::process::exit(1);
        }
    };
    for p in [REAL_RUNSVDIR, REAL_RUNSV] {
        if !Path::new(p).exists() {
            eprintln!("{p} not installed (apt-get install runit)");
            std::process::exit(1);
        }
    }
    println!("braid: {}", braid.display());
    println!("idle window: {}s\n", idle.as_secs());
    let mut rows = Vec::new();
    for &n in &sizes {
        for side in [Side::Braid, Side::Runit] {
            eprintln!("measuring {side:?} with {n} services ...");
            match measure(side, n, &braid, idle) {
                Ok(f) => rows.push((n, side, f)),
                Err(e) => {
                    eprintln!("{side:?} with {n} services: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    print_table(&rows);
}

fn braid_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BRAID_BIN") {
        return Some(PathBuf::from(p));
    }
    // target/<profile>/examples/<this> → target/<profile>/braid
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("braid");
    candidate.exists().then_some(candidate)
}

/// A runsvdir of either side on a scratch directory; stops everything and
/// removes the directory on drop.
struct Bench {
    side: Side,
    root: PathBuf,
    runsvdir: Option<Child>,
}

impl Bench {
    fn svdir(&self) -> PathBuf {
        self.root.join("service")
    }

    fn pid(&self) -> i32 {
        self.runsvdir.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// The supervisor processes: braid's one, or runsvdir and its runsvs.
    fn supervisors(&self) -> Vec<i32> {
        let top = self.pid();
        let mut pids = vec![top];
        if self.side == Side::Runit {
            pids.extend(children_of(top));
        }
        pids
    }

    /// Every service pid in the `supervise/pid` files.
    fn service_pids(&self) -> Vec<i32> {
        let Ok(entries) = fs::read_dir(self.svdir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| fs::read_to_string(e.path().join("supervise/pid")).ok())
            .filter_map(|t| t.trim().parse().ok())
            .collect()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(mut child) = self.runsvdir.take() {
            let top = child.id() as i32;
            match self.side {
                // runsvdir, its runsvs and their services share a group.
                Side::Runit => {
                    let _ = killpg(Pid::from_raw(top), Signal::SIGKILL);
                }
                // braid's services have sessions of their own: braid stops
                // them on HUP; whatever is left of its children is killed.
                Side::Braid => {
                    let services = self.service_pids();
                    let _ = kill(Pid::from_raw(top), Signal::SIGHUP);
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    if matches!(child.try_wait(), Ok(None)) {
                        for pid in services {
                            if parent_of(pid) == Some(top) {
                                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                            }
                        }
                    }
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn write_service(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let run = dir.join("run");
    fs::write(&run, "#!/bin/sh\nexec sleep 1000\n").map_err(|e| format!("{e}"))?;
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).map_err(|e| format!("{e}"))
}

fn measure(side: Side, n: usize, braid: &Path, idle: Duration) -> Result<Figures> {
    let root =
        std::env::temp_dir().join(format!("braid-bench-{}-{side:?}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let mut bench = Bench {
        side,
        root: root.clone(),
        runsvdir: None,
    };
    let svdir = bench.svdir();
    let names: Vec<String> = (0..n).map(|i| format!("s{i:04}")).collect();
    for name in &names {
        write_service(&svdir.join(name))?;
    }
    // runit's runsvdir waits a second when the directory changed in the
    // current second: start both in the next second, alike.
    let changed = mtime_secs(&svdir)?;
    wait_until("the next second", Duration::from_secs(3), || {
        Ok(unix_secs() > changed)
    })?;
    let program = match side {
        Side::Runit => PathBuf::from(REAL_RUNSVDIR),
        Side::Braid => {
            let link = root.join("bin/runsvdir");
            fs::create_dir_all(link.parent().unwrap()).map_err(|e| e.to_string())?;
            symlink(braid, &link).map_err(|e| e.to_string())?;
            link
        }
    };

    let t0 = Instant::now();
    bench.runsvdir = Some(
        Command::new(program)
            .arg(&svdir)
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start runsvdir: {e}"))?,
    );
    wait_until("every service to run", Duration::from_secs(180), || {
        Ok(names.iter().all(|s| running_pid(&svdir.join(s)).is_some()))
    })?;
    let cold_start = t0.elapsed();

    // Past the first second's restart throttle and any start-up work.
    std::thread::sleep(Duration::from_secs(2));
    let supervisors = bench.supervisors();
    let (rss_kib, pss_kib) = supervisors.iter().fold((0, 0), |(r, p), pid| {
        (r + status_field(*pid, "VmRSS:"), p + pss(*pid))
    });
    let before: u64 = supervisors.iter().map(|p| switches(*p)).sum();
    std::thread::sleep(idle);
    let after: u64 = bench.supervisors().iter().map(|p| switches(*p)).sum();
    let wakeups_per_min = after.saturating_sub(before) as f64 * 60.0 / idle.as_secs_f64();

    // A new directory (one taken out first: runit's runsvdir supervises at
    // most 1000).
    let out = root.join("out");
    fs::rename(svdir.join(&names[0]), &out).map_err(|e| e.to_string())?;
    wait_until(
        "the removed service unsupervised",
        Duration::from_secs(30),
        || Ok(!supervised(&out)),
    )?;
    let staged = root.join("new");
    write_service(&staged)?;
    let t0 = Instant::now();
    fs::rename(&staged, svdir.join("new")).map_err(|e| e.to_string())?;
    wait_until("the new service to run", Duration::from_secs(30), || {
        Ok(running_pid(&svdir.join("new")).is_some())
    })?;
    let notice_new = t0.elapsed();

    let mut restarts = Vec::new();
    for name in names.iter().skip(1).take(CRASHES) {
        let dir = svdir.join(name);
        let old = running_pid(&dir).ok_or(format!("{name} not running"))?;
        let t0 = Instant::now();
        kill(Pid::from_raw(old as i32), Signal::SIGKILL).map_err(|e| e.to_string())?;
        wait_until(
            &format!("{name} restarted"),
            Duration::from_secs(10),
            || Ok(running_pid(&dir).is_some_and(|p| p != old)),
        )?;
        restarts.push(t0.elapsed());
    }
    restarts.sort();
    let crash_restart = restarts
        .get(restarts.len() / 2)
        .copied()
        .unwrap_or_default();

    Ok(Figures {
        cold_start,
        rss_kib,
        pss_kib,
        processes: supervisors.len(),
        wakeups_per_min,
        notice_new,
        crash_restart,
    })
}

/// The pid in `dir/supervise/status` if it says "run" with a pid.
fn running_pid(dir: &Path) -> Option<u32> {
    let status = SuperviseFiles::new(dir.join("supervise"))
        .read_status()
        .ok()?;
    (status.state()? == RunState::Run && status.pid() != 0).then_some(status.pid())
}

/// Whether a supervisor holds `supervise/ok` open (what sv tests).
fn supervised(dir: &Path) -> bool {
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(dir.join("supervise/ok"))
        .is_ok()
}

/// Polls `cond` every 5 ms until it holds, for at most `limit`.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !cond()? {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mtime_secs(path: &Path) -> Result<u64> {
    let modified = fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

/// A `Key: N kB` field of `/proc/PID/status` (0 if absent).
fn status_field(pid: i32, key: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    field(&text, key)
}

fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn pss(pid: i32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    field(&text, "Pss:")
}

/// Voluntary plus involuntary context switches so far.
fn switches(pid: i32) -> u64 {
    status_field(pid, "voluntary_ctxt_switches:") + status_field(pid, "nonvoluntary_ctxt_switches:")
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        if a == 0.0 {
            "=".to_string()
        } else {
            "inf".to_string()
        }
    } else {
        format!("{:.3}", a / b)
    }
}

fn print_table(rows: &[(usize, Side, Figures)]) {
    println!("| services | measure | braid | runit | braid/runit |\n|---:|---|---:|---:|---:|");
    let sizes: Vec<usize> = {
        let mut s: Vec<usize> = rows.iter().map(|r| r.0).collect();
        s.dedup();
        s
    };
    for n in sizes {
        let get = |side| rows.iter().find(|r| r.0 == n && r.1 == side).map(|r| &r.2);
        let (Some(b), Some(r)) = (get(Side::Braid), get(Side::Runit)) else {
            continue;
        };
        let line = |what: &str, bv: String, rv: String, q: String| {
            println!("| {n} | {what} | {bv} | {rv} | {q} |");
        };
        let secs = |d: Duration| d.as_secs_f64();
        line(
            "cold start until all run",
            ms(b.cold_start),
            ms(r.cold_start),
            ratio(secs(b.cold_start), secs(r.cold_start)),
        );
        line(
            "supervisor processes",
            b.processes.to_string(),
            r.processes.to_string(),
            ratio(b.processes as f64, r.processes as f64),
        );
        line(
            "RSS, summed (KiB)",
            b.rss_kib.to_string(),
            r.rss_kib.to_string(),
            ratio(b.rss_kib as f64, r.rss_kib as f64),
        );
        line(
            "PSS, summed (KiB)",
            b.pss_kib.to_string(),
            r.pss_kib.to_string(),
            ratio(b.pss_kib as f64, r.pss_kib as f64),
        );
        line(
            "idle wake-ups per minute",
            format!("{:.1}", b.wakeups_per_min),
            format!("{:.1}", r.wakeups_per_min),
            ratio(b.wakeups_per_min, r.wakeups_per_min),
        );
        line(
            "new service dir until it runs",
            ms(b.notice_new),
            ms(r.notice_new),
            ratio(secs(b.notice_new), secs(r.notice_new)),
        );
        line(
            "crash until restarted (median)",
            ms(b.crash_restart),
            ms(r.crash_restart),
            ratio(secs(b.crash_restart), secs(r.crash_restart)),
        );
    }
}
