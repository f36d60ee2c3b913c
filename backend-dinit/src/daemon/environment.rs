//! The global environment (what every service's environment is built on):
//! the inherited environment, the `-e` file and SETENV changes. It lives in
//! the loader's substitution context; the runtime's base environment is
//! rebuilt from it after every change.

use std::ffi::OsString;

use braid_core::runtime::Runtime;

use crate::description::{Context, EnvMap};

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
