//! The readiness gate on its own: a real runtime running `sh -c` services,
//! the gate served on a socket, and a client waiting on it from another
//! thread, as turnstile's `ready` would.

use std::cell::Cell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use braid_core::engine::{Command, Engine, ServiceId};
use braid_core::runtime::{HandlerResult, Runtime};
use braid_core::spec::{Readiness, ServiceSpec};
use braid_turnstile::gate::{self, Gate, ServedGate, Verdict, WaitError};
use mio::Interest;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const LIMIT: Duration = Duration::from_secs(20);

/// One runtime per process at a time: runtimes catch SIGCHLD process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("braid-gate-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A runtime that stops and kills its services when dropped.
struct Session {
    rt: Runtime,
    ids: Vec<ServiceId>,
    dir: TempDir,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.rt.stop_all();
        let _ = self
            .rt
            .run_until(Duration::from_secs(5), |rt| rt.engine().all_stopped());
        for id in &self.ids {
            if let Some(pid) = self.rt.engine().status(*id).pid {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

fn session(tag: &str, specs: Vec<ServiceSpec>) -> Session {
    let mut engine = Engine::new();
    let ids = specs.into_iter().map(|s| engine.load(s).unwrap()).collect();
    let mut rt = Runtime::new(engine).unwrap();
    rt.set_log_sink(|_, _| {});
    Session {
        rt,
        ids,
        dir: TempDir::new(tag),
    }
}

fn sh(name: &str, script: &str) -> ServiceSpec {
    ServiceSpec::process(name, ["/bin/sh", "-c", script])
}

/// Ready when it writes to fd 3.
fn notifying(name: &str, script: &str) -> ServiceSpec {
    let mut spec = sh(name, script);
    spec.readiness = Readiness::NotifyFd(3);
    spec
}

/// A client waiting on the gate in another thread; it wakes the runtime
/// (through a socket pair) when it is done.
struct Client {
    handle: JoinHandle<(Result<(), WaitError>, Instant)>,
    done: Rc<Cell<bool>>,
}

fn client(rt: &mut Runtime, path: PathBuf) -> Client {
    let (wake_rx, mut wake_tx) = UnixStream::pair().unwrap();
    wake_rx.set_nonblocking(true).unwrap();
    let done = Rc::new(Cell::new(false));
    let flag = done.clone();
    rt.register_fd(
        wake_rx.as_raw_fd(),
        Interest::READABLE,
        move |_: &mut Runtime, _, _| {
            let _ = &wake_rx;
            flag.set(true);
            HandlerResult::Remove
        },
    )
    .unwrap();
    let handle = std::thread::spawn(move || {
        let result = gate::wait(&path, LIMIT);
        let at = Instant::now();
        let _ = wake_tx.write_all(b"x");
        (result, at)
    });
    Client { handle, done }
}

impl Client {
    /// Runs the loop until the client is done; its result and when it
    /// returned.
    fn finish(self, rt: &mut Runtime) -> (Result<(), WaitError>, Instant) {
        let done = self.done.clone();
        let ok = rt.run_until(LIMIT, move |_| done.get()).unwrap();
        assert!(ok, "the client did not finish within {LIMIT:?}");
        self.handle.join().unwrap()
    }
}

fn start_all(s: &mut Session) {
    for id in s.ids.clone() {
        s.rt.command(id, Command::Start { pin: false }).unwrap();
    }
}

fn serve(s: &mut Session, names: &[&str], timeout: Duration) -> ServedGate {
    let gate = Gate::new(s.rt.engine(), names);
    let path = s.dir.0.join("gate");
    gate::serve(&mut s.rt, gate, &path, timeout).unwrap()
}

#[test]
fn opens_only_after_the_slow_service_is_ready() {
    let _serial = serial();
    let mut s = session("slow", vec![]);
    let marker = s.dir.0.join("slow-ready");
    let slow = notifying(
        "slow",
        &format!(
            "sleep 1; : > '{}'; echo >&3; exec sleep 100",
            marker.display()
        ),
    );
    let fast = sh("fast", "exec sleep 100");
    for spec in [slow, fast] {
        let id = s.rt.engine_mut().load(spec).unwrap();
        s.ids.push(id);
    }
    let t0 = Instant::now();
    start_all(&mut s);
    let served = serve(&mut s, &["fast", "slow"], LIMIT);
    let c = client(&mut s.rt, served.path());
    let (result, at) = c.finish(&mut s.rt);
    result.unwrap();
    assert!(
        at - t0 >= Duration::from_secs(1),
        "opened after {:?}",
        at - t0
    );
    assert!(marker.exists(), "slow was ready when the gate opened");
    assert_eq!(served.verdict(), Some(Verdict::Open));

    // A client that comes after the verdict gets it at once.
    let c = client(&mut s.rt, served.path());
    let t1 = Instant::now();
    let (result, at) = c.finish(&mut s.rt);
    result.unwrap();
    assert!(at - t1 < Duration::from_secs(2));
}

#[test]
fn a_service_exiting_before_ready_fails_the_gate_naming_it() {
    let _serial = serial();
    let mut s = session(
        "exit",
        vec![
            sh("fine", "exec sleep 100"),
            notifying("broken", "sleep 0.2; exit 3"),
        ],
    );
    start_all(&mut s);
    let served = serve(&mut s, &["fine", "broken"], LIMIT);
    let t0 = Instant::now();
    let c = client(&mut s.rt, served.path());
    let (result, at) = c.finish(&mut s.rt);
    match result {
        Err(WaitError::Failed { service, reason }) => {
            assert_eq!(service, "broken");
            assert_eq!(reason, "exited with status 3 before it was ready");
        }
        other => panic!("{other:?}"),
    }
    assert!(at - t0 < Duration::from_secs(5), "failed fast");
}

#[test]
fn a_program_that_cannot_run_fails_the_gate() {
    let _serial = serial();
    let mut s = session(
        "exec",
        vec![ServiceSpec::process("ghost", ["/nonexistent/ghost"])],
    );
    start_all(&mut s);
    let served = serve(&mut s, &["ghost"], LIMIT);
    let c = client(&mut s.rt, served.path());
    let (result, _) = c.finish(&mut s.rt);
    let err = result.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ghost: could not be launched (executing command: No such file"),
        "{err}"
    );
}

#[test]
fn an_unknown_service_fails_the_gate() {
    let _serial = serial();
    let mut s = session("unknown", vec![sh("a", "exec sleep 100")]);
    start_all(&mut s);
    let served = serve(&mut s, &["a", "nope"], LIMIT);
    let c = client(&mut s.rt, served.path());
    let (result, _) = c.finish(&mut s.rt);
    assert_eq!(result.unwrap_err().to_string(), "nope: no such service");
}

#[test]
fn the_deadline_fails_the_gate_naming_what_is_missing() {
    let _serial = serial();
    let mut s = session(
        "deadline",
        vec![
            notifying("never", "exec sleep 100"),
            sh("up", "exec sleep 100"),
        ],
    );
    start_all(&mut s);
    let served = serve(&mut s, &["up", "never"], Duration::from_millis(400));
    let t0 = Instant::now();
    let c = client(&mut s.rt, served.path());
    let (result, at) = c.finish(&mut s.rt);
    assert_eq!(
        result.unwrap_err().to_string(),
        "never: not ready within 0.4 s"
    );
    assert!(at - t0 >= Duration::from_millis(300));
    assert!(at - t0 < Duration::from_secs(5));
}

#[test]
fn a_gate_of_no_services_is_open_at_once() {
    let _serial = serial();
    let mut s = session("empty", vec![]);
    let served = serve(&mut s, &[], LIMIT);
    assert_eq!(served.verdict(), Some(Verdict::Open));
    let c = client(&mut s.rt, served.path());
    c.finish(&mut s.rt).0.unwrap();
}

#[test]
fn the_socket_is_removed_with_the_runtime() {
    let _serial = serial();
    let dir = TempDir::new("cleanup");
    let mut rt = Runtime::new(Engine::new()).unwrap();
    let path = dir.0.join("gate");
    let empty = Gate::new::<&str>(rt.engine(), &[]);
    gate::serve(&mut rt, empty, &path, LIMIT).unwrap();
    assert!(path.exists());
    drop(rt);
    assert!(!path.exists(), "{} was left behind", path.display());
}
