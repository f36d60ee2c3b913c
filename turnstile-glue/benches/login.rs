//! Login-to-ready time of a turnstile session with 1, 10 and 50 core
//! services: braid's `runit` backend, braid's `dinit` backend, and Debian's
//! runit driven the way turnstile's stock runit backend drives it, in one
//! run.
//!
//! What is measured, for every backend alike: from the spawn of the
//! backend's `run` (the moment turnstiled forks it) until its `ready`
//! action has returned (the moment turnstiled would release the login).
//! The bench plays turnstiled: it makes the readiness FIFO and opens it
//! before spawning `run`, reads the ready string (up to a NUL or until the
//! writer closes), then runs `ready STRING` (turnstile spec §3, §8).
//!
//! Two kinds of core service, each `run` a shell script:
//! - *running*: `exec sleep 1000`, ready as soon as it runs (runit's "up":
//!   what `sv start` waits for without a `./check`; for braid, a service
//!   without readiness notification).
//! - *notify*: becomes ready 50 ms after it started. braid: it reports on
//!   fd 3 (`notification-fd` / `ready-notification = pipefd:3`); Debian
//!   runit: it creates a marker file, and a `./check` tests for it (the
//!   only way `sv start` can wait for readiness).
//!
//! The stock way (turnstile spec §4.2–4.3): `run` writes the
//! `turnstile-ready` service and execs `runsvdir -P DIR log...`; that
//! service runs `SVDIR=.. sv start $core_services`, then writes the ready
//! string to the FIFO and pauses; `ready DIR` is `sv start DIR`.
//!
//! Each measurement runs on a fresh session directory, several times; the
//! table shows medians and the ratio real-runit / braid. Every process a
//! session started is stopped (and, failing that, killed) before the next.
//!
//! `cargo bench -p braid-turnstile --bench login` (needs Debian's runit in
//! /usr/bin; `BRAID_BENCH_REPS` sets the repetitions, default 5).

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

const BRAID: &str = env!("CARGO_BIN_EXE_braid");
const REAL_RUNSVDIR: &str = "/usr/bin/runsvdir";
const REAL_SV: &str = "/usr/bin/sv";
const SIZES: [usize; 3] = [1, 10, 50];
/// How long a login may take before the bench calls it failed.
const LOGIN_BOUND: Duration = Duration::from_secs(30);
/// Marks every process of one session, to find what is left after stop.
const TAG_VAR: &str = "BRAID_LOGIN_BENCH";
const NOTIFY_DELAY: &str = "0.05";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    BraidRunit,
    BraidDinit,
    RealRunit,
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::BraidRunit, Backend::BraidDinit, Backend::RealRunit];

    fn label(self) -> &'static str {
        match self {
            Backend::BraidRunit => "braid runit",
            Backend::BraidDinit => "braid dinit",
            Backend::RealRunit => "runit+sv start",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Readiness {
    Running,
    Notify,
}

/// One session's directories, removed on drop.
struct Session {
    root: PathBuf,
    home: PathBuf,
    rundir: PathBuf,
    conf: PathBuf,
    login_dir: PathBuf,
    bin: PathBuf,
    tag: String,
}

impl Session {
    fn new(n: u32) -> Result<Session, String> {
        let root = PathBuf::from(format!("/tmp/bl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let s = Session {
            home: root.join("home"),
            rundir: root.join("rundir"),
            conf: root.join("conf"),
            login_dir: root.join("login"),
            bin: root.join("bin"),
            tag: format!("{}-{n}", std::process::id()),
            root,
        };
        for d in [&s.home, &s.rundir, &s.conf, &s.login_dir, &s.bin] {
            mkdir(d)?;
        }
        for name in ["runit", "dinit"] {
            let link = s.bin.join(name);
            std::os::unix::fs::symlink(BRAID, &link)
                .map_err(|e| format!("linking {}: {e}", link.display()))?;
        }
        Ok(s)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        kill_tagged(&self.tag);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))
}

fn write(p: &Path, text: &str, mode: u32) -> Result<(), String> {
    if let Some(dir) = p.parent() {
        mkdir(dir)?;
    }
    std::fs::write(p, text)
        .and_then(|()| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("writing {}: {e}", p.display()))
}

fn core_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("core{i}")).collect()
}

