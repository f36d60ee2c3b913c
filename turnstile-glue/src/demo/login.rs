//! The login demo: one user's session started the way turnstiled starts it
//! (a readiness FIFO, the backend's `run`, then `ready`, later `stop`), for
//! each backend in turn, in a scratch directory that stands for the user's
//! home and runtime directory.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::{catch_interrupt, interrupted, DemoArgs};

/// How long the login may take before the demo gives up on it.
const LOGIN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Runit,
    Dinit,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Runit => "runit",
            Backend::Dinit => "dinit",
        }
    }
}

pub fn run(args: &DemoArgs) -> io::Result<i32> {
    catch_interrupt().map_err(io::Error::from)?;
    let keep = Duration::from_secs_f64(args.for_secs.unwrap_or(3.0).max(0.0));
    let backends: Vec<Backend> = match args.backend.as_deref() {
        Some("runit") => vec![Backend::Runit],
        Some("dinit") => vec![Backend::Dinit],
        _ => vec![Backend::Runit, Backend::Dinit],
    };
    let mut code = 0;
    for backend in backends {
        if interrupted() {
            break;
        }
        let scratch = Scratch::new(backend)?;
        let result = login(backend, &scratch, keep);
        drop(scratch);
        match result {
            Ok(true) => {}
            Ok(false) => code = 1,
            Err(e) => {
                eprintln!("braid demo: {} session: {e}", backend.name());
                code = 1;
            }
        }
    }
    Ok(code)
}

/// The scratch tree of one session; removed when dropped.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(backend: Backend) -> io::Result<Scratch> {
        let root = std::env::temp_dir().join(format!(
            "braid-demo-{}-{}",
            backend.name(),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        for dir in ["home", "run", "login", "conf", "libexec", "events"] {
            fs::create_dir_all(root.join(dir))?;
        }
        fs::set_permissions(root.join("run"), fs::Permissions::from_mode(0o700))?;
        Ok(Scratch { root })
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn write(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// The example services: `db` becomes ready after a second and the login
/// waits for it; `web` needs `db`; `flaky` keeps failing; `ticker` writes a
/// line a second into a pipe that `logger` prints.
fn write_services(backend: Backend, s: &Scratch) -> io::Result<()> {
    let tick = "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 1; done";
    let print = "while IFS= read -r l; do echo \"    [logger] $l\"; done";
    let flaky = "sleep 1; echo 'flaky: lost my connection' >&2; exit 1";
    match backend {
        Backend::Runit => {
            let sv = s.path("home/.config/service");
            let script = |body: &str| format!("#!/bin/sh\n{body}\n");
            write(
                &sv.join("db/run"),
                &script("sleep 1\necho ready >&3\nexec sleep 3600"),
                0o755,
            )?;
            write(&sv.join("db/notification-fd"), "3\n", 0o644)?;
            write(&sv.join("web/run"), &script("exec sleep 3600"), 0o755)?;
            write(&sv.join("web/dependencies"), "db\n", 0o644)?;
            write(&sv.join("flaky/run"), &script(flaky), 0o755)?;
            write(&sv.join("ticker/run"), &script(tick), 0o755)?;
            write(&sv.join("ticker/log/run"), &script(print), 0o755)?;
            write(
                &sv.join("turnstile-ready/conf"),
                "core_services=\"db\"\n",
                0o644,
            )?;
        }
        Backend::Dinit => {
            let d = s.path("home/.config/dinit.d");
            // dinit's command syntax: `$` is written `$$`, `"` and `\` escaped.
            let quote = |body: &str| {
                body.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('$', "$$")
            };
            write(
                &d.join("db"),
                "type = process\n\
                 command = /bin/sh -c \"sleep 1; echo ready >&3; exec sleep 3600\"\n\
                 ready-notification = pipefd:3\n\
                 before = login.target\n",
                0o644,
            )?;
            write(
                &d.join("web"),
                "type = process\ncommand = /bin/sleep 3600\ndepends-on = db\n",
                0o644,
            )?;
            write(
                &d.join("flaky"),
                &format!(
                    "type = process\ncommand = /bin/sh -c \"{}\"\nrestart = on-failure\n\
                     options = shares-console\n",
                    quote(flaky)
                ),
                0o644,
            )?;
            write(
                &d.join("ticker"),
                &format!(
                    "type = process\ncommand = /bin/sh -c \"{}\"\nlog-type = pipe\n",
                    quote(tick)
                ),
                0o644,
            )?;
            write(
                &d.join("logger"),
                &format!(
                    "type = process\ncommand = /bin/sh -c \"{}\"\nconsumer-of = ticker\n\
                     options = shares-console\n",
                    quote(print)
                ),
                0o644,
            )?;
            fs::create_dir_all(d.join("boot.d"))?;
            // The system-wide boot directory is the demo's own, empty one.
            fs::create_dir_all(d.join("system.d"))?;
            write(
                &s.path("conf/dinit.conf"),
                "system_boot_dir=\"$HOME/.config/dinit.d/system.d\"\n",
                0o644,
            )?;
            for name in ["db", "web", "flaky", "ticker", "logger"] {
                symlink(format!("../{name}"), d.join("boot.d").join(name))?;
            }
        }
    }
    Ok(())
}

/// One login, session and logout. Returns whether the login was ready.
fn login(backend: Backend, s: &Scratch, keep: Duration) -> io::Result<bool> {
    write_services(backend, s)?;
    let braid = std::env::current_exe()?;
    let program = s.path("libexec").join(backend.name());
    symlink(&braid, &program)?;
    let fifo = s.path("login/ready");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o700)).map_err(io::Error::from)?;
    // Opened before the backend starts, as turnstiled does, so that the
    // backend's open does not block and no early hang-up is seen.
    let mut reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)?;
    let srv = s.path(&format!("login/srv.{}", std::process::id()));
    fs::create_dir_all(&srv)?;

    let start = Instant::now();
    let stamp = || format!("{:>7.3}s", start.elapsed().as_secs_f64());
    println!();
    println!("== login with turnstile's `{}` backend ==", backend.name());
    let session_env = session_env(s);
    let mut manager = Command::new(&program)
        .arg("run")
        .arg(&fifo)
        .arg(&srv)
        .arg(s.path("conf"))
        .env_clear()
        .envs(session_env.iter().cloned())
        .current_dir(s.path("home"))
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()?;
    println!(
        "{} turnstiled started the session manager (pid {}); the login waits",
        stamp(),
        manager.id()
    );

    let ready_string = read_ready_string(&mut reader, start + LOGIN_LIMIT)?;
    let Some(ready_string) = ready_string else {
        println!("{} the manager never said it was listening", stamp());
        logout(&program, &mut manager, &session_env)?;
        return Ok(false);
    };
    println!(
        "{} ready string received: {:?}; asking `{} ready`",
        stamp(),
        ready_string,
        backend.name()
    );
    let ready = Command::new(&program)
        .arg("ready")
        .arg(&ready_string)
        .envs(session_env.iter().cloned())
        .stdin(Stdio::null())
        .status()?;
    let ok = ready.success() && !interrupted();
    if ok {
        println!("{} login proceeds: the core service `db` is ready", stamp());
    } else {
        println!("{} login released without readiness ({ready})", stamp());
    }

    // Give the session a moment, then show what started when.
    sleep_unless_interrupted(keep);
    let mut timeline = Command::new(&braid);
    timeline.arg("timeline").arg("--width").arg("72");
    match backend {
        Backend::Runit => timeline.arg("-d").arg(s.path("home/.config/service")),
        Backend::Dinit => timeline.arg("-p").arg(s.path("run/dinitctl")),
    };
    if backend == Backend::Runit {
        timeline.arg("--to").arg("db");
    }
    let shown = timeline
        .env_clear()
        .envs(session_env.iter().cloned())
        .stdin(Stdio::null())
        .output()?;
    println!("{} timeline of the session:", stamp());
    print!("{}", String::from_utf8_lossy(&shown.stdout));
    if !shown.status.success() {
        print!("{}", String::from_utf8_lossy(&shown.stderr));
    }

    println!(
        "{} logout: `{} stop {}`",
        stamp(),
        backend.name(),
        manager.id()
    );
    logout(&program, &mut manager, &session_env)?;
    println!("{} the session manager has exited", stamp());
    Ok(ok)
}

