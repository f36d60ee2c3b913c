//! What braid exposes and to whom, under both faces: no descriptor of
//! braid's reaches a service (control connections, FIFOs, inotify, timers,
//! pipes, the event log), the control socket and `supervise/` files have
//! the peers' modes, only the owning user (or root) may use the socket,
//! and no file is written through a symlink someone planted.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;

use braid_tests::*;

/// The descriptor numbers a process has open.
fn fds_of(pid: i32) -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fds")
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some(format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            ))
        })
        .collect();
    fds.sort();
    fds
}

fn only_stdio(fds: &[String]) -> bool {
    fds.iter()
        .all(|f| f.starts_with("0 ") || f.starts_with("1 ") || f.starts_with("2 "))
}

#[test]
fn no_descriptor_of_braid_reaches_a_dinit_service() {
    let Some(s) = DinitSession::start(
        "fds-dinit",
        &[
            ("svc", "type = process\ncommand = /bin/sleep 1000\n"),
            (
                "buffered",
                "type = process\ncommand = /bin/sleep 1000\nlog-type = buffer\n",
            ),
            (
                "ready",
                "type = process\ncommand = /bin/sh -c \"echo >&3; exec sleep 1000\"\nready-notification = pipefd:3\n",
            ),
        ],
    ) else {
        return;
    };
    // Other clients are connected while the services launch.
    let _idle: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(s.socket()).expect("connect"))
        .collect();
    let mut guard = SessionGuard::default();
    for name in ["svc", "buffered", "ready"] {
        let (text, code) = s.ctl_text(&["start", name]);
        assert_eq!(
            (text.as_str(), code),
            (&*format!("Service '{name}' started.\n"), 0)
        );
        let pid = s.pid_of(name).expect("pid");
        guard.0.push(pid);
        let mut fds = fds_of(pid);
        if name == "ready" {
            // Its own: the readiness pipe it was given.
            fds.retain(|f| !f.starts_with("3 -> pipe:"));
        }
        assert!(only_stdio(&fds), "{name} has {fds:#?}");
    }
}

#[test]
fn no_descriptor_of_braid_reaches_a_runit_service() {
    let Some(s) = RunitSession::start(
        "fds-runit",
        &[
            ("a", "#!/bin/sh\nexec sleep 1000\n"),
            ("b", "#!/bin/sh\nexec sleep 1000\n"),
        ],
    ) else {
        return;
    };
    // b has a logger: its stdout is the log pipe, its logger's stdin.
    write_file(
        &s.dir.join("service/b/log/run"),
        "#!/bin/sh\nexec cat > /dev/null\n",
        0o755,
    );
    let mut guard = SessionGuard::default();
    s.wait_status("a", "run: ");
    let pid = s.pid_of("a").expect("pid");
    guard.0.push(pid);
    let fds = fds_of(pid);
    assert!(only_stdio(&fds), "a has {fds:#?}");
    // b: restart it so that its log pipe exists at launch. sv returns once
    // it has asked; the new process is the one to look at.
    s.wait_status("b", "run: ");
    let old = s.pid_of("b");
    s.sv(&["restart", "b"]);
    assert!(
        wait_until(LIMIT, || s.pid_of("b").is_some_and(|p| Some(p) != old)),
        "b was not restarted"
    );
    let status = s.wait_status("b", "run: ");
    let pid = s.pid_of("b").expect("pid");
    guard.0.push(pid);
    let fds = fds_of(pid);
    assert!(only_stdio(&fds), "b ({status}) has {fds:#?}");
}

#[test]
fn control_socket_is_private_and_checks_its_peer() {
    let Some(s) = DinitSession::start("peer", &[]) else {
        return;
    };
    let meta = std::fs::symlink_metadata(s.socket()).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let record = std::fs::symlink_metadata(s.dir.join("sock.braid-processes"));
    if let Ok(record) = record {
        assert_eq!(record.permissions().mode() & 0o777, 0o600);
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("note: the peer check needs root to connect as another user");
        return;
    }
    // Opened up on purpose: braid's own check must still turn away
    // another user.
    std::fs::set_permissions(s.socket(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&s.dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = s.socket();
    let got = run_as_nobody(&sock);
    assert_eq!(got, Some(0), "another user's connection is closed unread");
    let (text, code) = s.ctl_text(&["list"]);
    assert_eq!(code, 0, "the owner is still served: {text}");
}

/// Connects to `sock` as uid 65534, sends a dinit query, and returns how
/// many bytes came back before the daemon closed the connection (`None`:
/// the connection itself failed).
fn run_as_nobody(sock: &Path) -> Option<usize> {
    let sock = sock.to_path_buf();
    let out = std::thread::spawn(move || {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--exact")
            .arg("connect_as_nobody_helper")
            .arg("--nocapture")
            .env("BRAID_TEST_SOCKET", &sock)
            .output()
            .expect("helper");
        String::from_utf8_lossy(&child.stdout).into_owned()
    })
    .join()
    .ok()?;
    let at = out.find("GOT ")? + 4;
    out[at..].split_whitespace().next()?.parse().ok()
}

/// Run by `run_as_nobody` in a child test process.
#[test]
fn connect_as_nobody_helper() {
    let Some(sock) = std::env::var_os("BRAID_TEST_SOCKET") else {
        return;
    };
    nix::unistd::setgid(nix::unistd::Gid::from_raw(65534)).expect("setgid");
    nix::unistd::setuid(nix::unistd::Uid::from_raw(65534)).expect("setuid");
    let mut c = UnixStream::connect(sock).expect("connect as nobody");
    c.set_read_timeout(Some(LIMIT)).unwrap();
    // DINIT_CP_QUERYVERSION
    let _ = std::io::Write::write_all(&mut c, &[0]);
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    println!("GOT {}", buf.len());
}

#[test]
fn event_log_is_not_written_through_a_planted_symlink() {
    let Some(braid) = braid_binary() else { return };
    let dir = TempDir::new("planted");
    // Someone else's directory, where braid would otherwise write.
    let events = dir.join("events");
    std::fs::create_dir(&events).unwrap();
    std::fs::set_permissions(&events, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    write_file(&dir.join("sd/boot"), "type = internal\n", 0o644);
    let dinit = personality(&braid, &dir.0, "dinit");
    let mut cmd = std::process::Command::new(dinit);
    cmd.arg("-d")
        .arg(dir.join("sd"))
        .arg("-p")
        .arg(dir.join("sock"))
        .env("BRAID_EVENT_DIR", &events);
    // The directory is writable by others: braid must not use it at all
    // (whenever the link appears, before or after braid looks).
    let daemon = Daemon::spawn(cmd, dir.join("daemon.log"));
    let pid = daemon.pid();
    let _ = std::os::unix::fs::symlink(&victim, events.join(format!("events-{pid}.jsonl")));
    assert!(wait_until(LIMIT, || dir.join("sock").exists()));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    drop(daemon);
}
