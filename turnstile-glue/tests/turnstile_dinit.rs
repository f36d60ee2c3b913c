//! braid as turnstile's `dinit` backend, driven by the emulated turnstiled
//! (tests/support): gating on the services ordered before `login.target`,
//! failure reports, stop, repeated logins, two users, and the generated
//! services at work (`graphical.target` triggered through `dinitctl`).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn login_waits_for_the_services_ordered_before_login_target() {
    let f = Fixture::for_dinit("dgate");
    let marker = f.home.join("slow-ready");
    f.dinit_service(
        "slow",
        &format!(
            "type = process\ncommand = /bin/sh -c \"sleep 1; : > {}; echo >&3; exec sleep 1000\"\n\
             ready-notification = pipefd:3\nbefore = login.target\n",
            marker.display()
        ),
        true,
    );
    // Started at boot, not ordered before login.target: not waited for.
    f.dinit_service(
        "lazy",
        "type = process\ncommand = /bin/sh -c \"sleep 8; echo >&3; exec sleep 1000\"\n\
         ready-notification = pipefd:3\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    let login = t.login_ok();
    // Held until the slow service was ready, and not for the one login
    // does not wait for.
    login.assert_gated(Duration::from_secs(1), Duration::from_secs(6));
    assert!(marker.exists(), "slow was ready at release");
    // The five generated services are in the srv dir.
    let mut generated = list_dir(&login.srvdir);
    generated.retain(|n| n != "gate");
    assert_eq!(
        generated,
        [
            "boot",
            "graphical.monitor",
            "graphical.target",
            "login.target",
            "system"
        ]
    );
    t.logout_clean(login, DINIT_MANAGER_EXIT);
}

#[test]
fn a_failing_service_before_login_target_fails_ready_naming_it() {
    let f = Fixture::for_dinit("dfail");
    f.dinit_service(
        "broken",
        "type = process\ncommand = /bin/sh -c \"exit 3\"\nready-notification = pipefd:3\n\
         before = login.target\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    let login = t.login_ok();
    let log = login.log_text();
    assert_eq!(login.ready.status.and_then(|s| s.code()), Some(1), "{log}");
    assert!(
        login
            .ready
            .stderr
            .contains("service broken failed: exited with status 3 before it was ready"),
        "{:?}\n{log}",
        login.ready.stderr
    );
    assert!(login.gating() < Duration::from_secs(10));
    t.logout_clean(login, DINIT_MANAGER_EXIT);
}

#[test]
fn the_session_answers_dinitctl_and_graphical_target_follows_display() {
    let f = Fixture::for_dinit("dctl");
    f.dinit_service(
        "sleeper",
        "type = process\ncommand = /bin/sleep 1000\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    let login = t.login_ok();
    assert_eq!(
        login.ready.status.and_then(|s| s.code()),
        Some(0),
        "{}",
        login.log_text()
    );
    // sleeper is not ordered before login.target: login may be released
    // before it runs.
    assert!(
        braid_tests::wait_until(STOP_BOUND, || f
            .dinitctl(&["is-started", "sleeper"])
            .status
            .success()),
        "sleeper did not start"
    );
    let list = f.dinitctl(&["list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("[{+}     ] sleeper (pid: "), "{text}");
    assert!(text.contains("[{ }<<   ] graphical.target"), "{text}");

    let set = f.dinitctl(&["setenv", "DISPLAY=:7"]);
    assert!(set.status.success(), "{set:?}");
    // graphical.monitor (dinit-monitor -E) triggers graphical.target.
    let started = f.dinitctl(&["start", "graphical.target"]);
    assert!(
        started.status.success(),
        "{started:?}\n{}",
        login.log_text()
    );
    let status = f.dinitctl(&["is-started", "graphical.target"]);
    assert!(status.status.success());
    t.logout_clean(login, DINIT_MANAGER_EXIT);
}

#[test]
fn twenty_logins_and_logouts_leak_nothing() {
    let f = Fixture::for_dinit("dcycle");
    f.dinit_service(
        "core",
        "type = process\ncommand = /bin/sleep 1000\nbefore = login.target\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    for round in 0..20 {
        let login = t.login_ok();
        assert_eq!(
            login.ready.status.and_then(|s| s.code()),
            Some(0),
            "round {round}: {}",
            login.ready.stderr
        );
        t.logout_clean(login, DINIT_MANAGER_EXIT);
        assert!(list_dir(&f.login_dir).is_empty());
        assert!(list_dir(&f.rundir).is_empty());
    }
    let root = f.root.0.display().to_string();
    let leaked: Vec<String> = open_fds(std::process::id() as i32)
        .into_iter()
        .filter(|l| l.contains(&root))
        .collect();
    assert!(leaked.is_empty(), "the harness leaked {leaked:?}");
}

#[test]
fn two_users_at_once_stay_apart() {
    let alice = Fixture::for_dinit("dalice");
    let bob = Fixture::for_dinit("dbob");
    for f in [&alice, &bob] {
        f.dinit_service(
            "who",
            "type = scripted\ncommand = /bin/sh -c \"echo $HOME > $HOME/who\"\n\
             before = login.target\n",
            true,
        );
    }
    let mut ta = Turnstiled::new(&alice, "dinit");
    let mut tb = Turnstiled::new(&bob, "dinit");
    let la = ta.login_ok();
    let lb = tb.login_ok();
    for (f, l) in [(&alice, &la), (&bob, &lb)] {
        assert_eq!(
            l.ready.status.and_then(|s| s.code()),
            Some(0),
            "{}",
            l.log_text()
        );
        assert_eq!(
            std::fs::read_to_string(f.home.join("who")).unwrap(),
            format!("{}\n", f.home.display())
        );
        assert!(f.rundir.join("dinitctl").exists());
    }
    tb.logout_clean(lb, DINIT_MANAGER_EXIT);
    let list = alice.dinitctl(&["is-started", "login.target"]);
    assert!(list.status.success(), "Alice's session went on");
    ta.logout_clean(la, DINIT_MANAGER_EXIT);
}

#[test]
fn ready_and_stop_reject_bad_arguments() {
    let f = Fixture::for_dinit("dproto");
    let t = Turnstiled::new(&f, "dinit");
    for arg in ["boop\n", ""] {
        let run = t.run_ready(arg.as_bytes(), Instant::now() + Duration::from_secs(5));
        assert_eq!(run.status.and_then(|s| s.code()), Some(69), "{arg:?}");
    }
    let st = Command::new(f.backend("dinit"))
        .args(["stop", "0"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(69));
    // Not a backend action: `dinit` is the daemon then.
    let out = Command::new(f.bin("dinit"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Dinit version"));
}
