//! Property tests of the dinit service-description loader: arbitrary file
//! contents fed through the daemon's loader and dinit-check's parse, in a
//! scratch service directory with included files, an environment file and
//! a dependency directory.
//!
//! Inputs are random bytes and near-valid descriptions: lines of every
//! setting with plausible and edge values (huge numbers, bad names,
//! substitutions, quotes, continuations, `@include` chains and loops),
//! then a mutation (a changed byte, a cut, inserted quote/`$`/`\`/newline).
//!
//! For every input: loading returns (no panic, no hang) a description or
//! an error value; a loaded description is no larger than a small factor
//! of what was read; the daemon's loader and dinit-check's parse agree on
//! whether the file is fatally bad; loading twice gives the same result.
//! The environment-file parser is checked the same way on its own.
//!
//! The load cases share one scratch service directory (on tmpfs when there
//! is one), whose files each case rewrites in place.
//!
//! `PROPTEST_CASES` sets the number of cases (see the README's "Fuzzing").

use std::fs;
use std::path::Path;

use braid_dinit::description::{
    apply_env_file, find_description, parse, to_spec, Context, EnvMap, Environment, LoadError,
    Loader, Problem,
};
use braid_tests::fuzz::{config, guarded, run, scratch_dir};
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 400;

/// Descriptor limit while loading: dinit ends an include loop when
/// descriptors run out, and braid mirrors that from the soft limit. A low
/// limit keeps each looping case short (a few dozen files deep) without
/// changing the behaviour.
const NOFILE_FOR_LOOPS: u64 = 64;

fn limit_descriptors() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft > NOFILE_FOR_LOOPS {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, NOFILE_FOR_LOOPS, hard);
        }
    }
}

// ---------------------------------------------------------------------------
// Strategies.

fn word(options: &[&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(options.to_vec()).prop_map(str::to_string)
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..5000).prop_map(|n| n.to_string()),
        1 => word(&[
            "0", "-1", "0x10", "010", "08", "+5", "4294967295", "4294967296",
            "9223372036854775807", "9223372036854775808", "18446744073709551616",
            "99999999999999999999999999", "1e3", "", " 1", "-", "0x",
        ]),
    ]
}

fn service_name() -> impl Strategy<Value = String> {
    prop_oneof![
        word(&["other", "other@x", "svc", "inc1", "a@", ".bad", "@bad", "$1", "${X}", "x y"]),
        "[a-z@.]{1,8}",
    ]
}

/// A value with the syntax features the reader handles.
fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        word(&[
            "/bin/true",
            "/bin/sh -c \"echo hi\"",
            "a\\ b",
            "\"unterminated",
            "x#y",
            "x #c",
            "$X",
            "${X}",
            "${X:-d}",
            "${U-d}",
            "${X:+a}",
            "${X+a}",
            "$1",
            "${1}",
            "$2",
            "$/X",
            "$/{X}",
            "$$",
            "$",
            "${",
            "${X",
            "${X:x}",
            "${X-",
            "$-",
            "\"a b\" c",
            "'q'",
            "",
            "\\",
            "é ü \u{1F600}",
        ]),
        "[ -~]{0,24}",
    ]
}

