//! `graphical.target` following the display variables, for braid's dinit
//! backend.
//!
//! turnstile's stock `graphical-notify` only ever triggers
//! `graphical.target`, so graphical services stay up after the display is
//! gone. braid's backend has `graphical.monitor` run
//! `graphical-notify STATE-DIR` instead, which looks at the daemon's
//! activation environment as it is now (GETALLENV: dinit-monitor hands the
//! command one variable's value, and the decision needs both):
//!
//! - `WAYLAND_DISPLAY` or `DISPLAY` set and non-empty: `graphical.target`
//!   is triggered, and started if it was stopped; the services that were
//!   taken down with it come back (woken, so that a service pulled in by
//!   `boot` stays unpinned; started if nothing else wants it).
//! - both unset or empty: `graphical.target` is untriggered and stopped;
//!   its dependents stop first, in dependency order (the daemon's normal
//!   stop). The direct dependents that held it are noted in
//!   `STATE-DIR/graphical.held`, for the next display.
//!
//! The decision is made from the current state each time, so a run for a
//! change that is already outdated does no harm.

use std::path::{Path, PathBuf};

use braid_dinit::protocol::{start_flags, Handle, Reply, Request, ServiceState, StatusVersion};

use crate::inspect::dinit_client::Client;

const TARGET: &str = "graphical.target";

/// Either of these, set and non-empty, means a graphical session.
const DISPLAY_VARS: [&str; 2] = ["WAYLAND_DISPLAY", "DISPLAY"];

/// The file (in the state dir) naming the services to bring back.
const HELD_FILE: &str = "graphical.held";

/// Brings `graphical.target` in line with the display variables.
pub fn follow(state_dir: &Path) -> Result<(), String> {
    let socket =
        socket_path().ok_or("cannot find the daemon's socket (no XDG_RUNTIME_DIR or HOME)")?;
    let mut c =
        Client::connect(&socket).map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    let env = match c.request(&Request::GetAllEnv, StatusVersion::V1) {
        Ok(Reply::AllEnv { block }) => block,
        Ok(other) => return Err(format!("unexpected reply to GETALLENV: {other:?}")),
        Err(e) => return Err(format!("reading the environment: {e}")),
    };
    let (target, state) = load(&mut c, TARGET)?;
    let held = state_dir.join(HELD_FILE);
    if has_display(&env) {
        set_trigger(&mut c, target, true)?;
        // Starting an already started service is harmless (ACK/ALREADYSS).
        expect_ok(
            &mut c,
            &Request::StartService {
                flags: 0,
                handle: target,
            },
            "start",
        )?;
        for name in take_held(&held) {
            bring_back(&mut c, &name)?;
        }
        Ok(())
    } else {
        set_trigger(&mut c, target, false)?;
        // Not started yet: untriggered, it keeps waiting (stopping it
        // would fail `boot`, which waits for it as a milestone).
        if state != ServiceState::Started {
            return Ok(());
        }
        let gentle = Request::StopService {
            flags: start_flags::GENTLE,
            handle: target,
        };
        match request(&mut c, &gentle, "stop")? {
            Reply::Dependents { handles } => {
                note_held(&mut c, &held, &handles)?;
                let forced = Request::StopService {
                    flags: 0,
                    handle: target,
                };
                expect_ok(&mut c, &forced, "stop")
            }
            Reply::Ack | Reply::AlreadySs => Ok(()),
            other => Err(format!("unexpected reply to stop {TARGET}: {other:?}")),
        }
    }
}

/// As the daemon finds its socket with `--user`.
fn socket_path() -> Option<PathBuf> {
    let non_empty = |v: &str| std::env::var_os(v).filter(|x| !x.is_empty());
    non_empty("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("dinitctl"))
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".dinitctl")))
}

/// Whether `NAME=VALUE\0…` holds a display variable with a value.
fn has_display(block: &[u8]) -> bool {
    block.split(|b| *b == 0).any(|entry| {
        DISPLAY_VARS.iter().any(|var| {
            entry
                .strip_prefix(var.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
                .is_some_and(|value| !value.is_empty())
        })
    })
}

fn request(c: &mut Client, req: &Request, what: &str) -> Result<Reply, String> {
    c.request(req, StatusVersion::V1)
        .map_err(|e| format!("{what} {TARGET}: {e}"))
}

fn expect_ok(c: &mut Client, req: &Request, what: &str) -> Result<(), String> {
    match request(c, req, what)? {
        Reply::Ack | Reply::AlreadySs => Ok(()),
        other => Err(format!("{what} {TARGET}: refused ({other:?})")),
    }
}

fn load(c: &mut Client, name: &str) -> Result<(Handle, ServiceState), String> {
    let req = Request::LoadService {
        name: name.as_bytes().to_vec(),
    };
    match c.request(&req, StatusVersion::V1) {
        Ok(Reply::ServiceRecord { handle, state, .. }) => Ok((handle, state)),
        Ok(other) => Err(format!("cannot load {name}: {other:?}")),
        Err(e) => Err(format!("loading {name}: {e}")),
    }
}

fn set_trigger(c: &mut Client, handle: Handle, value: bool) -> Result<(), String> {
    let req = Request::SetTrigger {
        handle,
        value: u8::from(value),
    };
    expect_ok(c, &req, if value { "trigger" } else { "untrigger" })
}

/// Writes the names of the dependents holding the target (one a line),
/// added to those already noted.
fn note_held(c: &mut Client, file: &Path, handles: &[Handle]) -> Result<(), String> {
    let mut names = read_held(file);
    for &handle in handles {
        match c.request(&Request::QueryServiceName { handle }, StatusVersion::V1) {
            Ok(Reply::ServiceName { name }) => {
                let name = String::from_utf8_lossy(&name).into_owned();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            Ok(_) => {}
            Err(e) => return Err(format!("naming a dependent of {TARGET}: {e}")),
        }
    }
    let text: String = names.iter().map(|n| format!("{n}\n")).collect();
    std::fs::write(file, text).map_err(|e| format!("writing {}: {e}", file.display()))
}

fn read_held(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn take_held(file: &Path) -> Vec<String> {
    let names = read_held(file);
    let _ = std::fs::remove_file(file);
    names
}

/// Wakes `name` (a dependent that is up takes it again); if nothing wants
/// it, starts it.
fn bring_back(c: &mut Client, name: &str) -> Result<(), String> {
    let (handle, _) = load(c, name)?;
    let wake = Request::WakeService { flags: 0, handle };
    match c.request(&wake, StatusVersion::V1) {
        Ok(Reply::Ack | Reply::AlreadySs) => Ok(()),
        Ok(_) => {
            let start = Request::StartService { flags: 0, handle };
            match c.request(&start, StatusVersion::V1) {
                Ok(Reply::Ack | Reply::AlreadySs) => Ok(()),
                Ok(other) => Err(format!("cannot start {name} again: {other:?}")),
                Err(e) => Err(format!("starting {name} again: {e}")),
            }
        }
        Err(e) => Err(format!("waking {name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::has_display;

    #[test]
    fn display_needs_a_value() {
        assert!(has_display(b"A=1\0WAYLAND_DISPLAY=wayland-1\0"));
        assert!(has_display(b"DISPLAY=:0\0"));
        assert!(!has_display(b"WAYLAND_DISPLAY=\0DISPLAY=\0"));
        assert!(!has_display(b"WAYLAND_DISPLAYX=1\0XDISPLAY=:0\0"));
        assert!(!has_display(b""));
    }
}
