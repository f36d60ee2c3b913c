//! `braid install` as an administrator uses it: the links it lays, a dry
//! run, and what it refuses to overwrite.

mod support;

use std::process::Command;

use support::{TempDir, BRAID};

fn install(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BRAID)
        .arg("install")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn braid() -> std::path::PathBuf {
    std::fs::canonicalize(BRAID).unwrap()
}

const BIN: &[&str] = &[
    "dinit",
    "dinitctl",
    "dinit-check",
    "dinit-monitor",
    "runsvdir",
    "runsv",
    "sv",
    "chpst",
    "svlogd",
    "envdir",
    "envuidgid",
    "pgrphack",
    "setuidgid",
    "setlock",
    "softlimit",
    "pause",
    "turnstile-update-runit-env",
];

#[test]
fn lays_every_link_and_the_backends() {
    let t = TempDir::new("inst");
    let prefix = t.0.join("usr");
    let p = prefix.to_str().unwrap();
    let (code, out, err) = install(&["--prefix", p]);
    assert_eq!(code, 0, "{err}");
    for name in BIN {
        let link = prefix.join("bin").join(name);
        assert_eq!(std::fs::read_link(&link).unwrap(), braid(), "{name}");
        assert!(out.contains(&format!("linked {}", link.display())), "{out}");
    }
    for name in ["runit", "dinit"] {
        let link = prefix.join("libexec/turnstile").join(name);
        assert_eq!(std::fs::read_link(&link).unwrap(), braid(), "{name}");
    }
    // The links work: sv through its link is braid's sv.
    let sv = Command::new(prefix.join("bin/sv")).output().unwrap();
    assert_eq!(sv.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&sv.stderr).starts_with("usage: sv"));

    // Again: everything is ours and kept.
    let (code, out, _) = install(&["--prefix", p]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), BIN.len() + 2);
    assert!(out.lines().all(|l| l.starts_with("kept ")), "{out}");
}

#[test]
fn a_dry_run_only_says_what_it_would_do() {
    let t = TempDir::new("instdry");
    let prefix = t.0.join("usr");
    let libexec = t.0.join("lib/turnstile");
    let (code, out, _) = install(&[
        "--prefix",
        prefix.to_str().unwrap(),
        "--turnstile-libexec",
        libexec.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!(
        "would link {} -> {}",
        libexec.join("dinit").display(),
        braid().display()
    )));
    assert!(out.contains(&format!("would link {}", prefix.join("bin/sv").display())));
    assert!(
        !prefix.exists() && !libexec.exists(),
        "a dry run created files"
    );
}

#[test]
fn foreign_files_are_kept_unless_forced() {
    let t = TempDir::new("instforce");
    let prefix = t.0.join("usr");
    let p = prefix.to_str().unwrap();
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::write(prefix.join("bin/sv"), "#!/bin/sh\necho real sv\n").unwrap();
    std::os::unix::fs::symlink("/usr/bin/chpst", prefix.join("bin/chpst")).unwrap();

    let (code, _, err) = install(&["--prefix", p]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "{} is a file, not braid's (--force replaces it)",
            prefix.join("bin/sv").display()
        )),
        "{err}"
    );
    assert!(
        err.contains("is a link to /usr/bin/chpst, not braid's"),
        "{err}"
    );
    // Nothing at all was installed.
    assert!(!prefix.join("bin/dinit").exists());
    assert_eq!(
        std::fs::read_to_string(prefix.join("bin/sv")).unwrap(),
        "#!/bin/sh\necho real sv\n"
    );

    let (code, out, _) = install(&["--prefix", p, "--dry-run"]);
    assert_eq!(code, 1);
    assert!(out.contains("would refuse"), "{out}");

    let (code, out, err) = install(&["--prefix", p, "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("replaced {}", prefix.join("bin/sv").display())));
    assert_eq!(std::fs::read_link(prefix.join("bin/sv")).unwrap(), braid());
    assert_eq!(
        std::fs::read_link(prefix.join("bin/chpst")).unwrap(),
        braid()
    );
}
