//! `ioprio`, `oom-score-adj` and `run-in-cgroup` (with `--cgroup-path`)
//! against the real dinit: the running process has what was asked for,
//! under both daemons, and a setting that cannot be applied (or parsed)
//! fails the same way, with the same words.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use daemon_support::Step::Ctl;
use daemon_support::{compare, setup, Daemon, Impl, Peers};
use nix::libc;

/// The main pid of a started service, from `dinitctl status`.
fn main_pid(daemon: &Daemon, name: &str) -> i32 {
    daemon.wait_state(name, "STARTED");
    let out = daemon.ctl(true, &["status", name]);
    out.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Process ID: "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{:?}: no pid in {out:?}", daemon.imp))
}

/// The process's I/O priority as `ioprio_get` reports it.
fn io_priority(pid: i32) -> libc::c_long {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: ioprio_get only reads its integer arguments.
    let v = unsafe {
        libc::syscall(
            libc::SYS_ioprio_get,
            IOPRIO_WHO_PROCESS,
            libc::c_long::from(pid),
        )
    };
    assert!(
        v >= 0,
        "ioprio_get({pid}): {}",
        std::io::Error::last_os_error()
    );
    v
}

fn oom_score_adj(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .to_string()
}

/// The path of the process's unified-hierarchy cgroup (`0::` line).
fn unified_cgroup_of(pid: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

#[test]
fn io_priority_and_oom_score_adj_are_applied() {
    let Some(peers) = setup() else {
        return;
    };
    let root = nix::unistd::geteuid().is_root();
    // (setting, the value ioprio_get returns: class << 13 | level)
    let mut cases = vec![
        ("best-effort:5", 2 << 13 | 5),
        ("idle", 3 << 13),
        // "none": no class of its own (dinit sets 0).
        ("none", 0),
    ];
    if root {
        cases.push(("realtime:2", 1 << 13 | 2));
    } else {
        eprintln!("skipped: ioprio = realtime needs root (CAP_SYS_ADMIN)");
    }
    let files: Vec<(String, String)> = cases
        .iter()
        .enumerate()
        .map(|(i, (setting, _))| {
            (
                format!("p{i}"),
                format!(
                    "type = process\ncommand = /bin/sleep 1000\nioprio = {setting}\noom-score-adj = {}\n",
                    500 + i
                ),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    for imp in [Impl::Real, Impl::Braid] {
        let daemon = Daemon::start(&peers, imp, &[("boot", "type = internal\n")], &[]);
        daemon.write(&files);
        for (i, (setting, want)) in cases.iter().enumerate() {
            let name = format!("p{i}");
            let out = daemon.ctl(true, &["start", &name]);
            assert_eq!(out.code, 0, "{imp:?}: start {name}: {out:?}");
            let pid = main_pid(&daemon, &name);
            assert_eq!(io_priority(pid), *want, "{imp:?}: ioprio = {setting}");
            assert_eq!(
                oom_score_adj(pid),
                (500 + i).to_string(),
                "{imp:?}: {setting}"
            );
        }
    }
}

#[test]
fn bad_values_fail_the_load_alike() {
    let files = [
        ("boot", "type = internal\n"),
        (
            "io-level",
            "type = process\ncommand = /bin/sleep 1\nioprio = best-effort:8\n",
        ),
        (
            "io-class",
            "type = process\ncommand = /bin/sleep 1\nioprio = fast\n",
        ),
        (
            "io-rt",
            "type = process\ncommand = /bin/sleep 1\nioprio = realtime:x\n",
        ),
        (
            "oom-high",
            "type = process\ncommand = /bin/sleep 1\noom-score-adj = 1001\n",
        ),
        (
            "oom-low",
            "type = process\ncommand = /bin/sleep 1\n\noom-score-adj = -1001\n",
        ),
        (
            "oom-text",
            "type = process\ncommand = /bin/sleep 1\noom-score-adj = lots\n",
        ),
    ];
    compare(
        &files,
        &[],
        &[
            Ctl(&["start", "io-level"]),
            Ctl(&["start", "io-class"]),
            Ctl(&["start", "io-rt"]),
            Ctl(&["start", "oom-high"]),
            Ctl(&["start", "oom-low"]),
            Ctl(&["start", "oom-text"]),
        ],
    );
}

/// The console of a daemon (`imp`) started on `files` with `name` on its
/// command line, run as an unprivileged user (nobody when the test runs as
/// root); it exits once nothing runs.
fn unprivileged_console(peers: &Peers, imp: Impl, files: &[(&str, &str)], name: &str) -> String {
    use std::os::unix::process::CommandExt;
    let dir = braid_tests::TempDir::new("prio-unpriv");
    let services = dir.join("sd");
    std::fs::create_dir(&services).unwrap();
    for (file, text) in files {
        std::fs::write(services.join(file), text).unwrap();
    }
    // Run from a copy in the test's directory: the daemon runs as nobody
    // below, and the programs' own paths may not be searchable for nobody.
    let program = match imp {
        Impl::Real => braid_tests::copy_for_other_user(&peers.real.join("dinit"), dir.path()),
        Impl::Braid => {
            let braid = braid_tests::copy_for_other_user(&peers.braid, dir.path());
            let link = dir.join("dinit");
            std::os::unix::fs::symlink(braid, &link).unwrap();
            link
        }
    };
    let mut c = std::process::Command::new(program);
    c.args(["-u", "-d"])
        .arg(&services)
        .arg("-p")
        .arg(dir.join("socket"))
        .arg(name)
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .stdin(std::process::Stdio::null());
    if nix::unistd::geteuid().is_root() {
        const NOBODY: u32 = 65534;
        let mut paths = vec![dir.path().to_path_buf(), services.clone()];
        paths.extend(files.iter().map(|(f, _)| services.join(f)));
        for p in &paths {
            std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        c.uid(NOBODY).gid(NOBODY);
    }
    let out = daemon_support::run_bounded(c);
    assert_eq!(out.code, 0, "{imp:?}: {out:?}");
    out.stdout
        .lines()
        .filter(|l| !l.contains("cannot determine cgroup root path"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(&dir.path().to_string_lossy().into_owned(), "$DIR")
}

#[test]
fn settings_that_need_privilege_fail_the_start_alike() {
    let Some(peers) = setup() else {
        return;
    };
    let files = [
        // Lowering the score needs CAP_SYS_RESOURCE: the write fails.
        (
            "lowoom",
            "type = process\ncommand = /bin/sleep 1000\noom-score-adj = -500\n",
        ),
        // The realtime class needs CAP_SYS_ADMIN.
        (
            "rtio",
            "type = process\ncommand = /bin/sleep 1000\nioprio = realtime:0\n",
        ),
    ];
    for (name, _) in files {
        let real = unprivileged_console(&peers, Impl::Real, &files, name);
        assert!(
            real.contains("execution failed - setting I/O priority"),
            "the real dinit applied {name} unprivileged: {real}"
        );
        let braid = unprivileged_console(&peers, Impl::Braid, &files, name);
        assert_eq!(braid, real, "{name}: braid (left), real dinit (right)");
    }
}

/// A cgroup made for one test under the test's own, in the unified
/// hierarchy; removed on drop (after the daemons, declared later, are gone).
struct TestCgroup {
    /// Its directory.
    dir: PathBuf,
    /// Its path as `run-in-cgroup` names it (under `/sys/fs/cgroup`).
    setting: String,
    /// Its path as `/proc/PID/cgroup` shows it.
    shown: String,
}

impl TestCgroup {
    /// `None` (after saying why) where no cgroup can be made here.
    fn new(tag: &str) -> Option<TestCgroup> {
        let skip = |why: String| {
            eprintln!("skipped: {why}");
            None
        };
        let Some(own) = unified_cgroup_of("self") else {
            return skip("no unified cgroup hierarchy in /proc/self/cgroup".into());
        };
        // Pure cgroup v2 is mounted on /sys/fs/cgroup; the hybrid layout
        // puts it under /sys/fs/cgroup/unified.
        let mount = ["", "unified"].into_iter().find(|m| {
            Path::new("/sys/fs/cgroup")
                .join(m)
                .join("cgroup.procs")
                .exists()
                && is_cgroup2(&Path::new("/sys/fs/cgroup").join(m))
        });
        let Some(mount) = mount else {
            return skip("cgroup2 is not mounted under /sys/fs/cgroup".into());
        };
        let name = format!("braid-test-{tag}-{}", std::process::id());
        let shown = format!("{}/{name}", own.trim_end_matches('/'));
        let setting = if mount.is_empty() {
            shown.clone()
        } else {
            format!("/{mount}{shown}")
        };
        let dir = PathBuf::from(format!("/sys/fs/cgroup{setting}"));
        if let Err(e) = std::fs::create_dir(&dir) {
            return skip(format!("cannot create cgroup {}: {e}", dir.display()));
        }
        Some(TestCgroup {
            dir,
            setting,
            shown,
        })
    }
}

fn is_cgroup2(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Its processes have been killed; the kernel may take a moment to
        // see them gone (EBUSY until then).
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `name` on each daemon and returns where its process ended up.
fn cgroup_of_service(peers: &Peers, imp: Impl, files: &[(&str, &str)], args: &[&str]) -> String {
    let daemon = Daemon::start(peers, imp, files, args);
    let out = daemon.ctl(true, &["start", "svc"]);
    assert_eq!(out.code, 0, "{imp:?}: start svc: {out:?}");
    let pid = main_pid(&daemon, "svc");
    unified_cgroup_of(&pid.to_string()).expect("the service's cgroup")
}

#[test]
fn run_in_cgroup_places_the_process() {
    let Some(peers) = setup() else {
        return;
    };
    let Some(cg) = TestCgroup::new("abs") else {
        return;
    };
    let text = format!(
        "type = process\ncommand = /bin/sleep 1000\nrun-in-cgroup = {}\n",
        cg.setting
    );
    let files = [("boot", "type = internal\n"), ("svc", text.as_str())];
    for imp in [Impl::Real, Impl::Braid] {
        assert_eq!(
            cgroup_of_service(&peers, imp, &files, &[]),
            cg.shown,
            "{imp:?}"
        );
    }
}

#[test]
fn cgroup_path_is_the_base_of_a_relative_cgroup() {
    let Some(peers) = setup() else {
        return;
    };
    let Some(cg) = TestCgroup::new("rel") else {
        return;
    };
    let (base, leaf) = cg.setting.rsplit_once('/').unwrap();
    // Relative to /sys/fs/cgroup, as dinit resolves it.
    let base = base.trim_start_matches('/');
    let text = format!("type = process\ncommand = /bin/sleep 1000\nrun-in-cgroup = {leaf}\n");
    let files = [("boot", "type = internal\n"), ("svc", text.as_str())];
    for imp in [Impl::Real, Impl::Braid] {
        let got = cgroup_of_service(&peers, imp, &files, &["--cgroup-path", base]);
        assert_eq!(got, cg.shown, "{imp:?}");
    }
}

#[test]
fn a_cgroup_that_cannot_be_entered_fails_the_start() {
    let files = [
        ("boot", "type = internal\n"),
        (
            "missing",
            "type = process\ncommand = /bin/sleep 1000\nrun-in-cgroup = /braid-no-such-cgroup/x\n",
        ),
        // Relative, with a base that does not exist.
        (
            "relative",
            "type = process\ncommand = /bin/sleep 1000\nrun-in-cgroup = x\n",
        ),
    ];
    let steps = [Ctl(&["start", "missing"]), Ctl(&["start", "relative"])];
    compare(&files, &["-b", "braid-no-such-base"], &steps);
}

#[test]
fn a_relative_cgroup_with_no_base_fails_as_dinit_does() {
    // Without -b, the base is the daemon's own cgroup when /proc/self/cgroup
    // names exactly one; otherwise (as on hybrid hosts) the start fails.
    // Either way both daemons must agree.
    let files = [
        ("boot", "type = internal\n"),
        (
            "relative",
            "type = process\ncommand = /bin/sleep 1000\nrun-in-cgroup = braid-no-such-cgroup\n",
        ),
    ];
    compare(&files, &[], &[Ctl(&["start", "relative"])]);
}
