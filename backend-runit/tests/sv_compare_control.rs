//! braid's sv and Debian's sv driving two identical service trees (each
//! under its own real runsvdir) through the same commands in lockstep: the
//! output must be the same bytes apart from pids and elapsed seconds (the
//! trees' processes and start times differ), with the same exit codes.
//! Exact seconds are compared by the same-tree tests.

mod runit_support;

use std::path::Path;

use braid_runit::supervise::RunState;
use runit_support::{assert_same, ready, run, take_seconds, Match, Outcome, Settle, Tree, REAL_SV};

struct Pair {
    real: Tree,
    ours: Tree,
    /// One pair at a time: the trees run in lockstep against runsv's
    /// one-second throttle, and two pairs at once on two loaded cores drift.
    _serial: std::sync::MutexGuard<'static, ()>,
}

static ONE_PAIR_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Pair {
    fn start() -> Option<Pair> {
        if !ready() {
            return None;
        }
        let serial = ONE_PAIR_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (real, ours) = std::thread::scope(|s| {
            let real = s.spawn(|| Tree::standard("sv-ctl-real"));
            let ours = Tree::standard("sv-ctl-ours");
            (real.join().expect("start real tree"), ours)
        });
        Some(Pair {
            real,
            ours,
            _serial: serial,
        })
    }

    /// Runs the command on both trees at once and compares; then waits
    /// until `settle` holds in both trees.
    fn step(&self, args: &[&str], settle: &[(&str, Settle)]) -> Outcome {
        let pids_before: Vec<(u32, u32)> = settle
            .iter()
            .map(|(name, _)| (self.real.pid_of(name), self.ours.pid_of(name)))
            .collect();
        let (real, ours) = std::thread::scope(|s| {
            let real = s.spawn(|| {
                run(
                    Path::new(REAL_SV),
                    None,
                    args,
                    self.real.root(),
                    &self.real.svdir(),
                    &[],
                )
            });
            let ours = run(
                &self.ours.braid_sv(),
                None,
                args,
                self.ours.root(),
                &self.ours.svdir(),
                &[],
            );
            (real.join().expect("real sv runner"), ours)
        });
        assert_same(&format!("sv {args:?}"), &real, &ours, Match::Shape);
        for (&(name, how), (real_pid, our_pid)) in settle.iter().zip(pids_before) {
            self.real.settle(name, how, real_pid);
            self.ours.settle(name, how, our_pid);
        }
        real
    }
}

use Settle::{Down, Once, Restarted, Run};

#[test]
fn up_down_and_friends_match_real_sv() {
    let Some(p) = Pair::start() else { return };
    let out = p.step(&["-v", "down", "a"], &[("a", Down)]);
    assert_eq!(
        take_seconds(&out.stdout).0,
        "ok: down: a: Ns, normally up\n"
    );
    p.step(&["status", "a"], &[]);
    let out = p.step(&["-v", "up", "a"], &[("a", Run)]);
    assert!(out.stdout.starts_with("ok: run: a: (pid "), "{out:?}");
    p.step(&["down", "a"], &[("a", Down)]);
    p.step(&["status", "a", "c"], &[]);
    p.step(&["up", "a"], &[("a", Run)]);
    p.step(&["up", "a"], &[]);

    let out = p.step(&["-v", "pause", "a"], &[]);
    assert!(out.stdout.ends_with(", paused\n"), "{out:?}");
    p.step(&["status", "a"], &[]);
    p.step(&["-v", "cont", "a"], &[]);
    p.step(&["-v", "once", "a"], &[("a", Once)]);
    p.step(&["status", "a"], &[]);
    // `down` is sent although want is already down: TERM was not sent yet.
    p.step(&["-v", "down", "a"], &[("a", Down)]);
    p.step(&["once", "a"], &[("a", Once)]);
    // Not `-v`: on a service running once, sv's check passes on the first
    // status it reads, and whether runsv has taken the `u` by then (", want
    // down" or not) is a race in the real programs themselves.
    p.step(&["up", "a"], &[("a", Run)]);

    // Several services in one call (already in the wanted state, so the
    // order of the ok lines does not depend on runsv's speed).
    p.step(&["-v", "up", "a", "nonexist", "e"], &[]);
    p.step(&["-v", "up", "c"], &[("c", Run)]);
    p.step(&["status", "c"], &[]);
    p.step(&["-v", "down", "c"], &[("c", Down)]);
    // The wait pass resolves `service/c/` under SVDIR (only the first
    // character decides there), so it fails after sending `u`.
    let out = p.step(&["-v", "up", "service/c/"], &[("c", Run)]);
    assert_eq!(out.code, Some(1), "{out:?}");
    p.step(&["-v", "d", "./service/c"], &[("c", Down)]);
}

