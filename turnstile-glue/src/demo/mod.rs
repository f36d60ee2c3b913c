//! `braid demo`: braid's main job on a built-in example.
//!
//! By default it logs a user in through an emulated turnstile, once with the
//! `runit` backend and once with the `dinit` backend: the login waits for a
//! core service that takes a moment to become ready, then proceeds, and a
//! timeline shows what started when. `--engine` instead runs an example set
//! of services inside this process and shows each state change live.

mod engine;
mod login;

use std::sync::atomic::{AtomicBool, Ordering};

/// Options of `braid demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep each session running this many seconds after login [default: 3;
    /// with --engine: until Ctrl-C].
    #[arg(long = "for", value_name = "SECONDS")]
    pub for_secs: Option<f64>,
    /// Run the in-process example (a chain, a failing service, a logger)
    /// instead of the login sessions.
    #[arg(long)]
    pub engine: bool,
    /// Only this backend's login session.
    #[arg(long, value_name = "runit|dinit", value_parser = ["runit", "dinit"])]
    pub backend: Option<String>,
}

/// Runs the demo; returns the exit status.
pub fn run(args: &DemoArgs) -> i32 {
    let result = if args.engine {
        engine::run(args)
    } else {
        login::run(args)
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("braid demo: {e}");
            111
        }
    }
}

/// Set by SIGINT (Ctrl-C) during the login demo.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catches Ctrl-C: waits in progress are cut short (EINTR) and the demo
/// logs out cleanly instead of dying.
fn catch_interrupt() -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe { sigaction(Signal::SIGINT, &action) }.map(|_| ())
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
