//! braid as `dinit --user` against the real dinit: the same scenario runs
//! on each, driven by the real `dinitctl` and by braid's, and every
//! command's output, exit status and the daemon's console must match.

mod daemon_support;

use daemon_support::{compare, compare_with, Step, StopOrder};
use Step::{Ctl, Exit, Wait, Write};

const BOOT: (&str, &str) = ("boot", "type = internal\nwaits-for.d = boot.d\n");
const BOOT_D: (&str, &str) = ("boot.d/", "");

#[test]
fn dependency_kinds_stop_and_force() {
    let files = [
        BOOT,
        BOOT_D,
        ("sleeper", "type = process\ncommand = /bin/sleep 1000\nrestart = false\n"),
        // Internal: a second process starting alongside sleeper would
        // make the order of the two start lines a race.
        ("ms", "type = internal\nrestart = false\n"),
        ("soft", "type = internal\n"),
        ("top", "type = internal\ndepends-on = sleeper\ndepends-ms = ms\nwaits-for = soft\nrestart = false\n"),
        ("holder", "type = internal\ndepends-on = top\n"),
    ];
    compare(
        &files,
        &[],
        &[
            Ctl(&["list"]),
            // Started first: see dependency_start_order for why.
            Ctl(&["start", "soft"]),
            Ctl(&["start", "holder"]),
            Ctl(&["list"]),
            Ctl(&["status", "top"]),
            Ctl(&["stop", "sleeper"]),
            Ctl(&["stop", "ms"]),
            Ctl(&["stop", "soft"]),
            Ctl(&["list"]),
            Ctl(&["stop", "--force", "sleeper"]),
            Ctl(&["list"]),
            Ctl(&["status", "holder"]),
            Ctl(&["is-failed", "holder"]),
            Ctl(&["start", "soft"]),
            Ctl(&["start", "holder"]),
            Ctl(&["release", "holder"]),
            // sleeper is signalled by that release: wait for its exit, or
            // whether it is announced before soft is a race in dinit too.
            Wait("sleeper", "STOPPED"),
            Ctl(&["release", "soft"]),
            Ctl(&["list"]),
            Ctl(&["stop", "boot"]),
            Exit,
        ],
    );
}

#[test]
fn before_and_after_order_starts() {
    let files = [
        (
            "boot",
            "type = internal\ndepends-on = b\ndepends-on = a\ndepends-on = c\n",
        ),
        ("a", "type = scripted\ncommand = /bin/sleep 0.3\n"),
        ("b", "type = internal\nafter = a\n"),
        ("c", "type = internal\nbefore = a\n"),
    ];
    compare(&files, &[], &[Wait("boot", "STARTED"), Ctl(&["list"])]);
}

#[test]
fn chain_to_and_arguments() {
    let files = [
        BOOT,
        BOOT_D,
        ("part1", "type = process\ncommand = /bin/true\nchain-to = part2@x\nrestart = false\n"),
        ("part2", "type = scripted\ncommand = /bin/sh -c \"echo arg=$1\"\nlog-type = buffer\nrestart = false\n"),
        ("svc", "type = internal\n"),
    ];
    compare(
        &files,
        &[],
        &[
            Ctl(&["start", "part1"]),
            Wait("part2@x", "STARTED"),
            Ctl(&["list"]),
            Ctl(&["catlog", "part2@x"]),
            Ctl(&["start", "svc@one"]),
            Ctl(&["start", "svc@"]),
            Ctl(&["list"]),
        ],
    );
}

#[test]
fn restart_and_restart_limit() {
    let files = [
        BOOT,
        BOOT_D,
        (
            "flaky",
            "type = process\ncommand = /bin/sh -c \"sleep 0.2; exit 3\"\nrestart = yes\nrestart-delay = 0.05\nrestart-limit-count = 2\nrestart-limit-interval = 60\n",
        ),
        ("steady", "type = process\ncommand = /bin/sleep 1000\n"),
        ("dep", "type = internal\ndepends-on = steady\n"),
    ];
    compare(
        &files,
        &[],
        &[
            Ctl(&["start", "flaky"]),
            Wait("flaky", "STOPPED"),
            Ctl(&["status", "flaky"]),
            Ctl(&["list"]),
            Ctl(&["start", "dep"]),
            Ctl(&["restart", "steady"]),
            Ctl(&["restart", "--force", "steady"]),
            Ctl(&["list"]),
            Ctl(&["restart", "flaky"]),
        ],
    );
}

