//! `pause`: sleeps until a signal ends it, as Void's `pause` (void-runit)
//! does. turnstile's stock runit backend ends its ready service with
//! `exec pause`, so a braid install provides one.
//!
//! SIGTERM and SIGINT end it with status 0; SIGHUP is ignored (as in
//! void-runit); any other signal has its default action. Arguments are
//! ignored. Unlike a plain pause(2), a SIGTERM that arrives while it is
//! still starting is not lost: the two signals are blocked until the
//! process waits for them atomically (sigsuspend).

use std::ffi::OsString;

use nix::sys::signal::{signal, SigHandler, SigSet, SigmaskHow, Signal};

extern "C" fn nothing(_: nix::libc::c_int) {}

/// The `pause` program.
pub fn main(_argv: Vec<OsString>) -> i32 {
    let mut ending = SigSet::empty();
    ending.add(Signal::SIGTERM);
    ending.add(Signal::SIGINT);
    let mut previous = SigSet::empty();
    // SAFETY: the handler does nothing, which is async-signal-safe.
    let set_up =
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ending), Some(&mut previous))
            .and_then(|()| unsafe { signal(Signal::SIGTERM, SigHandler::Handler(nothing)) })
            .and_then(|_| unsafe { signal(Signal::SIGINT, SigHandler::Handler(nothing)) })
            .and_then(|_| unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) });
    if let Err(e) = set_up {
        eprintln!("pause: cannot set up signals: {e}");
        return 111;
    }
    let mut waiting = previous;
    waiting.remove(Signal::SIGTERM);
    waiting.remove(Signal::SIGINT);
    // Returns once a caught signal (TERM or INT) has been handled.
    let _ = waiting.suspend();
    0
}
