//! No descriptor of the readiness gate reaches a service: a service
//! launched while the gate is served and a client is connected to it (as
//! turnstile's `ready` is during a login) has only its standard streams —
//! not the gate's listening socket `SRVDIR/gate`, not a client connection,
//! not the gate's deadline timer.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const LIMIT: Duration = Duration::from_secs(20);

/// Writes `~/.config/service/NAME/run` and the service's other `files`.
fn service(f: &Fixture, name: &str, run: &str, files: &[(&str, &str, u32)]) -> PathBuf {
    f.write(
        &format!(".config/service/{name}/run"),
        &format!("#!/bin/sh\n{run}\n"),
        0o755,
    );
    for (file, text, mode) in files {
        f.write(&format!(".config/service/{name}/{file}"), text, *mode);
    }
    f.home.join(".config/service").join(name)
}

/// `sv ARGS` against the user's service tree: stdout and stderr.
fn sv(f: &Fixture, args: &[&str]) -> String {
    let o = Command::new(f.bin("sv"))
        .args(args)
        .env("SVDIR", f.home.join(".config/service"))
        .output()
        .expect("sv");
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&o.stderr));
    text
}

/// Polls `probe` every 10 ms until it gives a value or `LIMIT` passes.
fn poll<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What the test's own gate client saw and the probe service's fds.
struct Seen {
    greeting: String,
    probe_fds: Vec<String>,
    rest: Vec<String>,
}

/// While the gate waits for its core service: connects to it, has
/// `launch` start the probe service (it returns the probe's pid once it
/// runs `sleep`), reads the probe's fds; then `release`s the core service
/// and reads the gate to its end.
fn while_gated(
    gate: &Path,
    launch: impl FnOnce() -> Result<i32, String>,
    release: impl FnOnce() -> Result<(), String>,
) -> Result<Seen, String> {
    let conn = poll(|| UnixStream::connect(gate).ok()).ok_or("the gate never listened")?;
    conn.set_read_timeout(Some(LIMIT))
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(conn).lines();
    // The greeting says the server accepted and holds this connection.
    let greeting = lines
        .next()
        .ok_or("gate closed before its greeting")?
        .map_err(|e| format!("reading the gate: {e}"))?;
    let pid = launch()?;
    // The probe has exec'd sleep once /proc shows it.
    poll(|| {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .ok()
            .filter(|c| c.starts_with("sleep") || c.starts_with("/bin/sleep"))
    })
    .ok_or("the probe never exec'd sleep")?;
    let probe_fds = open_fds(pid);
    release()?;
    let rest = lines
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading the gate: {e}"))?;
    Ok(Seen {
        greeting,
        probe_fds,
        rest,
    })
}

/// Logs in while `while_gated` runs on another thread, then checks what it
/// saw and logs out. `release` must also be safe to call again.
fn login_and_check(
    t: &mut Turnstiled,
    launch: impl FnOnce() -> Result<i32, String> + Send,
    release: impl Fn() -> Result<(), String> + Sync,
) {
    // The harness numbers the login's srv directory; the first is srv.1.
    let gate = t.fixture.login_dir.join("srv.1/gate");
    let (login, seen) = std::thread::scope(|scope| {
        let helper = scope.spawn(|| {
            let seen = while_gated(&gate, launch, &release);
            // Whatever happened, let the login finish.
            let _ = release();
            seen
        });
        let login = t.login();
        (login, helper.join().expect("helper thread"))
    });
    let login = match login {
        Ok(l) => l,
        Err(e) => panic!("login failed: {e:?}"),
    };
    let log = login.log_text();
    let seen = match seen {
        Ok(s) => s,
        Err(e) => panic!("{e}\n{log}"),
    };
    assert!(
        seen.greeting.starts_with("braid-gate 1 "),
        "{}",
        seen.greeting
    );
    assert_eq!(
        seen.rest.last().map(String::as_str),
        Some("open"),
        "{:?}",
        seen.rest
    );
    assert_eq!(
        login.ready.status.and_then(|s| s.code()),
        Some(0),
        "{}\n{log}",
        login.ready.stderr
    );
    let leaked: Vec<&String> = seen
        .probe_fds
        .iter()
        .filter(|fd| !["0 ", "1 ", "2 "].iter().any(|n| fd.starts_with(n)))
        .collect();
    assert!(
        leaked.is_empty(),
        "the probe service holds {leaked:#?} (all: {:#?})",
        seen.probe_fds
    );
    let out = t.logout(login, LIMIT);
    assert!(out.leftovers.is_empty(), "left behind: {:?}", out.leftovers);
}

