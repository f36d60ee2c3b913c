//! The smaller subcommands: unpin, unload, reload, shutdown, add-dep,
//! rm-dep, setenv, unsetenv, trigger, untrigger, catlog, signal.

use std::os::unix::ffi::OsStrExt;

use super::args::SIGNALS;
use super::conn::{Conn, ConnError};
use super::{check_load_reply, err, load, lookup, out, Failure, Lookup, Outcome};
use crate::protocol::{
    DependencyType, Incoming, Reply, Request, ShutdownType, StatusVersion, RECEIVE_BUFFER_SIZE,
};

/// Sends a request about one service and reads a reply.
fn ask(conn: &mut Conn, req: Request) -> Result<Reply, Failure> {
    conn.send(&req)?;
    Ok(conn.reply(StatusVersion::V1)?)
}

fn protocol_error() -> Outcome {
    err(&[b"dinitctl: protocol error.\n"]);
    Ok(1)
}

pub(crate) fn unpin(conn: &mut Conn, name: &[u8], verbose: bool) -> Outcome {
    let Some((handle, _)) = load(conn, name, true)? else {
        return Ok(1);
    };
    if ask(conn, Request::UnpinService { handle })? != Reply::Ack {
        return protocol_error();
    }
    if verbose {
        out(&[b"Service '", name, b"' unpinned.\n"]);
    }
    Ok(0)
}

pub(crate) fn unload(conn: &mut Conn, name: &[u8], verbose: bool) -> Outcome {
    let reply = lookup(conn, name, true)?;
    if reply == Reply::NoService {
        err(&[b"dinitctl: service not loaded.\n"]);
        return Ok(1);
    }
    let Lookup::Found { handle, .. } = check_load_reply(reply, true)? else {
        return Ok(1);
    };
    match ask(conn, Request::UnloadService { handle })? {
        Reply::Ack => {}
        Reply::Nak => {
            err(&[b"dinitctl: could not unload service; service not stopped, or is a dependency of another service.\n"]);
            return Ok(1);
        }
        _ => return protocol_error(),
    }
    if verbose {
        out(&[b"Service '", name, b"' unloaded.\n"]);
    }
    Ok(0)
}

pub(crate) fn reload(conn: &mut Conn, name: &[u8], verbose: bool) -> Outcome {
    let reply = lookup(conn, name, true)?;
    if reply == Reply::NoService {
        // Not loaded at all: a plain load is the reload.
        if load(conn, name, true)?.is_none() {
            return Ok(1);
        }
    } else {
        let Lookup::Found { handle, .. } = check_load_reply(reply, true)? else {
            return Ok(1);
        };
        match ask(conn, Request::ReloadService { handle })? {
            Reply::Ack => {}
            Reply::Nak => {
                err(&[b"dinitctl: could not reload service; service in wrong state, incompatible change, or bad service description.\n"]);
                return Ok(1);
            }
            _ => return protocol_error(),
        }
    }
    if verbose {
        out(&[b"Service '", name, b"' reloaded.\n"]);
    }
    Ok(0)
}

pub(crate) fn shutdown(conn: &mut Conn, verbose: bool) -> Outcome {
    if ask(
        conn,
        Request::Shutdown {
            kind: ShutdownType::Halt,
        },
    )? != Reply::Ack
    {
        err(&[b"dinitctl: control socket protocol error\n"]);
        return Ok(1);
    }
    if verbose {
        out(&[b"Shutting down dinit...\n"]);
    }
    // Shutdown is complete when the daemon closes the connection.
    while let Ok(Some(Incoming::Info(_))) = conn.next(StatusVersion::V1) {}
    if verbose {
        out(&[b"Connection closed.\n"]);
    }
    Ok(0)
}

