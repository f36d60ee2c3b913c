//! `runsv DIR` run directly, braid's next to Debian's: usage, a directory
//! that is not there, a second supervisor on a locked directory, and the
//! exit sequence on `x` and on SIGTERM (exit 0 once the service and its
//! logger are down).

mod runit_support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use braid_runit::supervise::RunState::Run;
use runit_support::{braid_bin, ready, state_of, wait_for, write_exec, TempDir, REAL_RUNSV};

/// `runsv` as Debian's and as braid's (a symlink named `runsv`).
fn programs(scratch: &TempDir) -> [PathBuf; 2] {
    let link = scratch.0.join("bin/runsv");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(braid_bin().unwrap(), &link).unwrap();
    [PathBuf::from(REAL_RUNSV), link]
}

fn output(program: &Path, args: &[&str], cwd: &Path) -> (String, Option<i32>) {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// A child killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &Path, dir: &Path) -> Running {
    Running(
        Command::new(program)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn wait_exit(child: &mut Running) -> Option<i32> {
    let mut code = None;
    wait_for("runsv to exit", Duration::from_secs(15), || {
        match child.0.try_wait() {
            Ok(Some(status)) => {
                code = status.code();
                true
            }
            _ => false,
        }
    });
    code
}

#[test]
fn usage_and_fatal_errors_match() {
    if !ready() {
        return;
    }
    let scratch = TempDir::new("runsv-usage");
    let [real, ours] = programs(&scratch);
    for args in [&[][..], &["a", "b"][..], &["/nonexistent/dir"][..]] {
        let r = output(&real, args, &scratch.0);
        let o = output(&ours, args, &scratch.0);
        let r = (r.0.replace(REAL_RUNSV, "RUNSV"), r.1);
        let o = (o.0.replace(ours.to_str().unwrap(), "RUNSV"), o.1);
        assert_eq!(r, o, "runsv {args:?}");
    }
}

#[test]
fn second_supervisor_is_refused_and_x_exits() {
    if !ready() {
        return;
    }
    let scratch = TempDir::new("runsv-x");
    let programs = programs(&scratch);
    for (i, program) in programs.iter().enumerate() {
        let dir = scratch.0.join(format!("s{i}"));
        write_exec(&dir.join("run"), "echo started\nexec sleep 1000");
        write_exec(&dir.join("log/run"), "exec cat >>log.txt");
        let mut first = spawn(program, &dir);
        wait_for(
            "run",
            Duration::from_secs(15),
            || matches!(state_of(&dir.join("supervise")), Some((Run, p)) if p != 0),
        );
        let (err, code) = output(program, &[dir.to_str().unwrap()], &scratch.0);
        assert_eq!(
            (err, code),
            (
                format!(
                    "runsv {}: fatal: unable to lock supervise/lock: temporary failure\n",
                    dir.display()
                ),
                Some(111)
            ),
            "{program:?}"
        );
        // x: service down, logger down, exit 0; the log got the line.
        std::fs::write(dir.join("supervise/control"), "x").unwrap();
        assert_eq!(wait_exit(&mut first), Some(0), "{program:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join("log/log.txt")).unwrap(),
            "started\n"
        );

        // SIGTERM is x.
        let mut again = spawn(program, &dir);
        wait_for("run again", Duration::from_secs(15), || {
            matches!(state_of(&dir.join("supervise")), Some((Run, p)) if p != 0)
                && std::fs::read_to_string(dir.join("log/log.txt"))
                    .is_ok_and(|t| t == "started\nstarted\n")
        });
        let pid = nix::unistd::Pid::from_raw(again.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        assert_eq!(wait_exit(&mut again), Some(0), "{program:?}");
    }
}
