//! braid's own commands to see, check and explain a session: `check`,
//! `graph`, `status --json`, `timeline`, `why`, `log`.
//!
//! # Finding a session
//!
//! Offline, a session is its files: a runit service directory tree and/or
//! dinit service directories ([`session::load_dir`] tells them apart entry
//! by entry). `check` and `graph DIR…` read only files.
//!
//! Online, braid asks each face through its own interface, as the real
//! tools do, so that the commands work on braid and on the real
//! supervisors alike:
//!
//! - **runit**: the service directory tree given with `-d DIR` (default
//!   `$SVDIR`, else `~/.config/service`); each service's `supervise/`
//!   files say whether it runs, its pid and since when (see [`live`]).
//! - **dinit**: the control socket given with `-p PATH` (default as
//!   dinitctl's: `$DINIT_SOCKET_PATH`, `$XDG_RUNTIME_DIR/dinitctl`, or
//!   `~/.dinitctl`); the daemon lists its services and their states, and
//!   names its service directories, whose files give the links.
//!
//! Neither interface keeps history (when each service was asked to start,
//! became ready, restarted). For that braid's supervisors — the dinit face,
//! the runit face and `braid demo` — append each state change to a session
//! event log (`braid_core::runtime::event_log`), one file per supervisor
//! process, whose first line names the socket or directory it serves.
//! [`events`] finds the log of a session by that name, and `--events FILE`
//! reads one directly (that is how the demo, which has no control
//! interface, is inspected). With the real runit or dinit there is no log:
//! the commands say so and show what the interfaces give.

/// `print!` that ignores a closed standard output (`braid status | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` that ignores a closed standard output.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod check;
pub mod cli;
pub mod dinit_client;
pub mod events;
pub mod graph;
pub mod live;
pub mod log;
pub mod manuals;
pub mod session;
pub mod status_json;
pub mod svg;
pub mod timeline;
pub mod why;

use std::path::PathBuf;

/// The runit service directory tree used when none is given: `$SVDIR`,
/// else `~/.config/service`.
pub fn default_runit_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("SVDIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".config/service"))
}

/// The user's dinit service directory (the first of dinit's user list).
pub fn default_dinit_dir() -> Option<PathBuf> {
    braid_dinit::description::default_service_dirs(false)
        .into_iter()
        .next()
        .map(PathBuf::from)
}

/// The directories `check` and `graph` read when given none: those of the
/// defaults above that exist.
pub fn default_dirs() -> Vec<PathBuf> {
    [default_runit_dir(), default_dinit_dir()]
        .into_iter()
        .flatten()
        .filter(|d| d.is_dir())
        .collect()
}
