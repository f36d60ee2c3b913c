//! Measures braid under faults and load, and writes the figures to
//! `RELIABILITY.md` at the top of the repository (or the path given as the
//! first argument):
//!
//! ```sh
//! cargo run --release -p braid-tests --example reliability
//! ```
//!
//! 1. a crash loop: 100 services exiting at once, forever (no restart
//!    limit, 1 s restart delay): restarts per second (the delay must hold),
//!    braid's CPU, and control-socket latency meanwhile;
//!    then the same 100 with dinit's default restart limit: all must end
//!    up stopped;
//! 2. load: 1,000 services under the dinit face, hundreds of concurrent
//!    clients: status calls per second over the protocol and with the real
//!    `dinitctl` program; 1,000 service directories under the runit face
//!    with concurrent `sv status`;
//! 3. memory: braid's resident size after warming up, after 10^5 control
//!    calls, and after 10^4 restarts.
//!
//! Every figure comes from the built `braid` binary run as users run it.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use braid_dinit::protocol::{Reply, Request, StatusVersion};
use braid_tests::*;

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../RELIABILITY.md"));
    let Some(braid) = braid_binary() else {
        eprintln!("reliability: the braid binary is needed");
        std::process::exit(1);
    };
    let mut report = String::new();
    let _ = writeln!(report, "# braid: reliability figures\n");
    let _ = writeln!(
        report,
        "Produced by `cargo run --release -p braid-tests --example reliability` \
         ({} CPUs, load average {} at the start, braid at `{}`). Each figure is \
         measured on the built `braid` binary, driven as users drive it. The fault \
         cases are also end-to-end tests (`cargo test -p braid-tests`).\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        braid.display()
    );
    faults(&mut report);
    crash_loop(&mut report);
    restart_limits(&mut report);
    load_dinit(&braid, &mut report);
    load_runit(&mut report);
    memory(&mut report);
    keep_fuzzing_section(&out, &mut report);
    std::fs::write(&out, &report).expect("write report");
    print!("{report}");
    eprintln!("written to {}", out.display());
}

/// Carries over the report's "Fuzzing" section: it records the long fuzz
/// runs (README, "Fuzzing"), which take too long to repeat here.
fn keep_fuzzing_section(out: &Path, report: &mut String) {
    let Ok(old) = std::fs::read_to_string(out) else {
        return;
    };
    if let Some(at) = old.find("\n## Fuzzing\n") {
        report.push_str(&old[at..]);
    }
}

/// The fault tests, run and counted.
fn faults(report: &mut String) {
    let _ = writeln!(report, "## Faults survived\n");
    let tests = ["faults_dinit", "faults_runit", "security", "escaping"];
    let mut rows = Vec::new();
    for t in tests {
        let o = Command::new(env!("CARGO"))
            .args(["test", "-q", "-p", "braid-tests", "--test", t])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo test");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        for line in text.lines().filter(|l| l.starts_with("test result:")) {
            rows.push(format!(
                "| `{t}` | {} |",
                line.trim_start_matches("test result: ")
            ));
        }
        if !o.status.success() {
            rows.push(format!("| `{t}` | FAILED (exit {:?}) |", o.status.code()));
        }
    }
    let _ = writeln!(report, "| test file | result |\n|---|---|");
    for r in rows {
        let _ = writeln!(report, "{r}");
    }
    let _ = writeln!(
        report,
        "\nCases: exec of a missing program, a non-executable file, a file of \
         unknown format; a log file that cannot be opened; RLIMIT_FSIZE reached by \
         a service and by braid's own event log; RLIMIT_NOFILE exhausted by idle \
         clients; RLIMIT_NPROC (as root, braid runs as nobody so that it binds); \
         braid SIGKILLed and started again on the same session; a stopped service's \
         background child ignoring SIGTERM; SIGTERM to braid. In each, braid keeps \
         running, names the service, and recovers once the cause is gone. Service \
         names with control bytes are shown escaped (`escaping`).\n"
    );
}

/// braid's CPU time (user + system) in clock ticks, and resident KiB.
fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = s.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }) as f64
}

/// One protocol client: a connection with a loaded service's handle.
struct Client {
    conn: UnixStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(sock: &Path) -> Client {
        let conn = UnixStream::connect(sock).expect("connect");
        conn.set_read_timeout(Some(LIMIT)).unwrap();
        let mut c = Client {
            conn,
            buf: Vec::new(),
        };
        match c.call(&Request::QueryVersion) {
            Reply::CpVersion { .. } => {}
            r => panic!("version: {r:?}"),
        }
        c
    }

