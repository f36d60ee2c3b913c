//! braid as turnstile's `dinit` backend, driven by the emulated turnstiled
//! (tests/support): gating on the services ordered before `login.target`,
//! failure reports, stop, repeated logins, two users, and the generated
//! services at work (`graphical.target` triggered through `dinitctl`).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const STOP_BOUND: Duration = Duration::from_secs(20);

/// A fixture whose dinit.conf keeps the session to `~/.config/dinit.d`.
fn fixture(tag: &str) -> Fixture {
    let f = Fixture::new(tag);
    std::fs::write(
        f.conf.join("dinit.conf"),
        "services_dir1=\"${HOME}/.config/dinit.d\"\nsystem_boot_dir=\"${HOME}/no-system-boot\"\n",
    )
    .unwrap();
    f
}

/// Writes `~/.config/dinit.d/NAME`; `boot` also links it into boot.d.
fn service(f: &Fixture, name: &str, text: &str, boot: bool) {
    f.write(&format!(".config/dinit.d/{name}"), text, 0o644);
    if boot {
        let link = f.home.join(".config/dinit.d/boot.d").join(name);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(format!("../{name}"), link).unwrap();
    }
}

fn login(t: &mut Turnstiled) -> Login {
    match t.login() {
        Ok(l) => l,
        Err(e) => panic!("login failed: {e:?}"),
    }
}

fn assert_clean_logout(t: &Turnstiled, login: Login) {
    let log = login.log_text();
    let out = t.logout(login, STOP_BOUND);
    assert_eq!(out.stop_status.and_then(|s| s.code()), Some(0), "{log}");
    assert_eq!(out.manager_status.and_then(|s| s.code()), Some(0), "{log}");
    assert!(
        out.leftovers.is_empty(),
        "left behind: {:?}\n{log}",
        out.leftovers
    );
}

fn dinitctl(f: &Fixture, args: &[&str]) -> std::process::Output {
    Command::new(f.bin("dinitctl"))
        .arg("--socket-path")
        .arg(f.rundir.join("dinitctl"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn login_waits_for_the_services_ordered_before_login_target() {
    let f = fixture("dgate");
    let marker = f.home.join("slow-ready");
    service(
        &f,
        "slow",
        &format!(
            "type = process\ncommand = /bin/sh -c \"sleep 1; : > {}; echo >&3; exec sleep 1000\"\n\
             ready-notification = pipefd:3\nbefore = login.target\n",
            marker.display()
        ),
        true,
    );
    // Started at boot, not ordered before login.target: not waited for.
    service(
        &f,
        "lazy",
        "type = process\ncommand = /bin/sh -c \"sleep 8; echo >&3; exec sleep 1000\"\n\
         ready-notification = pipefd:3\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    let login = login(&mut t);
    let log = login.log_text();
    assert_eq!(
        login.ready_string,
        login.srvdir.join("gate").as_os_str().as_encoded_bytes()
    );
    assert_eq!(
        login.ready.status.and_then(|s| s.code()),
        Some(0),
        "{}\n{log}",
        login.ready.stderr
    );
    assert!(
        login.gating() >= Duration::from_secs(1),
        "released after {:?}",
        login.gating()
    );
    assert!(
        login.gating() < Duration::from_secs(6),
        "{:?}",
        login.gating()
    );
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
    assert_clean_logout(&t, login);
}

#[test]
fn a_failing_service_before_login_target_fails_ready_naming_it() {
    let f = fixture("dfail");
    service(
        &f,
        "broken",
        "type = process\ncommand = /bin/sh -c \"exit 3\"\nready-notification = pipefd:3\n\
         before = login.target\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    let login = login(&mut t);
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
    assert_clean_logout(&t, login);
}

#[test]
fn the_session_answers_dinitctl_and_graphical_target_follows_display() {
    let f = fixture("dctl");
    service(
        &f,
        "sleeper",
        "type = process\ncommand = /bin/sleep 1000\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    let login = login(&mut t);
    assert_eq!(
        login.ready.status.and_then(|s| s.code()),
        Some(0),
        "{}",
        login.log_text()
    );
    let list = dinitctl(&f, &["list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("[{+}     ] sleeper (pid: "), "{text}");
    assert!(text.contains("[{ }<<   ] graphical.target"), "{text}");

    let set = dinitctl(&f, &["setenv", "DISPLAY=:7"]);
    assert!(set.status.success(), "{set:?}");
    // graphical.monitor (dinit-monitor -E) triggers graphical.target.
    let started = dinitctl(&f, &["start", "graphical.target"]);
    assert!(
        started.status.success(),
        "{started:?}\n{}",
        login.log_text()
    );
    let status = dinitctl(&f, &["is-started", "graphical.target"]);
    assert!(status.status.success());
    assert_clean_logout(&t, login);
}

#[test]
fn twenty_logins_and_logouts_leak_nothing() {
    let f = fixture("dcycle");
    service(
        &f,
        "core",
        "type = process\ncommand = /bin/sleep 1000\nbefore = login.target\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    for round in 0..20 {
        let login = login(&mut t);
        assert_eq!(
            login.ready.status.and_then(|s| s.code()),
            Some(0),
            "round {round}: {}",
            login.ready.stderr
        );
        assert_clean_logout(&t, login);
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
    let alice = fixture("dalice");
    let bob = fixture("dbob");
    for f in [&alice, &bob] {
        service(
            f,
            "who",
            "type = scripted\ncommand = /bin/sh -c \"echo $HOME > $HOME/who\"\n\
             before = login.target\n",
            true,
        );
    }
    let mut ta = Turnstiled::new(&alice, "dinit");
    let mut tb = Turnstiled::new(&bob, "dinit");
    let la = login(&mut ta);
    let lb = login(&mut tb);
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
    assert_clean_logout(&tb, lb);
    let list = dinitctl(&alice, &["is-started", "login.target"]);
    assert!(list.status.success(), "Alice's session went on");
    assert_clean_logout(&ta, la);
}

#[test]
fn ready_and_stop_reject_bad_arguments() {
    let f = fixture("dproto");
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
