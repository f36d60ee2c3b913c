//! braid's inspection commands on running sessions, as a user runs them:
//! the demo (through its event log), a runit session (braid's runsvdir)
//! and a dinit session (braid's dinit), each with a broken service.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use support::{TempDir, BRAID};

/// A supervisor started for a test: asked to stop with `stop_signal` on
/// drop, then killed with its process group if it has not exited in time.
struct Supervisor {
    child: Child,
    stop_signal: Signal,
}

impl Supervisor {
    fn start(argv0: &str, args: &[&str], events: &Path, path: &str) -> Supervisor {
        let child = Command::new(BRAID)
            .arg0(argv0)
            .args(args)
            .env("BRAID_EVENT_DIR", events)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stop_signal = match argv0 {
            "runsvdir" => Signal::SIGHUP,
            "braid" => Signal::SIGINT,
            _ => Signal::SIGTERM,
        };
        Supervisor { child, stop_signal }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, self.stop_signal);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn braid(args: &[&str], events: &Path) -> (i32, String, String) {
    let out = Command::new(BRAID)
        .args(args)
        .env("BRAID_EVENT_DIR", events)
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `braid status --json ARGS` once `ready` holds for it (bounded wait).
fn status_when(args: &[&str], events: &Path, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut full = vec!["status", "--json"];
    full.extend_from_slice(args);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let (code, out, err) = braid(&full, events);
        if code == 0 {
            let v: Value = serde_json::from_str(&out).unwrap();
            if ready(&v) {
                return v;
            }
            last = out;
        } else {
            last = err;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}; last status:\n{last}");
}

fn service<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A PATH whose first directory has braid linked as `names`.
fn path_with(dir: &Path, names: &[&str]) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let target = std::fs::canonicalize(BRAID).unwrap();
    for n in names {
        std::os::unix::fs::symlink(&target, bin.join(n)).unwrap();
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn the_demo_session_through_its_event_log() {
    let t = TempDir::new("idemo");
    let ev = t.0.join("events");
    let path = std::env::var("PATH").unwrap_or_default();
    let demo = Supervisor::start("braid", &["demo", "--engine"], &ev, &path);
    let demo_pid = demo.child.id() as i64;
    let v = status_when(&["--demo"], &ev, "web started and flaky restarted", |v| {
        v["services"].as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s["name"] == "web" && s["state"] == "started")
                && a.iter()
                    .any(|s| s["name"] == "flaky" && s["restarts"].as_u64() >= Some(1))
        })
    });
    assert_eq!(v["format"], 1);
    let web = service(&v, "web");
    assert_eq!(web["face"], "engine");
    assert_eq!(web["ready"], true);
    assert_eq!(web["target"], "started");
    assert_eq!(web["restarts"], 0);
    let pid = web["pid"].as_i64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(web["uptime"].as_f64().unwrap() >= 0.0);
    assert!(web["since"].as_f64().unwrap() > 1.0e9);
    let flaky = service(&v, "flaky");
    assert_eq!(flaky["last_exit"], serde_json::json!({"code": 1}));

