//! The braid daemon under abuse, next to the real one where the real one
//! can be compared: malformed and oversized packets, bad handles, many
//! clients at once, a client that never reads, foreign users, signals,
//! command-line errors, and protocol details dinitctl does not show.

mod daemon_support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use daemon_support::{exchange, run_bounded, setup, Daemon, Impl, Peers};

const FILES: &[(&str, &str)] = &[
    ("boot", "type = internal\nwaits-for.d = boot.d\n"),
    ("boot.d/", ""),
    ("svc", "type = internal\n"),
    (
        "sleeper",
        "type = process\ncommand = /bin/sleep 1000\nrestart = false\n",
    ),
];

/// `[2 LOADSERVICE][len u16][name]`
fn load(name: &str) -> Vec<u8> {
    let mut p = vec![2];
    p.extend_from_slice(&(name.len() as u16).to_ne_bytes());
    p.extend_from_slice(name.as_bytes());
    p
}

/// Runs the same raw exchanges on the real daemon and braid's: for each,
/// the bytes sent and how many to wait for (fewer arrive if the daemon
/// closes), asserting both daemons answered the same bytes.
fn raw_compare(peers: &Peers, exchanges: &[(Vec<u8>, usize)]) {
    let mut results = Vec::new();
    for imp in [Impl::Real, Impl::Braid] {
        let daemon = Daemon::start(peers, imp, FILES, &[]);
        let mut s = daemon.connect();
        let mut got = Vec::new();
        for (send, n) in exchanges {
            let bytes = exchange(&mut s, send, *n);
            assert_eq!(bytes.len(), *n, "{imp:?}: answer to {send:?} was {bytes:?}");
            got.push(bytes);
        }
        // Whether the connection is still open afterwards.
        let _ = s.write_all(&[0]);
        let mut buf = [0u8; 16];
        let open = matches!(s.read(&mut buf), Ok(n) if n > 0);
        results.push((got, open));
        // The daemon still serves others.
        let mut other = daemon.connect();
        assert_eq!(exchange(&mut other, &[0], 5), [58, 1, 0, 7, 0], "{imp:?}");
    }
    assert_eq!(results[1], results[0], "braid (left) vs real dinit (right)");
}

#[test]
fn malformed_packets_close_only_that_connection() {
    let Some(peers) = setup() else {
        return;
    };
    // Unknown command.
    raw_compare(&peers, &[(vec![200], 1)]);
    // Name length out of range.
    raw_compare(&peers, &[(vec![2, 0xff, 0x0f, b'x'], 1)]);
    // Name starting with '.'.
    raw_compare(&peers, &[(load(".hidden"), 1)]);
    // START with a handle never given out.
    raw_compare(&peers, &[(vec![3, 0, 9, 0, 0, 0], 1)]);
    // SERVICESTATUS with a bad handle: NAK, and the connection stays.
    raw_compare(&peers, &[(vec![18, 9, 0, 0, 0], 1), (vec![0], 5)]);
    // CLOSEHANDLE of an unknown handle, SETENV with a leading '='.
    raw_compare(&peers, &[(vec![23, 5, 0, 0, 0], 1)]);
    raw_compare(&peers, &[(vec![17, 2, 0, b'=', b'x'], 1)]);
    // Bad shutdown type. (A bad dependency type in ADD_DEP is answered
    // BADREQ by both, but the real daemon then carries on with the request
    // and keeps the connection a while; braid closes it at once.)
    raw_compare(&peers, &[(vec![10, 9], 1)]);
}

#[test]
fn handles_and_protocol_details() {
    let Some(peers) = setup() else {
        return;
    };
    let mut two = load("svc");
    two.extend(load("svc"));
    raw_compare(
        &peers,
        &[
            // Version, then two loads of one service: handles 0 and 1.
            (vec![0], 5),
            (two, 14),
            // Close handle 0; the next load reuses it.
            (vec![23, 0, 0, 0, 0], 1),
            (load("boot"), 7),
            // Service name of handle 1, its description dir is per daemon
            // (not compared): query with a bad reserved byte instead (NAK).
            (vec![15, 0, 1, 0, 0, 0], 7),
            (vec![22, 1, 1, 0, 0, 0], 1),
            // Trigger on a non-triggered service: NAK; catlog: NAK.
            (vec![19, 1, 0, 0, 0, 1], 1),
            (vec![20, 0, 1, 0, 0, 0], 1),
            // Start svc with PREACK: PREACK, events v5 + v1 for the
            // handle still held on svc, then ALREADYSS.
            (vec![3, 128, 1, 0, 0, 0], 1 + (21 + 17) + 1),
            // Status v1, v5, v6 (mtime differs: only v1 and v5).
            (vec![18, 1, 0, 0, 0], 12),
            (vec![26, 1, 0, 0, 0], 16),
            // Stop gently while boot does not hold it: stopped at once.
            (vec![4, 2, 1, 0, 0, 0], (21 + 17) + 1),
            // Environment: listen, set (event + ACK), unset (event + ACK).
            (vec![27], 1),
            (vec![17, 5, 0, b'A', b'=', b'1', b'2', b'3'], 11 + 1),
            (vec![17, 1, 0, b'A'], 7 + 1),
            // Unload svc: other handles on this connection only → ACK.
            (vec![9, 1, 0, 0, 0], 1),
            (vec![0], 5),
        ],
    );
}

