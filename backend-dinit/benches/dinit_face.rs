//! braid's `dinit` personality against the real dinit, measured the same
//! way in one run:
//!
//! - cold start of N services (a chain, and a fan-out under `boot`), both
//!   as `type = process` running `/bin/sleep 1000` and as `type = internal`
//!   (the engine alone): from spawning the daemon until the real
//!   `dinitctl start boot` returns (it waits for `boot` to have started,
//!   so for every service it depends on); the split at the ready fd
//!   (control socket listening) is shown too;
//! - `dinitctl status` round trip: the mean of many runs of the real
//!   dinitctl, and of a direct protocol client (one connection, one
//!   SERVICESTATUS request at a time) for a figure without process spawns;
//! - `dinitctl list` with the largest N loaded;
//! - the daemon's VmRSS with the largest N process services started.
//!
//! ```sh
//! cargo build --release -p braid-turnstile
//! cargo bench -p braid-dinit --bench dinit_face [N ...]
//! ```
//!
//! braid is `$BRAID_BIN`, else the `braid` next to this benchmark (a debug
//! one is used with a warning if there is no release one). The real
//! programs are in `$BRAID_PEER_DINIT_DIR`, else `../shared/peers/dinit`
//! beside the repository. Repetitions of each cold start: `$BENCH_REPS`
//! (default 3; the median is shown; braid and dinit alternate);
//! `$BENCH_PROCESS_ONLY` set measures only the cold starts of process
//! services. Both daemons get the same small
//! environment (PATH, HOME, XDG_RUNTIME_DIR) plus `$BENCH_ENV_VARS`
//! variables of 60 bytes (default 40, about a desktop session's), not this
//! program's: the cost of a launch grows with the environment passed on.
//! XDG_RUNTIME_DIR (the control socket, and braid's process record and
//! event log) is on tmpfs as `/run/user/UID` usually is: under
//! `$BENCH_RUNTIME_BASE`, else `/dev/shm` if it is a directory, else the
//! temporary directory. Every daemon is stopped with SIGTERM
//! and every service process it had is checked gone (and killed if not) on
//! the way out, also on a failure.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use braid_dinit::protocol::{Incoming, Reply, Request, StatusVersion};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Runs of the real dinitctl averaged for `status`.
const STATUS_RUNS: u32 = 200;
/// Requests averaged for the direct protocol client.
const PROTOCOL_RUNS: u32 = 5000;
/// Runs of `dinitctl list` averaged.
const LIST_RUNS: u32 = 20;
/// Bound on any one wait (daemon ready, a client, a daemon's exit).
const WAIT: Duration = Duration::from_secs(60);

type Result<T> = std::result::Result<T, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Braid,
    Dinit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Chain,
    Fan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Process,
    Internal,
}

/// The programs under test.
struct Programs {
    braid: PathBuf,
    dinit: PathBuf,
    dinitctl: PathBuf,
    /// Extra variables in the daemons' environment.
    env_vars: usize,
    /// Where each daemon's XDG_RUNTIME_DIR is made.
    runtime_base: PathBuf,
}

impl Programs {
    fn daemon(&self, side: Side) -> &Path {
        match side {
            Side::Braid => &self.braid,
            Side::Dinit => &self.dinit,
        }
    }
}

/// A cold start's phases.
#[derive(Clone, Copy, Debug)]
struct ColdStart {
    ready: Duration,
    all_started: Duration,
}

/// One measured row: a label, braid's and dinit's figures, and the unit.
struct Row {
    label: String,
    braid: f64,
    dinit: f64,
    unit: &'static str,
    aim: &'static str,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("dinit_face: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
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
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(3);
    let programs = programs()?;
    println!("braid:  {}", programs.braid.display());
    println!("dinit:  {}", programs.dinit.display());
    println!(
        "cold starts: median of {reps}; daemon environment: 3 + {} variables; runtime dir under {}\n",
        programs.env_vars,
        programs.runtime_base.display()
    );