    let (code, out, err) = braid(&["why", "web", "--demo"], &ev);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("web is started, pid {pid}, 0 restarts.\n"));

    let (_, graph, _) = braid(&["graph", "--demo"], &ev);
    assert!(
        graph.contains("web (engine, started)\n  hard        -> cache (started)\n"),
        "{graph}"
    );
    assert!(graph.contains("ticker (engine, started)\n  waits-for   -> logger (started)\n"));

    let svg = t.0.join("t.svg");
    let (code, text, err) = braid(
        &[
            "timeline",
            "--demo",
            "--to",
            "web",
            "--svg",
            svg.to_str().unwrap(),
        ],
        &ev,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("braid timeline: demo session, pid {demo_pid} (")),
        "{text}"
    );
    assert!(lines[1].starts_with("SERVICE  |0s"), "{text}");
    for name in ["db", "cache", "web"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("*{name:<8}|"))),
            "{name} not on the critical path:\n{text}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(" flaky   |") && l.contains('!')),
        "{text}"
    );
    assert_eq!(
        lines[lines.len() - 2],
        "legend: . waiting  - launched  # ready  ~ stopping  ! restart  * critical path"
    );
    assert_eq!(
        lines[lines.len() - 1],
        "critical path to web: db -> cache -> web"
    );
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.contains("<g class=\"row\" data-service=\"web\" data-critical=\"true\">"));
    assert!(svg.contains("<g class=\"row\" data-service=\"flaky\" data-critical=\"false\">"));
    assert!(svg.contains("<line class=\"restart\""));
    assert!(svg.contains("critical path to web: db → cache → web</text>"));

    let (code, _, err) = braid(&["log", "flaky", "--demo"], &ev);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "braid log: flaky's output goes to the demo's terminal\n"
    );
    drop(demo);
}

