//! `braid check` and `braid graph DIR…` on service files, as a user or CI
//! runs them: a broken example with runit and dinit services side by side,
//! a clean one, and what each prints and exits with.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::{TempDir, BRAID};

fn braid(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BRAID).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const RUN: &str = "#!/bin/sh\nexec sleep 1000\n";

/// runit: web needs cache (and a redis that is not there), cache needs db
/// and has a log/ without run, worker's run is not executable and its
/// dependencies file is misspelt, nolrun has no run at all.
/// dinit: a and b need each other (a gates login.target), c waits for a
/// service that does not exist (and gates login.target), typo has an
/// unknown setting.
fn broken(root: &Path) -> (String, String) {
    let sv = root.join("sv");
    write(&sv.join("web/run"), RUN, 0o755);
    write(
        &sv.join("web/dependencies"),
        "cache\n# comment\nredis\n",
        0o644,
    );
    write(&sv.join("db/run"), RUN, 0o755);
    write(&sv.join("cache/run"), RUN, 0o755);
    write(&sv.join("cache/dependencies"), "db\n", 0o644);
    std::fs::create_dir_all(sv.join("cache/log")).unwrap();
    std::fs::create_dir_all(sv.join("nolrun")).unwrap();
    write(&sv.join("worker/run"), RUN, 0o644);
    write(&sv.join("worker/dependancies"), "db\n", 0o644);
    let d = root.join("dinit.d");
    write(
        &d.join("a"),
        "type = process\ncommand = /bin/sleep 100\ndepends-on = b\nbefore = login.target\n",
        0o644,
    );
    write(
        &d.join("b"),
        "type = process\ncommand = /bin/sleep 100\ndepends-on = a\n",
        0o644,
    );
    write(&d.join("login.target"), "type = internal\n", 0o644);
    write(
        &d.join("typo"),
        "type = process\ncommand = /bin/true\nrestrat = yes\n",
        0o644,
    );
    write(
        &d.join("c"),
        "type = process\ncommand = /bin/sleep 100\nwaits-for = nothere\nbefore = login.target\n",
        0o644,
    );
    (
        sv.to_str().unwrap().to_string(),
        d.to_str().unwrap().to_string(),
    )
}

#[test]
fn check_reports_each_problem_with_place_and_hint_and_fails() {
    let t = TempDir::new("chk");
    let (sv, d) = broken(&t.0);
    let (code, out, err) = braid(&["check", &sv, &d]);
    assert_eq!(code, 1, "{err}");
    let expected = format!(
        "\
{sv}/cache/log/run: error: runit service 'cache': log/ has no run file, its logger can never start
    hint: create an executable log/run, e.g. `exec svlogd -tt ./main`
{sv}/nolrun/run: error: runit service 'nolrun' has no run file: it can never start
    hint: create an executable ./run that execs the service in the foreground
{sv}/worker/run: error: runit service 'worker': run is not executable
    hint: chmod +x run
{sv}/worker/dependancies: warning: runit service 'worker': unknown file 'dependancies' is ignored
    hint: did you mean 'dependencies'? rename it
{d}/typo:3: error: dinit service 'typo': unknown setting: 'restrat'.
    hint: see dinit-service(5) for the settings dinit knows; remove or correct it
{sv}/web/dependencies:3: error: service 'web' depends on 'redis', which does not exist
    hint: add a service 'redis' or remove the dependency
{d}/c:3: error: service 'c' waits for 'nothere', which does not exist
    hint: add a service 'nothere' or remove the dependency
{d}/a:3: error: dependency cycle: a -> b -> a
    hint: remove one link of the cycle (braid and dinit refuse to load it)
{d}/a:4: error: service 'a' is ordered before login.target but can never start: it is on the dependency cycle a -> b -> a
    hint: fix it, or the session's readiness gate fails; until then remove it from login.target
{d}/c:4: error: service 'c' is ordered before login.target but can never start: it needs 'nothere', which does not exist
    hint: fix it, or the session's readiness gate fails; until then remove it from login.target
braid check: 9 errors, 1 warning in 11 services
"
    );
    assert_eq!(out, expected);
}

