//! turnstile's backend programs on braid: `runit` and `dinit`, installed in
//! turnstile's libexec directory and run by turnstiled as
//!
//! ```text
//! <libexec>/turnstile/<backend> run FIFO SRVDIR CONFDIR   (becomes the service manager)
//! <libexec>/turnstile/<backend> ready STRING              (blocks until login may go on)
//! <libexec>/turnstile/<backend> stop PID                  (makes the manager stop and exit)
//! ```
//!
//! Unlike turnstile's stock scripts, `run` does not exec another program:
//! the backend process itself becomes braid's supervisor (so the pid
//! turnstiled knows is the manager's), serves a readiness gate (see
//! [`crate::gate`]) on `SRVDIR/gate`, and writes that socket's path to the
//! FIFO. `ready` waits on the gate; `stop` signals the manager, which stops
//! every service and then exits.
//!
//! Exit statuses follow the stock scripts where they have one: 69 for a
//! bad argument (not a FIFO, not a gate socket), 70 for a bad `HOME`, 32
//! for an unknown action; 1 when the gate failed or a step of `run` did.

pub mod conf;
mod dinit;
mod graphical;
mod runit;
mod session;

use std::ffi::OsString;

/// A program: the whole argv in, the exit status out.
pub type Program = fn(Vec<OsString>) -> i32;

/// The program of the turnstile glue called `name`, given its arguments.
///
/// `dinit` is both turnstile's backend and the dinit daemon; it is the
/// backend only when its first argument is one of the backend's actions,
/// which are not options and not plausible service names for a daemon
/// started by hand.
pub fn personality(name: &str, argv: &[OsString]) -> Option<Program> {
    match name {
        "runit" => Some(runit::main),
        "dinit" => {
            let action = argv.get(1).and_then(|a| a.to_str());
            match action {
                Some("run" | "ready" | "stop" | "graphical-notify") => Some(dinit::main),
                _ => None,
            }
        }
        "pause" => Some(crate::pause::main),
        "turnstile-update-runit-env" => Some(crate::update_env::main),
        _ => None,
    }
}