/// A core service's `run` for runit (braid or Debian).
fn runit_run(kind: Readiness, real: bool) -> String {
    match (kind, real) {
        (Readiness::Running, _) => "#!/bin/sh\nexec sleep 1000\n".into(),
        (Readiness::Notify, false) => {
            format!("#!/bin/sh\nsleep {NOTIFY_DELAY}\necho >&3\nexec sleep 1000\n")
        }
        (Readiness::Notify, true) => {
            format!("#!/bin/sh\nrm -f ready\nsleep {NOTIFY_DELAY}\n: > ready\nexec sleep 1000\n")
        }
    }
}

fn setup_runit(s: &Session, n: usize, kind: Readiness, real: bool) -> Result<PathBuf, String> {
    let dir = s.home.join(".config/service");
    for name in core_names(n) {
        let svc = dir.join(&name);
        write(&svc.join("run"), &runit_run(kind, real), 0o755)?;
        if kind == Readiness::Notify {
            if real {
                write(&svc.join("check"), "#!/bin/sh\nexec test -e ready\n", 0o755)?;
            } else {
                write(&svc.join("notification-fd"), "3\n", 0o644)?;
            }
        }
    }
    let conf = format!("core_services=\"{}\"\n", core_names(n).join(" "));
    write(&dir.join("turnstile-ready/conf"), &conf, 0o644)?;
    Ok(dir)
}

fn setup_dinit(s: &Session, n: usize, kind: Readiness) -> Result<(), String> {
    write(
        &s.conf.join("dinit.conf"),
        "services_dir1=\"${HOME}/.config/dinit.d\"\nsystem_boot_dir=\"${HOME}/no-system-boot\"\n",
        0o644,
    )?;
    let dir = s.home.join(".config/dinit.d");
    let script = s.home.join("core.sh");
    write(&script, &runit_run(kind, false), 0o755)?;
    let notify = match kind {
        Readiness::Running => "",
        Readiness::Notify => "ready-notification = pipefd:3\n",
    };
    for name in core_names(n) {
        write(
            &dir.join(&name),
            &format!(
                "type = process\ncommand = /bin/sh {}\n{notify}before = login.target\n",
                script.display()
            ),
            0o644,
        )?;
        mkdir(&dir.join("boot.d"))?;
        std::os::unix::fs::symlink(format!("../{name}"), dir.join("boot.d").join(&name))
            .map_err(|e| format!("boot.d link {name}: {e}"))?;
    }
    Ok(())
}

/// The stock-way `run`: what turnstile's runit backend does (spec §4.2),
/// written as a script: make the directories, write the ready service,
/// exec runsvdir. Returns the script's path.
fn setup_real_runit(s: &Session, services: &Path, fifo: &Path) -> Result<PathBuf, String> {
    let ready_dir = services.join("turnstile-ready");
    let ready_run = format!(
        "#!/bin/sh\n\
         [ -r ./conf ] && . ./conf\n\
         [ -n \"$core_services\" ] && SVDIR=.. {REAL_SV} start $core_services\n\
         [ -p '{fifo}' ] && printf '%s' '{dir}' > '{fifo}'\n\
         exec sleep 2147483647\n",
        fifo = fifo.display(),
        dir = ready_dir.display()
    );
    let run = format!(
        "#!/bin/sh\n\
         set -e\n\
         mkdir -p '{ready}' '{env}'\n\
         cat > '{ready}/run' <<'EOF'\n{ready_run}EOF\n\
         chmod 755 '{ready}/run'\n\
         exec env TURNSTILE_ENV_DIR='{env}' {REAL_RUNSVDIR} -P '{dir}' 'log: {dots}'\n",
        ready = ready_dir.display(),
        env = s.home.join(".config/service-env").display(),
        dir = services.display(),
        dots = ".".repeat(395),
    );
    let path = s.root.join("stock-runit-run");
    write(&path, &run, 0o755)?;
    Ok(path)
}