fn setting_line() -> impl Strategy<Value = String> {
    let value = |setting: &'static str| -> BoxedStrategy<String> {
        match setting {
            "type" => word(&[
                "process",
                "bgprocess",
                "scripted",
                "internal",
                "triggered",
                "x",
            ])
            .boxed(),
            "socket-permissions" | "logfile-permissions" => prop_oneof![
                word(&["0600", "777", "9", "-1", "0x1", "07777777777777"]),
                number()
            ]
            .boxed(),
            "socket-uid" | "logfile-uid" | "run-as" | "socket-gid" | "logfile-gid" => prop_oneof![
                word(&["root", "nobody", "nogroup", "no-such-user", "0:0"]),
                number()
            ]
            .boxed(),
            "depends-on" | "depends-ms" | "waits-for" | "prepared-by" | "after" | "before"
            | "chain-to" | "consumer-of" => service_name().boxed(),
            "waits-for.d" | "depends-on.d" | "depends-ms.d" => {
                word(&["deps.d", "missing.d", ".", "svc", "", "$X"]).boxed()
            }
            "env-file" => word(&["envf", "missing", "", "$X", "inc1", "/dev/null"]).boxed(),
            "log-type" => word(&["file", "buffer", "pipe", "none", "x"]).boxed(),
            "restart" => word(&["yes", "true", "no", "false", "on-failure", "x"]).boxed(),
            "smooth-recovery" => word(&["yes", "no", "x"]).boxed(),
            "options" => prop::collection::vec(
                word(&[
                    "starts-rwfs",
                    "starts-log",
                    "runs-on-console",
                    "starts-on-console",
                    "shares-console",
                    "unmask-intr",
                    "pass-cs-fd",
                    "start-interruptible",
                    "skippable",
                    "signal-process-only",
                    "always-chain",
                    "kill-all-on-stop",
                    "x",
                ]),
                0..4,
            )
            .prop_map(|v| v.join(" "))
            .boxed(),
            "load-options" => prop::collection::vec(
                word(&["export-passwd-vars", "export-service-name", "sub-vars", "x"]),
                0..3,
            )
            .prop_map(|v| v.join(" "))
            .boxed(),
            "term-signal" | "termsignal" => word(&[
                "HUP", "TERM", "KILL", "USR1", "none", "NONE", "99", "SIGTERM",
            ])
            .boxed(),
            "restart-limit-interval" | "restart-delay" | "stop-timeout" | "start-timeout" => {
                prop_oneof![
                    word(&[
                        "1.5",
                        "0,25",
                        "1.",
                        ".5",
                        "1.2.3",
                        "922337203685477580",
                        "1.9999999999"
                    ]),
                    number()
                ]
                .boxed()
            }
            "ready-notification" => prop_oneof![
                word(&["pipevar:", "pipevar:X", "x"]),
                number().prop_map(|n| format!("pipefd:{n}"))
            ]
            .boxed(),
            "inittab-id" | "inittab-line" => "[a-z0-9]{0,40}".boxed(),
            "rlimit-nofile" | "rlimit-core" | "rlimit-data" | "rlimit-addrspace" => prop_oneof![
                word(&["-", ":-", "-:-", "10:", ":10", "1:2:3", "x", ":", "-x"]),
                (number(), number()).prop_map(|(a, b)| format!("{a}:{b}")),
                number(),
            ]
            .boxed(),
            "ioprio" => prop_oneof![
                word(&["none", "idle", "realtime:", "best-effort:x"]),
                number().prop_map(|n| format!("realtime:{n}")),
                number().prop_map(|n| format!("best-effort:{n}")),
            ]
            .boxed(),
            "log-buffer-size" | "restart-limit-count" | "nice" | "oom-score-adj" => {
                number().boxed()
            }
            _ => text_value().boxed(),
        }
    };
    let settings = braid_dinit::description::settings::SETTINGS.to_vec();
    (
        proptest::sample::select(settings).prop_flat_map(move |s| (Just(s), value(s))),
        proptest::sample::select(vec![" = ", "=", ": ", " += ", " + = "]),
        proptest::option::of(word(&[" # comment", "#x", " \\"])),
    )
        .prop_map(|((setting, value), op, tail)| {
            format!("{setting}{op}{value}{}", tail.unwrap_or_default())
        })
}

fn other_line() -> impl Strategy<Value = String> {
    prop_oneof![
        word(&[
            "",
            "# comment",
            "   ",
            "@include inc1",
            "@include inc2",
            "@include-opt inc2",
            "@include-opt missing",
            "@include missing",
            "@include",
            "@include a b",
            "@include \"inc1\"",
            "@include $X",
            "@meta anything",
            "@bad",
            "@",
            "=x",
            "unknown-setting = 1",
            "command",
            "command =",
            "\\",
            "  continued",
        ]),
        "[ -~]{0,30}",
    ]
}

fn lines() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop_oneof![4 => setting_line(), 2 => other_line()], 0..14)
}

/// One damage done to a file's text.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Insert(Index, &'static str),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (
            any::<Index>(),
            proptest::sample::select(vec![
                "\"", "$", "${", "\\", "\\\n", "\n", "\n ", "#", "\0", "="
            ])
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// A file's bytes: random, or lines joined and then damaged.
fn file_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..200),
        6 => (lines(), any::<bool>(), prop::collection::vec(mutation(), 0..3)).prop_map(
            |(lines, newline, mutations)| {
                let mut text = lines.join("\n").into_bytes();
                if newline {
                    text.push(b'\n');
                }
                for m in mutations {
                    match m {
                        Mutation::Set(i, b) if !text.is_empty() => {
                            let at = i.index(text.len());
                            text[at] = b;
                        }
                        Mutation::Insert(i, s) => {
                            let at = i.index(text.len() + 1);
                            text.splice(at..at, s.bytes());
                        }
                        Mutation::Truncate(i) if !text.is_empty() => {
                            let at = i.index(text.len());
                            text.truncate(at);
                        }
                        _ => {}
                    }
                }
                text
            }
        ),
    ]
}

fn env_file_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..120),
        prop::collection::vec(
            prop_oneof![
                "[A-Z_]{1,4}=[ -~]{0,10}",
                word(&[
                    "!clear",
                    "!unset X",
                    "!import HOME",
                    "!import",
                    "!frob",
                    "=x",
                    "noeq",
                    "# c",
                    "  A = b "
                ]),
            ],
            0..8
        )
        .prop_map(|l| l.join("\n").into_bytes()),
    ]
}

/// A scratch service directory's files.
#[derive(Debug, Clone)]
struct Files {
    /// The service's name: `svc`, possibly with an argument.
    name: String,
    main: Vec<u8>,
    inc1: Vec<u8>,
    inc2: Vec<u8>,
    envf: Vec<u8>,
}

fn files() -> impl Strategy<Value = Files> {
    (
        word(&["svc", "svc@arg", "svc@", "svc@a b", "svc@$X"]),
        file_text(),
        file_text(),
        file_text(),
        env_file_text(),
    )
        .prop_map(|(name, main, inc1, inc2, envf)| Files {
            name,
            main,
            inc1,
            inc2,
            envf,
        })
}