#[test]
fn environment_substitution_and_catlog() {
    let files = [
        BOOT,
        BOOT_D,
        (
            "show",
            "type = scripted\ncommand = /bin/sh -c \"echo sub=$BRAID_TEST_VAR set=$FOO; echo env=$$FOO; echo client=$$BRAID_CLIENT_VAR\"\nlog-type = buffer\nrestart = false\n",
        ),
        ("quiet", "type = scripted\ncommand = /bin/true\nrestart = false\n"),
    ];
    compare(
        &files,
        &[],
        &[
            Ctl(&["setenv", "FOO=bar", "BRAID_CLIENT_VAR"]),
            Ctl(&["start", "show"]),
            Ctl(&["catlog", "show"]),
            Ctl(&["catlog", "--clear", "show"]),
            Ctl(&["catlog", "show"]),
            Ctl(&["unsetenv", "FOO"]),
            Ctl(&["setenv", "FOO"]),
            Ctl(&["setenv", "=x"]),
            Ctl(&["catlog", "quiet"]),
            Ctl(&["catlog", "boot"]),
        ],
    );
}

#[test]
fn log_pipe_to_consumer() {
    let files = [
        BOOT,
        BOOT_D,
        ("producer", "type = process\ncommand = /bin/sh -c \"echo one; echo two; exec sleep 1000\"\nlog-type = pipe\nrestart = false\n"),
        ("consumer", "type = process\ncommand = /bin/sh -c \"head -n 2; echo >&3; exec sleep 1000\"\nready-notification = pipefd:3\nconsumer-of = producer\nlog-type = buffer\nrestart = false\n"),
        ("badconsumer", "type = scripted\ncommand = /bin/cat\nconsumer-of = producer\n"),
    ];
    // Both are processes signalled in the same step at the shutdown: the
    // real dinit announces their stops in the order it reaps them, either
    // way round across runs (braid's engine lets the consumer go last).
    compare_with(
        StopOrder::Racy,
        &files,
        &[],
        &[
            Ctl(&["start", "producer"]),
            Ctl(&["start", "consumer"]),
            Ctl(&["list"]),
            Ctl(&["catlog", "consumer"]),
            Ctl(&["start", "badconsumer"]),
        ],
    );
}

#[test]
fn reload_add_rm_dep_enable_disable() {
    let files = [
        BOOT,
        BOOT_D,
        ("main", "type = internal\n"),
        ("second", "type = internal\n"),
        ("svc", "@meta enable-via boot\ntype = internal\n"),
        (
            "proc",
            "type = process\ncommand = /bin/sleep 1000\nrestart = false\n",
        ),
    ];
    compare(
        &files,
        &[],
        &[
            Ctl(&["start", "main"]),
            Ctl(&["add-dep", "need", "main", "second"]),
            Ctl(&["start", "second"]),
            Ctl(&["add-dep", "need", "main", "second"]),
            Ctl(&["add-dep", "need", "second", "main"]),
            Ctl(&["list"]),
            Ctl(&["rm-dep", "need", "main", "second"]),
            Ctl(&["rm-dep", "need", "main", "second"]),
            Ctl(&["add-dep", "milestone", "main", "second"]),
            Ctl(&["rm-dep", "milestone", "main", "second"]),
            Ctl(&["stop", "second"]),
            Ctl(&["list"]),
            Ctl(&["enable", "svc"]),
            Ctl(&["enable", "svc"]),
            Ctl(&["list"]),
            Ctl(&["disable", "svc"]),
            Ctl(&["list"]),
            Write("second", "type = internal\ndepends-on = proc\n"),
            Ctl(&["reload", "second"]),
            Ctl(&["stop", "second"]),
            Ctl(&["reload", "second"]),
            Ctl(&["start", "second"]),
            Ctl(&["list"]),
            Ctl(&["reload", "never-loaded-before"]),
            Ctl(&["unload", "second"]),
            Ctl(&["stop", "second"]),
            Ctl(&["unload", "second"]),
            Wait("proc", "STOPPED"),
            Ctl(&["list"]),
        ],
    );
}