    let process_only = std::env::var_os("BENCH_PROCESS_ONLY").is_some();
    let kinds: &[Kind] = if process_only {
        &[Kind::Process]
    } else {
        &[Kind::Process, Kind::Internal]
    };
    let mut rows = Vec::new();
    for &kind in kinds {
        for shape in [Shape::Chain, Shape::Fan] {
            for &n in &sizes {
                // The sides alternate, so that a change of load meets both.
                eprintln!("cold start: {n} {kind:?} services, {shape:?} ...");
                let mut runs = [Vec::new(), Vec::new()];
                for _ in 0..reps {
                    for (slot, side) in [Side::Braid, Side::Dinit].into_iter().enumerate() {
                        let (daemon, t) = Daemon::cold_start(&programs, side, shape, kind, n)?;
                        daemon.check_all_started(n)?;
                        daemon.stop()?;
                        runs[slot].push(t);
                    }
                }
                let pair = runs.map(|mut r| {
                    r.sort_by_key(|c| c.all_started);
                    r[r.len() / 2]
                });
                let what = format!("{n} {} {}", kind.word(), shape.word());
                rows.push(Row::time(
                    format!("cold start, ready fd: {what}"),
                    pair[0].ready,
                    pair[1].ready,
                    "",
                ));
                rows.push(Row::time(
                    format!("cold start, all started: {what}"),
                    pair[0].all_started,
                    pair[1].all_started,
                    "<= 1",
                ));
            }
        }
    }

    if process_only {
        print_table(&rows);
        return Ok(());
    }
    // Round trips, listing and memory on the largest fan-out of processes.
    let n = sizes.iter().copied().max().unwrap_or(1000);
    let mut status = [0.0; 2];
    let mut direct = [0.0; 2];
    let mut list = [0.0; 2];
    let mut rss = [0.0; 2];
    let mut rss_internal = [0.0; 2];
    for (slot, side) in [Side::Braid, Side::Dinit].into_iter().enumerate() {
        eprintln!("round trips and memory: {side:?}, {n} services ...");
        let (daemon, _) = Daemon::cold_start(&programs, side, Shape::Fan, Kind::Process, n)?;
        daemon.check_all_started(n)?;
        rss[slot] = daemon.rss_kib()? as f64;
        status[slot] = mean_ms(STATUS_RUNS, || daemon.ctl_ok(&["status", "s0"]))?;
        direct[slot] = daemon.protocol_status_ms("s0", PROTOCOL_RUNS)?;
        list[slot] = mean_ms(LIST_RUNS, || daemon.ctl_ok(&["list"]))?;
        daemon.stop()?;
        let (daemon, _) = Daemon::cold_start(&programs, side, Shape::Fan, Kind::Internal, n)?;
        rss_internal[slot] = daemon.rss_kib()? as f64;
        daemon.stop()?;
    }
    rows.push(Row::ms(
        format!("dinitctl status (mean of {STATUS_RUNS}, {n} loaded)"),
        status,
        "<= 1",
    ));
    rows.push(Row {
        label: format!("protocol SERVICESTATUS round trip (mean of {PROTOCOL_RUNS})"),
        braid: direct[0] * 1000.0,
        dinit: direct[1] * 1000.0,
        unit: "us",
        aim: "<= 1",
    });
    rows.push(Row::ms(
        format!("dinitctl list (mean of {LIST_RUNS}, {n} loaded)"),
        list,
        "<= 1",
    ));
    rows.push(Row::kib(
        format!("daemon VmRSS, {n} processes started"),
        rss,
    ));
    rows.push(Row::kib(
        format!("daemon VmRSS, {n} internal started"),
        rss_internal,
    ));
    print_table(&rows);
    Ok(())
}

