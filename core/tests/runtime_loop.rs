//! The event loop running the engine with real processes: dependencies,
//! reaping, timers, readiness, output pipes and buffers, signals, and the
//! backends' extension points.

mod runtime_support;

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use braid_core::engine::{
    Command, Engine, LaunchFailure, LaunchStage, ServiceEvent, ServiceId, State, StopReason,
};
use braid_core::runtime::{HandlerResult, Options, Runtime};
use braid_core::spec::{DepKind, Kind, Output, Readiness, RestartMode, ServiceSpec};
use mio::Interest;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use runtime_support::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A runtime that, when dropped (also on a failed assertion), stops every
/// service and kills whatever is left.
struct TestRuntime {
    rt: Runtime,
    log: Rc<RefCell<Vec<String>>>,
}

impl std::ops::Deref for TestRuntime {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        &self.rt
    }
}

impl std::ops::DerefMut for TestRuntime {
    fn deref_mut(&mut self) -> &mut Runtime {
        &mut self.rt
    }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        self.rt.stop_all();
        let _ = self
            .rt
            .run_until(Duration::from_secs(5), |rt| rt.engine().all_stopped());
        let ids: Vec<ServiceId> = self.rt.engine().ids().collect();
        for id in ids {
            if let Some(pid) = self.rt.engine().status(id).pid {
                let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if status == nix::sys::wait::WaitStatus::StillAlive {
                break;
            }
        }
    }
}

fn runtime(specs: Vec<ServiceSpec>) -> (TestRuntime, Vec<ServiceId>) {
    runtime_with(specs, Options::default())
}

fn runtime_with(specs: Vec<ServiceSpec>, options: Options) -> (TestRuntime, Vec<ServiceId>) {
    let mut engine = Engine::new();
    let ids = specs
        .into_iter()
        .map(|s| engine.load(s).expect("load"))
        .collect();
    let mut rt = Runtime::with_options(engine, options).expect("runtime");
    let log = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&log);
    rt.set_log_sink(move |_, line| {
        eprintln!("log: {}", line.text);
        sink.borrow_mut().push(line.text.clone())
    });
    (TestRuntime { rt, log }, ids)
}

fn state(rt: &Runtime, id: ServiceId) -> State {
    rt.engine().status(id).state
}

fn wait_for(rt: &mut Runtime, what: &str, mut done: impl FnMut(&mut Runtime) -> bool) {
    let ok = rt.run_until(LIMIT, &mut done).expect("loop");
    if !ok {
        let states: Vec<String> = rt
            .engine()
            .ids()
            .map(|id| format!("{}: {:?}", rt.engine().name(id), rt.engine().status(id)))
            .collect();
        panic!("timed out waiting for {what}; {states:#?}");
    }
}

fn sleeper(name: &str) -> ServiceSpec {
    ServiceSpec::process(name, ["sleep", "100"])
}

fn start(rt: &mut Runtime, id: ServiceId) {
    rt.command(id, Command::Start { pin: false })
        .expect("start");
}

fn assert_no_children() {
    assert_eq!(
        waitpid(None, Some(WaitPidFlag::WNOHANG)),
        Err(Errno::ECHILD),
        "every child was reaped"
    );
}

#[test]
fn dependency_chain_starts_and_stops() {
    let _serial = serial();
    let (mut rt, ids) = runtime(vec![
        sleeper("a"),
        sleeper("b").depends(DepKind::Hard, "a"),
        sleeper("c").depends(DepKind::Hard, "b"),
    ]);
    start(&mut rt, ids[2]);
    wait_for(&mut rt, "a, b and c started", |rt| {
        ids.iter().all(|&id| state(rt, id) == State::Started)
    });
    let pids: Vec<i32> = ids
        .iter()
        .map(|&id| rt.engine().status(id).pid.expect("a pid"))
        .collect();
    for (&id, &pid) in ids.iter().zip(&pids) {
        assert_eq!(rt.pid(id, braid_core::engine::Role::Main), Some(pid));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert_eq!(cmdline, b"sleep\x00100\x00");
    }

    rt.stop_all();
    wait_for(&mut rt, "all stopped", |rt| rt.engine().all_stopped());
    assert_eq!(rt.child_count(), 0);
    for &id in &ids {
        assert_eq!(state(&rt, id), State::Stopped);
    }
    assert_no_children();
}

