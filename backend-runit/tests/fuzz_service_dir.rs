//! Property tests of the runit service-directory loader: directories whose
//! `run`, `finish`, `down`, `log/`, `log/run`, `log/down`, `control/u`,
//! `dependencies` and `notification-fd` entries are any kind of file (regular, directory, FIFO
//! nobody writes, symlink, dangling symlink, missing), with random or
//! near-valid `dependencies` and `notification-fd` text.
//!
//! For every input: loading returns (no panic, no hang) a service or an
//! error value; a loaded service's specs validate; its dependencies are
//! exactly the file's non-blank, non-comment lines (each once), no more.
//!
//! The cases share one scratch service directory (on tmpfs when there is
//! one), emptied and laid out again for each case.
//!
//! `PROPTEST_CASES` sets the number of cases (see the README's "Fuzzing").

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use braid_runit::service_dir::{self, LoadError};
use braid_tests::fuzz::{clear_dir, guarded, run, scratch_dir};
use proptest::prelude::*;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 400;

#[derive(Debug, Clone)]
enum Entry {
    Missing,
    File {
        content: Vec<u8>,
        mode: u32,
    },
    Dir,
    /// A FIFO with no writer: nothing may wait for one.
    Fifo,
    Link(&'static str),
    DanglingLink,
}

fn entry(content: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Entry> {
    prop_oneof![
        4 => Just(Entry::Missing),
        6 => (content, proptest::sample::select(vec![0o755, 0o644, 0o000, 0o100]))
            .prop_map(|(content, mode)| Entry::File { content, mode }),
        1 => Just(Entry::Dir),
        1 => Just(Entry::Fifo),
        1 => proptest::sample::select(vec!["run", "log", "/dev/null", "/dev/zero", ".", "dependencies"]).prop_map(Entry::Link),
        1 => Just(Entry::DanglingLink),
    ]
}

fn script() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(b"#!/bin/sh\nexec sleep 1\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..16),
    ]
    .boxed()
}

/// `dependencies` text: random bytes, or name lines with blanks, comments
/// and bad names mixed in.
fn dependencies() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        prop::collection::vec(
            prop_oneof![
                "[a-z][a-z0-9._-]{0,8}",
                proptest::sample::select(vec![
                    "",
                    "  ",
                    "# comment",
                    "  a  ",
                    "\tb\t",
                    "bad/name",
                    ".",
                    "..",
                    ".hidden",
                    "a b",
                    "#",
                    "é",
                    "x\r",
                    "-",
                    "a@b",
                ])
                .prop_map(str::to_string),
            ],
            0..10,
        )
        .prop_map(|l| l.join("\n").into_bytes()),
    ]
    .boxed()
}

/// `notification-fd` text: random bytes, or numbers with the edges.
fn notification_fd() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..12),
        proptest::sample::select(vec![
            "3\n",
            "4",
            " 12 \nx\n",
            "2",
            "-4",
            "+4",
            "0",
            "2147483647",
            "2147483648",
            "99999999999999999999",
            "",
            "\n5\n",
            "3 4",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct Layout {
    run: Entry,
    finish: Entry,
    down: Entry,
    log: Entry,
    log_run: Entry,
    log_down: Entry,
    control_u: Entry,
    dependencies: Entry,
    notification_fd: Entry,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        (entry(script()), entry(script()), entry(script())),
        (
            prop_oneof![3 => Just(Entry::Dir), 2 => entry(script())],
            entry(script()),
            entry(script()),
        ),
        entry(script()),
        entry(dependencies()),
        entry(notification_fd()),
    )
        .prop_map(
            |(
                (run, finish, down),
                (log, log_run, log_down),
                control_u,
                dependencies,
                notification_fd,
            )| Layout {
                run,
                finish,
                down,
                log,
                log_run,
                log_down,
                control_u,
                dependencies,
                notification_fd,
            },
        )
}

fn place(path: &Path, e: &Entry) {
    if let Some(parent) = path.parent() {
        let _ = fs::create_dir_all(parent);
    }
    // A parent that is not a directory leaves nothing to place.
    let _ = match e {
        Entry::Missing => Ok(()),
        Entry::File { content, mode } => fs::write(path, content)
            .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(*mode))),
        Entry::Dir => fs::create_dir(path),
        Entry::Fifo => nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644))
            .map_err(std::io::Error::from),
        Entry::Link(target) => std::os::unix::fs::symlink(target, path),
        Entry::DanglingLink => std::os::unix::fs::symlink("/nonexistent/braid", path),
    };
}

/// The names a `dependencies` text gives, when it is all valid: each
/// non-blank, non-comment line trimmed, once.
fn names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in text.lines().map(str::trim) {
        if !name.is_empty() && !name.starts_with('#') && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn fuzz_service_dir_load() {
    let tmp = scratch_dir("svdir");
    let dir = tmp.path().join("svc");
    fs::create_dir(&dir).expect("mkdir");
    run(DEFAULT_CASES, layout(), |l| {
        guarded(&l, || {
            clear_dir(&dir);
            place(&dir.join("run"), &l.run);
            place(&dir.join("finish"), &l.finish);
            place(&dir.join("down"), &l.down);
            place(&dir.join("log"), &l.log);
            if matches!(l.log, Entry::Dir) {
                place(&dir.join("log/run"), &l.log_run);
                place(&dir.join("log/down"), &l.log_down);
            }
            place(&dir.join("control/u"), &l.control_u);
            place(&dir.join("dependencies"), &l.dependencies);
            place(&dir.join("notification-fd"), &l.notification_fd);

            match service_dir::load(&dir, "svc") {
                Ok(sd) => {
                    prop_assert_eq!(&sd.name, "svc");
                    sd.service
                        .validate()
                        .map_err(|e| TestCaseError::fail(format!("service spec: {e:?}")))?;
                    if let Some(log) = &sd.logger {
                        log.validate()
                            .map_err(|e| TestCaseError::fail(format!("logger spec: {e:?}")))?;
                    }
                    let deps: Vec<String> =
                        sd.service.deps.iter().map(|d| d.name.clone()).collect();
                    // (Other kinds hold no names, or those of what they link to.)
                    if let Entry::File { content, .. } = &l.dependencies {
                        let text = String::from_utf8_lossy(content);
                        prop_assert_eq!(deps, names(&text));
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(!text.is_empty());
                    match e {
                        LoadError::Dependencies(p) => {
                            prop_assert!(p.line >= 1);
                        }
                        LoadError::NotificationFd(p) => {
                            prop_assert!(!p.text.contains('\n'));
                        }
                        LoadError::ReadDependencies(..)
                        | LoadError::ReadNotificationFd(..)
                        | LoadError::ChangeDir(_) => {}
                    }
                }
            }
            Ok(())
        })
    });
}
