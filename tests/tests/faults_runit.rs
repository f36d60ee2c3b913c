//! Faults under the runit face, as a user sees them through `sv status`
//! and braid's messages: a `run` that cannot be executed, braid itself
//! killed and started again on the same directory, and a service that
//! leaves a child behind when stopped.

use braid_tests::*;

#[test]
fn a_run_that_cannot_be_executed_is_reported_and_recovered() {
    let Some(s) = RunitSession::start("runit-exec", &[("ok", "#!/bin/sh\nexec sleep 1000\n")])
    else {
        return;
    };
    // Not executable: runsv's message, the service retried each second.
    write_file(
        &s.dir.join("service/noexec/run"),
        "#!/bin/sh\nexec sleep 1000\n",
        0o644,
    );
    assert!(
        s.daemon
            .wait_log("runsv noexec: fatal: unable to start ./run: access denied\n"),
        "{}",
        s.daemon.log_text()
    );
    let status = s.wait_status("noexec", "down: noexec: ");
    assert!(status.contains("normally up, want up"), "{status}");
    let ok = s.wait_status("ok", "run: ok: ");
    assert!(ok.contains("(pid "), "{ok}");
    let _guard = SessionGuard(vec![s.pid_of("ok").expect("pid")]);
    // The cause goes away: the next retry runs it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        s.dir.join("service/noexec/run"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    s.wait_status("noexec", "run: noexec: ");
    let _guard2 = SessionGuard(vec![s.pid_of("noexec").expect("pid")]);
}

#[test]
fn stop_leaves_no_process_behind() {
    // The background child ignores SIGTERM; runsv would signal only the
    // main process and leave it running.
    let Some(s) = RunitSession::start(
        "runit-stop",
        &[(
            "forks",
            "#!/bin/sh\nsh -c 'trap \"\" TERM; while :; do sleep 1; done' &\necho $! > bg.pid\nexec sleep 1000\n",
        )],
    ) else {
        return;
    };
    s.wait_status("forks", "run: forks: ");
    let main = s.pid_of("forks").expect("pid");
    let _guard = SessionGuard(vec![main]);
    let bg = read_pid_file(&s.dir.join("service/forks/bg.pid"));
    let (text, code) = s.sv(&["down", "forks"]);
    assert_eq!(code, 0, "{text}");
    s.wait_status("forks", "down: forks: ");
    // Within the stop timeout (SIGKILL then), nothing of the service is left.
    assert!(
        wait_until(LIMIT, || session_members(main).is_empty() && is_dead(bg)),
        "left: {:?}",
        session_members(main)
    );
}

#[test]
fn a_killed_braid_restarted_runs_no_service_twice() {
    let Some(mut s) = RunitSession::start(
        "runit-crash",
        &[(
            "forks",
            "#!/bin/sh\nsleep 1001 &\necho $! > bg.pid\nexec sleep 1002\n",
        )],
    ) else {
        return;
    };
    s.wait_status("forks", "run: forks: ");
    let main = s.pid_of("forks").expect("pid");
    let bg = read_pid_file(&s.dir.join("service/forks/bg.pid"));
    let _guard = SessionGuard(vec![main]);
    let record = s.dir.join("service/.braid/processes");
    assert!(wait_until(LIMIT, || std::fs::read_to_string(&record)
        .is_ok_and(|t| t.contains(&format!("{main} ")))));

    s.daemon.crash();
    assert!(!is_dead(main) && !is_dead(bg), "services outlive braid");
    std::fs::remove_file(s.dir.join("service/forks/bg.pid")).unwrap();
    s.restart("daemon2.log");
    assert!(
        s.daemon.wait_log(&format!(
            "runsv forks: warning: stopped 2 processes (group {main}) left running by a previous instance\n"
        )),
        "{}",
        s.daemon.log_text()
    );
    let status = s.wait_status("forks", "run: forks: ");
    let new_main = s.pid_of("forks").expect("pid");
    let _guard2 = SessionGuard(vec![new_main]);
    assert_ne!(new_main, main, "{status}");
    assert!(is_dead(main) && is_dead(bg), "the old instance is gone");
    assert_eq!(session_members(new_main).len(), 2, "one instance: sh's two");
}