#[test]
fn many_exits_are_all_reaped() {
    let _serial = serial();
    let specs = (0..100)
        .map(|i| {
            let mut spec = ServiceSpec::new(format!("s{i}"), Kind::Scripted);
            spec.start = braid_core::spec::CommandLine::new(["true"]);
            spec
        })
        .collect();
    let (mut rt, ids) = runtime(specs);
    for &id in &ids {
        start(&mut rt, id);
    }
    wait_for(&mut rt, "100 scripted services started", |rt| {
        ids.iter().all(|&id| state(rt, id) == State::Started)
    });
    assert_eq!(rt.stats().spawned, 100);
    assert_eq!(rt.stats().reaped, 100);
    assert_eq!(rt.child_count(), 0);
    assert_no_children();
}

#[test]
fn an_idle_loop_sleeps() {
    let _serial = serial();
    let mut spec = sleeper("idle");
    spec.start_timeout = None;
    let (mut rt, ids) = runtime(vec![spec]);
    start(&mut rt, ids[0]);
    wait_for(&mut rt, "started", |rt| state(rt, ids[0]) == State::Started);
    assert_eq!(rt.timer_count(), 0, "no timer is armed once started");
    let before = rt.stats().wakeups;
    let done = rt.run_until(Duration::from_millis(500), |_| false).unwrap();
    assert!(!done);
    let wakeups = rt.stats().wakeups - before;
    assert!(wakeups <= 2, "{wakeups} wake-ups in 500ms of idling");
}

#[test]
fn timers_fire_in_deadline_order() {
    let _serial = serial();
    // Never ready (the fd is open but nothing is written): each start times out.
    let specs = [("slow", 600), ("fast", 200), ("middle", 400)]
        .into_iter()
        .map(|(name, ms)| {
            let mut spec = sleeper(name);
            spec.readiness = Readiness::NotifyFd(5);
            spec.start_timeout = Some(Duration::from_millis(ms));
            spec.restart.mode = RestartMode::Never;
            spec
        })
        .collect();
    let (mut rt, ids) = runtime(specs);
    let failed = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&failed);
    rt.add_listener(move |rt, n| {
        if n.event == ServiceEvent::FailedStart {
            seen.borrow_mut()
                .push(rt.engine().name(n.service).to_string());
        }
    });
    for &id in &ids {
        start(&mut rt, id);
    }
    wait_for(&mut rt, "three timeouts", |rt| {
        ids.iter().all(|&id| state(rt, id) == State::Stopped)
    });
    assert_eq!(*failed.borrow(), ["fast", "middle", "slow"]);
    for &id in &ids {
        assert_eq!(rt.engine().status(id).stop_reason, StopReason::TimedOut);
    }
}

