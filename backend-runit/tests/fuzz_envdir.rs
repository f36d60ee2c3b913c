//! Property tests of reading an envdir (`chpst -e DIR`, `envdir DIR`):
//! a directory of files with any names and contents, and entries that are
//! not regular files (subdirectories, FIFOs nobody writes, symlinks,
//! dangling symlinks).
//!
//! For every input: reading returns (no panic, no hang) the edits or
//! chpst's exit code and message; each regular file gives exactly runit's
//! edit (empty: remove; else the first line, trailing blanks cut, NULs made
//! newlines); a subdirectory is skipped by `chpst -e` and fatal (111) for
//! `envdir`; the edits hold no more than the files did.
//!
//! Reading an envdir changes the working directory for a moment, as runit
//! does, so the cases run one at a time. They share one scratch directory
//! (on tmpfs when there is one), emptied and filled again for each case.
//!
//! `PROPTEST_CASES` sets the number of cases (see the README's "Fuzzing").

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

use braid_runit::fuzzing::envdir;
use braid_tests::fuzz::{clear_dir, guarded, run, scratch_dir};
use proptest::prelude::*;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 300;

/// The working directory is the process's: one reader at a time.
static CWD: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone)]
enum Entry {
    File(Vec<u8>),
    Dir,
    Fifo,
    /// A symlink to another entry of the directory.
    Link(String),
    DanglingLink,
}

/// File names: variable-like names, or any bytes a name may hold.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_map(String::into_bytes),
        prop::collection::vec(proptest::sample::select(name_bytes()), 1..12),
    ]
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

/// The bytes a file name may hold: any but `/` and NUL (drawn from, rather
/// than filtered: a filter's rejections add up over a long run).
fn name_bytes() -> Vec<u8> {
    (1..=u8::MAX).filter(|&b| b != b'/').collect()
}

/// File contents: random bytes, or values with the details runit handles
/// (several lines, trailing blanks, NULs, nothing at all).
fn content() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "[a-z =]{0,10}[ \t]{0,3}(\n[a-z \t]{0,8}){0,3}".prop_map(String::into_bytes),
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(b'\n'), Just(b' '), Just(b'\t'), Just(b'x')],
            0..12
        ),
        Just(Vec::new()),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        8 => content().prop_map(Entry::File),
        1 => Just(Entry::Dir),
        1 => Just(Entry::Fifo),
        1 => "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_map(Entry::Link),
        1 => Just(Entry::DanglingLink),
    ]
}

fn place(dir: &Path, name: &[u8], e: &Entry) {
    let p = dir.join(std::ffi::OsStr::from_bytes(name));
    match e {
        Entry::File(b) => fs::write(&p, b).expect("write"),
        Entry::Dir => fs::create_dir(&p).expect("mkdir"),
        Entry::Fifo => nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo"),
        Entry::Link(target) => std::os::unix::fs::symlink(target, &p).expect("symlink"),
        Entry::DanglingLink => {
            std::os::unix::fs::symlink("/nonexistent/braid", &p).expect("symlink")
        }
    }
}

/// runit's edit for a regular file's content.
fn expected_edit(name: &[u8], content: &[u8]) -> Vec<u8> {
    let mut edit = name.to_vec();
    if content.is_empty() {
        return edit;
    }
    let line = content.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let end = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    edit.push(b'=');
    edit.extend(line[..end].iter().map(|&b| if b == 0 { b'\n' } else { b }));
    edit
}

#[test]
fn fuzz_envdir() {
    let tmp = scratch_dir("envdir");
    let dir = tmp.path().join("env");
    fs::create_dir(&dir).expect("mkdir env");
    let before = tmp.path().canonicalize().expect("canonical path");
    let strategy = (
        prop::collection::btree_map(name(), entry(), 0..10),
        any::<bool>(),
    );
    run(DEFAULT_CASES, strategy, |(entries, fatal_subdirs)| {
        let _cwd = CWD.lock().unwrap_or_else(|e| e.into_inner());
        guarded(&(&entries, fatal_subdirs), || {
            clear_dir(&dir);
            for (name, e) in &entries {
                place(&dir, name, e);
            }
            std::env::set_current_dir(&before).expect("chdir");
            let result = envdir(dir.as_os_str().as_bytes(), fatal_subdirs);
            let after = std::env::current_dir();
            // On failure chpst exits at once, so it need not return to the
            // starting directory.
            std::env::set_current_dir(std::env::temp_dir()).expect("chdir");
            if result.is_ok() {
                prop_assert_eq!(after.ok(), Some(before.clone()));
            }

            // What the entries stand for once links are followed.
            let resolve = |e: &Entry| -> Option<Entry> {
                let mut e = e.clone();
                for _ in 0..8 {
                    match e {
                        Entry::Link(ref t) => e = entries.get(t.as_bytes())?.clone(),
                        Entry::DanglingLink => return None,
                        other => return Some(other),
                    }
                }
                None
            };
            let visible = |n: &[u8]| n.first() != Some(&b'.');
            let has_subdir = entries
                .iter()
                .any(|(n, e)| visible(n) && matches!(resolve(e), Some(Entry::Dir)));
            let has_loop_or_dangling = entries
                .iter()
                .any(|(n, e)| visible(n) && resolve(e).is_none());
            match result {
                Err((code, text)) => {
                    prop_assert_eq!(code, 111);
                    prop_assert!(text.starts_with(b"chpst: fatal: "));
                    prop_assert!(
                        (fatal_subdirs && has_subdir) || has_loop_or_dangling,
                        "unexpected failure: {}",
                        String::from_utf8_lossy(&text)
                    );
                }
                Ok(edits) => {
                    prop_assert!(!(fatal_subdirs && has_subdir), "a subdirectory was read");
                    let input: usize = entries
                        .iter()
                        .map(|(n, e)| {
                            n.len() + 2 + if let Entry::File(b) = e { b.len() } else { 0 }
                        })
                        .sum();
                    let largest = entries
                        .values()
                        .map(|e| if let Entry::File(b) = e { b.len() } else { 0 })
                        .max()
                        .unwrap_or(0);
                    let output: usize = edits.iter().map(Vec::len).sum();
                    // A dangling link repeats the previous value (runit's reused buffer).
                    prop_assert!(output <= input + entries.len() * (largest + 1));
                    for (n, e) in entries.iter().filter(|(n, _)| visible(n)) {
                        let expected = match resolve(e) {
                            Some(Entry::File(content)) => expected_edit(n, &content),
                            Some(Entry::Fifo) => n.clone(),
                            _ => continue,
                        };
                        prop_assert!(
                            edits.contains(&expected),
                            "{:?} missing from {:?}",
                            String::from_utf8_lossy(&expected),
                            edits
                        );
                    }
                    // Dot files are never read.
                    prop_assert!(edits.iter().all(|e| e.first() != Some(&b'.')));
                }
            }
            Ok(())
        })
    });
}
