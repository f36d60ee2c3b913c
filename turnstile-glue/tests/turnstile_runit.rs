//! braid as turnstile's `runit` backend, driven by the emulated turnstiled
//! (tests/support): gating on core services, failure reports, stop,
//! repeated logins, two users, and the shared env dir.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn login_waits_until_every_core_service_is_ready() {
    let f = Fixture::new("rgate");
    let slow = f.runit_service(
        "slow",
        "rm -f ./up; sleep 1; : > ./up; exec sleep 1000",
        Some("test -e ./up"),
    );
    f.runit_service("fast", "exec sleep 1000", None);
    // Not core: slow to be ready, but login does not wait for it.
    f.runit_service(
        "sluggish",
        "rm -f ./up; sleep 8; : > ./up; exec sleep 1000",
        Some("test -e ./up"),
    );
    f.core_services("fast slow");
    let mut t = Turnstiled::new(&f, "runit");
    let login = t.login_ok();
    // Held until the slow service was ready, and not for the one login
    // does not wait for.
    login.assert_gated(Duration::from_secs(1), Duration::from_secs(6));
    assert!(slow.join("up").exists(), "slow was ready at release");
    // The FIFO was written early (the gate does the waiting).
    assert!(login.t_fifo - login.t0 < Duration::from_secs(1));
    // turnstile's ready service is there and up; the FIFO is closed in the
    // manager.
    assert!(f.home.join(".config/service/turnstile-ready/run").exists());
    let fds = login.manager_fds();
    assert!(!fds.iter().any(|l| l.contains("/ready")), "{fds:?}");
    t.logout_clean(login, RUNIT_MANAGER_EXIT);
}

#[test]
fn a_failing_core_service_fails_ready_naming_it() {
    let f = Fixture::new("rfail");
    f.runit_service("fine", "exec sleep 1000", None);
    f.runit_service("broken", "exit 3", Some("test -e ./never"));
    f.core_services("fine broken");
    let mut t = Turnstiled::new(&f, "runit");
    let login = t.login_ok();
    let log = login.log_text();
    assert_eq!(login.ready.status.and_then(|s| s.code()), Some(1), "{log}");
    assert!(
        login.ready.stderr.contains("service broken failed"),
        "{:?}\n{log}",
        login.ready.stderr
    );
    assert!(
        login.gating() < Duration::from_secs(10),
        "{:?}",
        login.gating()
    );
    t.logout_clean(login, RUNIT_MANAGER_EXIT);
}