#[test]
fn readiness_pipe_reports_ready_and_lost() {
    let _serial = serial();
    let mut ready = ServiceSpec::process(
        "ready",
        ["sh", "-c", "read line <&0; echo >&5 ready; exec sleep 100"],
    );
    ready.readiness = Readiness::NotifyFd(5);
    ready.input_from = Some("feeder".into());
    let mut feeder = ServiceSpec::process("feeder", ["sh", "-c", "exec sleep 100"]);
    feeder.output = Output::Pipe;
    let mut lost = ServiceSpec::process("lost", ["sh", "-c", "exec 5>&-; exec sleep 100"]);
    lost.readiness = Readiness::NotifyFd(5);
    lost.restart.mode = RestartMode::Never;
    let mut var = ServiceSpec::process(
        "var",
        ["sh", "-c", r#"eval "echo ok >&$NOTIFY"; exec sleep 100"#],
    );
    var.readiness = Readiness::NotifyEnvVar("NOTIFY".into());
    let (mut rt, ids) = runtime(vec![ready, feeder, lost, var]);
    let [ready, feeder, lost, var] = ids[..] else {
        unreachable!()
    };

    start(&mut rt, feeder);
    start(&mut rt, ready);
    start(&mut rt, lost);
    start(&mut rt, var);
    wait_for(&mut rt, "feeder and var started, lost failed", |rt| {
        state(rt, feeder) == State::Started
            && state(rt, var) == State::Started
            && state(rt, lost) == State::Stopped
    });
    assert_eq!(rt.engine().status(lost).stop_reason, StopReason::Failed);
    // "ready" waits for a line on its stdin before it says it is ready.
    assert_eq!(state(&rt, ready), State::Starting);
    let feeder_pipe = feeder_write_end(&rt);
    nix::unistd::write(&feeder_pipe, b"go\n").unwrap();
    wait_for(&mut rt, "ready started", |rt| {
        state(rt, ready) == State::Started
    });
}

/// A copy of the write end of the feeder's output pipe, found through the
/// "ready" process's stdin (the same pipe's read end).
fn feeder_write_end(rt: &Runtime) -> OwnedFd {
    let id = rt.engine().lookup("feeder").unwrap();
    let pid = rt.engine().status(id).pid.unwrap();
    let path = format!("/proc/{pid}/fd/1");
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open the feeder's stdout")
        .into()
}

#[test]
fn piped_output_loses_no_line_across_restarts() {
    let _serial = serial();
    let dir = Scratch::new("pipe");
    let counter = dir.path("counter");
    // Each run of the producer writes the next 50 numbered lines, then says
    // it is ready.
    let producer_script = format!(
        r#"n=$(cat {c} 2>/dev/null || echo 0); i=1
        while [ $i -le 50 ]; do echo line$((n * 50 + i)); i=$((i + 1)); done
        echo $((n + 1)) > {c}; echo >&5 written; exec sleep 100"#,
        c = counter.display()
    );
    let mut producer = ServiceSpec::process("producer", ["sh", "-c", &producer_script]);
    producer.output = Output::Pipe;
    producer.readiness = Readiness::NotifyFd(5);
    producer.restart.delay = Duration::from_millis(10);
    // The consumer copies its input, line by line, to its in-memory log.
    let copy = r#"while IFS= read -r l; do echo "$l"; done"#;
    let mut consumer = ServiceSpec::process("consumer", ["sh", "-c", copy]);
    consumer.input_from = Some("producer".into());
    consumer.output = Output::Buffer { size: 1 << 20 };
    let (mut rt, ids) = runtime(vec![producer, consumer]);
    let [producer, consumer] = ids[..] else {
        unreachable!()
    };
    let lines = |rt: &mut Runtime, n: usize| {
        rt.log_buffer(consumer)
            .is_some_and(|b| b.iter().filter(|&&c| c == b'\n').count() >= n)
    };

    start(&mut rt, consumer);
    start(&mut rt, producer);
    wait_for(&mut rt, "first 50 lines, producer started", |rt| {
        lines(rt, 50) && state(rt, producer) == State::Started
    });

    // The consumer goes away; the producer is killed and restarted meanwhile
    // and writes into the pipe with nobody reading.
    rt.command(
        consumer,
        Command::Stop {
            pin: false,
            gentle: false,
        },
    )
    .unwrap();
    wait_for(&mut rt, "consumer stopped", |rt| {
        state(rt, consumer) == State::Stopped
    });
    let old = rt.engine().status(producer).pid.unwrap();
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    wait_for(&mut rt, "producer's second run", |rt| {
        let status = rt.engine().status(producer);
        status.state == State::Started && status.pid != Some(old)
    });
    assert!(
        !lines(&mut rt, 51),
        "nobody read while the consumer was down"
    );

    start(&mut rt, consumer);
    wait_for(&mut rt, "all 100 lines", |rt| lines(rt, 100));
    let expected: String = (1..=100).map(|i| format!("line{i}\n")).collect();
    assert_eq!(text(rt.log_buffer(consumer).unwrap()), expected);
}

#[test]
fn a_consumer_may_start_before_its_producer_is_loaded() {
    let _serial = serial();
    let copy = r#"while IFS= read -r l; do echo "$l"; done"#;
    let mut consumer = ServiceSpec::process("consumer", ["sh", "-c", copy]);
    consumer.input_from = Some("producer".into());
    consumer.output = Output::Buffer { size: 4096 };
    let (mut rt, ids) = runtime(vec![consumer]);
    let consumer = ids[0];
    start(&mut rt, consumer);
    wait_for(&mut rt, "consumer started", |rt| {
        state(rt, consumer) == State::Started
    });
    // Loaded later, the producer writes into the pipe the consumer reads.
    let mut producer = ServiceSpec::process("producer", ["sh", "-c", "echo hello; exec sleep 100"]);
    producer.output = Output::Pipe;
    let producer = rt.engine_mut().load(producer).unwrap();
    start(&mut rt, producer);
    wait_for(&mut rt, "the line reached the consumer", |rt| {
        rt.log_buffer(consumer).is_some_and(|b| b == b"hello\n")
    });
}

#[test]
fn log_buffer_keeps_output_and_marks_restarts() {
    let _serial = serial();
    let mut spec = ServiceSpec::process("buffered", ["sh", "-c", "echo hello; exec sleep 100"]);
    spec.output = Output::Buffer { size: 64 };
    spec.restart.delay = Duration::from_millis(10);
    let options = Options {
        restart_note: Some(b"\n(note: restarted)\n".to_vec()),
        ..Options::default()
    };
    let (mut rt, ids) = runtime_with(vec![spec], options);
    let id = ids[0];
    start(&mut rt, id);
    wait_for(&mut rt, "first output, process started", |rt| {
        rt.log_buffer(id) == Some(&b"hello\n"[..]) && rt.engine().status(id).pid.is_some()
    });
    let pid = rt.engine().status(id).pid.unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    wait_for(&mut rt, "output of the restarted process", |rt| {
        rt.log_buffer(id)
            .is_some_and(|b| b.ends_with(b"restarted)\nhello\n"))
    });
    assert_eq!(
        rt.log_buffer(id).unwrap(),
        b"hello\n(note: restarted)\nhello\n"
    );
    rt.clear_log_buffer(id);
    assert_eq!(rt.log_buffer(id), Some(&b""[..]));
}

#[test]
fn exec_failure_is_a_failed_start() {
    let _serial = serial();
    let mut spec = ServiceSpec::process("missing", ["/nonexistent/daemon"]);
    spec.restart.mode = RestartMode::Never;
    let (mut rt, ids) = runtime(vec![spec]);
    start(&mut rt, ids[0]);
    wait_for(&mut rt, "failed", |rt| state(rt, ids[0]) == State::Stopped);
    let status = rt.engine().status(ids[0]);
    assert_eq!(status.stop_reason, StopReason::ExecFailed);
    assert_eq!(
        status.exec_failure,
        Some(LaunchFailure {
            stage: LaunchStage::DoExec,
            errno: Errno::ENOENT
        })
    );
    assert_eq!(rt.stats().spawn_failures, 1);
    assert!(
        rt.log.borrow().iter().any(
            |l| l == "missing: execution failed - executing command: No such file or directory"
        ),
        "{:?}",
        rt.log.borrow()
    );
}

#[test]
fn background_daemon_is_adopted_and_stopped() {
    let _serial = serial();
    let dir = Scratch::new("bgproc");
    let pid_file = dir.path("pid");
    let mut spec = ServiceSpec::new(
        "daemon",
        Kind::BackgroundProcess {
            pid_file: pid_file.clone(),
        },
    );
    let script = format!("sleep 100 & echo $! > {}", pid_file.display());
    spec.start = braid_core::spec::CommandLine::new(["sh", "-c", &script]);
    let (mut rt, ids) = runtime(vec![spec]);
    start(&mut rt, ids[0]);
    wait_for(&mut rt, "daemon started", |rt| {
        state(rt, ids[0]) == State::Started
    });
    let pid: i32 = read_file(&pid_file).trim().parse().unwrap();
    assert_eq!(rt.engine().status(ids[0]).pid, Some(pid));
    let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = ppid
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ppid,
        std::process::id() as i32,
        "the daemon was reparented to braid"
    );

    rt.command(
        ids[0],
        Command::Stop {
            pin: false,
            gentle: false,
        },
    )
    .unwrap();
    wait_for(&mut rt, "daemon stopped", |rt| {
        state(rt, ids[0]) == State::Stopped
    });
    assert_eq!(rt.child_count(), 0);
    assert_no_children();
}