fn programs() -> Result<Programs> {
    let braid = match std::env::var_os("BRAID_BIN") {
        Some(b) => PathBuf::from(b),
        None => {
            // target/release/deps/<this> → target/release/braid
            let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .ok_or("own path has no profile directory")?;
            let release = profile.join("braid");
            let debug = profile.with_file_name("debug").join("braid");
            if release.is_file() {
                release
            } else if debug.is_file() {
                eprintln!(
                    "warning: no release braid at {}; using the debug build {} (figures are not representative)",
                    release.display(),
                    debug.display()
                );
                debug
            } else {
                return Err(format!(
                    "braid binary not found at {}: cargo build --release -p braid-turnstile, or set BRAID_BIN",
                    release.display()
                ));
            }
        }
    };
    if !braid.is_file() {
        return Err(format!("braid binary {} does not exist", braid.display()));
    }
    let peers = match std::env::var_os("BRAID_PEER_DINIT_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/dinit"),
    };
    let dinit = peers.join("dinit");
    let dinitctl = peers.join("dinitctl");
    if !dinit.is_file() || !dinitctl.is_file() {
        return Err(format!(
            "real dinit programs not found in {} (set BRAID_PEER_DINIT_DIR)",
            peers.display()
        ));
    }
    let env_vars = std::env::var("BENCH_ENV_VARS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let runtime_base = match std::env::var_os("BENCH_RUNTIME_BASE") {
        Some(d) => PathBuf::from(d),
        None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    };
    Ok(Programs {
        braid,
        dinit,
        dinitctl,
        env_vars,
        runtime_base,
    })
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::Internal => "internal",
        }
    }
}

impl Shape {
    fn word(self) -> &'static str {
        match self {
            Shape::Chain => "chain",
            Shape::Fan => "fan-out",
        }
    }
}

/// Writes `s0`..`s{n-1}` and `boot` into `dir`: a chain (each service
/// depends on the one before) or a fan-out (independent services). `boot`
/// depends on every service, in order: both daemons refuse to load a
/// dependency more than a few dozen levels deep ("maximum recursion
/// depth"), so a chain is loaded from its first link on, one level at a
/// time; it still starts one service after the other.
fn write_services(dir: &Path, shape: Shape, kind: Kind, n: usize) -> Result<()> {
    let body = match kind {
        Kind::Process => "type = process\ncommand = /bin/sleep 1000\n",
        Kind::Internal => "type = internal\n",
    };
    let write = |name: &str, text: &str| {
        fs::write(dir.join(name), text).map_err(|e| format!("{}/{name}: {e}", dir.display()))
    };
    let mut boot = String::from("type = internal\n");
    for i in 0..n {
        let mut text = body.to_string();
        if shape == Shape::Chain && i > 0 {
            text.push_str(&format!("depends-on = s{}\n", i - 1));
        }
        write(&format!("s{i}"), &text)?;
        boot.push_str(&format!("depends-on = s{i}\n"));
    }
    write("boot", &boot)
}

/// A daemon of either side on a scratch directory. Dropping it stops the
/// daemon (SIGTERM, then SIGKILL after a bound), kills any service process
/// it left, and removes the directory.
struct Daemon {
    side: Side,
    child: Option<Child>,
    root: PathBuf,
    /// XDG_RUNTIME_DIR, outside `root`.
    run: PathBuf,
    socket: PathBuf,
    dinitctl: PathBuf,
}