#[test]
fn lsb_verbs_match_real_sv() {
    let Some(p) = Pair::start() else { return };
    p.step(&["-v", "term", "a"], &[("a", Restarted)]);
    p.step(&["-v", "kill", "a"], &[("a", Restarted)]);
    p.step(&["-v", "t", "a"], &[("a", Restarted)]);
    p.step(&["restart", "a"], &[("a", Restarted)]);
    p.step(&["try-restart", "a"], &[("a", Restarted)]);
    p.step(&["force-restart", "a"], &[("a", Restarted)]);
    p.step(&["force-reload", "a"], &[("a", Restarted)]);
    p.step(&["reload", "a"], &[]);
    p.step(&["stop", "a"], &[("a", Down)]);
    p.step(&["start", "a"], &[("a", Run)]);
    p.step(&["force-stop", "a"], &[("a", Down)]);
    p.step(&["-v", "start", "a"], &[("a", Run)]);
    p.step(&["-v", "start", "c"], &[("c", Run)]);
    p.step(&["stop", "c"], &[("c", Down)]);

    // b runs for 3 s then exits; it is normally down.
    let out = p.step(&["-v", "once", "b"], &[]);
    assert!(out.stdout.starts_with("ok: run: b: (pid "), "{out:?}");
    assert!(
        out.stdout.ends_with(", normally down, want down\n"),
        "{out:?}"
    );
    p.real.wait_state("b", RunState::Down);
    p.ours.wait_state("b", RunState::Down);
    p.step(&["status", "b"], &[]);

    // g ignores TERM: plain `down` times out, `force-stop` kills.
    let out = p.step(&["-w", "1", "down", "g"], &[]);
    assert!(out.stdout.starts_with("timeout: run: g: (pid "), "{out:?}");
    assert!(out.stdout.ends_with(", want down, got TERM\n"), "{out:?}");
    assert_eq!(out.code, Some(1));
    p.step(&["status", "g"], &[]);
    let out = p.step(&["-w", "1", "force-stop", "g"], &[("g", Down)]);
    assert!(out.stdout.starts_with("kill: run: g: (pid "), "{out:?}");
    p.step(&["status", "g"], &[]);
}

#[test]
fn exit_and_shutdown_match_real_sv() {
    let Some(p) = Pair::start() else { return };
    let out = p.step(&["shutdown", "e"], &[]);
    // runsv exits; on a loaded machine runsvdir may start it again before
    // sv's next look, and then sv waits on the new one until its timeout.
    // Either way both sv's said the same (compared above).
    assert!(
        out.stdout == "ok: e: runsv not running\n"
            || (out.stdout.starts_with("timeout: run: e: (pid ") && out.code == Some(1)),
        "{out:?}"
    );
    // runsvdir brings runsv back within a few seconds.
    p.real.wait_state("e", RunState::Run);
    p.ours.wait_state("e", RunState::Run);
    p.step(&["-v", "exit", "e"], &[]);
    p.real.wait_state("e", RunState::Run);
    p.ours.wait_state("e", RunState::Run);
    p.step(&["exit", "e"], &[]);
    p.step(&["force-shutdown", "c"], &[]);
    p.step(&["-v", "x", "c"], &[]);
}