#[test]
fn cycles_failures_and_broken_files() {
    let files = [
        BOOT,
        BOOT_D,
        ("ca", "type = internal\ndepends-on = cb\n"),
        ("cb", "type = internal\ndepends-on = ca\n"),
        ("aa", "type = internal\ndepends-on = a1\ndepends-on = a2\n"),
        ("a1", "type = internal\nafter = a2\n"),
        ("a2", "type = internal\nafter = a1\n"),
        (
            "failing",
            "type = scripted\ncommand = /bin/sh -c \"exit 3\"\nrestart = false\n",
        ),
        (
            "nonexec",
            "type = process\ncommand = /nonexistent/program\nrestart = false\n",
        ),
        ("depfail", "type = internal\ndepends-on = failing\n"),
        (
            "broken",
            "type = process\ncommand = /bin/true\nno-such-setting = 1\n",
        ),
        (
            "badvalue",
            "type = process\ncommand = /bin/true\nrestart-delay = soon\n",
        ),
        ("needsbroken", "type = internal\ndepends-on = broken\n"),
        ("missingdep", "type = internal\ndepends-on = nowhere\n"),
        ("fine", "type = internal\n"),
    ];
    compare(
        &files,
        &[],
        &[
            Ctl(&["start", "ca"]),
            Ctl(&["start", "aa"]),
            Ctl(&["start", "failing"]),
            Ctl(&["start", "nonexec"]),
            Ctl(&["status", "nonexec"]),
            Ctl(&["start", "depfail"]),
            Ctl(&["start", "broken"]),
            Ctl(&["start", "badvalue"]),
            Ctl(&["start", "needsbroken"]),
            Ctl(&["start", "missingdep"]),
            Ctl(&["start", "nosuch"]),
            Ctl(&["start", "fine"]),
            Ctl(&["list"]),
        ],
    );
}

#[test]
fn shutdown_and_exit_when_all_stopped() {
    let files = [
        ("boot", "type = internal\ndepends-on = sleeper\n"),
        ("sleeper", "type = process\ncommand = /bin/sleep 1000\n"),
    ];
    compare(
        &files,
        &[],
        &[
            Wait("boot", "STARTED"),
            Ctl(&["list"]),
            Ctl(&["shutdown"]),
            Exit,
        ],
    );
    compare(
        &files,
        &[],
        &[
            Wait("boot", "STARTED"),
            // Releases sleeper: nothing is left active, so it exits.
            Ctl(&["stop", "boot"]),
            Exit,
        ],
    );
}

#[test]
fn boot_missing_exits_at_once() {
    compare(&[("other", "type = internal\n")], &[], &[Exit]);
    compare(
        &[("other", "type = internal\n")],
        &["other", "nosuch"],
        &[Ctl(&["list"])],
    );
}

/// A soft dependency added at run time does not start a stopped service
/// (engine-requests.md (2), fixed).
#[test]
fn add_dep_soft_on_stopped_target() {
    let files = [
        BOOT,
        BOOT_D,
        ("main", "type = internal\n"),
        ("second", "type = internal\n"),
    ];
    compare(
        &files,
        &[],
        &[
            Ctl(&["start", "main"]),
            Ctl(&["add-dep", "waits-for", "main", "second"]),
            Ctl(&["list"]),
            Ctl(&["start", "second"]),
            Ctl(&["add-dep", "waits-for", "main", "second"]),
            Ctl(&["release", "--no-wait", "second"]),
            Ctl(&["list"]),
        ],
    );
}

#[test]
fn env_file_and_enabling_a_process() {
    let files = [
        BOOT,
        BOOT_D,
        ("env", "FOO=from-the-file\n!unset BRAID_TEST_VAR\n"),
        (
            "show",
            "type = scripted\ncommand = /bin/sh -c \"echo foo=$$FOO test=$${BRAID_TEST_VAR:-unset}\"\nlog-type = buffer\nrestart = false\n",
        ),
        (
            "daemon",
            "type = process\ncommand = /bin/sleep 1000\nrestart = false\n",
        ),
    ];
    compare(
        &files,
        &["-e", "sd/env"],
        &[
            Ctl(&["start", "show"]),
            Ctl(&["catlog", "show"]),
            Ctl(&["enable", "daemon"]),
            Ctl(&["list"]),
            // Not followed by `stop daemon`: whether the daemon has finished
            // stopping by then is a race in the real dinit too.
            Ctl(&["disable", "daemon"]),
            // Disabling stops it; its exit must be in before the shutdown,
            // or the order of the stop lines is a race as well.
            Wait("daemon", "STOPPED"),
        ],
    );
}