pub(crate) fn add_remove_dep(
    conn: &mut Conn,
    add: bool,
    from: &[u8],
    to: &[u8],
    dep_type: DependencyType,
    verbose: bool,
) -> Outcome {
    let Some((from_handle, _)) = load(conn, from, true)? else {
        return Ok(1);
    };
    let Some((to_handle, _)) = load(conn, to, true)? else {
        return Ok(1);
    };
    if from_handle == to_handle {
        err(&[b"dinitctl: can not add/remove a dependency from a service to itself\n"]);
        return Ok(1);
    }
    let req = if add {
        Request::AddDep {
            dep_type,
            from: from_handle,
            to: to_handle,
        }
    } else {
        Request::RemDep {
            dep_type,
            from: from_handle,
            to: to_handle,
        }
    };
    match ask(conn, req)? {
        Reply::Ack => {}
        Reply::Nak => {
            err(&[if add {
                b"dinitctl: could not add dependency: circular dependency or wrong state\n"
                    .as_slice()
            } else {
                b"dinitctl: no such dependency to remove\n".as_slice()
            }]);
            return Ok(1);
        }
        _ => {
            err(&[b"dinitctl: control socket protocol error\n"]);
            return Ok(1);
        }
    }
    if verbose {
        let what: &[u8] = if add { b"added" } else { b"removed" };
        out(&[
            b"Service '",
            from,
            b"': dependency '",
            to,
            b"' ",
            what,
            b"\n",
        ]);
    }
    Ok(0)
}

pub(crate) fn setenv(conn: &mut Conn, vars: &[Vec<u8>], unset: bool) -> Outcome {
    for arg in vars {
        let has_eq = arg.contains(&b'=');
        if has_eq && unset {
            err(&[
                b"dinitctl: environment variable '",
                arg,
                b"' must not contain the '=' sign.\n",
            ]);
            return Ok(1);
        }
        let mut var = arg.clone();
        if !has_eq && !unset {
            // NAME alone: take the value from our own environment.
            var.push(b'=');
            if let Some(v) = std::env::var_os(std::ffi::OsStr::from_bytes(arg)) {
                var.extend_from_slice(v.as_bytes());
            }
        }
        if var.len() + 3 > RECEIVE_BUFFER_SIZE {
            let name = var.split(|&b| b == b'=').next().unwrap_or_default();
            err(&[b"dinitctl: environment variable '", name, b"' too long.\n"]);
            return Ok(1);
        }
        match ask(conn, Request::SetEnv { var })? {
            Reply::Ack => {}
            Reply::BadReq => {
                err(&[b"dinitctl: failed to export environment.\n"]);
                return Ok(1);
            }
            _ => return Err(ConnError::Protocol.into()),
        }
    }
    Ok(0)
}

pub(crate) fn trigger(conn: &mut Conn, name: &[u8], value: bool) -> Outcome {
    let Some((handle, _)) = load(conn, name, true)? else {
        return Ok(1);
    };
    match ask(
        conn,
        Request::SetTrigger {
            handle,
            value: u8::from(value),
        },
    )? {
        Reply::Ack => Ok(0),
        Reply::Nak => {
            err(&[b"dinitctl: cannot trigger a service that is not of 'triggered' type.\n"]);
            Ok(1)
        }
        _ => protocol_error(),
    }
}

pub(crate) fn catlog(conn: &mut Conn, name: &[u8], clear: bool) -> Outcome {
    let Some((handle, _)) = load(conn, name, true)? else {
        return Ok(1);
    };
    let data = match ask(
        conn,
        Request::CatLog {
            flags: u8::from(clear),
            handle,
        },
    )? {
        Reply::ServiceLog { data, .. } => data,
        Reply::Nak => {
            err(&[b"dinitctl: cannot cat log for service not configured to buffer output.\n"]);
            return Ok(1);
        }
        _ => return protocol_error(),
    };
    if !data.is_empty() {
        out(&[&data]);
        if data.last() != Some(&b'\n') {
            out(&[b"\n(last line is truncated or incomplete)\n"]);
        }
    }
    Ok(0)
}

pub(crate) fn signal(conn: &mut Conn, name: &[u8], signal: i32) -> Outcome {
    let Some((handle, _)) = load(conn, name, true)? else {
        return Ok(1);
    };
    let message: &[u8] = match ask(conn, Request::Signal { signal, handle })? {
        Reply::Ack => return Ok(0),
        Reply::SignalNoPid => {
            b"dinitctl: could not get valid PID of service; service is not process-based or is in wrong state.\n"
        }
        Reply::SignalBadSig => b"dinitctl: provided signal was invalid.\n",
        Reply::SignalKillErr => b"dinitctl: failed sending signal to service.\n",
        _ => b"dinitctl: protocol error.\n",
    };
    err(&[message]);
    Ok(1)
}

pub(crate) fn signal_list() {
    let mut text = String::from("dinitctl: The following signal names are supported:");
    for (name, num) in SIGNALS.iter().skip(2) {
        text.push_str(&format!("\ndinitctl: {name:<5}-> {num}"));
    }
    text.push('\n');
    out(&[text.as_bytes()]);
}
