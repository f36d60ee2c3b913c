//! `options = pass-cs-fd`: a service's process gets a control connection
//! already made, its fd number in `DINIT_CS_FD`, and can drive the daemon
//! with `dinitctl --use-passed-cfd`. Compared with the real dinit where
//! the two can be compared (what the service and the user see); braid
//! alone for where the fd lands and that none of braid's own leaks.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use daemon_support::{setup, Daemon, Impl, Peers, TempDir};

/// One test at a time: a daemon spawned while another test holds its
/// ready pipe's write end (not close-on-exec) would inherit it, and pass
/// it on to its services.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const BOOT: (&str, &str) = ("boot", "type = internal\n");

/// What the driving service prints about its connection, then what the
/// client it runs on that connection prints. `$CTL` is the client.
const DRIVER: &str = r#"
if [ "$DINIT_CS_FD" -ge 3 ]; then echo "DINIT_CS_FD >= 3"; else echo "DINIT_CS_FD=$DINIT_CS_FD"; fi
f=$(awk '/^flags:/ { print $2 }' /proc/$$/fdinfo/$DINIT_CS_FD)
echo "non-blocking: $(( ($f & 04000) != 0 )), close-on-exec: $(( ($f & 02000000) != 0 ))"
"$CTL" --use-passed-cfd start other; echo "start: $?"
"$CTL" --use-passed-cfd list; echo "list: $?"
echo done
"#;

/// A `dinitctl` for the service to run: the real one, or a link named
/// `dinitctl` to braid.
fn client(peers: &Peers, real: bool, links: &TempDir) -> PathBuf {
    if real {
        return peers.real.join("dinitctl");
    }
    let link = links.0.join("dinitctl");
    if !link.exists() {
        std::os::unix::fs::symlink(&peers.braid, &link).expect("link dinitctl");
    }
    link
}

/// Polls `path` until it holds `needle` (bounded); its text.
fn wait_for_text(daemon: &Daemon, path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{:?}: {} never held {needle:?}: {text:?}\nconsole: {}",
            daemon.imp,
            path.display(),
            daemon.console()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The driving scenario on one daemon with one client inside the
/// service: what the service printed, what the user's `dinitctl list`
/// shows, and the console.
fn drive(peers: &Peers, imp: Impl, real_client: bool) -> String {
    let links = TempDir::new("passcs-bin");
    let script = format!(
        "CTL='{}'\n{DRIVER}exec sleep 600\n",
        client(peers, real_client, &links).display()
    );
    let files = [
        BOOT,
        (
            "boss",
            "type = process\ncommand = /bin/sh ./boss.sh\noptions = pass-cs-fd\nlogfile = boss.log\n",
        ),
        ("boss.sh", script.as_str()),
        ("other", "type = internal\n"),
    ];
    let mut daemon = Daemon::start(peers, imp, &files, &["boss"]);
    let log = wait_for_text(&daemon, &daemon.services.join("boss.log"), "done\n");
    let mut t = format!("[boss.log]\n{}", daemon.normalise(&log));
    let list = daemon.ctl(true, &["list"]);
    t.push_str(&format!(
        "$ dinitctl list\n{}{}[exit {}]\n",
        daemon.normalise(&list.stdout),
        list.stderr,
        list.code
    ));
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    let code = daemon.wait_exit(Duration::from_secs(20));
    t.push_str(&format!("[SIGTERM: daemon exit {code:?}]\n[console]\n"));
    t.push_str(&daemon.console());
    t
}

#[test]
fn a_service_starts_another_through_its_passed_connection() {
    let _serial = serial();
    let Some(peers) = setup() else {
        return;
    };
    let real = drive(&peers, Impl::Real, true);
    if std::env::var_os("BRAID_SHOW_TRANSCRIPT").is_some() {
        eprintln!("{real}");
    }
    assert!(
        real.contains(
            "DINIT_CS_FD >= 3\nnon-blocking: 1, close-on-exec: 0\nService started.\nstart: 0\n"
        ),
        "the real dinit's scenario went otherwise:\n{real}"
    );
    let braid = drive(&peers, Impl::Braid, true);
    assert_eq!(
        braid, real,
        "braid dinit (left) differs from the real dinit (right), real dinitctl in the service"
    );
    let braid_client = drive(&peers, Impl::Braid, false);
    assert_eq!(
        braid_client, real,
        "braid dinit with braid's dinitctl in the service (left) differs from the real pair (right)"
    );
}

/// A scripted service gets a connection for its stop command too; the
/// command uses it to stop another service.
#[test]
fn a_scripted_stop_command_gets_a_connection_too() {
    let _serial = serial();
    let Some(peers) = setup() else {
        return;
    };
    let mut transcripts = Vec::new();
    for (imp, real_client) in [
        (Impl::Real, true),
        (Impl::Braid, true),
        (Impl::Braid, false),
    ] {
        let links = TempDir::new("passcs-bin");
        let stop = format!(
            "\"{}\" --use-passed-cfd stop other; echo \"stop: $?\"; echo done\n",
            client(&peers, real_client, &links).display()
        );
        let files = [
            BOOT,
            (
                "scr",
                "type = scripted\ncommand = /bin/true\nstop-command = /bin/sh ./stop.sh\noptions = pass-cs-fd\nlogfile = scr.log\n",
            ),
            ("stop.sh", stop.as_str()),
            ("other", "type = internal\n"),
        ];
        let daemon = Daemon::start(&peers, imp, &files, &["boot"]);
        let mut t = String::new();
        for args in [&["start", "other"][..], &["start", "scr"], &["stop", "scr"]] {
            let out = daemon.ctl(true, args);
            t.push_str(&format!(
                "$ dinitctl {}\n{}{}[exit {}]\n",
                args.join(" "),
                out.stdout,
                out.stderr,
                out.code
            ));
        }
        let log = wait_for_text(&daemon, &daemon.services.join("scr.log"), "done\n");
        t.push_str(&format!("[scr.log]\n{log}"));
        daemon.wait_state("other", "STOPPED");
        let list = daemon.ctl(true, &["list"]);
        t.push_str(&format!("$ dinitctl list\n{}", list.stdout));
        transcripts.push(t);
    }
    if std::env::var_os("BRAID_SHOW_TRANSCRIPT").is_some() {
        eprintln!("{}", transcripts[0]);
    }
    assert!(
        transcripts[0].contains("[scr.log]\nService stopped.\nstop: 0\ndone\n"),
        "the real dinit's scenario went otherwise:\n{}",
        transcripts[0]
    );
    assert_eq!(
        transcripts[1], transcripts[0],
        "braid dinit (left) vs the real dinit (right), real dinitctl"
    );
    assert_eq!(
        transcripts[2], transcripts[0],
        "braid dinit and dinitctl (left) vs the real pair (right)"
    );
}

/// The fds open in a process, sorted.
fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the service's fds")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    fds.sort_unstable();
    fds
}

