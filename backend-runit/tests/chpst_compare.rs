//! braid's chpst and its personalities against Debian's `/usr/bin/chpst`:
//! same arguments and inputs, identical stdout, stderr and exit status.

mod chpst_support;

use chpst_support::{run, shown, write_file, Pair, Side};

const PEER: &str = "/usr/bin/chpst";
const NAMES: [&str; 7] = [
    "chpst",
    "envdir",
    "envuidgid",
    "pgrphack",
    "setuidgid",
    "setlock",
    "softlimit",
];

fn pair() -> Option<Pair> {
    let links: Vec<(&str, &str)> = NAMES.iter().map(|n| (*n, PEER)).collect();
    Pair::new("chpst", &links)
}

/// An envdir exercising every rule: first line only, trailing blanks cut,
/// NUL to newline, empty file unsets, lone newline sets empty, a
/// subdirectory, a dot file.
fn envdir_fixture(side: &Side) {
    let e = side.work.join("env");
    write_file(&e, "A", b"value with trailing  \t \nsecond line");
    write_file(&e, "B", b"a\0b\n");
    write_file(&e, "NOEOL", b"noeol");
    write_file(&e, "KEEP", b"");
    write_file(&e, "EMPTY", b"\n");
    write_file(&e, ".hidden", b"x");
    write_file(&e, "PATH", b"/nowhere");
    std::fs::create_dir_all(e.join("sub")).expect("subdir");
    // the same entries in a directory without the subdirectory
    let flat = side.work.join("flat");
    write_file(&flat, "X", b"1");
    write_file(&flat, "KEEP", b"");
    write_file(&side.work, "notexec", b"#!/bin/sh\necho no\n");
}

/// Runs `args` on both sides (program `args[0]`) and asserts identical
/// results; returns braid's output for further checks.
fn same(pair: &Pair, args: &[&str]) -> String {
    let results: Vec<String> = pair
        .sides()
        .iter()
        .map(|side| {
            envdir_fixture(side);
            let mut cmd = side.command(args[0]);
            cmd.args(&args[1..]);
            // Each side has its own directories; hide where they are.
            shown(&run(cmd, b""))
                .replace(&side.bin.display().to_string(), "<bin>")
                .replace(&side.work.display().to_string(), "<work>")
        })
        .collect();
    assert_eq!(
        results[0], results[1],
        "real (left) vs braid (right) for {args:?}"
    );
    results[1].clone()
}

#[test]
fn usage_and_option_errors() {
    let Some(p) = pair() else { return };
    for args in [
        &["chpst"][..],
        &["chpst", "-V"],
        &["chpst", "-C", "/", "true"],
        &["chpst", "-u"],
        &["chpst", "-l", "a", "-L", "b", "true"],
        &["chpst", "-n", "x", "true"],
        &["chpst", "-o", "12x", "true"],
        &["chpst", "-m", "-1", "true"],
        &["chpst", "-v"],
        &["chpst", "-vz", "true"],
    ] {
        let out = same(&p, args);
        assert!(out.contains("status: Some(100)"), "{out}");
    }
    assert!(same(&p, &["chpst", "--", "true"]).starts_with("status: Some(0)"));
    same(&p, &["chpst", "-", "true"]);
}

#[test]
fn user_and_groups() {
    let Some(p) = pair() else { return };
    let out = same(&p, &["chpst", "-u", "nobody", "id"]);
    assert!(out.contains("uid=65534(nobody)"), "{out}");
    same(&p, &["chpst", "-u", "nobody:nogroup:root", "id"]);
    same(&p, &["chpst", "-u", ":65534:65534:4:7", "id"]);
    same(&p, &["chpst", "-u", ":65534:", "id"]);
    same(
        &p,
        &[
            "chpst",
            "-u",
            "nobody",
            "sh",
            "-c",
            "grep -E '^(Uid|Gid|Groups)' /proc/self/status",
        ],
    );
    for bad in [
        "nosuchuser",
        ":12",
        ":12:x",
        "nobody:nosuchgroup",
        "nobody:",
    ] {
        let out = same(&p, &["chpst", "-u", bad, "true"]);
        assert!(out.contains("status: Some(111)"), "{out}");
    }
    same(&p, &["chpst", "-U", "nobody", "env"]);
    same(&p, &["chpst", "-U", ":5:6:7", "env"]);
    same(&p, &["chpst", "-U", "nosuchuser", "env"]);
    same(&p, &["chpst", "-U", "nobody", "-u", "nobody", "id"]);
}

#[test]
fn envdir_rules() {
    let Some(p) = pair() else { return };
    let out = same(&p, &["chpst", "-e", "env", "env"]);
    assert!(out.contains("A=value with trailing\n"), "{out}");
    assert!(!out.contains("KEEP="), "{out}");
    same(&p, &["chpst", "-v", "-e", "env", "env"]);
    same(&p, &["chpst", "-e", "flat", "-U", "nobody", "env"]);
    // PATH from the envdir does not steer the program search
    same(&p, &["chpst", "-e", "env", "sh", "-c", "echo $PATH"]);
    same(&p, &["chpst", "-e", "missing", "env"]);
    same(&p, &["chpst", "-e", "notexec", "env"]);
    same(&p, &["envdir", "flat", "env"]);
    let out = same(&p, &["envdir", "env", "env"]);
    assert!(out.contains("is a directory"), "{out}");
    same(&p, &["envdir", "missing", "env"]);
    same(&p, &["envdir"]);
    same(&p, &["envdir", "flat"]);
}