impl Daemon {
    /// Writes the services, spawns the daemon and waits until `boot` has
    /// started; the times from the spawn to the ready fd and to then.
    fn cold_start(
        programs: &Programs,
        side: Side,
        shape: Shape,
        kind: Kind,
        n: usize,
    ) -> Result<(Daemon, ColdStart)> {
        let unique = format!(
            "braid-dinitbench-{}-{side:?}-{}",
            std::process::id(),
            next_id()
        );
        let root = std::env::temp_dir().join(&unique);
        let run = programs.runtime_base.join(&unique);
        let mut daemon = Daemon {
            side,
            child: None,
            socket: run.join("control"),
            dinitctl: programs.dinitctl.clone(),
            root: root.clone(),
            run: run.clone(),
        };
        let (services, home, bin) = (root.join("sd"), root.join("home"), root.join("bin"));
        for d in [&services, &run, &home, &bin] {
            fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        write_services(&services, shape, kind, n)?;
        let program = match side {
            Side::Dinit => programs.daemon(side).to_path_buf(),
            Side::Braid => {
                let link = bin.join("dinit");
                symlink(programs.daemon(side), &link).map_err(|e| format!("symlink: {e}"))?;
                link
            }
        };
        let (read_end, write_end) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
        nix::fcntl::fcntl(
            read_end.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| format!("fcntl: {e}"))?;
        let mut command = Command::new(&program);
        command
            .arg("--user")
            .arg("--services-dir")
            .arg(&services)
            .arg("--socket-path")
            .arg(&daemon.socket)
            .arg("--ready-fd")
            .arg(write_end.as_raw_fd().to_string())
            .current_dir(&daemon.root)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &run)
            .envs((0..programs.env_vars).map(|i| (format!("BENCH_VAR_{i}"), "x".repeat(60))))
            .stdin(Stdio::null())
            .stdout(console_file(&daemon.root, "console")?)
            .stderr(console_file(&daemon.root, "stderr")?);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;
        drop(write_end);
        daemon.child = Some(child);
        wait_ready(&read_end, Instant::now() + WAIT).map_err(|e| {
            format!(
                "{side:?} dinit with {n} services: {e}\n{}",
                daemon.console()
            )
        })?;
        let ready = spawned.elapsed();
        daemon.ctl_ok(&["start", "boot"])?;
        let all_started = spawned.elapsed();
        Ok((daemon, ColdStart { ready, all_started }))
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Runs the real dinitctl on this daemon's socket (bounded: killed
    /// if it takes longer than `WAIT`).
    fn ctl(&self, args: &[&str]) -> Result<std::process::Output> {
        let child = Command::new(&self.dinitctl)
            .arg("-p")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn dinitctl: {e}"))?;
        let pid = Pid::from_raw(child.id() as i32);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(WAIT) {
            Ok(out) => out.map_err(|e| format!("dinitctl {}: {e}", args.join(" "))),
            Err(_) => {
                let _ = kill(pid, Signal::SIGKILL);
                Err(format!("dinitctl {} did not finish", args.join(" ")))
            }
        }
    }

    /// As `ctl`, failing unless dinitctl exits 0; its stdout.
    fn ctl_ok(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.ctl(args)?;
        if !out.status.success() {
            return Err(format!(
                "{:?}: dinitctl {} failed ({}): {}\n{}",
                self.side,
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                self.console()
            ));
        }
        Ok(out.stdout)
    }

    /// The end of what the daemon wrote (for error reports).
    fn console(&self) -> String {
        let mut text = String::new();
        for name in ["console", "stderr"] {
            let all = fs::read_to_string(self.root.join(name)).unwrap_or_default();
            let lines: Vec<&str> = all.lines().collect();
            for l in &lines[lines.len().saturating_sub(10)..] {
                text.push_str(&format!("{name}: {l}\n"));
            }
        }
        text
    }

    /// Checks with `dinitctl list` that `boot` and all `n` services started.
    fn check_all_started(&self, n: usize) -> Result<()> {
        let out = self.ctl_ok(&["list"])?;
        let started = String::from_utf8_lossy(&out)
            .lines()
            // "[{+}     ] name": started (braces: by a dependent; brackets:
            // explicitly).
            .filter(|l| l.get(2..3) == Some("+"))
            .count();
        if started == n + 1 {
            Ok(())
        } else {
            Err(format!(
                "{:?}: {started} of {} services started after boot started:\n{}",
                self.side,
                n + 1,
                String::from_utf8_lossy(&out)
            ))
        }
    }

    /// The daemon's VmRSS in KiB.
    fn rss_kib(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("{path}: no VmRSS"))
    }

    /// Mean milliseconds of a SERVICESTATUS request and its reply on one
    /// connection (after finding the service once).
    fn protocol_status_ms(&self, name: &str, runs: u32) -> Result<f64> {
        let mut conn = Connection::open(&self.socket)?;
        let handle = match conn.call(&Request::FindService {
            name: name.as_bytes().to_vec(),
        })? {
            Reply::ServiceRecord { handle, .. } => handle,
            other => return Err(format!("FINDSERVICE {name}: {other:?}")),
        };
        let request = Request::ServiceStatus { handle };
        let start = Instant::now();
        for _ in 0..runs {
            match conn.call(&request)? {
                Reply::ServiceStatus { .. } => {}
                other => return Err(format!("SERVICESTATUS: {other:?}")),
            }
        }
        Ok(start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs))
    }

    /// Stops the daemon with SIGTERM and checks that it exits and that no
    /// service process it had is left.
    fn stop(mut self) -> Result<()> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let top = child.id() as i32;
        let services = children_of(top);
        let _ = kill(Pid::from_raw(top), Signal::SIGTERM);
        let deadline = Instant::now() + WAIT;
        let mut exited = false;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut left = 0;
        for pid in services {
            if comm_of(pid).as_deref() == Some("sleep") {
                left += 1;
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        match (exited, left) {
            (true, 0) => Ok(()),
            (false, _) => Err(format!("{:?} dinit did not exit on SIGTERM", self.side)),
            (true, left) => Err(format!(
                "{:?} dinit left {left} service processes running (killed)",
                self.side
            )),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.shut_down() {
            eprintln!("{e}");
        }
        let _ = fs::remove_dir_all(&self.root);
        let _ = fs::remove_dir_all(&self.run);
    }
}

/// A number that differs between calls (scratch directory names).
fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn console_file(root: &Path, name: &str) -> Result<fs::File> {
    let path = root.join(name);
    fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Waits (bounded) for the socket path and NUL on the ready fd.
fn wait_ready(fd: &OwnedFd, deadline: Instant) -> Result<()> {
    let mut got = Vec::new();
    while !got.contains(&0) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("not ready in time".into());
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let mut buf = [0u8; 256];
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return Err("exited before it was ready".into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("read ready fd: {e}")),
        }
    }
    Ok(())
}