/// The environment turnstiled gives a backend: built from scratch.
fn session_env(s: &Scratch) -> Vec<(OsString, OsString)> {
    let user = std::env::var_os("USER").unwrap_or_else(|| "user".into());
    vec![
        ("HOME".into(), s.path("home").into()),
        ("USER".into(), user.clone()),
        ("LOGNAME".into(), user),
        ("SHELL".into(), "/bin/sh".into()),
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("XDG_RUNTIME_DIR".into(), s.path("run").into()),
        ("BRAID_EVENT_DIR".into(), s.path("events").into()),
    ]
}

/// Reads the ready string as turnstiled does: up to a NUL, or until every
/// writer has closed the FIFO. `None` when nothing came by `deadline`.
fn read_ready_string(fifo: &mut fs::File, deadline: Instant) -> io::Result<Option<String>> {
    let mut got = Vec::new();
    let mut seen_writer = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || interrupted() {
            return Ok(None);
        }
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let hung_up = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP));
        let mut buf = [0u8; 256];
        loop {
            match fifo.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    seen_writer = true;
                    if let Some(nul) = buf[..n].iter().position(|&b| b == 0) {
                        got.extend_from_slice(&buf[..nul]);
                        return Ok(Some(String::from_utf8_lossy(&got).into_owned()));
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if hung_up && (seen_writer || !got.is_empty()) {
            return Ok(Some(String::from_utf8_lossy(&got).into_owned()));
        }
    }
}

/// Waits `d`, or less if Ctrl-C comes (no busy wait: `poll` on nothing).
fn sleep_unless_interrupted(d: Duration) {
    let deadline = Instant::now() + d;
    while !interrupted() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut [], PollTimeout::from(millis));
    }
}

/// turnstiled's logout: `stop PID`, then wait for the manager to exit
/// (killing it if it does not within a while).
fn logout(program: &Path, manager: &mut Child, env: &[(OsString, OsString)]) -> io::Result<()> {
    Command::new(program)
        .arg("stop")
        .arg(manager.id().to_string())
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .status()?;
    let pid = nix::unistd::Pid::from_raw(manager.id() as i32);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    let status = manager.wait();
    let _ = done.send(());
    let _ = watchdog.join();
    status.map(|_| ())
}