/// See /work/notes/engine-requests.md (3): the order in which a starting
/// service's dependencies are started.
#[test]
fn dependency_start_order() {
    let files = [
        BOOT,
        BOOT_D,
        ("ms", "type = internal\n"),
        ("soft", "type = internal\n"),
        ("hard", "type = internal\n"),
        (
            "top",
            "type = internal\ndepends-on = hard\ndepends-ms = ms\nwaits-for = soft\n",
        ),
    ];
    compare(&files, &[], &[Ctl(&["start", "top"])]);
}

/// The order of the stop lines at a shutdown: services nothing requires go
/// first (in load order, handled last-in-first-out), the ones they held
/// follow as they are let go (each let go of stopping at once, in the order
/// listed); a pinned service stops when unpinned, before the next one is
/// looked at; a process is announced once reaped; a hard dependent that let
/// go and has nothing running does not keep its dependency (c before a).
#[test]
fn shutdown_stop_order() {
    let mixed = [
        (
            "boot",
            "type = internal\nwaits-for = a\nwaits-for = b\ndepends-on = c\n",
        ),
        ("a", "type = internal\ndepends-on = d\n"),
        ("b", "type = internal\n"),
        ("c", "type = internal\nwaits-for = e\n"),
        ("d", "type = internal\n"),
        ("e", "type = internal\n"),
    ];
    compare(&mixed, &[], &[Wait("boot", "STARTED")]);
    compare(
        &mixed,
        &[],
        &[Wait("boot", "STARTED"), Ctl(&["shutdown"]), Exit],
    );
    let process = [
        ("boot", "type = internal\nwaits-for = p\nwaits-for = q\n"),
        (
            "p",
            "type = process\ncommand = /bin/sleep 1000\ndepends-on = i\n",
        ),
        ("q", "type = internal\n"),
        ("i", "type = internal\n"),
        ("r", "type = internal\ndepends-on = p\n"),
        ("s", "type = scripted\ncommand = /bin/true\n"),
    ];
    compare(
        &process,
        &[],
        &[
            Wait("boot", "STARTED"),
            Ctl(&["start", "r"]),
            Ctl(&["start", "s"]),
        ],
    );
    let let_go = [
        ("boot", "type = internal\n"),
        ("a", "type = internal\ndepends-on = c\n"),
        ("b", "type = internal\nwaits-for = c\n"),
        ("c", "type = internal\n"),
        ("z", "type = internal\n"),
    ];
    compare(
        &let_go,
        &[],
        &[
            Wait("boot", "STARTED"),
            Ctl(&["start", "c"]),
            Ctl(&["start", "z"]),
            Ctl(&["start", "a"]),
            Ctl(&["start", "b"]),
        ],
    );
    let chain = [
        (
            "boot",
            "type = internal\ndepends-on = p1\nwaits-for = q\nwaits-for = s\n",
        ),
        ("s", "type = internal\n"),
        (
            "p1",
            "type = process\ncommand = /bin/sleep 1000\ndepends-on = p2\n",
        ),
        (
            "p2",
            "type = process\ncommand = /bin/sleep 1000\nwaits-for = r\n",
        ),
        ("q", "type = internal\n"),
        ("r", "type = internal\n"),
    ];
    compare(
        &chain,
        &[],
        &[Wait("boot", "STARTED"), Ctl(&["shutdown"]), Exit],
    );
    let pinned = [
        ("boot", "type = internal\nwaits-for = a\n"),
        ("a", "type = internal\n"),
        ("pn", "type = internal\ndepends-on = d\nwaits-for = e\n"),
        ("d", "type = internal\n"),
        ("e", "type = internal\n"),
        ("x", "type = internal\nwaits-for = d\n"),
    ];
    compare(
        &pinned,
        &[],
        &[
            Wait("boot", "STARTED"),
            Ctl(&["start", "--pin", "pn"]),
            Ctl(&["start", "x"]),
        ],
    );
}