#[test]
fn runit_no_descriptor_of_the_gate_reaches_a_service_launched_while_it_is_served() {
    let f = Fixture::new("gfdr");
    let slow = service(
        &f,
        "slow",
        "exec sleep 1000",
        &[("check", "#!/bin/sh\ntest -e ./up\n", 0o755)],
    );
    // Down until the test brings it up mid-login.
    service(&f, "probe", "exec sleep 1000", &[("down", "", 0o644)]);
    f.write(
        ".config/service/turnstile-ready/conf",
        "core_services=\"slow\"\n",
        0o644,
    );
    let launch = || {
        let up = sv(&f, &["up", "probe"]);
        poll(|| {
            let status = sv(&f, &["status", "probe"]);
            let at = status.find("run: probe: (pid ")? + "run: probe: (pid ".len();
            status[at..].split(')').next()?.parse::<i32>().ok()
        })
        .ok_or_else(|| format!("probe never ran (sv up said {up:?})"))
    };
    let release = || std::fs::write(slow.join("up"), "").map_err(|e| e.to_string());
    let mut t = Turnstiled::new(&f, "runit");
    login_and_check(&mut t, launch, release);
}

#[test]
fn dinit_no_descriptor_of_the_gate_reaches_a_service_launched_while_it_is_served() {
    let f = Fixture::new("gfdd");
    std::fs::write(
        f.conf.join("dinit.conf"),
        "services_dir1=\"${HOME}/.config/dinit.d\"\nsystem_boot_dir=\"${HOME}/no-system-boot\"\n",
    )
    .unwrap();
    let up = f.home.join("slow-up");
    // Ready once the test says so (the service polls for the file, as
    // runsv polls a check script).
    f.write(
        ".config/dinit.d/slow",
        &format!(
            "type = process\ncommand = /bin/sh -c \"while ! test -e {}; do sleep 0.05; done; \
             echo >&3; exec sleep 1000\"\nready-notification = pipefd:3\nbefore = login.target\n",
            up.display()
        ),
        0o644,
    );
    let link = f.home.join(".config/dinit.d/boot.d/slow");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../slow", link).unwrap();
    // Not started at boot: the test starts it mid-login.
    f.write(
        ".config/dinit.d/probe",
        "type = process\ncommand = /bin/sleep 1000\n",
        0o644,
    );
    let dinitctl = |args: &[&str]| {
        let o = Command::new(f.bin("dinitctl"))
            .arg("--socket-path")
            .arg(f.rundir.join("dinitctl"))
            .args(args)
            .output()
            .expect("dinitctl");
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    let launch = || {
        let started = dinitctl(&["start", "probe"]);
        let status = dinitctl(&["status", "probe"]);
        let at = status
            .find("Process ID: ")
            .ok_or_else(|| format!("probe: {started}{status}"))?;
        status[at + "Process ID: ".len()..]
            .trim()
            .parse::<i32>()
            .map_err(|e| format!("{e}: {status}"))
    };
    let release = || std::fs::write(&up, "").map_err(|e| e.to_string());
    let mut t = Turnstiled::new(&f, "dinit");
    login_and_check(&mut t, launch, release);
}
