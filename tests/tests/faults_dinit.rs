//! Faults under the dinit face, as a user sees them through `dinitctl` and
//! braid's log: programs that cannot be executed, log files that cannot be
//! opened, running out of processes and descriptors, braid itself killed,
//! and services that leave children behind. In each case braid keeps
//! running, names the service, and recovers when the cause goes away.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use braid_tests::*;
use nix::libc;
use nix::sys::signal::Signal;

fn exists(s: &DinitSession) -> bool {
    let (text, code) = s.ctl_text(&["list"]);
    code == 0 && text.contains("boot")
}

#[test]
fn exec_and_log_file_failures_are_reported_and_recovered() {
    let dir = TempDir::new("exec-files");
    let prog = |name: &str| format!("type = process\ncommand = {}\n", dir.join(name).display());
    let badlog = format!(
        "type = process\ncommand = /bin/sleep 1000\nlogfile = {}\n",
        dir.join("no-such-dir/log").display()
    );
    let Some(s) = DinitSession::start(
        "exec",
        &[
            ("missing", &prog("prog-missing")),
            ("noexec", &prog("prog-noexec")),
            ("enoexec", &prog("prog-enoexec")),
            ("badlog", &badlog),
        ],
    ) else {
        return;
    };
    let d = &dir;
    write_file(
        &d.join("prog-noexec"),
        "#!/bin/sh\nexec sleep 1000\n",
        0o644,
    );
    write_file(&d.join("prog-enoexec"), "\x7fELF garbage", 0o755);
    let cases = [
        ("missing", "executing command", "No such file or directory"),
        ("noexec", "executing command", "Permission denied"),
        ("enoexec", "executing command", "Exec format error"),
        ("badlog", "opening log file", "No such file or directory"),
    ];
    for (name, stage, error) in cases {
        let (text, code) = s.ctl_text(&["start", name]);
        assert_eq!(code, 1, "{text}");
        assert!(
            text.starts_with(&format!("Service '{name}' failed to start.\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("Stage: {stage}\n"))
                && text.contains(&format!("Error: {error}\n")),
            "{text}"
        );
        assert!(
            s.daemon.wait_log(&format!(
                "dinit: {name}: execution failed - {stage}: {error}\n"
            )),
            "log names {name}: {}",
            s.daemon.log_text()
        );
        let (status, _) = s.ctl_text(&["status", name]);
        assert!(
            status.contains("State: STOPPED (could not be launched)"),
            "{status}"
        );
    }
    let (list, _) = s.ctl_text(&["list"]);
    for (name, _, _) in cases {
        assert!(list.contains(&format!("[     {{X}}] {name}\n")), "{list}");
    }
    assert!(exists(&s), "the daemon still answers");

    // The causes go away: every service starts.
    write_file(
        &d.join("prog-missing"),
        "#!/bin/sh\nexec sleep 1000\n",
        0o755,
    );
    write_file(
        &d.join("prog-noexec"),
        "#!/bin/sh\nexec sleep 1000\n",
        0o755,
    );
    write_file(
        &d.join("prog-enoexec"),
        "#!/bin/sh\nexec sleep 1000\n",
        0o755,
    );
    std::fs::create_dir(d.join("no-such-dir")).unwrap();
    for (name, _, _) in cases {
        let (text, code) = s.ctl_text(&["start", name]);
        assert_eq!(
            (text.as_str(), code),
            (&*format!("Service '{name}' started.\n"), 0)
        );
    }
}

#[test]
fn a_file_size_limit_does_not_kill_braid() {
    let Some(braid) = braid_binary() else { return };
    // braid under RLIMIT_FSIZE of 4 KiB: its event log passes it quickly.
    let dir = TempDir::new("fsize");
    write_file(&dir.join("sd/boot"), "type = internal\n", 0o644);
    write_file(
        &dir.join("sd/writer"),
        "type = process\ncommand = /bin/sh -c \"head -c 100000 /dev/zero; sleep 1000\"\nlogfile = ./writer.log\nrestart = false\n",
        0o644,
    );
    let dinit = personality(&braid, &dir.0, "dinit");
    let mut cmd = std::process::Command::new(dinit);
    cmd.arg("-d")
        .arg(dir.join("sd"))
        .arg("-p")
        .arg(dir.join("sock"))
        .env("BRAID_EVENT_DIR", dir.join("events"))
        .current_dir(&dir.0);
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut daemon = Daemon::spawn(cmd, dir.join("daemon.log"));
    let sock = dir.join("sock");
    assert!(wait_until(LIMIT, || sock.exists()), "{}", daemon.log_text());
    let ctl = personality(&braid, &dir.0, "dinitctl");
    let run = |args: &[&str]| {
        let o = run_client(
            std::process::Command::new(&ctl)
                .arg("-p")
                .arg(&sock)
                .args(args),
        );
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    // The service's own log write passes the limit: SIGXFSZ ends it.
    assert_eq!(run(&["start", "writer"]), "Service 'writer' started.\n");
    assert!(
        wait_until(LIMIT, || run(&["status", "writer"])
            .contains("State: STOPPED")),
        "{}",
        run(&["status", "writer"])
    );
    let status = run(&["status", "writer"]);
    assert!(
        status.contains("signalled - signal 25"),
        "SIGXFSZ: {status}"
    );
    // Many changes of state: the event log passes 4 KiB.
    for _ in 0..15 {
        run(&["start", "writer"]);
        run(&["stop", "writer"]);
    }
    let events: u64 = std::fs::read_dir(dir.join("events"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    assert!(events >= 4096, "the event log reached the limit ({events})");
    assert!(daemon.alive(), "braid survives: {}", daemon.log_text());
    assert!(run(&["list"]).contains("boot"));
}

/// Sets the soft resource limit of a running process; raising a hard
/// limit needs a capability a container may not grant.
fn set_soft_limit(
    pid: i32,
    resource: libc::__rlimit_resource_t,
    value: u64,
) -> std::io::Result<()> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on local structs.
    if unsafe { libc::prlimit(pid, resource, std::ptr::null(), &mut old) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let lim = libc::rlimit {
        rlim_cur: value.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::prlimit(pid, resource, &lim, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets a resource limit of a process of the test's own user.
fn prlimit(pid: i32, resource: libc::__rlimit_resource_t, value: u64) {
    set_soft_limit(pid, resource, value).expect("prlimit");
}

/// Sets a resource limit of a process running as `ids`: from a child
/// that has become that user (root without CAP_SYS_RESOURCE, as in a
/// container, may not change another user's limits).
fn prlimit_as(ids: Option<(u32, u32)>, pid: i32, resource: libc::__rlimit_resource_t, value: u64) {
    use std::os::unix::process::CommandExt;
    let Some((uid, gid)) = ids else {
        return prlimit(pid, resource, value);
    };
    let mut cmd = std::process::Command::new("/bin/true");
    cmd.uid(uid).gid(gid);
    // SAFETY: the closure runs in the forked child after setuid and makes
    // only system calls.
    unsafe {
        cmd.pre_exec(move || set_soft_limit(pid, resource, value));
    }
    let status = cmd.status().expect("prlimit as the daemon's user");
    assert!(status.success(), "{status}");
}

#[test]
fn running_out_of_descriptors_is_survived() {
    let Some(s) = DinitSession::start(
        "nofile",
        &[("svc", "type = process\ncommand = /bin/sleep 1000\n")],
    ) else {
        return;
    };
    // Leave braid a few descriptors more than it holds now.
    let used = std::fs::read_dir(format!("/proc/{}/fd", s.daemon.pid()))
        .unwrap()
        .count() as u64;
    prlimit(s.daemon.pid(), libc::RLIMIT_NOFILE, used + 4);
    // Idle connections take what is left.
    let mut held = Vec::new();
    for _ in 0..12 {
        held.push(UnixStream::connect(s.socket()).expect("connect"));
    }
    // A client beyond the limit is hung up on at once, not left waiting.
    let mut extra = UnixStream::connect(s.socket()).expect("connect");
    extra.set_read_timeout(Some(LIMIT)).expect("read timeout");
    let mut buf = [0u8; 16];
    assert_eq!(extra.read(&mut buf).expect("read"), 0, "closed by braid");
    // Launching needs descriptors too: the failure names the service.
    let (text, code) = s.ctl_text(&["start", "svc"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        s.daemon
            .wait_log("Error accepting control connection: Too many open files"),
        "{}",
        s.daemon.log_text()
    );
    // The cause goes away.
    drop(held);
    drop(extra);
    prlimit(s.daemon.pid(), libc::RLIMIT_NOFILE, 1024);
    assert!(wait_until(LIMIT, || exists(&s)));
    let (text, code) = s.ctl_text(&["start", "svc"]);
    assert_eq!((text.as_str(), code), ("Service 'svc' started.\n", 0));
}

#[test]
fn running_out_of_processes_is_reported_and_recovered() {
    // RLIMIT_NPROC does not bind root: a root test runs braid as nobody.
    let ids = nix::unistd::geteuid().is_root().then_some((65534, 65534));
    let Some(s) = DinitSession::start_as(
        "nproc",
        &[
            ("a", "type = process\ncommand = /bin/sleep 1000\n"),
            ("b", "type = process\ncommand = /bin/sleep 1000\n"),
        ],
        ids,
    ) else {
        return;
    };
    let mut guard = SessionGuard::default();
    // b runs before the limit; it must run on through it.
    let (text, code) = s.ctl_text(&["start", "b"]);
    assert_eq!((text.as_str(), code), ("Service 'b' started.\n", 0));
    let b = s.pid_of("b").expect("pid of b");
    guard.0.push(b);

    // braid (and b) already use more processes than the limit allows.
    prlimit_as(ids, s.daemon.pid(), libc::RLIMIT_NPROC, 1);
    let (text, code) = s.ctl_text(&["start", "a"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("Service 'a' failed to start.\n")
            && text.contains("Resource temporarily unavailable"),
        "{text}"
    );
    assert!(
        s.daemon.wait_log("dinit: a: execution failed"),
        "the log names the service: {}",
        s.daemon.log_text()
    );
    let (status, _) = s.ctl_text(&["status", "a"]);
    assert!(
        status.contains("State: STOPPED (could not be launched)"),
        "{status}"
    );
    assert!(
        !is_dead(s.daemon.pid()),
        "braid runs on: {}",
        s.daemon.log_text()
    );
    assert!(exists(&s), "the daemon still answers");
    assert_eq!(s.pid_of("b"), Some(b), "b runs on");

    // The cause goes away: a starts.
    prlimit_as(ids, s.daemon.pid(), libc::RLIMIT_NPROC, 4096);
    let (text, code) = s.ctl_text(&["start", "a"]);
    assert_eq!((text.as_str(), code), ("Service 'a' started.\n", 0));
    guard.0.push(s.pid_of("a").expect("pid of a"));
}

#[test]
fn a_killed_braid_restarted_runs_no_service_twice() {
    let Some(mut s) = DinitSession::start(
        "crash",
        &[("forks", "type = process\ncommand = /bin/sh ./forks.sh\n")],
    ) else {
        return;
    };
    write_file(
        &s.dir.join("sd/forks.sh"),
        "sleep 1001 & echo $! > bg.pid; exec sleep 1002\n",
        0o644,
    );
    let (text, code) = s.ctl_text(&["start", "forks"]);
    assert_eq!((text.as_str(), code), ("Service 'forks' started.\n", 0));
    let main = s.pid_of("forks").expect("pid");
    let bg = read_pid_file(&s.dir.join("sd/bg.pid"));
    let _guard = SessionGuard(vec![main]);
    // The record is written before braid next sleeps.
    let record = s.dir.join("sock.braid-processes");
    assert!(wait_until(LIMIT, || std::fs::read_to_string(&record)
        .is_ok_and(|t| t.starts_with(&format!("{main} ")))));

    s.daemon.crash();
    assert!(!is_dead(main) && !is_dead(bg), "services outlive braid");
    std::fs::remove_file(s.dir.join("sd/bg.pid")).unwrap();
    s.restart("daemon2.log");
    assert!(
        s.daemon.wait_log(&format!(
            "dinit: forks: stopped 2 processes (group {main}) left running by a previous instance\n"
        )),
        "{}",
        s.daemon.log_text()
    );
    assert!(is_dead(main) && is_dead(bg), "the old instance is gone");
    let (text, code) = s.ctl_text(&["start", "forks"]);
    assert_eq!((text.as_str(), code), ("Service 'forks' started.\n", 0));
    let new_main = s.pid_of("forks").expect("pid");
    assert_ne!(new_main, main);
    // Once the new sh has put its child in the background:
    read_pid_file(&s.dir.join("sd/bg.pid"));
    assert_eq!(session_members(new_main).len(), 2, "one instance: sh's two");
}

#[test]
fn stop_leaves_no_process_behind() {
    let Some(s) = DinitSession::start(
        "stop",
        &[(
            "forks",
            "type = process\ncommand = /bin/sh ./forks.sh\nstop-timeout = 1\n",
        )],
    ) else {
        return;
    };
    // The background child ignores the stop signal.
    write_file(
        &s.dir.join("sd/forks.sh"),
        "sh -c 'trap \"\" TERM; echo $$ > bg.pid; while :; do sleep 1; done' &\nexec sleep 1000\n",
        0o644,
    );
    let (text, code) = s.ctl_text(&["start", "forks"]);
    assert_eq!((text.as_str(), code), ("Service 'forks' started.\n", 0));
    let main = s.pid_of("forks").expect("pid");
    let _guard = SessionGuard(vec![main]);
    let bg = read_pid_file(&s.dir.join("sd/bg.pid"));
    let (text, code) = s.ctl_text(&["stop", "forks"]);
    assert_eq!((text.as_str(), code), ("Service 'forks' stopped.\n", 0));
    assert!(
        wait_until(LIMIT, || session_members(main).is_empty()),
        "left: {:?}",
        session_members(main)
    );
    assert!(is_dead(bg));
}

#[test]
fn sigterm_stops_every_service_and_exits() {
    let Some(mut s) = DinitSession::start(
        "term",
        &[("svc", "type = process\ncommand = /bin/sleep 1000\n")],
    ) else {
        return;
    };
    s.ctl_text(&["start", "svc"]);
    let main = s.pid_of("svc").expect("pid");
    let status = s.daemon.stop(Signal::SIGTERM).expect("exits");
    assert_eq!(status.code(), Some(0));
    assert!(wait_until(Duration::from_secs(5), || is_dead(main)));
}