#[test]
fn a_missing_or_unrunnable_core_service_is_reported() {
    let f = Fixture::new("rmiss");
    f.core_services("ghost");
    let mut t = Turnstiled::new(&f, "runit");
    let login = t.login_ok();
    assert_eq!(login.ready.status.and_then(|s| s.code()), Some(1));
    assert!(
        login
            .ready
            .stderr
            .contains("service ghost failed: no such service"),
        "{:?}",
        login.ready.stderr
    );
    t.logout_clean(login, RUNIT_MANAGER_EXIT);

    // A run file that is not executable: runsv retries it every second;
    // the gate fails at its deadline, naming it.
    let dir = f.runit_service("stuck", "exec sleep 1000", None);
    std::fs::set_permissions(
        dir.join("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    f.core_services("stuck");
    std::fs::write(f.conf.join("runit.conf"), "ready_timeout=2\n").unwrap();
    let login = t.login_ok();
    assert_eq!(login.ready.status.and_then(|s| s.code()), Some(1));
    assert!(
        login.ready.stderr.contains("service stuck failed"),
        "{:?}",
        login.ready.stderr
    );
    assert!(
        login.gating() < Duration::from_secs(8),
        "{:?}",
        login.gating()
    );
    t.logout_clean(login, RUNIT_MANAGER_EXIT);
}

#[test]
fn with_no_core_services_login_is_released_at_once() {
    let f = Fixture::new("rnone");
    f.runit_service("a", "exec sleep 1000", None);
    let mut t = Turnstiled::new(&f, "runit");
    let login = t.login_ok();
    assert_eq!(login.ready.status.and_then(|s| s.code()), Some(0));
    assert!(
        login.gating() < Duration::from_secs(3),
        "{:?}",
        login.gating()
    );
    t.logout_clean(login, RUNIT_MANAGER_EXIT);
}

#[test]
fn twenty_logins_and_logouts_leak_nothing() {
    let f = Fixture::new("rcycle");
    f.runit_service("a", "exec sleep 1000", None);
    f.runit_service(
        "b",
        "rm -f ./up; : > ./up; exec sleep 1000",
        Some("test -e ./up"),
    );
    f.core_services("a b");
    let mut t = Turnstiled::new(&f, "runit");
    let mut manager_fds = None;
    for round in 0..20 {
        let login = t.login_ok();
        assert_eq!(
            login.ready.status.and_then(|s| s.code()),
            Some(0),
            "round {round}: {}",
            login.ready.stderr
        );
        // Which fds, not which inodes or log file. The gate's connection
        // and timer may still be closing as `ready` returns, and a launch
        // may be under way (its exec-status pipe): sockets, pipes and
        // anonymous inodes may exceed the first round's by those three, and
        // one may be closing as it is looked at.
        let fds: Vec<String> = login
            .manager_fds()
            .iter()
            .map(|l| {
                let l = l.replace(&format!("manager-{}.log", round + 1), "manager.log");
                match l.find(":[") {
                    Some(i) => l[..i].to_string(),
                    None => l,
                }
            })
            .collect();
        // An fd closed between listing and reading its link shows no target.
        let transient = |l: &&String| {
            l.ends_with("socket")
                || l.ends_with("anon_inode")
                || l.ends_with("pipe")
                || l.ends_with(" -> ")
        };
        let lasting: Vec<&String> = fds.iter().filter(|l| !transient(l)).collect();
        let passing = fds.iter().filter(transient).count();
        match &manager_fds {
            None => manager_fds = Some((fds.clone(), passing)),
            Some((first, first_passing)) => {
                let first_lasting: Vec<&String> = first.iter().filter(|l| !transient(l)).collect();
                assert_eq!(
                    lasting, first_lasting,
                    "round {round}: the manager's fds changed"
                );
                assert!(
                    passing <= first_passing + 3,
                    "round {round}: sockets, pipes and anonymous fds grew: {fds:?}"
                );
            }
        }
        t.logout_clean(login, RUNIT_MANAGER_EXIT);
        assert!(list_dir(&f.login_dir).is_empty());
    }
    // Tests run side by side in this process: only fds into this fixture
    // can be ours.
    let root = f.root.0.display().to_string();
    let leaked: Vec<String> = open_fds(std::process::id() as i32)
        .into_iter()
        .filter(|l| l.contains(&root))
        .collect();
    assert!(leaked.is_empty(), "the harness leaked {leaked:?}");
}

#[test]
fn two_users_at_once_stay_apart() {
    let alice = Fixture::new("ralice");
    let bob = Fixture::new("rbob");
    for f in [&alice, &bob] {
        f.runit_service(
            "who",
            "echo \"$HOME $TURNSTILE_ENV_DIR\" > ./who; exec sleep 1000",
            Some("test -e ./who"),
        );
        f.core_services("who");
    }
    let mut ta = Turnstiled::new(&alice, "runit");
    let mut tb = Turnstiled::new(&bob, "runit");
    let la = ta.login_ok();
    let lb = tb.login_ok();
    for (f, l) in [(&alice, &la), (&bob, &lb)] {
        assert_eq!(
            l.ready.status.and_then(|s| s.code()),
            Some(0),
            "{}",
            l.log_text()
        );
        let who = std::fs::read_to_string(f.home.join(".config/service/who/who")).unwrap();
        assert_eq!(
            who,
            format!(
                "{} {}\n",
                f.home.display(),
                f.home.join(".config/service-env").display()
            )
        );
    }
    assert_ne!(la.ready_string, lb.ready_string);
    // Bob leaves; Alice's session goes on.
    tb.logout_clean(lb, RUNIT_MANAGER_EXIT);
    let sv = Command::new(alice.bin("sv"))
        .args(["status", "who"])
        .env("SVDIR", alice.home.join(".config/service"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sv.stdout);
    assert!(text.starts_with("run: who: (pid "), "{text}");
    ta.logout_clean(la, RUNIT_MANAGER_EXIT);
}

#[test]
fn env_updates_reach_a_services_next_start() {
    let mut f = Fixture::new("renv");
    f.path = format!("{}:/usr/bin:/bin", f.prefix.join("bin").display()).into();
    let dir = f.runit_service("envy",
        "exec chpst -e \"$TURNSTILE_ENV_DIR\" sh -c 'echo \"FOO=$FOO\" > ./seen.new && mv ./seen.new ./seen; exec sleep 1000'",
        Some("test -e ./seen"),
    );
    f.core_services("envy");
    let mut t = Turnstiled::new(&f, "runit");
    let login = t.login_ok();
    assert_eq!(
        login.ready.status.and_then(|s| s.code()),
        Some(0),
        "{}",
        login.log_text()
    );
    assert_eq!(std::fs::read_to_string(dir.join("seen")).unwrap(), "FOO=\n");

    let update = Command::new(f.bin("turnstile-update-runit-env"))
        .arg("FOO=bar baz")
        .env_clear()
        .env("HOME", &f.home)
        .env("PATH", "/usr/bin:/bin")
        .env("BRAID_TURNSTILE_CONF_DIR", &f.conf)
        .output()
        .unwrap();
    assert!(update.status.success(), "{update:?}");
    assert_eq!(
        std::fs::read_to_string(f.home.join(".config/service-env/FOO")).unwrap(),
        "bar baz\n"
    );
    std::fs::remove_file(dir.join("seen")).unwrap();
    let t0 = Instant::now();
    let restart = Command::new(f.bin("sv"))
        .args(["-w", "10", "restart", "envy"])
        .env("SVDIR", f.home.join(".config/service"))
        .output()
        .unwrap();
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stdout)
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(
        std::fs::read_to_string(dir.join("seen")).unwrap(),
        "FOO=bar baz\n"
    );
    t.logout_clean(login, RUNIT_MANAGER_EXIT);
}

#[test]
fn ready_rejects_what_is_not_a_gate_and_stop_is_idempotent() {
    let f = Fixture::new("rproto");
    let t = Turnstiled::new(&f, "runit");
    for arg in ["boop\n", "", "/nonexistent/gate"] {
        let run = t.run_ready(arg.as_bytes(), Instant::now() + Duration::from_secs(5));
        assert_eq!(run.status.and_then(|s| s.code()), Some(69), "{arg:?}");
        assert!(
            run.stderr.contains("invalid readiness gate"),
            "{}",
            run.stderr
        );
    }
    // Unknown action: the stock script's 32.
    let st = Command::new(f.backend("runit"))
        .arg("frob")
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(32));
    // stop of a process that is gone is harmless; a bad pid is refused.
    let st = Command::new(f.backend("runit"))
        .args(["stop", "999999999"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0));
    let st = Command::new(f.backend("runit"))
        .args(["stop", "-1"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(69));
}

#[test]
fn run_refuses_a_bad_home_or_fifo() {
    let f = Fixture::new("rbad");
    let out = Command::new(f.backend("runit"))
        .args(["run", "/nonexistent/fifo"])
        .arg(&f.login_dir)
        .arg(&f.conf)
        .env("HOME", &f.home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(69));
    let fifo = f.login_dir.join("ready");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = Command::new(f.backend("runit"))
        .arg("run")
        .arg(&fifo)
        .arg(&f.login_dir)
        .arg(&f.conf)
        .env("HOME", "/nonexistent/home")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(70));
}