// ---------------------------------------------------------------------------
// The target.

fn context() -> Context {
    let original: EnvMap = [("HOME", "/home/u"), ("X", "x y"), ("E", "")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    Context {
        env: Environment::default(),
        original,
        full_name_in_env: false,
    }
}

/// Makes the service directory's fixed part: a dependency directory.
fn lay_out_fixed(root: &Path) -> String {
    let sd = root.join("sd");
    fs::create_dir_all(sd.join("deps.d")).expect("mkdir");
    for dep in ["a", "b", ".hidden"] {
        fs::write(sd.join("deps.d").join(dep), "").expect("write");
    }
    sd.to_string_lossy().into_owned()
}

/// Writes a case's files over the previous case's.
fn lay_out(sd: &str, f: &Files) {
    let sd = Path::new(sd);
    fs::write(sd.join("svc"), &f.main).expect("write");
    fs::write(sd.join("inc1"), &f.inc1).expect("write");
    fs::write(sd.join("inc2"), &f.inc2).expect("write");
    fs::write(sd.join("envf"), &f.envf).expect("write");
}

/// Whether a file's text names an include that can loop back (inc1 and inc2
/// may include each other or themselves).
fn may_loop(f: &Files) -> bool {
    let has = |t: &[u8], what: &[u8]| t.windows(what.len()).any(|w| w == what);
    has(&f.inc1, b"inc1")
        || has(&f.inc2, b"inc")
        || has(&f.main, b"svc")
        || has(&f.inc1, b"svc")
        || has(&f.inc2, b"svc")
}

#[test]
fn fuzz_description_load() {
    limit_descriptors();
    let tmp = scratch_dir("desc");
    let sd = lay_out_fixed(tmp.path());
    run(DEFAULT_CASES, files(), |f| {
        guarded(&f, || {
            lay_out(&sd, &f);
            let loader = Loader::new(vec![sd.clone()], context());
            let loaded = loader.load(&f.name);

            // dinit-check's reading: all problems, carrying on where it can.
            let source = find_description(&f.name, std::slice::from_ref(&sd))
                .map_err(|e| TestCaseError::fail(format!("find: {e}")))?;
            let mut problems: Vec<Problem> = Vec::new();
            let checked = parse(&source, &context(), &mut problems);
            for p in &problems {
                let _ = p.to_string();
            }
            match (&loaded, &checked) {
                (Ok(_), Ok(_)) => {
                    prop_assert!(problems.iter().all(|p| !p.is_error()), "{problems:?}");
                }
                (Err(LoadError::Invalid { problem, .. }), _) => {
                    prop_assert!(
                        problems.contains(problem),
                        "{problem:?} not in {problems:?}"
                    );
                }
                (Err(e), Err(c)) => prop_assert_eq!(e.to_string(), c.to_string()),
                (l, c) => prop_assert!(false, "loader {:?} vs check {:?}", l, c),
            }
            if let Err(e) = &loaded {
                prop_assert!(!e.to_string().is_empty());
                prop_assert_eq!(e.service_name(), f.name.as_str());
            }

            if let (Ok(svc), false) = (&loaded, may_loop(&f)) {
                // Without include loops, each file is read at most a few
                // times; what comes out is bounded by what went in (the
                // environment's values and the paths named are small).
                let count =
                    |t: &[u8], what: &[u8]| t.windows(what.len()).filter(|w| *w == what).count();
                let inc1_reads = count(&f.main, b"inc1");
                let inc2_reads = count(&f.main, b"inc2") + inc1_reads * count(&f.inc1, b"inc2");
                let input = f.main.len()
                    + (inc1_reads + 1) * f.inc1.len()
                    + (inc2_reads + 1) * f.inc2.len()
                    + f.envf.len();
                let lines = input / 8 + 16;
                let size = format!("{:?}", svc.description).len();
                prop_assert!(
                    size <= 16 * input + 256 * lines + 8192,
                    "{input} bytes in, a {size}-byte description out"
                );
                let spec = to_spec(&svc.description);
                let _ = spec.validate();
            }
            let again = loader.load(&f.name);
            prop_assert_eq!(
                format!("{:?}", again.map(|s| s.description)),
                format!("{:?}", loaded.map(|s| s.description))
            );
            Ok(())
        })
    });
}

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    #[test]
    fn fuzz_env_file(text in env_file_text()) {
        guarded(&text, || {
            let text = String::from_utf8_lossy(&text);
            let mut env = Environment::default();
            let mut warnings = Vec::new();
            apply_env_file(&text, &mut env, &mut |w| warnings.push(w));
            prop_assert!(warnings.len() <= text.split('\n').count());
            let built = env.build(&context().original);
            let size: usize = env.set_vars().iter().map(|(k, v)| k.len() + v.len()).sum();
            prop_assert!(size <= text.len());
            prop_assert!(built.len() <= env.set_vars().len() + context().original.len());
            Ok(())
        })?;
    }
}