#[test]
fn a_runit_session_with_a_missing_dependency() {
    let t = TempDir::new("irunit");
    let ev = t.0.join("events");
    let sv = t.0.join("service");
    let run = "#!/bin/sh\nexec sleep 1000\n";
    write(&sv.join("db/run"), run, 0o755);
    write(
        &sv.join("cache/run"),
        "#!/bin/sh\necho hello from cache\nexec sleep 1000\n",
        0o755,
    );
    write(&sv.join("cache/dependencies"), "db\n", 0o644);
    write(
        &sv.join("cache/log/run"),
        "#!/bin/sh\nexec svlogd ./main\n",
        0o755,
    );
    std::fs::create_dir_all(sv.join("cache/log/main")).unwrap();
    write(&sv.join("web/run"), run, 0o755);
    write(&sv.join("web/dependencies"), "cache\n", 0o644);
    write(&sv.join("orphan/run"), run, 0o755);
    write(&sv.join("orphan/dependencies"), "missing\n", 0o644);
    let path = path_with(&t.0, &["svlogd"]);
    let dir = sv.to_str().unwrap();
    let _sup = Supervisor::start("runsvdir", &[dir], &ev, &path);

    let v = status_when(&["-d", dir], &ev, "web and orphan up", |v| {
        v["services"].as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s["name"] == "web" && s["state"] == "started")
                && a.iter()
                    .any(|s| s["name"] == "orphan" && s["state"] == "starting")
        })
    });
    assert_eq!(v["sources"], serde_json::json!([format!("runit {dir}")]));
    let web = service(&v, "web");
    assert_eq!(web["face"], "runit");
    assert_eq!(web["ready"], true);
    let pid_file = std::fs::read_to_string(sv.join("web/supervise/pid")).unwrap();
    assert_eq!(web["pid"].as_i64().unwrap().to_string(), pid_file.trim());
    assert_eq!(web["restarts"], 0);
    assert_eq!(web["source"], format!("{dir}/web"));
    let orphan = service(&v, "orphan");
    assert_eq!(orphan["target"], "started");
    assert_eq!(orphan["ready"], false);
    assert!(orphan["pid"].is_null());
    assert!(orphan["uptime"].is_null());

    let (code, out, err) = braid(&["why", "orphan", "-d", dir], &ev);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "orphan is starting: waiting for missing.\n  needs missing (hard), which is not started:\n    missing does not exist\n"
    );

    let (_, graph, _) = braid(&["graph", "-d", dir], &ev);
    assert!(
        graph.contains("orphan (runit, starting)\n  hard        -> missing (missing)\n"),
        "{graph}"
    );
    assert!(graph.contains("cache/log (runit, started)\n  log         -> cache (started)\n"));

    let (code, text, err) = braid(&["timeline", "-d", dir, "--to", "web"], &ev);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.ends_with("critical path to web: db -> cache -> web\n"),
        "{text}"
    );

    // The logger's svlogd directory, once svlogd has written the line.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, out, err) = braid(&["log", "cache", "-d", dir], &ev);
        if code == 0 && out == "hello from cache\n" {
            break;
        }
        assert!(Instant::now() < deadline, "log: {code} {out:?} {err}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_dinit_session_whose_service_hits_its_restart_limit() {
    let t = TempDir::new("idinit");
    let ev = t.0.join("events");
    let d = t.0.join("dinit.d");
    write(
        &d.join("db"),
        "type = process\ncommand = /bin/sleep 1000\n",
        0o644,
    );
    write(
        &d.join("app"),
        "type = process\ncommand = /bin/sleep 1000\ndepends-on = db\nbefore = login.target\n",
        0o644,
    );
    write(&d.join("login.target"), "type = internal\n", 0o644);
    write(
        &d.join("boot"),
        "type = internal\ndepends-on = app\nwaits-for = login.target\n",
        0o644,
    );
    write(
        &d.join("bad"),
        "type = process\ncommand = /bin/sh -c \"echo boom; exit 2\"\nlog-type = buffer\nrestart = on-failure\nrestart-delay = 0.1\n",
        0o644,
    );
    write(
        &d.join("needsbad"),
        "type = process\ncommand = /bin/sleep 1000\ndepends-on = bad\n",
        0o644,
    );
    let socket: PathBuf = t.0.join("sock");
    let sock = socket.to_str().unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    let _sup = Supervisor::start(
        "dinit",
        &["-d", d.to_str().unwrap(), "-p", sock],
        &ev,
        &path,
    );
    status_when(&["-p", sock], &ev, "boot started", |v| {
        v["services"].as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s["name"] == "boot" && s["state"] == "started")
        })
    });
    let (code, _, err) = braid(&["dinitctl", "-p", sock, "start", "needsbad"], &ev);
    assert!(code == 0 || code == 1, "{err}");
    let v = status_when(&["-p", sock], &ev, "bad stopped at its limit", |v| {
        v["services"].as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s["name"] == "bad" && s["state"] == "stopped" && s["restarts"] == 3)
                && a.iter()
                    .any(|s| s["name"] == "needsbad" && s["state"] == "stopped")
        })
    });
    let bad = service(&v, "bad");
    assert_eq!(bad["face"], "dinit");
    assert_eq!(bad["last_exit"], serde_json::json!({"code": 2}));
    assert_eq!(bad["stop_reason"], "terminated");
    assert_eq!(bad["source"], format!("{}/bad", d.display()));
    let app = service(&v, "app");
    assert_eq!(app["ready"], true);
    assert!(app["pid"].as_i64().is_some());

    let (code, out, err) = braid(&["why", "needsbad", "-p", sock], &ev);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "needsbad is stopped: a dependency failed or stopped, 0 restarts.",
            "  last exit: killed by SIGTERM",
            "  needs bad (hard), which is not started:",
            "    bad is stopped: its process exited after it had started, 3 restarts.",
            "      last exit: exited with code 2",
            "      restart limit hit: at most 3 restarts within 10 s (restart-limit-count / restart-limit-interval)",
        ],
        "{out}"
    );
    assert_eq!(lines[6], "      last log lines (the daemon's log buffer):");
    assert_eq!(lines.last(), Some(&"        boom"));

    let (code, log, _) = braid(&["log", "bad", "-p", sock, "-n", "1"], &ev);
    assert_eq!(code, 0);
    assert_eq!(log, "boom\n");

    let (_, graph, _) = braid(&["graph", "-p", sock], &ev);
    assert!(graph.contains(
        "login.target (dinit, started)\n  after       -> app (started) [before = login.target in app]\n"
    ), "{graph}");
    let (code, text, err) = braid(&["timeline", "-p", sock], &ev);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.ends_with("critical path to login.target: db -> app -> login.target\n"),
        "{text}"
    );
}
