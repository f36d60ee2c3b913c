//! `pause`: sleeps until a signal ends it, as Void's `pause` (void-runit)
//! does. turnstile's stock runit backend ends its ready service with
//! `exec pause`, so a braid install provides one.
//!
//! SIGTERM and SIGINT end it with status 0; SIGHUP is ignored (as in
//! void-runit); any other signal has its default action. Arguments are
//! ignored.

use std::ffi::OsString;

use nix::sys::signal::{signal, SigHandler, Signal};

extern "C" fn nothing(_: nix::libc::c_int) {}

/// The `pause` program.
pub fn main(_argv: Vec<OsString>) -> i32 {
    // SAFETY: the handler does nothing, which is async-signal-safe.
    let installed = unsafe {
        signal(Signal::SIGTERM, SigHandler::Handler(nothing))
            .and_then(|_| signal(Signal::SIGINT, SigHandler::Handler(nothing)))
            .and_then(|_| signal(Signal::SIGHUP, SigHandler::SigIgn))
    };
    if let Err(e) = installed {
        eprintln!("pause: cannot set up signals: {e}");
        return 111;
    }
    // Only a caught signal (TERM or INT) makes pause(2) return.
    nix::unistd::pause();
    0
}
