//! What the backend tests write and run in a user's world: runit service
//! directories and dinit service files under HOME, each backend's client
//! command, and the checks every login test makes.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use super::{Fixture, Login, Turnstiled};

/// How long a logout may take.
pub const STOP_BOUND: Duration = Duration::from_secs(20);

/// The manager's exit status after `stop`: runsvdir exits 111 on SIGHUP.
pub const RUNIT_MANAGER_EXIT: i32 = 111;
/// The manager's exit status after `stop`: dinit exits 0.
pub const DINIT_MANAGER_EXIT: i32 = 0;

impl Fixture {
    /// A fixture whose dinit.conf keeps the session to `~/.config/dinit.d`.
    pub fn for_dinit(tag: &str) -> Fixture {
        let f = Fixture::new(tag);
        std::fs::write(
            f.conf.join("dinit.conf"),
            "services_dir1=\"${HOME}/.config/dinit.d\"\nsystem_boot_dir=\"${HOME}/no-system-boot\"\n",
        )
        .unwrap();
        f
    }

    /// Writes `~/.config/dinit.d/NAME`; `boot` also links it into boot.d.
    pub fn dinit_service(&self, name: &str, text: &str, boot: bool) {
        self.write(&format!(".config/dinit.d/{name}"), text, 0o644);
        if boot {
            let link = self.home.join(".config/dinit.d/boot.d").join(name);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(format!("../{name}"), link).unwrap();
        }
    }

    /// Writes `~/.config/service/NAME/run` (and `check` if given); returns
    /// the service directory.
    pub fn runit_service(&self, name: &str, run: &str, check: Option<&str>) -> PathBuf {
        self.write(
            &format!(".config/service/{name}/run"),
            &format!("#!/bin/sh\n{run}\n"),
            0o755,
        );
        if let Some(check) = check {
            self.write(
                &format!(".config/service/{name}/check"),
                &format!("#!/bin/sh\n{check}\n"),
                0o755,
            );
        }
        self.home.join(".config/service").join(name)
    }

    /// The runit backend's `core_services` (turnstile-ready/conf).
    pub fn core_services(&self, names: &str) {
        self.write(
            ".config/service/turnstile-ready/conf",
            &format!("core_services=\"{names}\"\n"),
            0o644,
        );
    }

    /// braid's `dinitctl` on the session's socket.
    pub fn dinitctl(&self, args: &[&str]) -> Output {
        Command::new(self.bin("dinitctl"))
            .arg("--socket-path")
            .arg(self.rundir.join("dinitctl"))
            .args(args)
            .output()
            .unwrap()
    }

    /// braid's `sv` with `SVDIR` at the session's services.
    pub fn sv(&self, args: &[&str]) -> Output {
        Command::new(self.bin("sv"))
            .args(args)
            .env("SVDIR", self.home.join(".config/service"))
            .output()
            .unwrap()
    }
}

impl Turnstiled<'_> {
    /// Logs in, or fails the test with the harness's reason.
    pub fn login_ok(&mut self) -> Login {
        match self.login() {
            Ok(l) => l,
            Err(e) => panic!("login failed: {e:?}"),
        }
    }

    /// Logs out and asserts a clean stop: `stop` exits 0, the manager exits
    /// with `manager_code`, and nothing is left behind.
    pub fn logout_clean(&self, login: Login, manager_code: i32) {
        let log = login.log_text();
        let out = self.logout(login, STOP_BOUND);
        assert_eq!(out.stop_status.and_then(|s| s.code()), Some(0), "{log}");
        assert_eq!(
            out.manager_status.and_then(|s| s.code()),
            Some(manager_code),
            "{log}"
        );
        assert!(
            out.leftovers.is_empty(),
            "left behind: {:?}\n{log}",
            out.leftovers
        );
    }
}

impl Login {
    /// Asserts that `ready` succeeded.
    pub fn assert_ready_ok(&self) {
        assert_eq!(
            self.ready.status.and_then(|s| s.code()),
            Some(0),
            "ready: {}\n{}",
            self.ready.stderr,
            self.log_text()
        );
    }

    /// Asserts that `ready` succeeded with the gate's path as the ready
    /// string, and that login was held at least `at_least` and less than
    /// `below`.
    pub fn assert_gated(&self, at_least: Duration, below: Duration) {
        assert_eq!(
            self.ready_string,
            self.srvdir.join("gate").as_os_str().as_encoded_bytes(),
            "{}",
            self.log_text()
        );
        self.assert_ready_ok();
        let gating = self.gating();
        assert!(
            gating >= at_least,
            "released after {gating:?}, before {at_least:?}\n{}",
            self.log_text()
        );
        assert!(
            gating < below,
            "released after {gating:?}, not before {below:?}\n{}",
            self.log_text()
        );
    }
}