/// A child killed (not just left) if the bench gives up on it.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Waits for the exit, up to `bound` (through a pidfd, no polling).
    fn wait_for(&mut self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        // SAFETY: pidfd_open takes a pid and flags, returns a new fd.
        let raw = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, self.0.id(), 0) };
        let pidfd = (raw >= 0).then(|| {
            // SAFETY: a non-negative return is a new fd we own.
            unsafe { OwnedFd::from_raw_fd(raw as i32) }
        });
        loop {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match &pidfd {
                Some(fd) => {
                    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut fds, ms(left));
                }
                None => std::thread::sleep(Duration::from_millis(5).min(left)),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(Some(_))) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn ms(d: Duration) -> PollTimeout {
    PollTimeout::try_from(d.as_millis().min(10_000) as i32).unwrap_or(PollTimeout::MAX)
}

/// One login: returns login-to-ready.
fn login(backend: Backend, n: usize, kind: Readiness, round: u32) -> Result<Duration, String> {
    let s = Session::new(round)?;
    let fifo = s.login_dir.join("ready");
    let srvdir = s.login_dir.join("srv.1");
    mkdir(&srvdir)?;
    let (program, ready_program): (PathBuf, PathBuf);
    match backend {
        Backend::BraidRunit => {
            setup_runit(&s, n, kind, false)?;
            program = s.bin.join("runit");
            ready_program = program.clone();
        }
        Backend::BraidDinit => {
            setup_dinit(&s, n, kind)?;
            program = s.bin.join("dinit");
            ready_program = program.clone();
        }
        Backend::RealRunit => {
            let services = setup_runit(&s, n, kind, true)?;
            program = setup_real_runit(&s, &services, &fifo)?;
            ready_program = REAL_SV.into();
        }
    }
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).map_err(|e| e.to_string())?;
    let reader = open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening the FIFO: {e}"))?;
    // SAFETY: open just returned it.
    let reader = unsafe { OwnedFd::from_raw_fd(reader) };

    let env: [(&str, OsString); 9] = [
        ("SHELL", "/bin/sh".into()),
        ("USER", "bench".into()),
        ("LOGNAME", "bench".into()),
        ("HOME", s.home.clone().into()),
        ("UID", nix::unistd::getuid().to_string().into()),
        ("GID", nix::unistd::getgid().to_string().into()),
        ("PATH", "/usr/bin:/bin".into()),
        ("XDG_RUNTIME_DIR", s.rundir.clone().into()),
        (TAG_VAR, s.tag.clone().into()),
    ];
    let mut cmd = Command::new(&program);
    if backend != Backend::RealRunit {
        cmd.arg("run").arg(&fifo).arg(&srvdir).arg(&s.conf);
    }
    cmd.env_clear()
        .envs(env)
        .current_dir(&s.home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            nix::libc::setsid();
            Ok(())
        });
    }
    let t0 = Instant::now();
    let mut manager = Proc(cmd.spawn().map_err(|e| format!("spawning run: {e}"))?);
    let string = read_ready_string(&reader, &mut manager, t0 + LOGIN_BOUND)?;
    drop(reader);
    let _ = std::fs::remove_file(&fifo);

    let mut ready = Command::new(&ready_program);
    if backend == Backend::RealRunit {
        ready.arg("start");
    } else {
        ready.arg("ready");
    }
    let status = ready
        .arg(&string)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("running ready: {e}"))?;
    let took = t0.elapsed();
    if !status.success() {
        return Err(format!("{}: ready exited {status}", backend.label()));
    }
    stop(backend, &mut manager, &s.tag)?;
    Ok(took)
}