#[test]
fn sigterm_stops_everything_and_run_returns() {
    let _serial = serial();
    let (mut rt, ids) = runtime(vec![sleeper("one"), sleeper("two")]);
    for &id in &ids {
        start(&mut rt, id);
    }
    wait_for(&mut rt, "started", |rt| {
        ids.iter().all(|&id| state(rt, id) == State::Started)
    });
    kill(Pid::this(), Signal::SIGTERM).unwrap();
    assert_eq!(rt.run().unwrap(), 0);
    assert!(rt.engine().all_stopped());
    assert_no_children();
}

#[test]
fn an_fd_source_can_drive_the_engine() {
    let _serial = serial();
    let (mut rt, ids) = runtime(vec![sleeper("wanted")]);
    let (read, write) = pipe();
    nix::fcntl::fcntl(
        read.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let raw = read.as_raw_fd();
    // A tiny control channel: each line names a service to start.
    let mut pending = Vec::new();
    rt.register_fd(raw, Interest::READABLE, move |rt: &mut Runtime, _, _| {
        let _owned = &read;
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = nix::unistd::read(raw, &mut buf) {
            pending.extend_from_slice(&buf[..n]);
        }
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let name = String::from_utf8_lossy(&line[..end]).into_owned();
            if let Some(id) = rt.engine().lookup(&name) {
                let _ = rt.command(id, Command::Start { pin: false });
            }
        }
        HandlerResult::Keep
    })
    .unwrap();
    nix::unistd::write(&write, b"wan").unwrap();
    rt.run_until(Duration::from_millis(100), |_| false).unwrap();
    assert_eq!(state(&rt, ids[0]), State::Stopped);
    nix::unistd::write(&write, b"ted\n").unwrap();
    wait_for(&mut rt, "started by the fd source", |rt| {
        state(rt, ids[0]) == State::Started
    });
}

