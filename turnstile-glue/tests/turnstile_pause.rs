//! `pause`, which turnstile's stock runit backend ends its ready service
//! with: it sleeps until SIGTERM or SIGINT (exit 0) and ignores SIGHUP, as
//! void-runit's pause does.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{Proc, BRAID};

fn pause() -> Proc {
    let child = Command::new(BRAID)
        .arg("pause")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    Proc::spawned(child)
}

/// Waits until the process has set up its signal dispositions (it is
/// blocked in pause(2) then), reading them from /proc.
fn wait_until_paused(p: &mut Proc) {
    let path = format!("/proc/{}/status", p.pid());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(&path).unwrap_or_default();
        // SIGHUP (bit 0) ignored: the last disposition pause sets.
        let ignored = status
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        if ignored & 1 == 1 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pause never got ready"
        );
        assert!(
            p.wait_for(Duration::from_millis(10)).is_none(),
            "pause exited"
        );
    }
}

#[test]
fn term_and_int_end_it_with_status_0() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut p = pause();
        wait_until_paused(&mut p);
        kill(Pid::from_raw(p.pid()), sig).unwrap();
        let status = p.wait_for(Duration::from_secs(10)).expect("exited");
        assert_eq!(status.code(), Some(0), "{sig}");
    }
}

#[test]
fn hup_is_ignored_and_other_signals_kill_it() {
    let mut p = pause();
    wait_until_paused(&mut p);
    kill(Pid::from_raw(p.pid()), Signal::SIGHUP).unwrap();
    assert!(
        p.wait_for(Duration::from_millis(300)).is_none(),
        "HUP ended it"
    );
    kill(Pid::from_raw(p.pid()), Signal::SIGUSR1).unwrap();
    let status = p.wait_for(Duration::from_secs(10)).expect("exited");
    assert_eq!(status.signal(), Some(Signal::SIGUSR1 as i32));
}