#[test]
fn check_passes_a_clean_session_and_fails_on_an_unreadable_dir() {
    let t = TempDir::new("chkok");
    let sv = t.0.join("sv");
    write(&sv.join("db/run"), RUN, 0o755);
    write(&sv.join("web/run"), RUN, 0o755);
    write(&sv.join("web/dependencies"), "db\n", 0o644);
    let (code, out, _) = braid(&["check", sv.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(out, "braid check: 0 errors, 0 warnings in 2 services\n");

    let missing = t.0.join("nope");
    let (code, out, err) = braid(&["check", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert!(
        err.starts_with(&format!("braid check: {}: ", missing.display())),
        "{err}"
    );
}

#[test]
fn graph_from_files_in_every_format() {
    let t = TempDir::new("graph");
    let (sv, d) = broken(&t.0);
    let (code, text, err) = braid(&["graph", &sv, &d]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        text,
        "\
cache (runit, -)
  hard        -> db (-)
cache/log (runit, -)
  log         -> cache (-)
db (runit, -)
nolrun (runit, -)
web (runit, -)
  hard        -> cache (-)
  hard        -> redis (missing)
worker (runit, -)
a (dinit, -)
  hard        -> b (-)
b (dinit, -)
  hard        -> a (-)
c (dinit, -)
  waits-for   -> nothere (missing)
login.target (dinit, -)
  after       -> a (-) [before = login.target in a]
  after       -> c (-) [before = login.target in c]
typo (dinit, -)
"
    );

    let (_, dot, _) = braid(&["graph", "--format", "dot", &d]);
    assert!(dot.starts_with("digraph session {\n"), "{dot}");
    for line in [
        "  \"nothere\" [label=\"nothere\\n missing\", fillcolor=\"#ffcdd2\"];",
        "  \"a\" -> \"b\" [label=\"hard\", style=\"solid\"];",
        "  \"c\" -> \"nothere\" [label=\"waits-for\", style=\"dashed\"];",
        "  \"login.target\" -> \"a\" [label=\"before\", style=\"dotted\"];",
    ] {
        assert!(dot.lines().any(|l| l == line), "missing {line:?} in\n{dot}");
    }
    assert!(dot.ends_with("}\n"));

    let svg_file = t.0.join("g.svg");
    let (code, _, _) = braid(&[
        "graph",
        "--format",
        "svg",
        "-o",
        svg_file.to_str().unwrap(),
        &sv,
    ]);
    assert_eq!(code, 0);
    let svg = std::fs::read_to_string(&svg_file).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains("<g class=\"node\" data-name=\"web\" data-state=\"-\">"));
    assert!(svg.contains("<g class=\"node\" data-name=\"redis\" data-state=\"missing\">"));
    assert!(
        svg.contains("<g class=\"edge\" data-from=\"web\" data-to=\"cache\" data-kind=\"hard\">")
    );
    assert!(svg.contains(
        "<g class=\"edge\" data-from=\"cache/log\" data-to=\"cache\" data-kind=\"log\">"
    ));
    assert!(svg.trim_end().ends_with("</svg>"));

    let (_, json, _) = braid(&["graph", "--json", &d]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["format"], 1);
    let edges = v["edges"].as_array().unwrap();
    assert!(edges.iter().any(|e| e["from"] == "c"
        && e["to"] == "nothere"
        && e["kind"] == "waits-for"
        && e["at"] == format!("{d}/c:3")));
    assert_eq!(v["services"][0]["name"], "a");
    assert_eq!(v["services"][0]["face"], "dinit");
    assert!(v["services"][0]["state"].is_null());
}

#[test]
fn completions_and_man_pages_come_from_the_parser() {
    let (code, bash, _) = braid(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(bash.contains("complete -F _braid"), "{bash}");
    assert!(bash.contains("timeline"));
    let (_, fish, _) = braid(&["completions", "fish"]);
    assert!(fish.contains("complete -c braid"));
    let (_, zsh, _) = braid(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef braid"));

    let t = TempDir::new("man");
    let (code, _, err) = braid(&["man", t.0.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let top = std::fs::read_to_string(t.0.join("braid.1")).unwrap();
    assert!(top.starts_with(".ie \\n(.g .ds Aq \\(aq"), "{top}");
    assert!(top.contains(".TH braid 1"));
    let check = std::fs::read_to_string(t.0.join("braid-check.1")).unwrap();
    assert!(check.contains(".TH braid-check 1"), "{check}");

    // braid install lays them under the prefix.
    let prefix = t.0.join("usr");
    let (code, _, err) = braid(&["install", "--prefix", prefix.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for rel in [
        "share/bash-completion/completions/braid",
        "share/zsh/site-functions/_braid",
        "share/fish/vendor_completions.d/braid.fish",
        "share/man/man1/braid.1",
        "share/man/man1/braid-timeline.1",
    ] {
        assert!(prefix.join(rel).is_file(), "{rel} not installed");
    }
}
