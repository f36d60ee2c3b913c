//! The global environment (what every service's environment is built on):
//! the inherited environment, the `-e` file and SETENV changes. It lives in
//! the loader's substitution context; the runtime's base environment is
//! rebuilt from it after every change.
//!
//! With `TURNSTILE_ENV_DIR` set (a turnstile session), that directory is
//! watched too (chpst's envdir rules, see `braid_core::runtime::envdir`):
//! a file written there is a SETENV, an emptied or removed one an UNSETENV,
//! announced to clients listening for environment events (dinit-monitor)
//! like any other. So the session has one environment, whichever way it
//! is changed.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use braid_core::runtime::envdir::{self, Change};
use braid_core::runtime::Runtime;

use super::options::Level;
use super::{Daemon, Shared};
use crate::description::{Context, EnvMap};
use crate::protocol::Info;

/// The directory a turnstile session keeps shared variables in.
pub const ENV_DIR_VAR: &str = "TURNSTILE_ENV_DIR";

/// The environment as services get it.
pub fn build(ctx: &Context) -> EnvMap {
    ctx.env.build(&ctx.original)
}

/// Makes the runtime launch processes with the current global environment.
pub fn sync(rt: &mut Runtime, ctx: &Context) {
    let base = rt.base_env_mut();
    base.clear();
    for (k, v) in build(ctx) {
        base.insert(OsString::from(k), OsString::from(v));
    }
}

/// Applies a SETENV entry (`NAME=VALUE` sets, `NAME` unsets; the decoder
/// has refused a leading `=`). Returns whether the variable had a value
/// before, for the ENVEVENT flag.
pub fn setenv(ctx: &mut Context, entry: &[u8]) -> bool {
    let text = String::from_utf8_lossy(entry);
    let (name, value) = match text.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (&*text, None),
    };
    let had_value = build(ctx).contains_key(name);
    match value {
        Some(v) => ctx.env.set_var(name, v),
        None => ctx.env.unset_var(name),
    }
    had_value
}

/// GETALLENV's block: `NAME=VALUE\0` for every variable.
pub fn block(ctx: &Context) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in build(ctx) {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Applies a SETENV entry, makes the runtime use the result and tells the
/// clients that listen for environment events.
pub(super) fn update(d: &mut Daemon, rt: &mut Runtime, var: Vec<u8>) {
    let had_value = setenv(&mut d.services.loader.context, &var);
    sync(rt, &d.services.loader.context);
    let event = Info::EnvEvent {
        overridden: had_value,
        var,
    };
    for c in d.conns.values_mut().filter(|c| c.listen_env) {
        c.send_info(&event);
    }
}

/// Watches `$TURNSTILE_ENV_DIR` if set (see the module documentation). A
/// directory that cannot be watched is reported, not fatal.
pub(super) fn watch_env_dir(rt: &mut Runtime, shared: &Shared) {
    let Some(dir) = std::env::var_os(ENV_DIR_VAR).filter(|d| !d.is_empty()) else {
        return;
    };
    let s = shared.clone();
    let watched = envdir::watch(
        rt,
        std::path::Path::new(&dir),
        move |rt: &mut Runtime, changes: &[Change], errors: &[String]| {
            let mut d = s.borrow_mut();
            for e in errors {
                d.console.log(Level::Warn, e);
            }
            for c in changes {
                let name = String::from_utf8_lossy(c.name().as_bytes()).into_owned();
                let now = build(&d.services.loader.context);
                let entry = match c {
                    Change::Set(_, v) => {
                        let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                        if now.get(&name) == Some(&value) {
                            continue;
                        }
                        format!("{name}={value}")
                    }
                    Change::Unset(_) if !now.contains_key(&name) => continue,
                    Change::Unset(_) => name,
                };
                update(&mut d, rt, entry.into_bytes());
            }
        },
    );
    if let Err(e) = watched {
        shared.borrow_mut().console.log(
            Level::Warn,
            &format!("not following the session environment: {e}"),
        );
    }
}
