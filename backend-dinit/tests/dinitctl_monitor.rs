//! braid's `dinit-monitor` against the real one on a real daemon.

mod dinitctl_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use dinitctl_support::{peer_dir, run_bounded, Daemon, Output};

const SERVICES: &[(&str, &str)] = &[
    ("boot", "type = internal\n"),
    (
        "sleeper",
        "type = process\ncommand = /bin/sleep 1000\nrestart = false\n",
    ),
    (
        "failing",
        "type = scripted\ncommand = /bin/false\nrestart = false\n",
    ),
    ("bad", "type = process\nnot a setting\n"),
];

fn monitor(d: &Daemon, program: &Path, args: &[&str]) -> Output {
    let mut c = d.command(program);
    c.arg("-p").arg(&d.socket).args(args);
    run_bounded(c)
}

#[test]
fn one_shot_runs_match() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let cases: &[&[&str]] = &[
        &["-i", "-e", "-c", "echo %n is %s", "boot"],
        &[
            "-i",
            "-e",
            "--str-started",
            "UP",
            "-c",
            "echo \"[%s]  %n\" 100%",
            "boot",
        ],
        &["-i", "-e", "-c", "echo %n %s", "sleeper"],
        &["-i", "-e", "-c", "/bin/sh -c \"exit 3\"", "boot"],
        &["-c", "echo", "nosuch"],
        &["-c", "echo", "bad"],
        &["-c", "", "boot"],
        &["boot"],
        &["-c", "echo"],
        &["--help"],
        &["--version"],
        &["-c"],
        &["--str-failed"],
    ];
    for args in cases {
        let real = monitor(&d, &d.real("dinit-monitor"), args);
        let ours = monitor(&d, &d.braid("dinit-monitor"), args);
        assert_eq!(real, ours, "dinit-monitor {args:?}");
    }
    // Connection errors.
    for program in [d.real("dinit-monitor"), d.braid("dinit-monitor")] {
        let mut c = d.command(&program);
        c.args(["-p", "/nonexistent/sock", "-c", "echo", "boot"]);
        let o = run_bounded(c);
        assert_eq!(
            (o.stderr.as_str(), o.code),
            ("dinit-monitor: connecting to socket /nonexistent/sock: No such file or directory\n", 1),
            "{program:?}"
        );
    }
}

#[test]
fn environment_one_shot_matches() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let ctl = d.real("dinitctl");
    d.run(&ctl, &["setenv", "BRAID_MON=hello world"]);
    for args in [
        &["-E", "-i", "-e", "-c", "echo %n=%v (%s)", "BRAID_MON"][..],
        &[
            "-E",
            "-i",
            "-e",
            "--str-set",
            "SET",
            "-c",
            "echo %n %s %v",
            "BRAID_MON",
        ][..],
    ] {
        let real = monitor(&d, &d.real("dinit-monitor"), args);
        let ours = monitor(&d, &d.braid("dinit-monitor"), args);
        assert_eq!(real, ours, "dinit-monitor {args:?}");
        assert_eq!(ours.code, 0);
    }
}

/// A monitor running in the background; its stdout lines arrive on a
/// channel. Killed on drop.
struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    fn start(d: &Daemon, program: &Path, args: &[&str]) -> Running {
        let mut c = d.command(program);
        c.arg("-p")
            .arg(&d.socket)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("monitor output within 20 s")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_are_reported_alike() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let ctl = d.real("dinitctl");
    let args = ["-i", "-c", "echo %n %s", "sleeper", "failing"];
    let real = Running::start(&d, &d.real("dinit-monitor"), &args);
    let ours = Running::start(&d, &d.braid("dinit-monitor"), &args);
    let both = |want: &str| {
        assert_eq!(real.line(), want, "real");
        assert_eq!(ours.line(), want, "braid");
    };
    // The initial lines show both are subscribed.
    both("sleeper stopped");
    both("failing stopped");
    d.run(&ctl, &["start", "sleeper"]);
    both("sleeper started");
    d.run(&ctl, &["stop", "sleeper"]);
    both("sleeper stopped");
    d.run(&ctl, &["start", "failing"]);
    both("failing failed");
    both("failing stopped");
}

#[test]
fn daemon_going_away_is_reported_alike() {
    let Some(peer) = peer_dir() else { return };
    let d = Daemon::start(&peer, SERVICES);
    let args = ["-i", "-c", "echo %n %s", "boot"];
    let mut real = Running::start(&d, &d.real("dinit-monitor"), &args);
    let mut ours = Running::start(&d, &d.braid("dinit-monitor"), &args);
    assert_eq!(real.line(), "boot started");
    assert_eq!(ours.line(), "boot started");
    d.run(&d.real("dinitctl"), &["shutdown"]);
    for (name, r) in [("real", &mut real), ("braid", &mut ours)] {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = r.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} monitor did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        let mut stderr = r.child.stderr.take().unwrap();
        std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
        assert_eq!(
            err, "dinit-monitor: connection closed by server\n",
            "{name}"
        );
        assert_eq!(status.code(), Some(1), "{name}");
    }
}