/// turnstiled's FIFO reading: done at a NUL or when the writer closes.
fn read_ready_string(
    reader: &OwnedFd,
    manager: &mut Proc,
    deadline: Instant,
) -> Result<String, String> {
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no ready string in time".into());
        }
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        // Short slices: the manager dying is noticed too.
        let _ = poll(&mut fds, ms(left.min(Duration::from_millis(100))));
        let ev = fds[0].revents().unwrap_or(PollFlags::empty());
        if ev.contains(PollFlags::POLLIN) {
            let mut b = [0u8; 1];
            while let Ok(1) = nix::unistd::read(reader.as_raw_fd(), &mut b) {
                if b[0] == 0 {
                    return String::from_utf8(got).map_err(|e| e.to_string());
                }
                got.push(b[0]);
            }
        }
        if ev.contains(PollFlags::POLLHUP) {
            return String::from_utf8(got).map_err(|e| e.to_string());
        }
        if matches!(manager.0.try_wait(), Ok(Some(_))) {
            return Err("the manager exited before writing the ready string".into());
        }
    }
}

/// Logout as the backend's `stop` does it (braid runit and runsvdir:
/// SIGHUP; braid dinit: SIGTERM), then waits until no process of the
/// session is left (killing stragglers after a bound).
fn stop(backend: Backend, manager: &mut Proc, tag: &str) -> Result<(), String> {
    let sig = match backend {
        Backend::BraidDinit => Signal::SIGTERM,
        Backend::BraidRunit | Backend::RealRunit => Signal::SIGHUP,
    };
    let _ = kill(Pid::from_raw(manager.pid()), sig);
    if !manager.wait_for(Duration::from_secs(10)) {
        return Err(format!("{}: the manager did not stop", backend.label()));
    }
    // runsvdir exits at once after HUP, and runsv's TERM ("exit once the
    // service is down") does not bring the service down: the stock
    // backend's logout leaves them, so the bench kills them.
    if backend == Backend::RealRunit {
        kill_tagged(tag);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tagged(tag).is_empty() {
        if Instant::now() > deadline {
            kill_tagged(tag);
            return Err(format!("{}: processes left after stop", backend.label()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Live processes (not zombies) carrying the session's tag.
fn tagged(tag: &str) -> Vec<i32> {
    let needle = format!("{TAG_VAR}={tag}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let base = PathBuf::from(format!("/proc/{pid}"));
            let environ = std::fs::read(base.join("environ")).unwrap_or_default();
            let stat = std::fs::read_to_string(base.join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie && environ.split(|b| *b == 0).any(|kv| kv == needle.as_bytes())
        })
        .collect()
}

fn kill_tagged(tag: &str) {
    for pid in tagged(tag) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench's probe
    }
    if !Path::new(REAL_RUNSVDIR).exists() || !Path::new(REAL_SV).exists() {
        eprintln!("skipped: Debian's runit (runsvdir, sv) is not in /usr/bin");
        return;
    }
    let reps: u32 = std::env::var("BRAID_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(5);
    println!("login-to-ready (spawn of `run` until `ready` returned), median of {reps}");
    println!("braid: {BRAID}");
    let mut round = 0;
    for kind in [Readiness::Running, Readiness::Notify] {
        println!();
        match kind {
            Readiness::Running => println!("core services ready when running (`exec sleep`)"),
            Readiness::Notify => println!(
                "core services ready {NOTIFY_DELAY} s after start (braid: fd 3; runit: ./check)"
            ),
        }
        println!(
            "{:>4}  {:>13}  {:>13}  {:>15}  {:>11}  {:>11}",
            "N", "braid runit", "braid dinit", "runit+sv start", "runit/braid", "runit/dinit"
        );
        for n in SIZES {
            let mut medians = Vec::new();
            for backend in Backend::ALL {
                let mut times = Vec::new();
                for _ in 0..reps {
                    round += 1;
                    match login(backend, n, kind, round) {
                        Ok(t) => times.push(t),
                        Err(e) => {
                            eprintln!("{} N={n}: {e}", backend.label());
                            std::process::exit(1);
                        }
                    }
                }
                medians.push(median(times));
            }
            let msf = |d: Duration| d.as_secs_f64() * 1000.0;
            let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
            println!(
                "{n:>4}  {:>10.1} ms  {:>10.1} ms  {:>12.1} ms  {:>10.1}x  {:>10.1}x",
                msf(medians[0]),
                msf(medians[1]),
                msf(medians[2]),
                ratio(medians[2], medians[0]),
                ratio(medians[2], medians[1]),
            );
        }
    }
}