#[test]
fn limits_nice_root_and_session() {
    let Some(p) = pair() else { return };
    let ulimits = ["sh", "-c", "ulimit -a"];
    for opts in [
        &["-m", "300000000"][..],
        &["-d", "400000000"],
        &["-o", "77"],
        &["-o", "99999999"],
        &["-p", "333"],
        &["-f", "12345"],
        &["-c", "0"],
        &["-r", "5000000"],
        &["-t", "3000"],
        &["-o", "18446744073709551615"],
    ] {
        let args: Vec<&str> = ["chpst"]
            .iter()
            .chain(opts)
            .chain(&ulimits)
            .copied()
            .collect();
        same(&p, &args);
    }
    for opts in [
        &["-o", "50"][..],
        &["-m", "="],
        &["-a", "=", "-s", "9000000"],
        &["-o", "x"],
    ] {
        let args: Vec<&str> = ["softlimit"]
            .iter()
            .chain(opts)
            .chain(&ulimits)
            .copied()
            .collect();
        same(&p, &args);
    }
    same(&p, &["softlimit", "-z", "true"]);
    same(&p, &["softlimit"]);
    same(&p, &["chpst", "-n", "5", "nice"]);
    same(&p, &["chpst", "-n", "+3", "nice"]);
    same(&p, &["chpst", "-n", "-4", "nice"]);
    same(&p, &["chpst", "-/", "/", "pwd"]);
    same(&p, &["chpst", "-/", "missing", "pwd"]);
    let leader = "set -- $(cat /proc/$$/stat); [ \"$6\" = \"$$\" ] && echo leader || echo member";
    let out = same(&p, &["chpst", "-P", "sh", "-c", leader]);
    assert!(out.contains("leader"), "{out}");
    same(&p, &["pgrphack", "sh", "-c", leader]);
    same(&p, &["pgrphack"]);
}

#[test]
fn descriptors_argv0_and_exec_errors() {
    let Some(p) = pair() else { return };
    let fds = "ls /proc/$$/fd; echo to-stderr >&2";
    same(&p, &["chpst", "sh", "-c", fds]);
    same(&p, &["chpst", "-0", "sh", "-c", fds]);
    same(&p, &["chpst", "-1", "sh", "-c", fds]);
    same(&p, &["chpst", "-2", "sh", "-c", fds]);
    same(&p, &["chpst", "-012", "true"]);
    let out = same(&p, &["chpst", "-b", "renamed", "sh", "-c", "echo $0"]);
    assert!(out.contains("renamed"), "{out}");
    same(&p, &["chpst", "no-such-program"]);
    same(&p, &["chpst", "-b", "alias", "no-such-program"]);
    same(&p, &["chpst", "/no/such/path"]);
    same(&p, &["chpst", "./notexec"]);
    same(
        &p,
        &[
            "chpst", "-v", "-P", "-e", "flat", "-n", "1", "-o", "40", "env",
        ],
    );
}

#[test]
fn locks() {
    let Some(p) = pair() else { return };
    // The program holds the lock: a nested non-blocking attempt fails.
    let nested = "chpst -L lockfile true; echo inner=$?";
    let out = same(&p, &["chpst", "-L", "lockfile", "sh", "-c", nested]);
    assert!(out.contains("temporary failure"), "{out}");
    same(
        &p,
        &[
            "chpst",
            "-l",
            "lockfile",
            "sh",
            "-c",
            "ls -l lockfile | cut -c1-10",
        ],
    );
    same(&p, &["chpst", "-L", "missing/lockfile", "true"]);
    same(&p, &["chpst", "-u", "nobody", "-L", "env/lockfile", "true"]);
    same(
        &p,
        &[
            "setlock",
            "lockfile",
            "sh",
            "-c",
            "setlock lockfile true; echo inner=$?",
        ],
    );
    same(
        &p,
        &[
            "setlock",
            "-N",
            "lockfile",
            "sh",
            "-c",
            "setlock -x lockfile true; echo inner=$?",
        ],
    );
    same(
        &p,
        &[
            "setlock",
            "-x",
            "lockfile",
            "sh",
            "-c",
            "setlock -xX lockfile true; echo $?",
        ],
    );
    same(&p, &["setlock", "-n", "lockfile", "echo", "waited"]);
    same(&p, &["setlock", "-x", "missing/lockfile", "true"]);
    same(&p, &["setlock", "-x", "lockfile", "no-such-program"]);
    same(&p, &["setlock", "lockfile", "no-such-program"]);
    same(&p, &["setlock", "-z", "lockfile", "true"]);
    same(&p, &["setlock", "lockfile"]);
}

#[test]
fn account_personalities() {
    let Some(p) = pair() else { return };
    same(&p, &["setuidgid", "nobody", "id"]);
    same(&p, &["setuidgid", "nobody:nogroup", "id"]);
    same(&p, &["setuidgid", ":0:0", "id"]);
    same(&p, &["setuidgid", "nosuchuser", "id"]);
    same(&p, &["setuidgid", "nobody"]);
    same(&p, &["setuidgid", "-u", "id"]);
    same(&p, &["envuidgid", "nobody", "env"]);
    same(&p, &["envuidgid", "nosuchuser", "env"]);
    same(&p, &["envuidgid"]);
}
