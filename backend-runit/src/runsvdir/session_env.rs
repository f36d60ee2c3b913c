//! The session environment of a runsvdir session, and the built-in
//! `graphical` service that follows it.
//!
//! With `TURNSTILE_ENV_DIR` set (turnstile's runit backend sets it to
//! `service_env_dir`), that directory is watched (chpst's envdir rules, see
//! `braid_core::runtime::envdir`) and mirrored into the environment every
//! service is launched with: a value written there — by hand, by
//! `turnstile-update-runit-env`, by a service — reaches every service that
//! starts afterwards, without `chpst -e` and without restarting braid.
//! (Services that still run `chpst -e "$TURNSTILE_ENV_DIR"` read the same
//! values.)
//!
//! `graphical` is a service braid provides (it has no directory): it is up
//! while `WAYLAND_DISPLAY` or `DISPLAY` is set, non-empty, in that
//! environment. A service that needs the graphical session names it in its
//! `dependencies` file: it waits for the variables, and is stopped before
//! `graphical` goes down, when both are unset or the session ends. Once the
//! variables are back, `graphical` comes back, and so do dependents that
//! are still wanted up.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::rc::Rc;

use braid_core::engine::{Command, ServiceId, State};
use braid_core::runtime::envdir::{self, Change};
use braid_core::runtime::Runtime;
use braid_core::spec::{Kind, ServiceSpec};

/// The directory a turnstile session keeps shared variables in.
pub const ENV_DIR_VAR: &str = "TURNSTILE_ENV_DIR";

/// The built-in service's name.
pub const GRAPHICAL: &str = "graphical";

/// Either of these, set and non-empty, means a graphical session.
const DISPLAY_VARS: [&str; 2] = ["WAYLAND_DISPLAY", "DISPLAY"];

/// Loads `graphical` and, if `TURNSTILE_ENV_DIR` is set, follows that
/// directory. Call before the first scan, so that dependents find
/// `graphical` loaded. Problems are reported on stderr, as runsvdir's are.
pub fn install(rt: &mut Runtime) {
    let Some(graphical) = load_graphical(rt) else {
        return;
    };
    let held = Rc::new(RefCell::new(Vec::new()));
    follow_display(rt, graphical, &held);
    let Some(dir) = std::env::var_os(ENV_DIR_VAR).filter(|d| !d.is_empty()) else {
        return;
    };
    let watched = envdir::watch(
        rt,
        std::path::Path::new(&dir),
        move |rt: &mut Runtime, changes: &[Change], errors: &[String]| {
            for e in errors {
                eprintln!("runsvdir: warning: session environment: {e}");
            }
            envdir::apply_to_base_env(rt, changes);
            let display = changes
                .iter()
                .any(|c| DISPLAY_VARS.iter().any(|v| c.name() == OsStr::new(v)));
            if display {
                follow_display(rt, graphical, &held);
            }
        },
    );
    if let Err(e) = watched {
        eprintln!("runsvdir: warning: not following the session environment: {e}");
    }
}

fn load_graphical(rt: &mut Runtime) -> Option<ServiceId> {
    if let Some(id) = rt.engine().lookup(GRAPHICAL) {
        return Some(id);
    }
    let mut spec = ServiceSpec::new(GRAPHICAL, Kind::Triggered);
    // It waits for the variables as long as it takes.
    spec.start_timeout = None;
    match rt.engine_mut().load(spec) {
        Ok(id) => Some(id),
        Err(e) => {
            eprintln!("runsvdir: warning: cannot provide {GRAPHICAL}: {e:?}");
            None
        }
    }
}

/// Whether the environment services get says there is a display.
fn has_display(rt: &mut Runtime) -> bool {
    let env = rt.base_env_mut();
    DISPLAY_VARS
        .iter()
        .any(|v| env.get(OsStr::new(v)).is_some_and(|x| !x.is_empty()))
}

/// Brings `graphical` up when there is a display (triggered, and started
/// on its own account), and down when there is none: its dependents stop
/// first. Those that were wanted up then (`held`) are started again when
/// the display comes back.
fn follow_display(rt: &mut Runtime, graphical: ServiceId, held: &RefCell<Vec<ServiceId>>) {
    let display = has_display(rt);
    let _ = rt.command(graphical, Command::Trigger(display));
    let status = rt.engine().status(graphical);
    if display && status.target != State::Started {
        let _ = rt.command(graphical, Command::Start { pin: false });
        for id in held.take() {
            let _ = rt.command(id, Command::Start { pin: false });
        }
    } else if !display && status.state == State::Started {
        let wanted: Vec<ServiceId> = rt
            .engine()
            .dependents(graphical)
            .into_iter()
            .filter(|d| rt.engine().status(*d).target == State::Started)
            .collect();
        *held.borrow_mut() = wanted;
        let _ = rt.command(
            graphical,
            Command::Stop {
                pin: false,
                gentle: false,
            },
        );
    }
}