#[test]
fn activation_socket_is_passed_and_closed_on_stop() {
    let _serial = serial();
    let dir = Scratch::new("socket");
    let socket = |path: std::path::PathBuf| braid_core::spec::SocketSpec {
        path,
        mode: 0o600,
        uid: None,
        gid: None,
    };
    let mut good = sleeper("listener");
    good.socket = Some(Box::new(socket(dir.path("ok.sock"))));
    let mut bad = sleeper("blocked");
    bad.socket = Some(Box::new(socket(dir.path("regular-file"))));
    bad.restart.mode = RestartMode::Never;
    std::fs::write(dir.path("regular-file"), "not a socket").unwrap();
    let (mut rt, ids) = runtime(vec![good, bad]);
    let [good, bad] = ids[..] else { unreachable!() };

    start(&mut rt, good);
    start(&mut rt, bad);
    wait_for(&mut rt, "listener started, blocked failed", |rt| {
        state(rt, good) == State::Started && state(rt, bad) == State::Stopped
    });
    assert_eq!(
        rt.engine().status(bad).exec_failure,
        Some(LaunchFailure {
            stage: LaunchStage::SetupActivationSocket,
            errno: Errno::EEXIST
        })
    );
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata(dir.path("ok.sock")).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let pid = rt.engine().status(good).pid.unwrap();
    let fd3 = std::fs::read_link(format!("/proc/{pid}/fd/3")).unwrap();
    assert!(fd3.to_string_lossy().starts_with("socket:"), "{fd3:?}");
    std::os::unix::net::UnixStream::connect(dir.path("ok.sock")).expect("connect while up");

    rt.command(
        good,
        Command::Stop {
            pin: false,
            gentle: false,
        },
    )
    .unwrap();
    wait_for(&mut rt, "listener stopped", |rt| {
        state(rt, good) == State::Stopped
    });
    let refused = std::os::unix::net::UnixStream::connect(dir.path("ok.sock"));
    assert!(
        refused.is_err(),
        "the socket is closed once the service is down"
    );
}

#[test]
fn signal_handlers_are_called_in_the_loop() {
    let _serial = serial();
    let (mut rt, _) = runtime(vec![]);
    let got = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&got);
    rt.on_signal(Signal::SIGUSR1, move |_, sig| seen.borrow_mut().push(sig))
        .unwrap();
    kill(Pid::this(), Signal::SIGUSR1).unwrap();
    wait_for(&mut rt, "SIGUSR1 handled", |_| !got.borrow().is_empty());
    assert_eq!(*got.borrow(), [Signal::SIGUSR1]);
}

#[test]
fn the_loader_supplies_a_chained_service() {
    let _serial = serial();
    let mut first = ServiceSpec::process("first", ["true"]);
    first.restart.mode = RestartMode::Never;
    first.chain_to = Some("second".into());
    let (mut rt, ids) = runtime(vec![first]);
    let asked = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&asked);
    rt.set_loader(move |rt, name| {
        seen.borrow_mut().push(name.to_string());
        rt.engine_mut()
            .load(sleeper(name))
            .map_err(|e| format!("{e:?}"))
    });
    start(&mut rt, ids[0]);
    wait_for(&mut rt, "second started", |rt| {
        rt.engine()
            .lookup("second")
            .is_some_and(|id| state(rt, id) == State::Started)
    });
    assert_eq!(*asked.borrow(), ["second"]);
    assert_eq!(state(&rt, ids[0]), State::Stopped);
}

#[test]
fn a_runtime_unblocks_the_signals_it_catches() {
    // A blocked mask survives exec: dinit's test runner waits on a
    // signalfd, so the daemon it starts begins with SIGCHLD blocked and
    // would never see its children exit.
    let mask = std::thread::spawn(|| {
        let mut blocked = nix::sys::signal::SigSet::empty();
        blocked.add(Signal::SIGCHLD);
        blocked.add(Signal::SIGTERM);
        blocked.thread_block().expect("block");
        let _rt = Runtime::new(Engine::new()).expect("runtime");
        nix::sys::signal::SigSet::thread_get_mask().expect("mask")
    })
    .join()
    .expect("thread");
    assert!(!mask.contains(Signal::SIGCHLD));
    assert!(!mask.contains(Signal::SIGTERM));
}
