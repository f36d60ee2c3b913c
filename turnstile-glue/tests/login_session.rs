//! "The login that just works", end to end with the emulated turnstiled
//! (tests/support), for both backends: a D-Bus-like core service publishes
//! its address before it reports ready, and every service started after
//! login has it, login after login under CPU load; the session has one
//! environment (the env dir, `turnstile-update-runit-env`, `dinitctl
//! setenv`) that reaches services' next starts; graphical services follow
//! `WAYLAND_DISPLAY`; a core service that hangs delays login only up to
//! the gate's timeout and is named.

mod support;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// How long a test waits for something a service does in reaction.
const REACT: Duration = Duration::from_secs(15);

/// Processes that keep both CPUs busy, killed on drop.
struct Load(Vec<Child>);

impl Load {
    fn spin(n: usize) -> Load {
        Load(
            (0..n)
                .map(|_| {
                    Command::new("/bin/sh")
                        .args(["-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("spinner")
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn python3() -> bool {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail("python3 (binds the stand-in bus socket)");
    }
    ok
}

/// The stand-in for dbus-daemon: after a random delay of up to 0.2 s it
/// binds `$XDG_RUNTIME_DIR/bus`, then runs `publish` (which makes the
/// address known), then reports ready on fd 3, then stays.
fn dbus_script(publish: &str) -> String {
    format!(
        "#!/bin/sh\n\
         ms=$(( $(od -An -N1 -tu1 /dev/urandom) % 200 ))\n\
         sleep $(printf '0.%03d' \"$ms\")\n\
         python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \"$XDG_RUNTIME_DIR/bus\"\n\
         {publish}\n\
         echo >&3\n\
         exec sleep 1000\n"
    )
}

/// Writes what a service saw of `VAR` into `file` (atomically), then stays.
fn witness(var: &str, file: &Path) -> String {
    format!(
        "echo \"{var}=${var}\" > {f}.new && mv {f}.new {f}; exec sleep 1000",
        f = file.display()
    )
}

fn wait_for(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {bound:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// ----- runit -----

fn runit_fixture(tag: &str) -> Fixture {
    let mut f = Fixture::new(tag);
    f.path = format!("{}:/usr/bin:/bin", f.prefix.join("bin").display()).into();
    // turnstile-update-runit-env finds the test's runit.conf.
    let conf = f.conf.clone();
    f.extra_env
        .push(("BRAID_TURNSTILE_CONF_DIR".into(), conf.into()));
    f
}

fn env_dir(f: &Fixture) -> PathBuf {
    f.home.join(".config/service-env")
}

#[test]
fn runit_dbus_address_reaches_a_late_service_on_every_login_under_load() {
    if !python3() {
        return;
    }
    let f = runit_fixture("ldbr");
    let dbus = f.runit_service(
        "dbus",
        &dbus_script(
            "turnstile-update-runit-env \
             DBUS_SESSION_BUS_ADDRESS=\"unix:path=$XDG_RUNTIME_DIR/bus\"",
        ),
        None,
    );
    std::fs::write(dbus.join("notification-fd"), "3\n").unwrap();
    f.write(
        ".config/service/turnstile-ready/conf",
        "core_services=\"dbus\"\n",
        0o644,
    );
    let seen = f.home.join("late-seen");
    let late = f.runit_service("late", &witness("DBUS_SESSION_BUS_ADDRESS", &seen), None);
    std::fs::write(late.join("down"), "").unwrap();
    let want = format!(
        "DBUS_SESSION_BUS_ADDRESS=unix:path={}/bus\n",
        f.rundir.display()
    );

    let _load = Load::spin(2);
    let mut t = Turnstiled::new(&f, "runit");
    for round in 0..20 {
        // Every login is a first one: no address left from before.
        let _ = std::fs::remove_file(env_dir(&f).join("DBUS_SESSION_BUS_ADDRESS"));
        let _ = std::fs::remove_file(&seen);
        let login = t.login_ok();
        login.assert_ready_ok();
        assert!(
            is_socket(&f.rundir.join("bus")),
            "round {round}: no bus socket when login was released\n{}",
            login.log_text()
        );
        let up = f.sv(&["-w", "10", "start", "late"]);
        assert!(up.status.success(), "round {round}: {up:?}");
        wait_for("late's witness", REACT, || seen.exists());
        assert_eq!(read(&seen), want, "round {round}\n{}", login.log_text());
        t.logout_clean(login, RUNIT_MANAGER_EXIT);
    }
}

#[test]
fn runit_env_dir_changes_reach_services_without_chpst() {
    let f = runit_fixture("lenvr");
    let seen = f.home.join("seen");
    f.runit_service("plain", &witness("FOO", &seen), None);
    let mut t = Turnstiled::new(&f, "runit");
    let login = t.login_ok();
    login.assert_ready_ok();
    wait_for("first witness", REACT, || seen.exists());
    assert_eq!(read(&seen), "FOO=\n");

    let restart_and_read = |what: &str| {
        std::fs::remove_file(&seen).unwrap();
        let r = f.sv(&["-w", "10", "restart", "plain"]);
        assert!(r.status.success(), "{what}: {r:?}");
        wait_for(what, REACT, || seen.exists());
        read(&seen)
    };
    // Written straight into the directory (a value's trailing blanks go).
    std::fs::write(env_dir(&f).join("FOO"), "from the dir \t\nignored\n").unwrap();
    assert_eq!(restart_and_read("dir write"), "FOO=from the dir\n");
    // Through turnstile-update-runit-env.
    let update = Command::new(f.bin("turnstile-update-runit-env"))
        .arg("FOO=updated")
        .env_clear()
        .env("HOME", &f.home)
        .env("PATH", "/usr/bin:/bin")
        .env("BRAID_TURNSTILE_CONF_DIR", &f.conf)
        .output()
        .unwrap();
    assert!(update.status.success(), "{update:?}");
    assert_eq!(restart_and_read("update-env"), "FOO=updated\n");
    // An empty file unsets.
    std::fs::write(env_dir(&f).join("FOO"), "").unwrap();
    assert_eq!(restart_and_read("empty file"), "FOO=\n");
    t.logout_clean(login, RUNIT_MANAGER_EXIT);
}

#[test]
fn runit_graphical_service_follows_wayland_display() {
    let f = runit_fixture("lgfxr");
    let seen = f.home.join("gui-seen");
    let gui = f.runit_service(
        "gui",
        &format!(
            "echo $$ > {}/gui-pid; {}",
            f.home.display(),
            witness("WAYLAND_DISPLAY", &seen)
        ),
        None,
    );
    std::fs::write(gui.join("dependencies"), "graphical\n").unwrap();
    let mut t = Turnstiled::new(&f, "runit");
    let login = t.login_ok();
    login.assert_ready_ok();
    assert!(!seen.exists(), "gui started without a display");

    std::fs::write(env_dir(&f).join("WAYLAND_DISPLAY"), "wayland-1\n").unwrap();
    wait_for("gui to start", REACT, || seen.exists());
    assert_eq!(read(&seen), "WAYLAND_DISPLAY=wayland-1\n");
    let pid: i32 = read(&f.home.join("gui-pid")).trim().parse().unwrap();

    // Unset: graphical goes down, and gui before it.
    std::fs::write(env_dir(&f).join("WAYLAND_DISPLAY"), "").unwrap();
    wait_for("gui to stop", REACT, || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
    });

    // Set again: it comes back.
    std::fs::remove_file(&seen).unwrap();
    std::fs::write(env_dir(&f).join("WAYLAND_DISPLAY"), "wayland-2\n").unwrap();
    wait_for("gui to start again", REACT, || seen.exists());
    assert_eq!(read(&seen), "WAYLAND_DISPLAY=wayland-2\n");
    t.logout_clean(login, RUNIT_MANAGER_EXIT);
}

#[test]
fn runit_a_hanging_core_service_is_named_at_the_timeout_and_others_run() {
    let f = runit_fixture("lhangr");
    std::fs::write(f.conf.join("runit.conf"), "ready_timeout=2\n").unwrap();
    let hang = f.runit_service("hang", "exec sleep 1000", None);
    std::fs::write(hang.join("notification-fd"), "3\n").unwrap();
    f.runit_service("fine", "exec sleep 1000", None);
    f.runit_service("other", "exec sleep 1000", None);
    f.core_services("fine hang");
    let mut t = Turnstiled::new(&f, "runit");
    let login = t.login_ok();
    let gating = login.gating();
    assert!(
        gating >= Duration::from_secs(2) && gating < Duration::from_secs(10),
        "{gating:?}"
    );
    assert_eq!(login.ready.status.and_then(|s| s.code()), Some(1));
    assert!(
        login.ready.stderr.contains("hang") && login.ready.stderr.contains("not ready within 2 s"),
        "{}",
        login.ready.stderr
    );
    for name in ["fine", "other"] {
        let st = f.sv(&["status", name]);
        let text = String::from_utf8_lossy(&st.stdout);
        assert!(text.starts_with(&format!("run: {name}: (pid ")), "{text}");
    }
    t.logout_clean(login, RUNIT_MANAGER_EXIT);
}

// ----- dinit -----

fn dinit_fixture(tag: &str) -> Fixture {
    let mut f = Fixture::for_dinit(tag);
    f.path = format!("{}:/usr/bin:/bin", f.prefix.join("bin").display()).into();
    f
}

/// A process service running `script` with /bin/sh.
fn sh_service(f: &Fixture, name: &str, script: &str, extra: &str, boot: bool) {
    let path = f.write(&format!("scripts/{name}.sh"), script, 0o755);
    f.dinit_service(
        name,
        &format!(
            "type = process\ncommand = /bin/sh {}\n{extra}",
            path.display()
        ),
        boot,
    );
}

#[test]
fn dinit_dbus_address_reaches_a_late_service_on_every_login_under_load() {
    if !python3() {
        return;
    }
    let f = dinit_fixture("ldbd");
    sh_service(
        &f,
        "dbus",
        &dbus_script(
            "dinitctl --socket-path \"$XDG_RUNTIME_DIR/dinitctl\" setenv \
             DBUS_SESSION_BUS_ADDRESS=\"unix:path=$XDG_RUNTIME_DIR/bus\" >/dev/null",
        ),
        "ready-notification = pipefd:3\nbefore = login.target\n",
        true,
    );
    let seen = f.home.join("late-seen");
    sh_service(
        &f,
        "late",
        &witness("DBUS_SESSION_BUS_ADDRESS", &seen),
        "",
        false,
    );
    let want = format!(
        "DBUS_SESSION_BUS_ADDRESS=unix:path={}/bus\n",
        f.rundir.display()
    );

    let _load = Load::spin(2);
    let mut t = Turnstiled::new(&f, "dinit");
    for round in 0..20 {
        let _ = std::fs::remove_file(&seen);
        let login = t.login_ok();
        login.assert_ready_ok();
        assert!(
            is_socket(&f.rundir.join("bus")),
            "round {round}: no bus socket when login was released\n{}",
            login.log_text()
        );
        let up = f.dinitctl(&["start", "late"]);
        assert!(up.status.success(), "round {round}: {up:?}");
        wait_for("late's witness", REACT, || seen.exists());
        assert_eq!(read(&seen), want, "round {round}\n{}", login.log_text());
        t.logout_clean(login, DINIT_MANAGER_EXIT);
    }
}

#[test]
fn dinit_env_dir_and_setenv_reach_a_services_next_start() {
    let f = dinit_fixture("lenvd");
    let seen = f.home.join("seen");
    sh_service(&f, "plain", &witness("FOO", &seen), "", true);
    let mut t = Turnstiled::new(&f, "dinit");
    let login = t.login_ok();
    login.assert_ready_ok();
    wait_for("first witness", REACT, || seen.exists());
    assert_eq!(read(&seen), "FOO=\n");

    let restart_and_read = |what: &str| {
        std::fs::remove_file(&seen).unwrap();
        let r = f.dinitctl(&["restart", "plain"]);
        assert!(r.status.success(), "{what}: {r:?}");
        wait_for(what, REACT, || seen.exists());
        read(&seen)
    };
    std::fs::write(env_dir(&f).join("FOO"), "from the dir\n").unwrap();
    // The file is closed before dinitctl connects: the daemon sees the
    // change first (the inotify fd is ready before the socket is).
    assert_eq!(restart_and_read("dir write"), "FOO=from the dir\n");
    let set = f.dinitctl(&["setenv", "FOO=set by dinitctl"]);
    assert!(set.status.success(), "{set:?}");
    assert_eq!(restart_and_read("setenv"), "FOO=set by dinitctl\n");
    std::fs::remove_file(env_dir(&f).join("FOO")).unwrap();
    assert_eq!(restart_and_read("removed"), "FOO=\n");
    t.logout_clean(login, DINIT_MANAGER_EXIT);
}

/// dinit-monitor -E runs `graphical-notify` when a display variable is
/// set or unset; braid's backend makes `graphical.target` follow them both
/// ways (turnstile's stock script only ever triggers it): a service that
/// depends on it starts with `WAYLAND_DISPLAY`, stops when both it and
/// `DISPLAY` are unset, and starts again on the next `setenv`.
#[test]
fn dinit_graphical_service_follows_wayland_display() {
    let f = dinit_fixture("lgfxd");
    let seen = f.home.join("gui-seen");
    let pid_file = f.home.join("gui-pid");
    sh_service(
        &f,
        "gui",
        &format!(
            "echo $$ > {}\n{}",
            pid_file.display(),
            witness("WAYLAND_DISPLAY", &seen)
        ),
        "depends-on = graphical.target\n",
        true,
    );
    let mut t = Turnstiled::new(&f, "dinit");
    let login = t.login_ok();
    login.assert_ready_ok();
    assert!(!seen.exists(), "gui started without a display");
    let set = f.dinitctl(&["setenv", "WAYLAND_DISPLAY=wayland-1"]);
    assert!(set.status.success(), "{set:?}");
    wait_for("gui to start", REACT, || seen.exists());
    assert_eq!(read(&seen), "WAYLAND_DISPLAY=wayland-1\n");
    let pid: i32 = read(&pid_file).trim().parse().unwrap();

    let unset = f.dinitctl(&["unsetenv", "WAYLAND_DISPLAY"]);
    assert!(unset.status.success(), "{unset:?}");
    wait_for("gui to stop", REACT, || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
    });
    let stopped = f.dinitctl(&["is-started", "gui"]);
    assert!(
        !stopped.status.success(),
        "{stopped:?}\n{}",
        login.log_text()
    );
    let target = f.dinitctl(&["is-started", "graphical.target"]);
    assert!(!target.status.success(), "{target:?}");

    std::fs::remove_file(&seen).unwrap();
    let again = f.dinitctl(&["setenv", "WAYLAND_DISPLAY=wayland-2"]);
    assert!(again.status.success(), "{again:?}");
    wait_for("gui to start again", REACT, || seen.exists());
    assert_eq!(read(&seen), "WAYLAND_DISPLAY=wayland-2\n");
    t.logout_clean(login, DINIT_MANAGER_EXIT);
}

#[test]
fn dinit_a_hanging_core_service_is_named_at_the_timeout_and_others_run() {
    let f = dinit_fixture("lhangd");
    let mut conf = std::fs::read_to_string(f.conf.join("dinit.conf")).unwrap();
    conf.push_str("ready_timeout=2\n");
    std::fs::write(f.conf.join("dinit.conf"), conf).unwrap();
    f.dinit_service(
        "hang",
        "type = process\ncommand = /bin/sleep 1000\nready-notification = pipefd:3\n\
         before = login.target\nstart-timeout = 0\n\
         options = start-interruptible\n",
        true,
    );
    f.dinit_service("other", "type = process\ncommand = /bin/sleep 1000\n", true);
    let mut t = Turnstiled::new(&f, "dinit");
    let login = t.login_ok();
    let gating = login.gating();
    assert!(
        gating >= Duration::from_secs(2) && gating < Duration::from_secs(10),
        "{gating:?}"
    );
    assert_eq!(login.ready.status.and_then(|s| s.code()), Some(1));
    assert!(
        login.ready.stderr.contains("hang") && login.ready.stderr.contains("not ready within 2 s"),
        "{}",
        login.ready.stderr
    );
    let other = f.dinitctl(&["is-started", "other"]);
    assert!(other.status.success(), "{other:?}");
    t.logout_clean(login, DINIT_MANAGER_EXIT);
}
