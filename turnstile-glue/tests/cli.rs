//! The `braid` binary as a user meets it: help, dispatch by subcommand and
//! by the name it is invoked under.

use std::os::unix::fs::symlink;
use std::process::Command;

const BRAID: &str = env!("CARGO_BIN_EXE_braid");

#[test]
fn help_lists_commands_and_programs() {
    let out = Command::new(BRAID).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("demo"), "{text}");
    assert!(text.contains("dinitctl"), "{text}");
    assert!(text.contains("svlogd"), "{text}");
}

#[test]
fn demo_has_its_own_help() {
    let out = Command::new(BRAID)
        .args(["demo", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("--for"), "{text}");
}

#[test]
fn unknown_program_is_an_error_naming_it() {
    let out = Command::new(BRAID).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("\"frobnicate\""), "{err}");
}

#[test]
fn a_program_runs_by_subcommand_and_by_argv0_alike() {
    let dir = std::env::temp_dir().join(format!("braid-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("chpst");
    let _ = std::fs::remove_file(&link);
    symlink(BRAID, &link).unwrap();
    // chpst with no program prints its usage and exits 100, whichever way
    // it is reached.
    let by_link = Command::new(&link).output().unwrap();
    let by_sub = Command::new(BRAID).arg("chpst").output().unwrap();
    assert_eq!(by_link.status.code(), Some(100));
    assert_eq!(by_sub.status.code(), by_link.status.code());
    assert_eq!(by_sub.stderr, by_link.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}