#[test]
fn signals_sent_through_the_daemon() {
    let Some(peers) = setup() else {
        return;
    };
    for imp in [Impl::Real, Impl::Braid] {
        let daemon = Daemon::start(&peers, imp, FILES, &[]);
        let real = true;
        assert_eq!(daemon.ctl(real, &["signal", "USR1", "sleeper"]).stderr.lines().next(),
            Some("dinitctl: could not get valid PID of service; service is not process-based or is in wrong state."), "{imp:?}");
        assert_eq!(daemon.ctl(real, &["start", "sleeper"]).code, 0);
        let bad = daemon.ctl(real, &["signal", "99", "sleeper"]);
        assert_eq!(
            bad.stderr, "dinitctl: provided signal was invalid.\n",
            "{imp:?}"
        );
        assert_eq!(daemon.ctl(real, &["signal", "TERM", "sleeper"]).code, 0);
        daemon.wait_state("sleeper", "STOPPED");
        let status = daemon.ctl(real, &["status", "sleeper"]);
        assert!(
            status
                .stdout
                .contains("State: STOPPED (terminated; signalled - signal 15)"),
            "{imp:?}: {status:?}"
        );
    }
}

#[test]
fn many_clients_at_once() {
    let Some(peers) = setup() else {
        return;
    };
    let daemon = Daemon::start(&peers, Impl::Braid, FILES, &[]);
    let mut clients: Vec<UnixStream> = (0..300).map(|_| daemon.connect()).collect();
    for c in &mut clients {
        c.write_all(&load("svc")).unwrap();
    }
    for c in &mut clients {
        let mut buf = [0u8; 7];
        c.read_exact(&mut buf).expect("every client answered");
        assert_eq!(buf[0], 59);
        assert_eq!(&buf[2..6], &0u32.to_ne_bytes(), "first handle is 0");
    }
    // Each got its own handle space; the list works for a fresh client.
    drop(clients);
    let out = daemon.ctl(true, &["list"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("svc"));
}

#[test]
fn a_client_that_never_reads_is_bounded() {
    let Some(peers) = setup() else {
        return;
    };
    let daemon = Daemon::start(&peers, Impl::Braid, FILES, &[]);
    let mut greedy = daemon.connect();
    greedy.set_nonblocking(true).unwrap();
    // Pipeline thousands of list requests and never read the answers.
    let mut sent = 0usize;
    for _ in 0..100_000 {
        match greedy.write(&[25]) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent > 0);
    // Others are served meanwhile, and the daemon stays small.
    for _ in 0..20 {
        assert_eq!(
            daemon.ctl(true, &["is-started", "boot"]).stdout,
            "STARTED\n"
        );
    }
    let pid = daemon.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(rss_kb < 64 * 1024, "daemon grew to {rss_kb} kB");
}

#[test]
fn socket_is_private_and_foreign_users_are_refused() {
    let Some(peers) = setup() else {
        return;
    };
    let daemon = Daemon::start(&peers, Impl::Braid, FILES, &[]);
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: foreign-user check needs root");
        return;
    }
    // A client running as nobody (the socket made reachable for it): the
    // daemon closes the connection without answering.
    let open_dir = |p: &std::path::Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap()
    };
    open_dir(&daemon.dir.0);
    open_dir(&daemon.dir.0.join("run"));
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = format!(
        "exec 3<>/dev/null; printf '\\000' | /usr/bin/timeout 10 /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); \ntry:\n  s.send(b\"\\x00\"); print(len(s.recv(16)))\nexcept OSError: print(0)' {}",
        daemon.socket.display()
    );
    let mut c = std::process::Command::new("/usr/bin/setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/bin/sh",
        "-c",
        &script,
    ]);
    if !std::path::Path::new("/usr/bin/python3").exists()
        || !std::path::Path::new("/usr/bin/setpriv").exists()
    {
        eprintln!("skipped: foreign-user check needs setpriv and python3");
        return;
    }
    let out = run_bounded(c);
    assert_eq!(out.stdout.trim(), "0", "nobody got an answer: {out:?}");
    // The owner still can.
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(exchange(&mut daemon.connect(), &[0], 5), [58, 1, 0, 7, 0]);
}

