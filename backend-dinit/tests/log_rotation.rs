//! braid's `@meta braid-logfile-rotate`: a dinit `logfile` rotated by size
//! and count, as a user sees it in the directory; the real dinit and
//! dinit-check accept the same file (they pass `@meta` lines over), and
//! without the setting braid writes one growing file, as the real dinit
//! does.

mod daemon_support;

use std::path::Path;

use daemon_support::{run_bounded, setup, Daemon, Impl};

/// 400 lines of 11 bytes (`line-00001\n` …), written by `seq` in two
/// writes (4096 and 304 bytes), so one write crosses several rotations.
const LINES: usize = 400;

/// The daemons start `boot`.
const BOOT: &[(&str, &str)] = &[("boot", "type = internal\n")];

fn line(n: usize) -> String {
    format!("line-{n:05}\n")
}

fn lines(range: std::ops::RangeInclusive<usize>) -> String {
    range.map(line).collect()
}

/// The service file for a log at `log`, with `meta` lines.
fn service(log: &Path, meta: &str) -> String {
    format!(
        "type = scripted\ncommand = /usr/bin/seq -f line-%05g 1 {LINES}\nlogfile = {}\n{meta}",
        log.display()
    )
}

/// Starts `gen` (a scripted service: started once its command exited, so
/// every line has reached the log) and returns the log directory's files,
/// sorted, with their contents.
fn run(daemon: &Daemon, text: &str) -> Vec<(String, String)> {
    daemon.write(&[("gen", text)]);
    let out = daemon.ctl(true, &["start", "gen"]);
    assert_eq!(
        out.code,
        0,
        "{:?}: {out:?}\n{}",
        daemon.imp,
        daemon.console()
    );
    let mut files: Vec<(String, String)> = std::fs::read_dir(log_dir(daemon))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    files
}

fn log_dir(daemon: &Daemon) -> std::path::PathBuf {
    let dir = daemon.dir.0.join("logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_rotated_logfile_keeps_count_old_files_of_whole_lines() {
    let Some(peers) = setup() else { return };
    let daemon = Daemon::start(&peers, Impl::Braid, BOOT, &[]);
    let log = log_dir(&daemon).join("gen.log");
    let text = service(&log, "@meta braid-logfile-rotate size=1000 count=2\n");
    let files = run(&daemon, &text);
    // 90 lines (990 bytes) fill a file: the 91st would pass 1000 bytes.
    // Five files were written; the two oldest were dropped.
    assert_eq!(
        files,
        [
            ("gen.log".to_string(), lines(361..=LINES)),
            ("gen.log.1".to_string(), lines(271..=360)),
            ("gen.log.2".to_string(), lines(181..=270)),
        ]
    );

    // The real dinit's checker and daemon load the same file.
    let check = run_bounded({
        let mut c = std::process::Command::new(peers.real.join("dinit-check"));
        c.arg("-d").arg(&daemon.services).arg("gen");
        c
    });
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains("No problems found."), "{check:?}");
}

#[test]
fn a_second_run_continues_the_current_file() {
    let Some(peers) = setup() else { return };
    let daemon = Daemon::start(&peers, Impl::Braid, BOOT, &[]);
    let log = log_dir(&daemon).join("gen.log");
    let text = service(&log, "@meta braid-logfile-rotate size=4000 count=1\n");
    let files = run(&daemon, &text);
    assert_eq!(
        files,
        [
            ("gen.log".to_string(), lines(364..=LINES)),
            ("gen.log.1".to_string(), lines(1..=363)),
        ]
    );
    // Restarted: the new output is appended to what `gen.log` holds, up
    // to the limit, then the file rotates again (the old `.1` goes).
    let out = daemon.ctl(true, &["stop", "gen"]);
    assert_eq!(out.code, 0, "{out:?}");
    let files = run(&daemon, &text);
    let old_tail = lines(364..=LINES);
    let mut all = old_tail.clone() + &lines(1..=LINES);
    let current = all.split_off(363 * 11);
    assert_eq!(
        files,
        [
            ("gen.log".to_string(), current),
            ("gen.log.1".to_string(), all),
        ]
    );
}

#[test]
fn without_the_setting_one_file_grows_as_with_the_real_dinit() {
    let Some(peers) = setup() else { return };
    for (imp, meta) in [
        (Impl::Real, ""),
        (Impl::Braid, ""),
        // dinit passes braid's setting over: one growing file.
        (Impl::Real, "@meta braid-logfile-rotate size=1000 count=2\n"),
    ] {
        let daemon = Daemon::start(&peers, imp, BOOT, &[]);
        let log = log_dir(&daemon).join("gen.log");
        let text = service(&log, meta);
        let files = run(&daemon, &text);
        assert_eq!(
            files,
            [("gen.log".to_string(), lines(1..=LINES))],
            "{imp:?} {meta:?}"
        );
        let out = daemon.ctl(true, &["stop", "gen"]);
        assert_eq!(out.code, 0, "{out:?}");
        let files = run(&daemon, &text);
        assert_eq!(
            files,
            [("gen.log".to_string(), lines(1..=LINES).repeat(2))],
            "{imp:?} {meta:?}: appended"
        );
    }
}

#[test]
fn a_malformed_setting_is_reported_with_its_line() {
    let Some(peers) = setup() else { return };
    let daemon = Daemon::start(&peers, Impl::Braid, BOOT, &[]);
    let log = log_dir(&daemon).join("gen.log");
    daemon.write(&[(
        "gen",
        &service(&log, "@meta braid-logfile-rotate size=big\n"),
    )]);
    let out = daemon.ctl(true, &["start", "gen"]);
    assert_ne!(out.code, 0, "{out:?}");
    let console = daemon.console();
    assert!(
        console.contains(
            "dinit: Error in service description for 'gen' (file $DIR/sd/gen, line 4): \
             '@meta braid-logfile-rotate': 'size=big' needs a whole number of at least 1\n"
        ),
        "{console}"
    );
}