/// The order of the start lines (and so of the service events): a start
/// runs through dinit's transition queue, last in, first out. Dependencies
/// ready at once go up in the order listed; a dependency that comes up
/// queues the dependents waiting for it in the order they linked to it, so
/// the last of them goes up first (c before b below), unless it is queued
/// already (dinit's queue does not count the entry at its bottom, the last
/// scenario). Chains, diamonds,
/// waits-for next to depends-on and depends-ms, before/after; the stops at
/// the end are compared in order too.
#[test]
fn start_order() {
    let scenarios: [&[(&str, &str)]; 8] = [
        &[
            ("boot", "type = internal\n"),
            ("top", "type = internal\nwaits-for = b\nwaits-for = c\n"),
            ("b", "type = internal\ndepends-on = a\n"),
            ("c", "type = internal\ndepends-on = a\n"),
            ("a", "type = internal\n"),
        ],
        &[
            ("boot", "type = internal\n"),
            ("top", "type = internal\ndepends-on = b\ndepends-on = c\n"),
            ("b", "type = internal\ndepends-on = a\n"),
            ("c", "type = internal\ndepends-on = a\n"),
            ("a", "type = internal\n"),
        ],
        &[
            ("boot", "type = internal\n"),
            (
                "top",
                "type = internal\ndepends-on = m\nwaits-for = x\ndepends-ms = y\n",
            ),
            ("m", "type = internal\ndepends-on = a\n"),
            ("x", "type = internal\ndepends-on = a\nwaits-for = z\n"),
            ("y", "type = internal\nwaits-for = z\n"),
            ("z", "type = internal\n"),
            ("a", "type = internal\n"),
        ],
        &[
            ("boot", "type = internal\n"),
            (
                "top",
                "type = internal\nwaits-for = p\nwaits-for = q\nwaits-for = r\n",
            ),
            ("p", "type = internal\ndepends-on = q\n"),
            ("q", "type = internal\n"),
            ("r", "type = internal\ndepends-on = q\n"),
        ],
        &[
            ("boot", "type = internal\n"),
            (
                "top",
                "type = internal\nwaits-for = x\nwaits-for = y\nwaits-for = z\n",
            ),
            ("x", "type = internal\ndepends-on = b1\ndepends-on = b2\n"),
            ("y", "type = internal\ndepends-on = b2\n"),
            ("z", "type = internal\nwaits-for = b1\n"),
            ("b1", "type = internal\n"),
            ("b2", "type = internal\n"),
        ],
        &[
            ("boot", "type = internal\n"),
            (
                "top",
                "type = internal\ndepends-on = d1\ndepends-on = d2\nwaits-for = w\n",
            ),
            ("d1", "type = internal\ndepends-on = base\nafter = w\n"),
            ("d2", "type = internal\ndepends-ms = base\n"),
            ("w", "type = internal\nwaits-for = base\n"),
            ("base", "type = internal\n"),
        ],
        &[
            ("boot", "type = internal\n"),
            (
                "top",
                "type = internal\nwaits-for = w\ndepends-on = d1\ndepends-on = d2\n",
            ),
            ("d1", "type = internal\ndepends-on = base\n"),
            ("d2", "type = internal\ndepends-on = base\n"),
            ("w", "type = internal\nwaits-for = base\nbefore = d2\n"),
            ("base", "type = internal\n"),
        ],
        &[
            ("boot", "type = internal\n"),
            (
                "top",
                "type = internal\ndepends-on = d1\ndepends-on = d2\nwaits-for = w\n",
            ),
            ("d1", "type = internal\ndepends-on = base\nafter = w\n"),
            ("d2", "type = internal\ndepends-ms = base\n"),
            ("w", "type = internal\nwaits-for = base\nbefore = d2\n"),
            ("base", "type = internal\n"),
        ],
    ];
    for files in scenarios {
        compare(
            files,
            &[],
            &[Wait("boot", "STARTED"), Ctl(&["start", "top"])],
        );
    }
    // A chain started from its far end, with processes: the starts are
    // announced as each process is launched.
    let chain = [
        ("boot", "type = internal\n"),
        ("top", "type = internal\ndepends-on = c1\n"),
        (
            "c1",
            "type = process\ncommand = /bin/sleep 1000\ndepends-on = c2\n",
        ),
        ("c2", "type = internal\ndepends-on = c3\n"),
        ("c3", "type = scripted\ncommand = /bin/true\n"),
    ];
    compare(
        &chain,
        &[],
        &[Wait("boot", "STARTED"), Ctl(&["start", "top"])],
    );
}