#[test]
fn sigterm_stops_services_and_exits_zero() {
    let Some(peers) = setup() else {
        return;
    };
    let mut consoles = Vec::new();
    for imp in [Impl::Real, Impl::Braid] {
        let mut daemon = Daemon::start(&peers, imp, FILES, &[]);
        assert_eq!(daemon.ctl(true, &["start", "sleeper"]).code, 0);
        daemon.signal(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(
            daemon.wait_exit(Duration::from_secs(20)),
            Some(0),
            "{imp:?}"
        );
        assert!(!daemon.socket.exists(), "{imp:?}: socket removed at exit");
        consoles.push(daemon.console());
    }
    assert_eq!(consoles[1], consoles[0]);
}

#[test]
fn second_instance_and_command_line_errors() {
    let Some(peers) = setup() else {
        return;
    };
    let braid_link = |dir: &std::path::Path| {
        let link = dir.join("dinit");
        std::os::unix::fs::symlink(&peers.braid, &link).unwrap();
        link
    };
    let tmp = daemon_support::TempDir::new("dargs");
    let programs = [peers.real.join("dinit"), braid_link(&tmp.0)];
    let cases: &[&[&str]] = &[
        &["--frob"],
        &["-d"],
        &["--services-dir", ""],
        &["-u", ".hidden"],
        &["-u", ""],
        &["-F"],
        &["-F", "x"],
        &["-F", "77"],
        &["--log-level", "loud"],
        &["--console-level"],
        &["--version"],
        &["--help"],
    ];
    for args in cases {
        let run = |p: &std::path::Path| {
            let mut c = std::process::Command::new(p);
            c.args(*args)
                .env("HOME", &tmp.0)
                .env("XDG_RUNTIME_DIR", &tmp.0);
            run_bounded(c)
        };
        let real = run(&programs[0]);
        let braid = run(&programs[1]);
        if args[0] == "--version" {
            assert_eq!(braid.stdout.lines().next(), real.stdout.lines().next());
            continue;
        }
        assert_eq!(braid, real, "dinit {args:?}");
    }
    // A second daemon on a live socket refuses to start.
    let daemon = Daemon::start(&peers, Impl::Braid, FILES, &[]);
    for quiet in [false, true] {
        let outputs: Vec<_> = programs
            .iter()
            .map(|program| {
                let mut c = std::process::Command::new(program);
                c.args(["-u", "-d"])
                    .arg(&daemon.services)
                    .arg("-p")
                    .arg(&daemon.socket);
                if quiet {
                    c.arg("-q");
                }
                let mut out = run_bounded(c);
                out.stdout = out
                    .stdout
                    .lines()
                    .filter(|l| !l.contains("cgroup"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                out
            })
            .collect();
        assert_eq!(outputs[1], outputs[0], "second instance, quiet: {quiet}");
        assert_eq!(outputs[0].code, 1);
    }
    assert_eq!(exchange(&mut daemon.connect(), &[0], 5), [58, 1, 0, 7, 0]);
}

#[test]
fn sigusr1_recreates_a_deleted_socket() {
    let Some(peers) = setup() else {
        return;
    };
    for imp in [Impl::Real, Impl::Braid] {
        let daemon = Daemon::start(&peers, imp, FILES, &[]);
        // Still there: nothing happens, and the daemon lives on.
        daemon.signal(nix::sys::signal::Signal::SIGUSR1);
        assert_eq!(exchange(&mut daemon.connect(), &[0], 5), [58, 1, 0, 7, 0]);
        std::fs::remove_file(&daemon.socket).unwrap();
        daemon.signal(nix::sys::signal::Signal::SIGUSR1);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !daemon.socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{imp:?}: no new socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            daemon.ctl(true, &["is-started", "boot"]).stdout,
            "STARTED\n",
            "{imp:?}"
        );
    }
}