/// A control connection speaking the protocol through braid's codec.
struct Connection {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl Connection {
    fn open(socket: &Path) -> Result<Connection> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| format!("connect {}: {e}", socket.display()))?;
        stream
            .set_read_timeout(Some(WAIT))
            .map_err(|e| format!("socket timeout: {e}"))?;
        let mut conn = Connection {
            stream,
            buf: Vec::new(),
        };
        match conn.call(&Request::QueryVersion)? {
            Reply::CpVersion { .. } => Ok(conn),
            other => Err(format!("QUERYVERSION: {other:?}")),
        }
    }

    /// Sends a request and returns its reply, skipping information packets.
    fn call(&mut self, request: &Request) -> Result<Reply> {
        self.stream
            .write_all(&request.to_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut chunk = [0u8; 4096];
        loop {
            match Incoming::decode(&self.buf, StatusVersion::V1) {
                Ok((incoming, used)) => {
                    self.buf.drain(..used);
                    if let Incoming::Reply(reply) = incoming {
                        return Ok(reply);
                    }
                    continue;
                }
                Err(braid_dinit::protocol::DecodeError::Incomplete { .. }) => {}
                Err(e) => return Err(format!("reply: {e}")),
            }
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("receive: {e}"))?;
            if n == 0 {
                return Err("daemon closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Direct children of `pid` (from /proc/*/stat).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| parent_of(p) == Some(pid))
        .collect()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

fn comm_of(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The mean milliseconds of `runs` calls of `f`.
fn mean_ms<T>(runs: u32, mut f: impl FnMut() -> Result<T>) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..runs {
        f()?;
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0 / f64::from(runs))
}

impl Row {
    fn time(label: String, braid: Duration, dinit: Duration, aim: &'static str) -> Row {
        Row {
            label,
            braid: braid.as_secs_f64() * 1000.0,
            dinit: dinit.as_secs_f64() * 1000.0,
            unit: "ms",
            aim,
        }
    }

    fn ms(label: String, [braid, dinit]: [f64; 2], aim: &'static str) -> Row {
        Row {
            label,
            braid,
            dinit,
            unit: "ms",
            aim,
        }
    }

    fn kib(label: String, [braid, dinit]: [f64; 2]) -> Row {
        Row {
            label,
            braid,
            dinit,
            unit: "KiB",
            aim: "<= 1.5",
        }
    }
}

fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    println!(
        "{:width$}  {:>10}  {:>10}  {:>4}  {:>7}  {:>6}",
        "measure", "braid", "dinit", "unit", "b/d", "aim"
    );
    for r in rows {
        let ratio = if r.dinit > 0.0 {
            r.braid / r.dinit
        } else {
            f64::NAN
        };
        let flag = match r.aim {
            "<= 1" if ratio > 1.0 => "  <-- above",
            "<= 1.5" if ratio > 1.5 => "  <-- above",
            _ => "",
        };
        println!(
            "{:width$}  {:>10.3}  {:>10.3}  {:>4}  {:>7.2}  {:>6}{flag}",
            r.label, r.braid, r.dinit, r.unit, ratio, r.aim
        );
    }
}