    fn call(&mut self, req: &Request) -> Reply {
        self.conn.write_all(&req.to_bytes()).expect("send");
        loop {
            match braid_dinit::protocol::Incoming::decode(&self.buf, StatusVersion::V6) {
                Ok((braid_dinit::protocol::Incoming::Reply(r), n)) => {
                    self.buf.drain(..n);
                    return r;
                }
                Ok((_, n)) => {
                    self.buf.drain(..n);
                }
                Err(_) => {
                    let mut chunk = [0u8; 4096];
                    let n = self.conn.read(&mut chunk).expect("read reply");
                    assert!(n > 0, "daemon closed the connection");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    fn handle(&mut self, name: &str) -> u32 {
        match self.call(&Request::LoadService {
            name: name.as_bytes().to_vec(),
        }) {
            Reply::ServiceRecord { handle, .. } => handle,
            r => panic!("load {name}: {r:?}"),
        }
    }

    fn status(&mut self, handle: u32) {
        match self.call(&Request::ServiceStatus6 { handle }) {
            Reply::ServiceStatus { .. } => {}
            r => panic!("status: {r:?}"),
        }
    }
}

/// Latency of one status round trip on a fresh connection.
fn latency(sock: &Path, name: &str) -> Duration {
    let t = Instant::now();
    let mut c = Client::connect(sock);
    let h = c.handle(name);
    c.status(h);
    t.elapsed()
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(", ")
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

fn crash_loop(report: &mut String) {
    let _ = writeln!(report, "## Crash loop\n");
    let services: Vec<(String, String)> = (0..100)
        .map(|i| {
            (
                format!("crash{i}"),
                "type = process\ncommand = /bin/sh -c \"echo >> launches; exit 1\"\nrestart = yes\n\
                 restart-delay = 1\nrestart-limit-count = 0\n"
                    .to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = services
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let s = DinitSession::start("crash-loop", &refs).expect("session");
    let pid = s.daemon.pid();
    let mut handles = Vec::new();
    let mut c = Client::connect(&s.socket());
    for (name, _) in &services {
        let h = c.handle(name);
        c.call(&Request::StartService {
            flags: 0,
            handle: h,
        });
        handles.push(h);
    }
    // Settle for one cycle, then measure.
    std::thread::sleep(Duration::from_secs(2));
    let secs = 10.0;
    let load_before = loadavg();
    let events_before = launches(&s);
    let cpu0 = cpu_ticks(pid);
    let mut held = Client::connect(&s.socket());
    let held_handle = held.handle("crash0");
    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut lat_held = Vec::new();
    while t0.elapsed().as_secs_f64() < secs {
        lat.push(latency(&s.socket(), "crash0"));
        let t = Instant::now();
        held.status(held_handle);
        lat_held.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu0) as f64 / ticks_per_sec();
    let restarts = launches(&s) - events_before;
    let per_sec = restarts as f64 / wall;
    let load_after = loadavg();
    let round_trip = |lat: &mut Vec<Duration>| {
        let p50 = percentile(lat, 0.5);
        let p99 = percentile(lat, 0.99);
        let max = *lat.last().unwrap_or(&Duration::ZERO);
        format!(
            "median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(p50),
            ms(p99),
            ms(max)
        )
    };
    let _ = writeln!(
        report,
        "100 services that exit at once with status 1, forever (`restart = yes`, \
         `restart-delay = 1`, no restart limit), watched for {wall:.1} s:\n\n\
         | figure | value |\n|---|---|\n\
         | launches | {restarts} ({per_sec:.1}/s; the 1 s delay allows 100 a round, at most 11 rounds in 10 s) |\n\
         | braid CPU | {cpu:.2} s in {wall:.1} s ({:.1}% of one CPU) |\n\
         | status round trip on a new connection (connect, find, status), {} samples | {} |\n\
         | status round trip on a held connection, {} samples | {} |\n\n\
         Machine load (1, 5, 15 min averages of /proc/loadavg) before: {load_before}; after: \
         {load_after}. Launches are asynchronous (braid does not wait for a child's exec).\n",
        100.0 * cpu / wall,
        lat.len(),
        round_trip(&mut lat),
        lat_held.len(),
        round_trip(&mut lat_held),
    );
    assert!(per_sec <= 100.0 * 1.1, "restart delay held: {per_sec}/s");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Launches of the crashing services so far: each appends a line to
/// `launches` in its working directory (the description directory).
fn launches(s: &DinitSession) -> u64 {
    std::fs::metadata(s.dir.join("sd/launches")).map_or(0, |m| m.len())
}

fn restart_limits(report: &mut String) {
    let services: Vec<(String, String)> = (0..100)
        .map(|i| {
            (
                format!("crash{i}"),
                "type = process\ncommand = /bin/sh -c \"sleep 0.3; exit 1\"\nrestart = yes\n"
                    .to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = services
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let s = DinitSession::start("crash-limit", &refs).expect("session");
    let mut c = Client::connect(&s.socket());
    for (name, _) in &services {
        let h = c.handle(name);
        c.call(&Request::StartService {
            flags: 0,
            handle: h,
        });
    }
    let t0 = Instant::now();
    let all_stopped = wait_until(Duration::from_secs(60), || {
        let (text, _) = s.ctl_text(&["list"]);
        text.lines()
            .filter(|l| l.contains("crash"))
            .all(|l| l.contains("{X}") || l.starts_with("[     "))
            && !text.contains("[{+}")
    });
    let (text, _) = s.ctl_text(&["list"]);
    let stopped = text
        .lines()
        .filter(|l| l.contains("crash") && !l.contains('+'))
        .count();
    let (status, _) = s.ctl_text(&["status", "crash0"]);
    let state = status
        .lines()
        .find(|l| l.contains("State:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let _ = writeln!(
        report,
        "The same 100 services with dinit's default limit (3 restarts in 10 s), \
         exiting 0.3 s after each start: {stopped}/100 stopped by the limit after \
         {:.1} s (all stopped: {all_stopped}); `dinitctl status crash0` shows \
         `{state}`.\n",
        t0.elapsed().as_secs_f64()
    );
}

fn load_dinit(braid: &Path, report: &mut String) {
    let _ = writeln!(report, "## Load\n");
    let services: Vec<(String, String)> = (0..1000)
        .map(|i| {
            (
                format!("svc{i}"),
                "type = process\ncommand = /bin/sleep 100000\n".to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = services
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let s = DinitSession::start("load", &refs).expect("session");
    let sock = s.socket();
    let t0 = Instant::now();
    let mut c = Client::connect(&sock);
    for (name, _) in &services {
        let h = c.handle(name);
        c.call(&Request::StartService {
            flags: 0,
            handle: h,
        });
    }
    // START is answered once the start is under way: count until every
    // service runs (bounded), so the time is to all started.
    let count_running = || {
        let (list, _) = s.ctl_text(&["list"]);
        list.lines().filter(|l| l.starts_with("[[+]")).count()
    };
    let mut running = count_running();
    while running < services.len() && t0.elapsed() < LIMIT {
        running = count_running();
    }
    let started_in = t0.elapsed();

    // Protocol clients: 200 connections, each looping status calls.
    let clients = 200;
    let secs = 5.0;
    let calls = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let sock = sock.clone();
            let calls = calls.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&sock);
                let h = c.handle(&format!("svc{}", i * 5));
                let mut worst = Duration::ZERO;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    c.status(h);
                    worst = worst.max(t.elapsed());
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                worst
            })
        })
        .collect();
    let worst = threads
        .into_iter()
        .map(|t| t.join().expect("client"))
        .max()
        .unwrap_or_default();
    let rate = calls.load(Ordering::Relaxed) as f64 / secs;

    // The dinitctl program: 200 concurrent `dinitctl status`.
    let ctl = personality(braid, &s.dir.0, "dinitctl");
    let n = 200;
    let t = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new(&ctl)
                .arg("-p")
                .arg(&sock)
                .args(["status", &format!("svc{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("dinitctl")
        })
        .collect();
    let ok = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .filter(|o| o.status.success() && o.stdout.starts_with(b"Service: svc"))
        .count();
    let ctl_secs = t.elapsed().as_secs_f64();
    let _ = writeln!(
        report,
        "dinit face, 1,000 process services: all started in {:.2} s ({running} \
         running).\n\n\
         | figure | value |\n|---|---|\n\
         | status calls over the protocol, {clients} concurrent connections, {secs} s | {rate:.0}/s; slowest call {:.1} ms |\n\
         | {n} concurrent `dinitctl status` programs | {ok}/{n} answered correctly in {ctl_secs:.2} s ({:.0}/s) |\n",
        started_in.as_secs_f64(),
        ms(worst),
        n as f64 / ctl_secs
    );
}

fn load_runit(report: &mut String) {
    let services: Vec<(String, String)> = (0..1000)
        .map(|i| {
            (
                format!("svc{i}"),
                "#!/bin/sh\nexec sleep 100000\n".to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = services
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let t0 = Instant::now();
    let s = RunitSession::start("load-runit", &refs).expect("session");
    let up = wait_until(Duration::from_secs(120), || {
        (0..1000).step_by(111).all(|i| {
            s.dir
                .join(format!("service/svc{i}/supervise/stat"))
                .exists()
                && std::fs::read_to_string(s.dir.join(format!("service/svc{i}/supervise/stat")))
                    .is_ok_and(|t| t.starts_with("run"))
        })
    });
    let started_in = t0.elapsed().as_secs_f64();
    let sv = personality(&s.braid, &s.dir.0, "sv");
    let n = 200;
    let t = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new(&sv)
                .args(["status", &format!("svc{}", i * 5)])
                .env("SVDIR", s.dir.join("service"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("sv")
        })
        .collect();
    let ok = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .filter(|o| o.status.success() && o.stdout.starts_with(b"run: svc"))
        .count();
    let secs = t.elapsed().as_secs_f64();
    let _ = writeln!(
        report,
        "\nrunit face, 1,000 service directories: running after {started_in:.1} s \
         (sampled: {up}); {n} concurrent `sv status`: {ok}/{n} answered `run:` in \
         {secs:.2} s ({:.0}/s).\n",
        n as f64 / secs
    );
}

fn memory(report: &mut String) {
    let _ = writeln!(report, "## Memory\n");
    let services: Vec<(String, String)> = (0..100)
        .map(|i| {
            (
                format!("crash{i}"),
                "type = process\ncommand = /bin/sh -c \"echo >> launches; exit 1\"\nrestart = yes\n\
                 restart-delay = 0.05\nrestart-limit-count = 0\nlog-type = buffer\n"
                    .to_string(),
            )
        })
        .chain([(
            "steady".to_string(),
            "type = process\ncommand = /bin/sleep 100000\n".to_string(),
        )])
        .collect();
    let refs: Vec<(&str, &str)> = services
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let s = DinitSession::start("memory", &refs).expect("session");
    let pid = s.daemon.pid();
    let sock = s.socket();
    let mut c = Client::connect(&sock);
    let steady = c.handle("steady");
    c.call(&Request::StartService {
        flags: 0,
        handle: steady,
    });
    // Warm-up: the first calls and restarts.
    for _ in 0..1000 {
        c.status(steady);
    }
    let after_first = rss_kib(pid);
    // 10^5 control calls, over 1,000 connections (each opened and closed).
    let t = Instant::now();
    for _ in 0..1000 {
        let mut c = Client::connect(&sock);
        let h = c.handle("steady");
        for _ in 0..98 {
            c.status(h);
        }
    }
    let calls_secs = t.elapsed().as_secs_f64();
    let after_calls = rss_kib(pid);
    // 10^4 restarts, after a first round that fills each service's log
    // buffer and pipes (what one restart allocates).
    for i in 0..100 {
        let h = c.handle(&format!("crash{i}"));
        c.call(&Request::StartService {
            flags: 0,
            handle: h,
        });
    }
    let base = launches(&s);
    let warm = wait_until(Duration::from_secs(120), || launches(&s) >= base + 1_000);
    let after_first_restarts = rss_kib(pid);
    let base = launches(&s);
    let t = Instant::now();
    let reached = warm && wait_until(Duration::from_secs(300), || launches(&s) >= base + 10_000);
    let restart_secs = t.elapsed().as_secs_f64();
    let restarted = launches(&s) - base;
    let after_restarts_1 = rss_kib(pid);
    // Once more: the log buffers are full now, so any growth left would be
    // a leak.
    let base = launches(&s);
    let reached_2 = wait_until(Duration::from_secs(300), || launches(&s) >= base + 10_000);
    let restarted_2 = launches(&s) - base;
    let after_restarts = rss_kib(pid);
    let _ = writeln!(
        report,
        "braid's resident memory (VmRSS), dinit face, 101 services:\n\n\
         | after | VmRSS |\n|---|---|\n\
         | warm-up (1,000 status calls) | {after_first} KiB |\n\
         | 10^5 control calls on 1,000 connections ({calls_secs:.1} s) | {after_calls} KiB |\n\
         | the first 1,000 restarts of 100 crashing services (each with a log buffer) | {after_first_restarts} KiB |\n\
         | {restarted} more restarts ({restart_secs:.1} s, 10^4 reached: {reached}) | {after_restarts_1} KiB |\n\
         | {restarted_2} more restarts (10^4 reached: {reached_2}) | {after_restarts} KiB |\n\n\
         The log buffers (dinit's `log-type = buffer`, where each restart adds \
         a note) fill up during the first 10^4 restarts; the second 10^4 show \
         whether anything else grows.\n\
"
    );
}