/// This test process's fds without close-on-exec above 2: a daemon
/// started from here inherits them and passes them on, as dinit does.
fn inherited_fds() -> Vec<i32> {
    open_fds(std::process::id() as i32)
        .into_iter()
        .filter(|&fd| {
            fd > 2
                && nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)
                    .is_ok_and(|flags| flags & nix::libc::FD_CLOEXEC == 0)
        })
        .collect()
}

/// What the fd is (`socket:[…]` → `socket`, `pipe:[…]` → `pipe`).
fn fd_kind(pid: i32, fd: i32) -> String {
    let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default();
    let text = target.to_string_lossy().into_owned();
    text.split(':').next().unwrap_or_default().to_string()
}

/// The daemon's open sockets (its listening socket and connections).
fn daemon_sockets(daemon: &Daemon) -> usize {
    let pid = daemon.pid();
    open_fds(pid)
        .into_iter()
        .filter(|&fd| fd_kind(pid, fd) == "socket")
        .count()
}

#[test]
fn the_connection_sits_after_the_socket_and_readiness_fds_and_nothing_else_leaks() {
    let _serial = serial();
    let Some(peers) = setup() else {
        return;
    };
    let inherited = inherited_fds();
    let mut daemon = Daemon::start(&peers, Impl::Braid, &[BOOT], &["boot"]);
    let sockets_before = daemon_sockets(&daemon);
    let dir = daemon.dir.0.clone();
    daemon.write(&[
        (
            "svc",
            &format!(
                "type = process\ncommand = /bin/sh ./svc.sh\noptions = pass-cs-fd\n\
                 socket-listen = {}\nready-notification = pipevar:NOTIFY\nlogfile = svc.log\n",
                dir.join("svc.socket").display()
            ),
        ),
        (
            "svc.sh",
            "echo \"pid=$$ cs=$DINIT_CS_FD listen=$LISTEN_FDS notify=$NOTIFY\"\n\
             echo ready >&$NOTIFY\nexec sleep 600\n",
        ),
    ]);
    let started = daemon.ctl(true, &["start", "svc"]);
    assert_eq!(started.stdout, "Service 'svc' started.\n", "{started:?}");
    let log = wait_for_text(&daemon, &daemon.services.join("svc.log"), "notify=");
    let line = log.lines().next().unwrap_or_default();
    let rest = line.strip_prefix("pid=").expect("the service's first line");
    let (pid, vars) = rest.split_once(' ').expect("pid, then the variables");
    assert_eq!(vars, "cs=5 listen=1 notify=4", "{log}");
    let pid: i32 = pid.parse().expect("a pid");

    // `sleep` has exactly what the launch gave: the socket, the readiness
    // pipe, the connection, and what the test process itself passed on.
    // The exec closes the shell's close-on-exec fds (its script) a moment
    // after the process shows the new program: a leaked fd stays open, so
    // the list is polled until it is right (bounded).
    let mut expected = vec![0, 1, 2, 3, 4, 5];
    expected.extend(inherited.iter().filter(|fd| **fd > 5));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let fds = open_fds(pid);
        if comm == "sleep\n" && fds == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "svc ({comm:?}) has fds {fds:?}, expected {expected:?} \
             (inherited from the test: {inherited:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let kinds: Vec<String> = [3, 4, 5].iter().map(|fd| fd_kind(pid, *fd)).collect();
    assert_eq!(kinds, ["socket", "pipe", "socket"]);
    // The daemon holds its end of the connection, beside the activation
    // socket (the client that started the service may take a moment to
    // be seen gone).
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon_sockets(&daemon) != sockets_before + 2 {
        assert!(
            Instant::now() < deadline,
            "the daemon has {} sockets, {sockets_before} before the service",
            daemon_sockets(&daemon)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Once the process is gone, so is the daemon's end (and, the service
    // being down, its activation socket).
    let stopped = daemon.ctl(true, &["stop", "svc"]);
    assert_eq!(stopped.stdout, "Service 'svc' stopped.\n", "{stopped:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon_sockets(&daemon) != sockets_before {
        assert!(
            Instant::now() < deadline,
            "the daemon kept the connection: {} sockets, {sockets_before} before",
            daemon_sockets(&daemon)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
}
