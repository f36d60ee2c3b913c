//! Processes braid must not lose: the process record and `reclaim` (what a
//! killed braid left running is stopped by the next one), and the sweep of
//! a stopped service's process group.

mod runtime_support;

use std::path::Path;
use std::time::{Duration, Instant};

use braid_core::engine::{Command, Engine, ServiceId, State};
use braid_core::runtime::{leftovers, Runtime};
use braid_core::spec::ServiceSpec;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use runtime_support::*;

const LIMIT: Duration = Duration::from_secs(20);

fn runtime(specs: Vec<ServiceSpec>) -> (Runtime, Vec<ServiceId>) {
    let mut engine = Engine::new();
    let ids = specs
        .into_iter()
        .map(|s| engine.load(s).expect("load"))
        .collect();
    let mut rt = Runtime::new(engine).expect("runtime");
    rt.set_log_sink(|_, line| eprintln!("log: {}", line.text));
    (rt, ids)
}

/// A shell that leaves a background child in its process group, and reports
/// that child's pid in `file`.
fn forking(name: &str, file: &Path) -> ServiceSpec {
    let script = format!("sleep 1000 & echo $! > {}; exec sleep 1000", file.display());
    ServiceSpec::process(name, ["sh", "-c", &script])
}

fn read_pid(file: &Path) -> Pid {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Ok(t) = std::fs::read_to_string(file) {
            if let Ok(p) = t.trim().parse() {
                return Pid::from_raw(p);
            }
        }
        assert!(Instant::now() < deadline, "no pid in {}", file.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` is gone or a zombie.
fn dead(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

fn reap_all() {
    while let Ok(s) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
}

#[test]
fn a_killed_runtimes_processes_are_stopped_by_the_next() {
    let _serial = serial();
    let dir = Scratch::new("leftovers");
    let record = dir.path("processes");
    let bg_file = dir.path("bg");
    let (mut rt, ids) = runtime(vec![
        forking("forks", &bg_file),
        ServiceSpec::process("plain", ["sleep", "1000"]),
    ]);
    rt.record_processes(record.clone());
    for &id in &ids {
        rt.command(id, Command::Start { pin: false })
            .expect("start");
    }
    let ok = rt
        .run_until(LIMIT, |rt| {
            ids.iter()
                .all(|&id| rt.engine().status(id).state == State::Started)
        })
        .expect("loop");
    assert!(ok, "both started");
    // One more turn writes the record (it is written before each sleep).
    rt.turn(Some(Duration::from_millis(1))).expect("turn");
    let main: Vec<Pid> = ids
        .iter()
        .map(|&id| Pid::from_raw(rt.engine().status(id).pid.expect("pid")))
        .collect();
    let guards: Vec<KillOnDrop> = main.iter().map(|&p| KillOnDrop(p)).collect();
    let bg = read_pid(&bg_file);
    let text = std::fs::read_to_string(&record).expect("record written");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains(" forks\n") && text.contains(" plain\n"),
        "{text}"
    );

    // "Kill" the runtime: its processes stay, as after SIGKILL.
    std::mem::forget(rt);

    let found = leftovers::reclaim(&record).expect("reclaim");
    let mut names: Vec<(&str, usize, bool)> = found
        .iter()
        .map(|l| (l.service.as_str(), l.processes, l.killed))
        .collect();
    names.sort();
    assert_eq!(names, [("forks", 2, false), ("plain", 1, false)]);
    for pid in main.iter().chain([&bg]) {
        assert!(dead(*pid), "process {pid} was stopped");
    }
    assert!(!record.exists(), "the record is removed once used");
    assert_eq!(
        leftovers::reclaim(&record).expect("reclaim"),
        [],
        "nothing is left"
    );
    drop(guards);
    reap_all();
}

#[test]
fn a_reused_pid_is_not_mistaken_for_a_leftover() {
    let _serial = serial();
    let dir = Scratch::new("leftovers-reused");
    let record = dir.path("processes");
    let mut other = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .expect("spawn");
    // Its pid, with a start time that is not its own.
    std::fs::write(&record, format!("{} 1 15 1000 old\n", other.id())).unwrap();
    assert_eq!(leftovers::reclaim(&record).expect("reclaim"), []);
    assert_eq!(other.try_wait().expect("try_wait"), None, "left alone");
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn stopping_a_service_stops_its_background_children() {
    let _serial = serial();
    let dir = Scratch::new("sweep");
    let bg_file = dir.path("bg");
    let mut spec = forking("forks", &bg_file);
    // As runsv does: the stop signal goes to the main process only.
    spec.flags.signal_process_only = true;
    spec.stop_timeout = Some(Duration::from_millis(300));
    // The background child ignores SIGTERM, so only SIGKILL ends it.
    spec.start = braid_core::spec::CommandLine::new([
        "sh".to_string(),
        "-c".to_string(),
        format!(
            "sh -c 'trap \"\" TERM; while :; do sleep 1; done' & echo $! > {}; exec sleep 1000",
            bg_file.display()
        ),
    ]);
    let (mut rt, ids) = runtime(vec![spec]);
    let id = ids[0];
    rt.command(id, Command::Start { pin: false })
        .expect("start");
    assert!(rt
        .run_until(LIMIT, |rt| rt.engine().status(id).state == State::Started)
        .expect("loop"));
    let bg = read_pid(&bg_file);
    let _guard = KillOnDrop(bg);
    rt.command(
        id,
        Command::Stop {
            pin: false,
            gentle: false,
        },
    )
    .expect("stop");
    assert!(rt
        .run_until(LIMIT, |rt| rt.engine().status(id).state == State::Stopped)
        .expect("loop"));
    assert!(!dead(bg), "still there until the stop timeout");
    assert_eq!(rt.sweep_count(), 1);
    assert!(rt
        .run_until(LIMIT, |rt| rt.sweep_count() == 0)
        .expect("loop"));
    let deadline = Instant::now() + LIMIT;
    while !dead(bg) {
        assert!(Instant::now() < deadline, "background child {bg} killed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = kill(bg, Signal::SIGKILL);
    drop(rt);
    reap_all();
}

#[test]
fn the_record_stays_as_long_as_what_runs_however_often_processes_change() {
    let _serial = serial();
    let dir = Scratch::new("leftovers-churn");
    let record = dir.path("processes");
    let (mut rt, ids) = runtime(vec![
        ServiceSpec::process("plain", ["sleep", "1000"]),
        ServiceSpec::process("short", ["sleep", "1000"]),
    ]);
    let (plain, short) = (ids[0], ids[1]);
    rt.record_processes(record.clone());
    rt.command(plain, Command::Start { pin: false })
        .expect("start");
    let mut longest = 0;
    // Each cycle appends a start and an exit line: far more than the
    // record keeps before it is rewritten with the live processes.
    for _ in 0..60 {
        rt.command(short, Command::Start { pin: false })
            .expect("start");
        assert!(rt
            .run_until(LIMIT, |rt| rt.engine().status(short).state
                == State::Started)
            .expect("loop"));
        rt.command(
            short,
            Command::Stop {
                pin: false,
                gentle: false,
            },
        )
        .expect("stop");
        assert!(rt
            .run_until(LIMIT, |rt| rt.engine().status(short).state
                == State::Stopped)
            .expect("loop"));
        rt.turn(Some(Duration::from_millis(1))).expect("turn");
        let lines = std::fs::read_to_string(&record)
            .expect("record written")
            .lines()
            .count();
        longest = longest.max(lines);
    }
    assert!(longest <= 80, "the record grew to {longest} lines");
    let pid = Pid::from_raw(rt.engine().status(plain).pid.expect("pid"));
    let _guard = KillOnDrop(pid);
    std::mem::forget(rt);

    let found = leftovers::reclaim(&record).expect("reclaim");
    let names: Vec<(&str, usize)> = found
        .iter()
        .map(|l| (l.service.as_str(), l.processes))
        .collect();
    assert_eq!(names, [("plain", 1)], "only what still ran");
    assert!(dead(pid));
    reap_all();
}
