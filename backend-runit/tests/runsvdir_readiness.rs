//! Readiness in runit service directories (s6's `notification-fd` file)
//! under braid's runsvdir, seen through Debian's `sv` and braid's: until
//! the service writes to its notification fd it is shown down and wanted
//! up, `sv start` waits for it (and times out for a service that never
//! says it is ready), and a service depending on it starts only after.

mod runit_support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use runit_support::{braid_bin, normalize, ready, wait_for, write_exec, Kind, Tree, REAL_SV};

const LIMIT: Duration = Duration::from_secs(15);

/// sv's poll interval is 420 ms: a wait this long gives an `sv start` that
/// does not wait for readiness the chance to return.
const LONGER_THAN_SV_POLLS: Duration = Duration::from_millis(1000);

/// An sv run in the background, killed on drop.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sv_command(tree: &Tree, sv: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(sv);
    cmd.args(args)
        .current_dir(tree.root())
        .env("SVDIR", tree.svdir())
        .env_remove("SVWAIT")
        .stdin(Stdio::null());
    cmd
}

fn sv(tree: &Tree, sv: &Path, args: &[&str]) -> (String, Option<i32>) {
    let out = sv_command(tree, sv, args).output().expect("run sv");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

fn scenario(sv_name: &str) {
    let tree = Tree::start(Kind::Braid, &format!("ready-{sv_name}"), |svc| {
        write_exec(
            &svc.join("r/run"),
            "touch ../../r-running\nwhile [ ! -e ../../go ]; do sleep 0.02; done\necho >&3\nexec sleep 1000",
        );
        fs::write(svc.join("r/notification-fd"), "3\n").unwrap();
        write_exec(
            &svc.join("app/run"),
            "touch ../../app-started\nexec sleep 1000",
        );
        fs::write(svc.join("app/dependencies"), "r\n").unwrap();
        write_exec(&svc.join("never/run"), "exec sleep 1000");
        fs::write(svc.join("never/notification-fd"), "5\n").unwrap();
    });
    let program: PathBuf = if sv_name == "debian" {
        PathBuf::from(REAL_SV)
    } else {
        let link = tree.root().join("bin/sv");
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(braid_bin().unwrap(), &link).unwrap();
        link
    };
    let root = tree.root().to_path_buf();
    wait_for("r to run", LIMIT, || root.join("r-running").exists());

    // Running, not ready: down and wanted up, as a service between two
    // runs is shown.
    let (status, code) = sv(&tree, &program, &["status", "r"]);
    assert_eq!(
        normalize(&status).0,
        "down: r: Ns, normally up, want up\n",
        "{sv_name}"
    );
    assert_eq!(code, Some(0));

    let mut start = Background(
        sv_command(&tree, &program, &["-w", "10", "start", "r"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sv"),
    );
    std::thread::sleep(LONGER_THAN_SV_POLLS);
    assert!(
        start.0.try_wait().unwrap().is_none(),
        "{sv_name}: sv start returned before r was ready"
    );
    assert!(
        !root.join("app-started").exists(),
        "{sv_name}: app started before r was ready"
    );

    fs::write(root.join("go"), "").unwrap();
    let mut out = None;
    wait_for("sv start to return", LIMIT, || {
        out = start.0.try_wait().unwrap();
        out.is_some()
    });
    let stdout = std::io::read_to_string(start.0.stdout.take().unwrap()).unwrap();
    assert_eq!(
        normalize(&stdout).0,
        "ok: run: r: (pid P) Ns\n",
        "{sv_name}"
    );
    assert_eq!(out.unwrap().code(), Some(0));
    wait_for("app to start after r", LIMIT, || {
        root.join("app-started").exists()
    });

    // Never ready: sv start gives up.
    let (stdout, code) = sv(&tree, &program, &["-w", "1", "start", "never"]);
    assert_eq!(
        normalize(&stdout).0,
        "timeout: down: never: Ns, normally up, want up\n",
        "{sv_name}"
    );
    assert_eq!(code, Some(1), "{sv_name}");
}

#[test]
fn sv_start_waits_for_readiness_and_so_do_dependents() {
    if !ready() {
        return;
    }
    std::thread::scope(|s| {
        let debian = s.spawn(|| scenario("debian"));
        scenario("braid");
        debian.join().expect("scenario with Debian's sv");
    });
}
