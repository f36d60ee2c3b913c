//! One scenario per rule of the engine, run in the simulated world.

use std::time::Duration;

use braid_core::engine::sim::{Behaviour, World};
use braid_core::engine::{
    Command, CommandError, CommandOutcome, ExitStatus, LoadError, Role, ServiceEvent, State,
    StopReason,
};
use braid_core::spec::{CommandLine, DepKind, Kind, Readiness, RestartMode, ServiceSpec};
use nix::sys::signal::Signal;

const START: Command = Command::Start { pin: false };
const STOP: Command = Command::Stop {
    pin: false,
    gentle: false,
};

fn proc(name: &str) -> ServiceSpec {
    ServiceSpec::process(name, ["sleep", "1000"])
}

fn internal(name: &str) -> ServiceSpec {
    ServiceSpec::new(name, Kind::Internal)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Names in the order they reached `event`.
fn order(w: &World, event: ServiceEvent) -> Vec<String> {
    w.seen
        .iter()
        .filter(|s| s.event == event)
        .map(|s| s.service.clone())
        .collect()
}

fn chain_world() -> World {
    let mut w = World::new();
    w.load(proc("a"));
    w.load(proc("b").depends(DepKind::Hard, "a"));
    w.load(proc("c").depends(DepKind::Hard, "b"));
    w
}

#[test]
fn hard_dependencies_start_first_and_stop_last() {
    let mut w = chain_world();
    assert_eq!(w.cmd("c", START), Ok(CommandOutcome::Accepted));
    assert_eq!(order(&w, ServiceEvent::Started), ["a", "b", "c"]);
    w.cmd("c", STOP).unwrap();
    w.settle(secs(60.0));
    assert_eq!(order(&w, ServiceEvent::Stopped), ["c", "b", "a"]);
    assert_eq!(w.running_count(), 0);
}

#[test]
fn explicitly_started_dependency_stays_when_dependent_stops() {
    let mut w = chain_world();
    w.cmd("b", START).unwrap();
    w.cmd("c", START).unwrap();
    w.cmd("c", STOP).unwrap();
    w.settle(secs(60.0));
    assert_eq!(w.state("c"), State::Stopped);
    assert_eq!(w.state("b"), State::Started);
    assert_eq!(w.state("a"), State::Started);
    assert!(w.engine.status(w.id("b")).explicit);
    assert!(!w.engine.status(w.id("a")).explicit);
}

#[test]
fn release_stops_only_when_nothing_else_needs_it() {
    let mut w = chain_world();
    w.cmd("b", START).unwrap();
    w.cmd("c", START).unwrap();
    w.cmd("b", Command::Release { pin: false }).unwrap();
    w.settle(secs(60.0));
    assert_eq!(w.state("b"), State::Started, "c still needs b");
    w.cmd("c", Command::Release { pin: false }).unwrap();
    w.settle(secs(60.0));
    assert_eq!(w.state("b"), State::Stopped);
    assert_eq!(w.state("a"), State::Stopped);
}

#[test]
fn stopping_a_dependency_stops_its_hard_dependents_for_good() {
    let mut w = chain_world();
    w.cmd("c", START).unwrap();
    w.cmd("a", STOP).unwrap();
    w.settle(secs(60.0));
    for n in ["a", "b", "c"] {
        assert_eq!(w.state(n), State::Stopped, "{n}");
    }
    assert_eq!(
        w.engine.status(w.id("c")).stop_reason,
        StopReason::DepFailed
    );
    assert_eq!(order(&w, ServiceEvent::Stopped), ["c", "b", "a"]);
}

#[test]
fn gentle_stop_is_refused_while_dependents_hold_the_service() {
    let mut w = chain_world();
    w.cmd("c", START).unwrap();
    let b = w.id("b");
    let r = w.cmd(
        "a",
        Command::Stop {
            pin: false,
            gentle: true,
        },
    );
    assert_eq!(r, Err(CommandError::HasDependents(vec![b])));
    assert_eq!(w.state("a"), State::Started);
}

#[test]
fn hard_dependency_failure_fails_its_dependents() {
    let mut w = chain_world();
    w.behave(
        "a",
        Behaviour {
            exec_fails: true,
            ..Default::default()
        },
    );
    w.cmd("c", START).unwrap();
    assert_eq!(
        w.events_of("a"),
        [ServiceEvent::FailedStart, ServiceEvent::Stopped]
    );
    assert_eq!(
        w.engine.status(w.id("a")).stop_reason,
        StopReason::ExecFailed
    );
    for n in ["b", "c"] {
        assert_eq!(w.state(n), State::Stopped);
        assert_eq!(w.engine.status(w.id(n)).stop_reason, StopReason::DepFailed);
        assert!(w.events_of(n).contains(&ServiceEvent::FailedStart));
    }
    assert!(w
        .logs()
        .iter()
        .any(|l| l.starts_with("a: execution failed - executing command")));
    assert_eq!(w.running_count(), 0);
}

#[test]
fn waits_for_dependency_failure_is_ignored() {
    let mut w = World::new();
    w.load(proc("dep"));
    w.load(proc("top").depends(DepKind::WaitsFor, "dep"));
    w.behave(
        "dep",
        Behaviour {
            exec_fails: true,
            ..Default::default()
        },
    );
    w.cmd("top", START).unwrap();
    assert_eq!(w.state("top"), State::Started);
    assert_eq!(w.state("dep"), State::Stopped);
}

#[test]
fn waits_for_waits_until_the_dependency_is_ready() {
    let mut w = World::new();
    let mut dep = proc("dep");
    dep.readiness = Readiness::NotifyFd(3);
    w.load(dep);
    w.load(proc("top").depends(DepKind::WaitsFor, "dep"));
    w.behave(
        "dep",
        Behaviour {
            ready_after: Some(secs(2.0)),
            ..Default::default()
        },
    );
    w.cmd("top", START).unwrap();
    assert_eq!(w.state("top"), State::Starting);
    w.advance(secs(2.0));
    assert_eq!(order(&w, ServiceEvent::Started), ["dep", "top"]);
}

#[test]
fn soft_dependency_is_started_but_not_waited_for() {
    let mut w = World::new();
    let mut dep = proc("dep");
    dep.readiness = Readiness::NotifyFd(3);
    w.load(dep);
    w.load(proc("top").depends(DepKind::Soft, "dep"));
    w.cmd("top", START).unwrap();
    assert_eq!(w.state("top"), State::Started);
    assert_eq!(w.state("dep"), State::Starting);
}

#[test]
fn milestone_is_hard_only_until_it_has_started() {
    let mut w = World::new();
    w.load(proc("ms"));
    w.load(proc("top").depends(DepKind::Milestone, "ms"));
    w.cmd("top", START).unwrap();
    assert_eq!(w.state("top"), State::Started);
    w.cmd("ms", STOP).unwrap();
    w.settle(secs(60.0));
    assert_eq!(w.state("ms"), State::Stopped);
    assert_eq!(
        w.state("top"),
        State::Started,
        "a started milestone no longer matters"
    );

    let mut w = World::new();
    w.load(proc("ms"));
    w.load(proc("top").depends(DepKind::Milestone, "ms"));
    w.behave(
        "ms",
        Behaviour {
            exec_fails: true,
            ..Default::default()
        },
    );
    w.cmd("top", START).unwrap();
    assert_eq!(w.state("top"), State::Stopped);
    assert_eq!(
        w.engine.status(w.id("top")).stop_reason,
        StopReason::DepFailed
    );
}

#[test]
fn after_orders_without_starting() {
    let mut w = World::new();
    let mut slow = proc("slow");
    slow.readiness = Readiness::NotifyFd(3);
    w.load(slow);
    w.load(proc("late").depends(DepKind::After, "slow"));
    w.behave(
        "slow",
        Behaviour {
            ready_after: Some(secs(1.0)),
            ..Default::default()
        },
    );
    // Alone, `late` does not start `slow`.
    w.cmd("late", START).unwrap();
    assert_eq!(w.state("late"), State::Started);
    assert_eq!(w.state("slow"), State::Stopped);
    w.cmd("late", STOP).unwrap();
    w.settle(secs(10.0));
    // Both starting: `late` waits for `slow`.
    w.seen.clear();
    w.cmd("slow", START).unwrap();
    w.cmd("late", START).unwrap();
    assert_eq!(w.state("late"), State::Starting);
    w.advance(secs(1.0));
    assert_eq!(order(&w, ServiceEvent::Started), ["slow", "late"]);
}

#[test]
fn before_is_after_seen_from_the_other_side() {
    let mut w = World::new();
    let mut first = proc("first").depends(DepKind::Before, "second");
    first.readiness = Readiness::NotifyFd(3);
    w.load(first);
    w.load(proc("second"));
    w.behave(
        "first",
        Behaviour {
            ready_after: Some(secs(1.0)),
            ..Default::default()
        },
    );
    w.cmd("first", START).unwrap();
    w.cmd("second", START).unwrap();
    assert_eq!(w.state("second"), State::Starting);
    w.advance(secs(1.0));
    assert_eq!(order(&w, ServiceEvent::Started), ["first", "second"]);
}

#[test]
fn cycles_are_refused_with_their_path() {
    let mut w = World::new();
    w.load(internal("a").depends(DepKind::Hard, "b"));
    w.load(internal("b").depends(DepKind::WaitsFor, "c"));
    let err = w
        .engine
        .load(internal("c").depends(DepKind::Hard, "a"))
        .unwrap_err();
    assert_eq!(
        err,
        LoadError::Cycle(vec!["c".into(), "a".into(), "b".into(), "c".into()])
    );
    assert!(
        w.engine.lookup("c").is_none(),
        "the service that closed the cycle is not loaded"
    );
    // Through ordering links too.
    let err = w
        .engine
        .load(internal("c").depends(DepKind::After, "a"))
        .unwrap_err();
    assert_eq!(
        err,
        LoadError::Cycle(vec!["c".into(), "a".into(), "b".into(), "c".into()])
    );
    let err = w
        .engine
        .load(
            internal("d")
                .depends(DepKind::Hard, "a")
                .depends(DepKind::Before, "a"),
        )
        .unwrap_err();
    assert_eq!(
        err,
        LoadError::Cycle(vec!["d".into(), "a".into(), "d".into()])
    );
}

#[test]
fn chain_to_starts_the_next_service_after_a_clean_exit() {
    let mut w = World::new();
    let mut first = proc("first");
    first.chain_to = Some("second".into());
    first.restart.mode = RestartMode::Never;
    w.load(first);
    w.load(proc("second"));
    w.behave(
        "first",
        Behaviour {
            exits_after: Some((secs(1.0), ExitStatus::Exited(0))),
            ..Default::default()
        },
    );
    w.cmd("first", START).unwrap();
    w.advance(secs(1.0));
    assert_eq!(w.state("first"), State::Stopped);
    assert_eq!(w.state("second"), State::Started);
}

#[test]
fn chain_to_does_not_follow_a_failure() {
    let mut w = World::new();
    let mut first = proc("first");
    first.chain_to = Some("second".into());
    first.restart.mode = RestartMode::Never;
    w.load(first);
    w.load(proc("second"));
    w.behave(
        "first",
        Behaviour {
            exits_after: Some((secs(1.0), ExitStatus::Exited(3))),
            ..Default::default()
        },
    );
    w.cmd("first", START).unwrap();
    w.advance(secs(1.0));
    assert_eq!(w.state("second"), State::Stopped);
    assert!(w
        .logs()
        .contains(&"Service first process terminated with exit code 3".to_string()));
}

#[test]
fn pins() {
    let mut w = chain_world();
    w.cmd("c", Command::Start { pin: true }).unwrap();
    assert_eq!(w.cmd("c", STOP), Err(CommandError::PinnedStarted));
    // Releasing a pinned-started service leaves it running.
    w.cmd("c", Command::Release { pin: false }).unwrap();
    assert_eq!(w.state("c"), State::Started);
    w.cmd("c", Command::Unpin).unwrap();
    w.settle(secs(60.0));
    assert_eq!(
        w.state("c"),
        State::Stopped,
        "unpinned and unrequired: stops"
    );

    let mut w = chain_world();
    w.cmd(
        "a",
        Command::Stop {
            pin: true,
            gentle: false,
        },
    )
    .unwrap();
    assert_eq!(w.cmd("a", START), Err(CommandError::PinnedStopped));
    w.cmd("c", START).unwrap();
    assert_eq!(
        w.state("c"),
        State::Stopped,
        "a dependency pinned stopped fails the start"
    );
    assert_eq!(
        w.engine.status(w.id("c")).stop_reason,
        StopReason::DepFailed
    );
    w.cmd("a", Command::Unpin).unwrap();
    w.cmd("c", START).unwrap();
    assert_eq!(w.state("c"), State::Started);
}

#[test]
fn start_failure_removes_a_start_pin() {
    let mut w = World::new();
    w.load(proc("x"));
    w.behave(
        "x",
        Behaviour {
            exec_fails: true,
            ..Default::default()
        },
    );
    w.cmd("x", Command::Start { pin: true }).unwrap();
    assert!(!w.engine.status(w.id("x")).pinned_started);
}

#[test]
fn restart_after_termination_waits_the_delay() {
    let mut w = World::new();
    let mut s = proc("s");
    s.restart.delay = secs(0.5);
    s.restart.limit_count = 0;
    w.load(s);
    w.cmd("s", START).unwrap();
    let first = w.pid("s").unwrap();
    w.advance(secs(0.1));
    w.exit("s", ExitStatus::Exited(1));
    assert_eq!(
        w.state("s"),
        State::Starting,
        "waiting for the restart delay"
    );
    assert_eq!(w.pid("s"), None);
    w.advance(secs(0.39));
    assert_eq!(w.pid("s"), None);
    w.advance(secs(0.02));
    assert_eq!(w.state("s"), State::Started);
    assert_ne!(w.pid("s"), Some(first));
    assert_eq!(w.engine.status(w.id("s")).restarts, 1);
}

#[test]
fn restart_limit_stops_a_crash_loop() {
    let mut w = World::new();
    let mut s = proc("s");
    s.restart.delay = secs(0.2);
    w.load(s); // default limit: 3 in 10 s
    w.behave(
        "s",
        Behaviour {
            exits_after: Some((secs(0.1), ExitStatus::Exited(1))),
            ..Default::default()
        },
    );
    w.cmd("s", START).unwrap();
    assert!(w.settle(secs(30.0)));
    assert_eq!(w.state("s"), State::Stopped);
    assert_eq!(w.engine.status(w.id("s")).restarts, 3);
    assert!(w
        .logs()
        .contains(&"Service s restarting too quickly; stopping.".to_string()));
}

#[test]
fn restart_on_failure_ignores_clean_exits_and_term() {
    for (status, restarts) in [
        (ExitStatus::Exited(0), false),
        (ExitStatus::Signaled(Signal::SIGTERM), false),
        (ExitStatus::Exited(2), true),
        (ExitStatus::Signaled(Signal::SIGSEGV), true),
    ] {
        let mut w = World::new();
        let mut s = proc("s");
        s.restart.mode = RestartMode::OnFailure;
        w.load(s);
        w.cmd("s", START).unwrap();
        w.exit("s", status);
        w.settle(secs(5.0));
        let up = w.state("s") == State::Started;
        assert_eq!(up, restarts, "{status:?}");
    }
}

#[test]
fn terminated_dependency_restarts_its_dependents_by_their_own_policy() {
    let mut w = World::new();
    w.load(proc("db"));
    w.load(proc("app").depends(DepKind::Hard, "db"));
    let mut once = proc("job").depends(DepKind::Hard, "db");
    once.restart.mode = RestartMode::Never;
    w.load(once);
    w.cmd("app", START).unwrap();
    w.cmd("job", START).unwrap();
    let app_pid = w.pid("app");
    w.exit("db", ExitStatus::Exited(1));
    w.settle(secs(5.0));
    assert_eq!(w.state("db"), State::Started);
    assert_eq!(w.state("app"), State::Started);
    assert_ne!(w.pid("app"), app_pid, "app was restarted");
    assert_eq!(
        w.events_of("app"),
        [
            ServiceEvent::Started,
            ServiceEvent::Stopped,
            ServiceEvent::Started
        ]
    );
    assert_eq!(w.state("job"), State::Stopped, "restart = no: stays down");
    assert_eq!(
        w.engine.status(w.id("job")).stop_reason,
        StopReason::DepRestart
    );
}

#[test]
fn user_restart_restarts_hard_dependents() {
    let mut w = chain_world();
    w.cmd("c", START).unwrap();
    let c_pid = w.pid("c");
    w.cmd("b", Command::Restart { gentle: false }).unwrap();
    w.settle(secs(5.0));
    assert_eq!(w.state("b"), State::Started);
    assert_eq!(w.state("c"), State::Started);
    assert_ne!(w.pid("c"), c_pid);
    assert_eq!(w.state("a"), State::Started);
    let b = w.id("b");
    assert_eq!(
        w.cmd("a", Command::Restart { gentle: true }),
        Err(CommandError::HasDependents(vec![b]))
    );
}

#[test]
fn prepared_by_dependency_restarts_with_its_dependent() {
    let mut w = World::new();
    w.load(proc("prep"));
    w.load(proc("svc").depends(DepKind::PreparedBy, "prep"));
    w.cmd("svc", START).unwrap();
    let prep_pid = w.pid("prep");
    w.cmd("svc", Command::Restart { gentle: false }).unwrap();
    w.settle(secs(5.0));
    assert_eq!(w.state("svc"), State::Started);
    assert_ne!(w.pid("prep"), prep_pid);
}

#[test]
fn smooth_recovery_relaunches_without_touching_dependents() {
    let mut w = World::new();
    let mut db = proc("db");
    db.restart.smooth_recovery = true;
    w.load(db);
    w.load(proc("app").depends(DepKind::Hard, "db"));
    w.cmd("app", START).unwrap();
    let app_pid = w.pid("app");
    w.advance(secs(1.0));
    w.exit("db", ExitStatus::Signaled(Signal::SIGKILL));
    w.settle(secs(5.0));
    assert_eq!(w.state("db"), State::Started);
    assert!(w.pid("db").is_some());
    assert_eq!(w.pid("app"), app_pid, "dependent untouched");
    assert_eq!(w.events_of("db"), [ServiceEvent::Started]);
}

#[test]
fn stop_timeout_ends_in_sigkill() {
    let mut w = World::new();
    let mut s = proc("s");
    s.stop_timeout = Some(secs(2.0));
    w.load(s);
    w.behave(
        "s",
        Behaviour {
            ignores_term: true,
            ..Default::default()
        },
    );
    w.cmd("s", START).unwrap();
    w.cmd("s", STOP).unwrap();
    w.advance(secs(1.9));
    assert_eq!(w.state("s"), State::Stopping);
    w.advance(secs(0.2));
    assert_eq!(w.state("s"), State::Stopped);
    assert_eq!(w.signals_to("s"), [Signal::SIGTERM, Signal::SIGKILL]);
    assert!(w
        .logs()
        .iter()
        .any(|l| l.contains("exceeded allowed stop time; killing.")));
}

#[test]
fn no_stop_timeout_waits_forever() {
    let mut w = World::new();
    let mut s = proc("s");
    s.stop_timeout = None;
    w.load(s);
    w.behave(
        "s",
        Behaviour {
            ignores_term: true,
            ..Default::default()
        },
    );
    w.cmd("s", START).unwrap();
    w.cmd("s", STOP).unwrap();
    w.advance(secs(3600.0));
    assert_eq!(w.state("s"), State::Stopping);
    assert_eq!(w.signals_to("s"), [Signal::SIGTERM]);
}

#[test]
fn start_timeout_cancels_a_start_that_never_becomes_ready() {
    let mut w = World::new();
    let mut s = proc("s");
    s.readiness = Readiness::NotifyFd(3);
    s.start_timeout = Some(secs(5.0));
    w.load(s);
    w.load(proc("top").depends(DepKind::Hard, "s"));
    w.cmd("top", START).unwrap();
    w.advance(secs(5.1));
    assert_eq!(w.state("s"), State::Stopped);
    assert_eq!(w.engine.status(w.id("s")).stop_reason, StopReason::TimedOut);
    assert_eq!(w.signals_to("s"), [Signal::SIGINT]);
    assert_eq!(w.state("top"), State::Stopped);
    assert_eq!(
        w.engine.status(w.id("top")).stop_reason,
        StopReason::DepFailed
    );
}

#[test]
fn readiness_notification_holds_the_start() {
    let mut w = World::new();
    let mut s = proc("s");
    s.readiness = Readiness::NotifyFd(3);
    w.load(s);
    w.cmd("s", START).unwrap();
    assert_eq!(w.state("s"), State::Starting);
    w.ready("s");
    assert_eq!(w.state("s"), State::Started);
}

#[test]
fn exit_before_ready_is_a_failed_start() {
    let mut w = World::new();
    let mut s = proc("s");
    s.readiness = Readiness::NotifyFd(3);
    w.load(s);
    w.cmd("s", START).unwrap();
    w.exit("s", ExitStatus::Exited(1));
    assert_eq!(w.state("s"), State::Stopped);
    assert_eq!(w.engine.status(w.id("s")).stop_reason, StopReason::Failed);
}

#[test]
fn check_command_readiness_retries_until_it_succeeds() {
    let mut w = World::new();
    let mut s = proc("s");
    s.readiness = Readiness::CheckCommand {
        command: CommandLine::new(["./check"]),
        interval: secs(0.1),
    };
    w.load(s);
    w.role_exits("s", Role::Check, ExitStatus::Exited(1));
    w.cmd("s", START).unwrap();
    w.advance(secs(0.35));
    assert_eq!(w.state("s"), State::Starting);
    w.role_exits("s", Role::Check, ExitStatus::Exited(0));
    w.advance(secs(0.1));
    assert_eq!(w.state("s"), State::Started);
}

#[test]
fn scripted_services_run_start_and_stop_commands() {
    let mut w = World::new();
    let mut s = ServiceSpec::new("mount", Kind::Scripted);
    s.start = CommandLine::new(["mount", "-a"]);
    s.stop = Some(CommandLine::new(["umount", "-a"]));
    w.load(s);
    w.cmd("mount", START).unwrap();
    w.settle(secs(1.0));
    assert_eq!(w.state("mount"), State::Started);
    w.cmd("mount", STOP).unwrap();
    w.settle(secs(1.0));
    assert_eq!(w.state("mount"), State::Stopped);
    let roles: Vec<Role> = w
        .effects
        .iter()
        .filter_map(|e| match e {
            braid_core::engine::Effect::Spawn { role, .. } => Some(*role),
            _ => None,
        })
        .collect();
    assert_eq!(roles, [Role::Main, Role::Stop]);

    let mut w = World::new();
    let mut s = ServiceSpec::new("bad", Kind::Scripted);
    s.start = CommandLine::new(["false"]);
    w.load(s);
    w.behave(
        "bad",
        Behaviour {
            exits_after: Some((Duration::ZERO, ExitStatus::Exited(1))),
            ..Default::default()
        },
    );
    w.cmd("bad", START).unwrap();
    w.settle(secs(1.0));
    assert_eq!(w.state("bad"), State::Stopped);
    assert!(w
        .logs()
        .contains(&"Service bad command failed with exit code 1".to_string()));
}

#[test]
fn triggered_services_wait_for_the_trigger() {
    let mut w = World::new();
    w.load(ServiceSpec::new("t", Kind::Triggered));
    w.cmd("t", START).unwrap();
    assert_eq!(w.state("t"), State::Starting);
    w.cmd("t", Command::Trigger(true)).unwrap();
    assert_eq!(w.state("t"), State::Started);
    w.cmd("t", Command::Trigger(false)).unwrap();
    assert_eq!(w.state("t"), State::Started, "clearing does not stop it");
    w.cmd("t", STOP).unwrap();
    w.cmd("t", START).unwrap();
    assert_eq!(w.state("t"), State::Starting, "trigger was cleared");
}

#[test]
fn once_runs_the_process_without_restarting_it() {
    let mut w = World::new();
    w.load(proc("s"));
    w.cmd("s", Command::Once).unwrap();
    assert_eq!(w.state("s"), State::Started);
    assert!(w.engine.status(w.id("s")).once);
    w.exit("s", ExitStatus::Exited(0));
    w.settle(secs(5.0));
    assert_eq!(w.state("s"), State::Stopped);
    assert_eq!(w.engine.status(w.id("s")).restarts, 0);
}

#[test]
fn pause_continue_and_any_signal_go_to_the_process() {
    let mut w = World::new();
    w.load(proc("s"));
    assert_eq!(w.cmd("s", Command::Pause), Err(CommandError::NoProcess));
    w.cmd("s", START).unwrap();
    w.cmd("s", Command::Pause).unwrap();
    assert!(w.engine.status(w.id("s")).paused);
    w.cmd("s", Command::Continue).unwrap();
    w.cmd("s", Command::Signal(Signal::SIGHUP)).unwrap();
    assert_eq!(
        w.signals_to("s"),
        [Signal::SIGSTOP, Signal::SIGCONT, Signal::SIGHUP]
    );
    assert!(!w.engine.status(w.id("s")).paused);
    assert_eq!(w.state("s"), State::Started);
}

#[test]
fn finish_runs_with_exit_code_and_signal_before_the_restart() {
    let mut w = World::new();
    let mut s = proc("s");
    s.finish = Some(CommandLine::new(["./finish"]));
    s.restart.delay = secs(1.0);
    s.restart.limit_count = 0;
    w.load(s);
    w.cmd("s", START).unwrap();
    w.exit("s", ExitStatus::Signaled(Signal::SIGTERM));
    w.exit("s", ExitStatus::Exited(7));
    let finish_args: Vec<Vec<String>> = w
        .effects
        .iter()
        .filter_map(|e| match e {
            braid_core::engine::Effect::Spawn {
                role: Role::Finish,
                extra_args,
                ..
            } => Some(
                extra_args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(finish_args, [vec!["-1".to_string(), "15".to_string()]]);
    w.advance(secs(1.0));
    w.exit("s", ExitStatus::Exited(7));
    w.settle(secs(0.5));
    let last: Vec<String> = match w.effects.iter().rev().find_map(|e| match e {
        braid_core::engine::Effect::Spawn {
            role: Role::Finish,
            extra_args,
            ..
        } => Some(extra_args.clone()),
        _ => None,
    }) {
        Some(args) => args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        None => Vec::new(),
    };
    assert_eq!(last, ["7", "0"]);
}

#[test]
fn one_second_minimum_between_restarts() {
    let mut w = World::new();
    let mut s = proc("s");
    s.restart.delay = secs(1.0);
    s.restart.limit_count = 0;
    w.load(s);
    w.behave(
        "s",
        Behaviour {
            exits_after: Some((Duration::ZERO, ExitStatus::Exited(1))),
            ..Default::default()
        },
    );
    w.cmd("s", START).unwrap();
    w.advance(secs(10.5));
    let launches = w
        .effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                braid_core::engine::Effect::Spawn {
                    role: Role::Main,
                    ..
                }
            )
        })
        .count();
    assert_eq!(launches, 11, "one launch at 0 s and one per second after");
}

#[test]
fn stop_then_start_during_stopping_comes_back() {
    let mut w = World::new();
    w.load(proc("s"));
    w.behave(
        "s",
        Behaviour {
            stop_delay: Some(secs(1.0)),
            ..Default::default()
        },
    );
    w.cmd("s", START).unwrap();
    w.cmd("s", STOP).unwrap();
    assert_eq!(w.state("s"), State::Stopping);
    w.cmd("s", START).unwrap();
    w.settle(secs(5.0));
    assert_eq!(w.state("s"), State::Started);
    assert_eq!(w.double_spawns, 0);
}

#[test]
fn wake_starts_a_service_for_its_active_dependents_only() {
    let mut w = World::new();
    w.load(proc("dep"));
    w.load(proc("top").depends(DepKind::WaitsFor, "dep"));
    assert_eq!(
        w.cmd("dep", Command::Wake { pin: false }),
        Err(CommandError::NotApplicable)
    );
    w.cmd("top", START).unwrap();
    w.cmd("dep", STOP).unwrap();
    w.settle(secs(5.0));
    assert_eq!(w.state("dep"), State::Stopped);
    w.cmd("dep", Command::Wake { pin: false }).unwrap();
    assert_eq!(w.state("dep"), State::Started);
    assert!(!w.engine.status(w.id("dep")).explicit);
}

#[test]
fn add_and_remove_dependency_at_run_time() {
    let mut w = World::new();
    w.load(proc("a"));
    w.load(proc("b"));
    w.cmd("a", START).unwrap();
    let (a, b) = (w.id("a"), w.id("b"));
    // A soft link to a stopped service does not start it (as dinit).
    w.engine.add_dependency(a, b, DepKind::WaitsFor).unwrap();
    w.settle(secs(1.0));
    assert_eq!(w.state("b"), State::Stopped);
    assert!(w.engine.remove_dependency(a, b, DepKind::WaitsFor));
    // To a running one, the link holds it: releasing b leaves it up.
    w.cmd("b", START).unwrap();
    w.engine.add_dependency(a, b, DepKind::WaitsFor).unwrap();
    w.cmd("b", Command::Release { pin: false }).unwrap();
    w.settle(secs(1.0));
    assert_eq!(w.state("b"), State::Started, "a holds b");
    // A hard link from a running service needs a started target.
    w.load(proc("c"));
    let c = w.id("c");
    assert!(matches!(
        w.engine.add_dependency(a, c, DepKind::Hard),
        Err(LoadError::NotNow(_))
    ));
    assert!(matches!(
        w.engine.add_dependency(b, a, DepKind::Hard),
        Err(LoadError::Cycle(_))
    ));
    // Removing the link releases its hold.
    assert!(w.engine.remove_dependency(a, b, DepKind::WaitsFor));
    w.settle(secs(5.0));
    assert_eq!(w.state("b"), State::Stopped, "released when the link went");
    assert!(!w.engine.remove_dependency(a, b, DepKind::WaitsFor));
}

#[test]
fn load_unload_reload() {
    let mut w = World::new();
    w.load(proc("a"));
    w.load(proc("b").depends(DepKind::Hard, "a"));
    let (a, b) = (w.id("a"), w.id("b"));
    assert!(
        matches!(w.engine.unload(a), Err(LoadError::NotNow(_))),
        "b depends on a"
    );
    w.engine.unload(b).unwrap();
    w.engine.unload(a).unwrap();
    assert!(w.engine.lookup("a").is_none());
    let a = w.engine.load(proc("a")).unwrap();
    w.load(proc("b").depends(DepKind::Hard, "a"));
    w.cmd("b", START).unwrap();
    assert!(matches!(w.engine.unload(a), Err(LoadError::NotNow(_))));
    // Reload a started service: may not change its kind.
    let err = w.engine.reload(a, internal("a")).unwrap_err();
    assert_eq!(
        err,
        LoadError::NotNow("cannot change type of non-stopped service.".into())
    );
    let mut newer = proc("a");
    newer.stop_timeout = Some(secs(3.0));
    w.engine.reload(a, newer).unwrap();
    assert_eq!(w.engine.spec(a).stop_timeout, Some(secs(3.0)));
    assert_eq!(w.state("a"), State::Started);
}

#[test]
fn dependency_on_a_service_never_loaded_fails_the_start() {
    let mut w = World::new();
    w.load(proc("top").depends(DepKind::Hard, "ghost"));
    w.cmd("top", START).unwrap();
    assert_eq!(w.state("top"), State::Stopped);
    assert_eq!(
        w.engine.status(w.id("top")).stop_reason,
        StopReason::DepFailed
    );
    assert!(
        w.engine.lookup("ghost").is_none(),
        "placeholders are not listed"
    );
}

#[test]
fn stop_all_stops_everything_and_refuses_new_starts() {
    let mut w = chain_world();
    w.load(proc("other"));
    w.cmd("c", Command::Start { pin: true }).unwrap();
    w.cmd("other", START).unwrap();
    w.stop_all();
    w.settle(secs(60.0));
    assert!(w.engine.all_stopped());
    assert_eq!(w.running_count(), 0);
    assert_eq!(w.cmd("a", START), Err(CommandError::ShuttingDown));
}

#[test]
fn invalid_specs_are_refused_with_service_and_field() {
    let mut w = World::new();
    let err = w
        .engine
        .load(ServiceSpec::new("nocmd", Kind::Process))
        .unwrap_err();
    match err {
        LoadError::Invalid(e) => {
            assert_eq!(
                e.to_string(),
                "service nocmd: start: a command is required for this kind"
            )
        }
        other => panic!("{other:?}"),
    }
    let err = w.engine.load(internal("../x")).unwrap_err();
    assert!(
        matches!(err, LoadError::Invalid(ref e) if e.field == "name"),
        "{err:?}"
    );
}

#[test]
fn background_daemon_is_started_from_its_pid_file() {
    let mut w = World::new();
    let mut s = ServiceSpec::new(
        "daemon",
        Kind::BackgroundProcess {
            pid_file: "/run/daemon.pid".into(),
        },
    );
    s.start = CommandLine::new(["daemon", "--fork"]);
    w.load(s);
    w.cmd("daemon", START).unwrap();
    w.settle(secs(1.0));
    assert_eq!(w.state("daemon"), State::Started);
    let pid = w.engine.status(w.id("daemon")).pid;
    assert!(pid.is_some(), "the pid from the file is the service's pid");
    w.cmd("daemon", STOP).unwrap();
    w.settle(secs(1.0));
    assert_eq!(w.state("daemon"), State::Stopped);
}

#[test]
fn unsupervised_daemon_counts_as_stopped_once_signalled() {
    let mut w = World::new();
    let mut s = ServiceSpec::new(
        "daemon",
        Kind::BackgroundProcess {
            pid_file: "/run/daemon.pid".into(),
        },
    );
    s.start = CommandLine::new(["daemon", "--fork"]);
    w.load(s);
    w.behave(
        "daemon",
        Behaviour {
            unsupervised_daemon: true,
            ..Default::default()
        },
    );
    w.cmd("daemon", START).unwrap();
    w.settle(secs(1.0));
    assert_eq!(w.state("daemon"), State::Started);
    w.cmd("daemon", STOP).unwrap();
    assert_eq!(
        w.state("daemon"),
        State::Stopped,
        "no exit will ever be seen"
    );
    assert_eq!(w.signals_to("daemon"), [Signal::SIGTERM]);
}

#[test]
fn exec_failure_can_count_as_an_exit_that_is_retried() {
    let mut w = World::new();
    let mut s = proc("s");
    s.flags.exec_failure_is_exit = true;
    s.finish = Some(CommandLine::new(["./finish"]));
    s.restart.delay = secs(1.0);
    s.restart.limit_count = 0;
    w.load(s);
    w.behave(
        "s",
        Behaviour {
            exec_fails: true,
            ..Default::default()
        },
    );
    w.cmd("s", START).unwrap();
    w.advance(secs(2.5));
    let finishes: Vec<Vec<String>> = w
        .effects
        .iter()
        .filter_map(|e| match e {
            braid_core::engine::Effect::Spawn {
                role: Role::Finish,
                extra_args,
                ..
            } => Some(
                extra_args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        finishes.len(),
        3,
        "tried at 0, 1 and 2 s, finish after each"
    );
    assert!(finishes.iter().all(|a| a == &["111", "0"]));
    assert_eq!(
        w.engine.status(w.id("s")).target,
        State::Started,
        "still wanted up"
    );
}

#[test]
fn a_service_ordered_before_the_login_target_starts_first_in_one_step() {
    // turnstile's dinit session: boot needs login.target and waits for the
    // user's services; one of them is ordered before login.target.
    for deps_first in [true, false] {
        let mut w = World::new();
        w.load(internal("login.target"));
        let mut dbus = proc("dbus").depends(DepKind::Before, "login.target");
        dbus.readiness = Readiness::NotifyFd(3);
        w.load(dbus);
        w.behave(
            "dbus",
            Behaviour {
                ready_after: Some(secs(1.0)),
                ..Default::default()
            },
        );
        let boot = if deps_first {
            internal("boot")
                .depends(DepKind::WaitsFor, "dbus")
                .depends(DepKind::Hard, "login.target")
        } else {
            internal("boot")
                .depends(DepKind::Hard, "login.target")
                .depends(DepKind::WaitsFor, "dbus")
        };
        w.load(boot);
        w.cmd("boot", START).unwrap();
        assert_eq!(w.state("login.target"), State::Starting, "waits for dbus");
        w.advance(secs(1.0));
        assert_eq!(
            order(&w, ServiceEvent::Started),
            ["dbus", "login.target", "boot"],
            "dependencies listed {}",
            if deps_first {
                "dbus first"
            } else {
                "login.target first"
            }
        );
    }
}

#[test]
fn enabling_holds_through_the_link_and_disabling_releases() {
    // dinitctl enable: add a waits-for link from boot, then wake the target
    // so that the link holds it; disable: remove the link, which lets it go.
    let mut w = World::new();
    w.load(internal("boot"));
    w.load(proc("daemon"));
    w.cmd("boot", START).unwrap();
    let (boot, daemon) = (w.id("boot"), w.id("daemon"));
    w.engine
        .add_dependency(boot, daemon, DepKind::WaitsFor)
        .unwrap();
    w.cmd("daemon", Command::Wake { pin: false }).unwrap();
    assert_eq!(w.state("daemon"), State::Started);
    assert!(!w.engine.status(daemon).explicit);
    assert!(w.engine.remove_dependency(boot, daemon, DepKind::WaitsFor));
    w.settle(secs(5.0));
    assert_eq!(w.state("daemon"), State::Stopped);
}

#[test]
fn a_dependent_caught_starting_by_a_dependency_restart_comes_back() {
    let mut w = World::new();
    w.load(proc("db"));
    let mut app = proc("app").depends(DepKind::Hard, "db");
    app.readiness = Readiness::NotifyFd(3);
    w.load(app);
    w.behave(
        "app",
        Behaviour {
            ready_after: Some(secs(1.0)),
            ..Default::default()
        },
    );
    w.cmd("app", START).unwrap();
    assert_eq!(w.state("app"), State::Starting, "launched, not ready yet");
    // db dies and restarts while app cannot be interrupted.
    w.exit("db", ExitStatus::Exited(1));
    w.settle(secs(10.0));
    assert_eq!(w.state("db"), State::Started);
    assert_eq!(w.state("app"), State::Started, "came back after db");
    assert_eq!(
        w.events_of("app"),
        [
            ServiceEvent::Started,
            ServiceEvent::Stopped,
            ServiceEvent::Started
        ]
    );
}

#[test]
fn releasing_a_dependent_lets_its_dependencies_go_at_once_as_dinit() {
    // dinit lets go of a service's dependencies as soon as nothing requires
    // it: a started milestone with no other holder stops even before the
    // dependent that held it has finished stopping.
    let mut w = World::new();
    let mut sleeper = proc("sleeper");
    sleeper.restart.mode = RestartMode::Never;
    w.load(sleeper);
    w.load(internal("ms"));
    w.load(internal("soft"));
    w.load(
        internal("top")
            .depends(DepKind::Hard, "sleeper")
            .depends(DepKind::Milestone, "ms")
            .depends(DepKind::WaitsFor, "soft"),
    );
    w.load(internal("holder").depends(DepKind::Hard, "top"));
    w.cmd("soft", START).unwrap();
    w.cmd("holder", START).unwrap();
    w.seen.clear();
    w.cmd("holder", Command::Release { pin: false }).unwrap();
    w.settle(secs(5.0));
    assert_eq!(
        order(&w, ServiceEvent::Stopped),
        ["ms", "holder", "top", "sleeper"]
    );
    assert_eq!(w.state("soft"), State::Started, "explicitly started");
    for n in ["holder", "top"] {
        assert_eq!(
            w.engine.status(w.id(n)).stop_reason,
            StopReason::Normal,
            "{n}"
        );
    }
}

#[test]
fn a_log_consumer_stops_after_its_producer() {
    let mut w = World::new();
    let mut producer = proc("producer");
    producer.output = braid_core::spec::Output::Pipe;
    w.load(producer);
    let mut consumer = proc("consumer");
    consumer.input_from = Some("producer".into());
    w.load(consumer);
    w.behave(
        "producer",
        Behaviour {
            stop_delay: Some(secs(0.5)),
            ..Default::default()
        },
    );
    w.cmd("producer", START).unwrap();
    w.cmd("consumer", START).unwrap();
    w.stop_all();
    w.advance(secs(0.2));
    assert_eq!(
        w.state("consumer"),
        State::Stopping,
        "waits for the producer"
    );
    assert!(w.signals_to("consumer").is_empty(), "not signalled yet");
    w.settle(secs(5.0));
    assert_eq!(order(&w, ServiceEvent::Stopped), ["producer", "consumer"]);
}

#[test]
fn stop_all_stops_unrequired_services_first_in_load_order_as_dinit() {
    // dinit's shutdown walks the services in load order but only stops
    // those that nothing requires any more; a service still held (p, q)
    // stops when its holder lets go of it, so it joins the last-in-first-
    // out transition queue after them. Real dinit prints q, r, boot, p.
    let mut w = World::new();
    w.load(
        internal("boot")
            .depends(DepKind::WaitsFor, "p")
            .depends(DepKind::WaitsFor, "q"),
    );
    w.load(proc("p"));
    w.load(internal("q"));
    w.load(internal("r").depends(DepKind::Hard, "p"));
    w.cmd("boot", START).unwrap();
    w.cmd("r", START).unwrap();
    w.seen.clear();
    w.stop_all();
    w.settle(secs(5.0));
    assert_eq!(order(&w, ServiceEvent::Stopped), ["q", "r", "boot", "p"]);
}

#[test]
fn a_dependent_that_let_go_and_stops_at_once_does_not_keep_its_dependency() {
    // dinit: a stopping service waits for its hard dependents only while
    // they hold it. `a` lets go of `c` as soon as nothing requires it; when
    // `b` (a waits-for dependent) stops, `c` is looked at again and goes
    // before `a`, which has nothing to wait for. Real dinit prints b, c, a,
    // z, boot.
    let mut w = World::new();
    w.load(internal("boot"));
    w.load(internal("c"));
    w.load(internal("z"));
    w.load(internal("a").depends(DepKind::Hard, "c"));
    w.load(internal("b").depends(DepKind::WaitsFor, "c"));
    for n in ["boot", "c", "z", "a", "b"] {
        w.cmd(n, START).unwrap();
    }
    w.seen.clear();
    w.stop_all();
    w.settle(secs(5.0));
    assert_eq!(
        order(&w, ServiceEvent::Stopped),
        ["b", "c", "a", "z", "boot"]
    );
}

#[test]
fn a_dependent_with_a_process_keeps_its_dependency_until_it_is_down() {
    // The same with `a` a process that takes a while to exit: dinit would
    // stop `c` before `a` has exited (b, c, a); braid keeps `c` until then.
    let mut w = World::new();
    w.load(internal("boot"));
    w.load(proc("c"));
    w.load(proc("a").depends(DepKind::Hard, "c"));
    w.load(internal("b").depends(DepKind::WaitsFor, "c"));
    w.behave(
        "a",
        Behaviour {
            stop_delay: Some(secs(0.5)),
            ..Default::default()
        },
    );
    for n in ["boot", "c", "a", "b"] {
        w.cmd(n, START).unwrap();
    }
    w.seen.clear();
    w.stop_all();
    w.advance(secs(0.2));
    assert!(w.signals_to("c").is_empty(), "c waits for a's exit");
    w.settle(secs(5.0));
    assert_eq!(order(&w, ServiceEvent::Stopped), ["b", "boot", "a", "c"]);
}

#[test]
fn refused_stop_names_dependents_in_link_order_as_dinit() {
    // As dinit's loader: each service gets its id first and links once its
    // dependencies have loaded, so "intermediary" links before "boot".
    let mut w = World::new();
    w.load(internal("boot"));
    w.load(internal("critical"));
    w.load(internal("intermediary").depends(DepKind::Hard, "critical"));
    let boot = internal("boot")
        .depends(DepKind::Hard, "critical")
        .depends(DepKind::Hard, "intermediary");
    w.engine.reload(w.id("boot"), boot).unwrap();
    w.cmd("boot", START).unwrap();
    let r = w.cmd(
        "critical",
        Command::Stop {
            pin: false,
            gentle: true,
        },
    );
    let expected = vec![w.id("intermediary"), w.id("boot")];
    assert_eq!(r, Err(CommandError::HasDependents(expected)));
}

#[test]
fn dependencies_let_go_of_together_stop_in_the_order_listed_as_dinit() {
    // dinit: letting go of its dependencies, a service stops each one that
    // nothing else requires at once, in the order listed, before what they
    // let go of in turn. Real dinit prints r, s, q, boot, p1, p2.
    let mut w = World::new();
    w.load(
        internal("boot")
            .depends(DepKind::Hard, "p1")
            .depends(DepKind::WaitsFor, "q")
            .depends(DepKind::WaitsFor, "s"),
    );
    w.load(internal("s"));
    w.load(proc("p1").depends(DepKind::Hard, "p2"));
    w.load(proc("p2").depends(DepKind::WaitsFor, "r"));
    w.load(internal("q"));
    w.load(internal("r"));
    w.cmd("boot", START).unwrap();
    w.seen.clear();
    w.stop_all();
    w.settle(secs(5.0));
    assert_eq!(
        order(&w, ServiceEvent::Stopped),
        ["r", "s", "q", "boot", "p1", "p2"]
    );
}

#[test]
fn stop_all_stops_a_pinned_service_before_going_on_as_dinit() {
    // dinit stops a pinned service when it unpins it and runs its queues
    // there and then. Real dinit prints a, e, pn, boot, d, x.
    let mut w = World::new();
    w.load(internal("boot").depends(DepKind::WaitsFor, "a"));
    w.load(internal("a"));
    w.load(
        internal("pn")
            .depends(DepKind::Hard, "d")
            .depends(DepKind::WaitsFor, "e"),
    );
    w.load(internal("d"));
    w.load(internal("e"));
    w.load(internal("x").depends(DepKind::WaitsFor, "d"));
    w.cmd("boot", START).unwrap();
    w.cmd("pn", Command::Start { pin: true }).unwrap();
    w.cmd("x", START).unwrap();
    w.seen.clear();
    w.stop_all();
    w.settle(secs(5.0));
    assert_eq!(
        order(&w, ServiceEvent::Stopped),
        ["a", "e", "pn", "boot", "d", "x"]
    );
}

/// Loads internal services given as (name, [(kind, dependency)]), in order.
fn internal_world(services: &[(&str, &[(DepKind, &str)])]) -> World {
    let mut w = World::new();
    for (name, deps) in services {
        let mut spec = internal(name);
        for (kind, to) in deps.iter() {
            spec = spec.depends(*kind, *to);
        }
        w.load(spec);
    }
    w
}

#[test]
fn dependents_of_a_started_dependency_go_up_last_linked_first_as_dinit() {
    // dinit runs a start through its transition queue (last in, first
    // out): a dependency that comes up queues its waiting dependents in
    // the order they linked to it, so the last one goes up first. Real
    // dinit prints a, c, b, top.
    use DepKind::{Hard, WaitsFor};
    let mut w = internal_world(&[
        ("a", &[]),
        ("b", &[(Hard, "a")]),
        ("c", &[(Hard, "a")]),
        ("top", &[(WaitsFor, "b"), (WaitsFor, "c")]),
    ]);
    w.cmd("top", START).unwrap();
    assert_eq!(order(&w, ServiceEvent::Started), ["a", "c", "b", "top"]);
    // The same through hard links all the way up.
    let mut w = internal_world(&[
        ("a", &[]),
        ("b", &[(Hard, "a")]),
        ("c", &[(Hard, "a")]),
        ("top", &[(Hard, "b"), (Hard, "c")]),
    ]);
    w.cmd("top", START).unwrap();
    assert_eq!(order(&w, ServiceEvent::Started), ["a", "c", "b", "top"]);
}

#[test]
fn dependencies_ready_at_once_go_up_in_the_order_listed_as_dinit() {
    // dinit requires dependencies in the order listed; the last-in-first-
    // out propagation queue begins the last one first, so the transition
    // queue (last in, first out again) brings up the first one first.
    use DepKind::WaitsFor;
    let mut w = internal_world(&[
        ("b", &[]),
        ("c", &[]),
        ("top", &[(WaitsFor, "b"), (WaitsFor, "c")]),
    ]);
    w.cmd("top", START).unwrap();
    assert_eq!(order(&w, ServiceEvent::Started), ["b", "c", "top"]);
}

#[test]
fn mixed_dependency_kinds_start_in_dinit_order() {
    // Shapes run on the real dinit (each several times, always the same):
    // a shared dependency with one waits-for and one depends-on dependent,
    // and a milestone next to both.
    use DepKind::{Hard, Milestone, WaitsFor};
    let mut w = internal_world(&[
        ("a", &[]),
        ("m", &[(Hard, "a")]),
        ("z", &[]),
        ("x", &[(Hard, "a"), (WaitsFor, "z")]),
        ("y", &[(WaitsFor, "z")]),
        ("top", &[(Hard, "m"), (WaitsFor, "x"), (Milestone, "y")]),
    ]);
    w.cmd("top", START).unwrap();
    assert_eq!(
        order(&w, ServiceEvent::Started),
        ["a", "m", "z", "y", "x", "top"]
    );
    let mut w = internal_world(&[
        ("b1", &[]),
        ("b2", &[]),
        ("x", &[(Hard, "b1"), (Hard, "b2")]),
        ("y", &[(Hard, "b2")]),
        ("z", &[(WaitsFor, "b1")]),
        ("top", &[(WaitsFor, "x"), (WaitsFor, "y"), (WaitsFor, "z")]),
    ]);
    w.cmd("top", START).unwrap();
    assert_eq!(
        order(&w, ServiceEvent::Started),
        ["b2", "y", "b1", "z", "x", "top"]
    );
}

#[test]
fn a_dependent_queued_at_the_bottom_is_queued_again_on_top_as_dinit() {
    // dinit's transition queue skips a service already queued, but does
    // not see the one at its bottom as queued. base comes up and queues
    // d1, d2, w (w on top, d1 at the bottom); w comes up and queues d1
    // (after w) again on top, d2 (w before d2) not: d1 goes up before d2.
    // Loaded as dinit loads them from top (base's dependents: d1, d2, w).
    // Real dinit prints base, w, d1, d2, top.
    use DepKind::{After, Hard, Milestone, WaitsFor};
    let mut w = internal_world(&[
        ("base", &[]),
        ("d1", &[(Hard, "base"), (After, "w")]),
        ("d2", &[(Milestone, "base"), (After, "w")]),
        ("w", &[(WaitsFor, "base")]),
        ("top", &[(Hard, "d1"), (Hard, "d2"), (WaitsFor, "w")]),
    ]);
    w.cmd("top", START).unwrap();
    assert_eq!(
        order(&w, ServiceEvent::Started),
        ["base", "w", "d1", "d2", "top"]
    );
}
