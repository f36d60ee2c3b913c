//! turnstile's own backend scripts (`backend/runit`, `backend/dinit` of
//! chimera-linux/turnstile) running on braid's personalities, installed
//! under the names the scripts call (`runsvdir`, `sv`, `pause`, `dinit`,
//! `dinitctl`, `dinit-monitor`).
//!
//! A local check, not part of the normal run: turnstile's scripts are not
//! in this repository. Point `BRAID_TURNSTILE_SRC` at a turnstile checkout
//! and run `cargo test --test turnstile_stock_scripts -- --ignored`. The
//! scripts are copied into the test's temp dir with their `/etc/profile`
//! sourcing cut (a host profile resets PATH and would pick the host's
//! runit instead of braid's); nothing else is changed.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use support::*;

/// The stock script `name`, copied into the fixture; `None` (skipped)
/// without a turnstile checkout.
fn stock_script(f: &Fixture, name: &str) -> Option<PathBuf> {
    let Some(src) = std::env::var_os("BRAID_TURNSTILE_SRC") else {
        eprintln!("skipped: set BRAID_TURNSTILE_SRC to a turnstile checkout");
        return None;
    };
    let text = std::fs::read_to_string(PathBuf::from(src).join("backend").join(name))
        .expect("reading the stock script");
    let dir = f.root.0.join("stock");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text.replace("/etc/profile", "/nonexistent/profile")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(path)
}

fn braid_first(f: &Fixture) -> std::ffi::OsString {
    format!("{}:/usr/bin:/bin", f.prefix.join("bin").display()).into()
}

#[test]
#[ignore = "local check: needs BRAID_TURNSTILE_SRC (a turnstile checkout)"]
fn the_stock_runit_backend_runs_on_braid() {
    let mut f = Fixture::new("srunit");
    f.path = braid_first(&f);
    let Some(script) = stock_script(&f, "runit") else {
        return;
    };
    f.write(
        ".config/service/slow/run",
        "#!/bin/sh\nrm -f ./up; sleep 1; : > ./up; exec sleep 1000\n",
        0o755,
    );
    f.write(
        ".config/service/slow/check",
        "#!/bin/sh\ntest -e ./up\n",
        0o755,
    );
    f.write(
        ".config/service/turnstile-ready/conf",
        "core_services=\"slow\"\n",
        0o644,
    );
    let mut t = Turnstiled::new(&f, "runit").with_backend_path(script);
    t.helper_path = braid_first(&f);
    let login = t.login().expect("login");
    let log = login.log_text();
    // The stock ready string: the ready service's directory, no NUL.
    assert_eq!(
        login.ready_string,
        f.home
            .join(".config/service/turnstile-ready")
            .as_os_str()
            .as_encoded_bytes()
    );
    assert_eq!(
        login.ready.status.and_then(|s| s.code()),
        Some(0),
        "{}\n{log}",
        login.ready.stderr
    );
    // The stock backend gates before writing the FIFO (sv start waits
    // for ./check).
    assert!(login.t_fifo - login.t0 >= Duration::from_secs(1), "{log}");
    assert!(f.home.join(".config/service/slow/up").exists());
    let out = t.logout(login, Duration::from_secs(20));
    assert_eq!(
        out.manager_status.and_then(|s| s.code()),
        Some(111),
        "{log}"
    );
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
}

#[test]
#[ignore = "local check: needs BRAID_TURNSTILE_SRC (a turnstile checkout)"]
fn the_stock_dinit_backend_runs_on_braid() {
    let mut f = Fixture::new("sdinit");
    f.path = braid_first(&f);
    let Some(script) = stock_script(&f, "dinit") else {
        return;
    };
    std::fs::write(
        f.conf.join("dinit.conf"),
        "services_dir1=\"${HOME}/.config/dinit.d\"\nsystem_boot_dir=\"${HOME}/none\"\n",
    )
    .unwrap();
    let marker = f.home.join("slow-ready");
    f.write(
        ".config/dinit.d/slow",
        &format!(
            "type = process\ncommand = /bin/sh -c \"sleep 1; : > {}; echo >&3; exec sleep 1000\"\n\
             ready-notification = pipefd:3\nbefore = login.target\n",
            marker.display()
        ),
        0o644,
    );
    std::fs::create_dir_all(f.home.join(".config/dinit.d/boot.d")).unwrap();
    std::os::unix::fs::symlink("../slow", f.home.join(".config/dinit.d/boot.d/slow")).unwrap();
    let mut t = Turnstiled::new(&f, "dinit").with_backend_path(script);
    t.helper_path = braid_first(&f);
    let login = t.login().expect("login");
    let log = login.log_text();
    // dinit's ready string: its control socket.
    assert_eq!(
        login.ready_string,
        f.rundir.join("dinitctl").as_os_str().as_encoded_bytes()
    );
    assert_eq!(
        login.ready.status.and_then(|s| s.code()),
        Some(0),
        "{}\n{log}",
        login.ready.stderr
    );
    assert!(
        marker.exists(),
        "login.target started before slow was ready ({:?})\n{log}",
        login.gating()
    );
    let out = t.logout(login, Duration::from_secs(20));
    assert_eq!(out.manager_status.and_then(|s| s.code()), Some(0), "{log}");
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
}
