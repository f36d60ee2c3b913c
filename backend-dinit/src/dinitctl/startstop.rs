//! start, wake, stop, restart, release: issue the command, then (unless
//! `--no-wait`) follow the service's events until it gets where it was sent.

use std::os::unix::ffi::OsStrExt;

use super::args::{Command, Invocation};
use super::conn::{strerror, Conn, ConnError, PacketError, Seen};
use super::{description_dir, err, load, out, Failure, Outcome};
use crate::protocol::{
    start_flags, Handle, Incoming, Info, Reply, Request, ServiceEvent, ServiceState, StatusVersion,
    StopReason,
};

pub(crate) fn run(conn: &mut Conn, inv: &Invocation, name: &[u8]) -> Outcome {
    let cmd = inv.command;
    let do_stop = matches!(cmd, Command::Stop | Command::Release);
    let ignore_unstarted =
        inv.ignore_unstarted && matches!(cmd, Command::Restart | Command::Stop | Command::Release);

    let Some((handle, state)) = load(conn, name, !ignore_unstarted)? else {
        return Ok(if ignore_unstarted { 0 } else { 1 });
    };
    let wanted = if do_stop {
        ServiceState::Stopped
    } else {
        ServiceState::Started
    };

    if conn.version >= 6 && !do_stop {
        warn_if_modified(conn, handle, name)?;
    }

    let is_stop_packet = matches!(cmd, Command::Stop | Command::Restart);
    let mut flags = if inv.pin { start_flags::PIN } else { 0 };
    if is_stop_packet && !inv.force {
        flags |= start_flags::GENTLE;
    }
    if cmd == Command::Restart {
        flags |= start_flags::RESTART | start_flags::PREACK;
    }
    let req = match cmd {
        Command::Stop | Command::Restart => Request::StopService { flags, handle },
        Command::Release => Request::ReleaseService { flags, handle },
        Command::Wake => Request::WakeService { flags, handle },
        _ => Request::StartService { flags, handle },
    };
    conn.send(&req)?;

    let mut seen = Seen::default();
    let mut reply = conn.reply_seen(StatusVersion::V1, handle, &mut seen)?;
    if reply == Reply::PreAck {
        // Only what happens after the PREACK is caused by this command.
        seen = Seen::default();
        reply = conn.reply_seen(StatusVersion::V1, handle, &mut seen)?;
    }

    let verbose = inv.verbose;
    match reply {
        Reply::AlreadySs => {
            if verbose {
                if cmd == Command::Restart {
                    out(&[b"Service restarted.\n"]);
                } else {
                    let already: &[u8] = if state == wanted { b"(already) " } else { b"" };
                    out(&[b"Service ", already, describe_state(do_stop), b".\n"]);
                }
            }
            return Ok(0);
        }
        Reply::PinnedStarted => {
            err(&[
                b"dinitctl: cannot stop service '",
                name,
                b"' as it is pinned started\n",
            ]);
            return Ok(1);
        }
        Reply::PinnedStopped => {
            err(&[
                b"dinitctl: cannot start service '",
                name,
                b"' as it is pinned stopped\n",
            ]);
            return Ok(1);
        }
        Reply::Dependents { handles } if is_stop_packet => {
            err(&[
                b"dinitctl: cannot stop service '",
                name,
                b"' due to the following dependents:\n",
            ]);
            if cmd != Command::Restart {
                err(&[b"(only direct dependents are listed. Exercise caution before using '--force' !!)\n"]);
            }
            let mut line = b" ".to_vec();
            for h in handles {
                line.push(b' ');
                line.extend_from_slice(&service_name(conn, h)?);
            }
            line.push(b'\n');
            err(&[&line]);
            return Ok(1);
        }
        Reply::Nak if cmd == Command::Restart => {
            if ignore_unstarted {
                if verbose {
                    out(&[b"Service '", name, b"' is not currently started.\n"]);
                }
                return Ok(0);
            }
            err(&[b"dinitctl: cannot restart service; service not started.\n"]);
            return Ok(1);
        }
        Reply::Nak if cmd == Command::Wake => {
            err(&[b"dinitctl: service has no active dependents, cannot wake.\n"]);
            return Ok(1);
        }
        Reply::ShuttingDown => {
            err(&[b"dinitctl: cannot start/restart/wake service, shutdown is in progress.\n"]);
            return Ok(1);
        }
        Reply::Ack => {}
        _ => {
            err(&[b"dinitctl: protocol error.\n"]);
            return Ok(1);
        }
    }

    if !inv.wait {
        if verbose {
            out(&[
                b"Issued ",
                describe_verb(do_stop),
                b" command successfully for service '",
                name,
                b"'.\n",
            ]);
        }
        return Ok(0);
    }

    if cmd == Command::Restart {
        if seen.stopped {
            if verbose {
                out(&[b"Service '", name, b"' stopped.\n"]);
            }
        } else if wait_for_state(conn, handle, name, true, verbose)? != 0 {
            return Ok(1);
        }
    }

    // As in the real client, what was seen is reported and then the wait
    // goes on regardless.
    if seen.started {
        if verbose {
            out(&[b"Service '", name, b"' started.\n"]);
        }
    } else if seen.failed_start && verbose {
        out(&[b"Service '", name, b"' failed to start.\n"]);
        let reason = seen.stop_reason.unwrap_or(StopReason::Normal);
        print_failure_details(reason, 0, seen.exit_status, seen.si_code, seen.si_status);
    }
    wait_for_state(conn, handle, name, do_stop, verbose)
}

fn describe_state(stopped: bool) -> &'static [u8] {
    if stopped {
        b"stopped"
    } else {
        b"started"
    }
}

fn describe_verb(stop: bool) -> &'static [u8] {
    if stop {
        b"stop"
    } else {
        b"start"
    }
}

/// With protocol 6+, compares the description file's mtime with the one
/// the daemon loaded and warns when they differ.
fn warn_if_modified(conn: &mut Conn, handle: Handle, name: &[u8]) -> Result<(), Failure> {
    let mut path = description_dir(conn, handle)?;
    path.push(b'/');
    path.extend_from_slice(super::base_name(name));
    let Ok(meta) = std::fs::metadata(std::ffi::OsStr::from_bytes(&path)) else {
        return Ok(());
    };
    conn.send(&Request::ServiceStatus6 { handle })?;
    let status = match conn.reply(StatusVersion::V6)? {
        Reply::ServiceStatus { status, .. } => status,
        _ => {
            err(&[b"dinitctl: protocol error.\n"]);
            return Err(Failure::Reported);
        }
    };
    use std::os::unix::fs::MetadataExt;
    if status.mtime.sec != meta.mtime() || status.mtime.nsec != meta.mtime_nsec() {
        err(&[
            b"dinitctl: warning: service description may have changed; use 'dinitctl reload ",
            name,
            b"' to apply changes.\n",
        ]);
    }
    Ok(())
}

/// QUERYSERVICENAME for a handle.
fn service_name(conn: &mut Conn, handle: Handle) -> Result<Vec<u8>, Failure> {
    conn.send(&Request::QueryServiceName { handle })?;
    match conn.reply(StatusVersion::V1)? {
        Reply::ServiceName { name } => Ok(name),
        _ => Err(ConnError::Read.into()),
    }
}

/// Follows events until the service reaches the wanted state (0) or its
/// start/stop is cancelled or fails (1), printing the outcome.
pub(crate) fn wait_for_state(
    conn: &mut Conn,
    handle: Handle,
    name: &[u8],
    do_stop: bool,
    verbose: bool,
) -> Outcome {
    loop {
        let info = match conn.next(StatusVersion::V1) {
            Ok(Some(Incoming::Info(info))) => info,
            Ok(Some(Incoming::Reply(_))) | Ok(None) | Err(PacketError::Malformed) => {
                return Err(ConnError::Protocol.into())
            }
            Err(PacketError::Io(e)) => {
                err(&[
                    b"dinitctl: read: ",
                    strerror(e.raw_os_error().unwrap_or(0)).as_bytes(),
                    b"\n",
                ]);
                return Ok(1);
            }
        };
        if let Some(code) = service_event(&info, handle, name, do_stop, verbose) {
            return Ok(code);
        }
    }
}

/// Handles one event packet while waiting: `Some(exit code)` when it
/// settles the wait.
pub(crate) fn service_event(
    info: &Info,
    handle: Handle,
    name: &[u8],
    do_stop: bool,
    verbose: bool,
) -> Option<i32> {
    let (h, event, status, v5) = match info {
        Info::ServiceEvent5 {
            handle,
            event,
            status,
        } => (*handle, *event, status, true),
        Info::ServiceEvent {
            handle,
            event,
            status,
        } => (*handle, *event, status, false),
        _ => return None,
    };
    if h != handle {
        return None;
    }
    let (complete, cancelled) = if do_stop {
        (ServiceEvent::Stopped, ServiceEvent::StopCancelled)
    } else {
        (ServiceEvent::Started, ServiceEvent::StartCancelled)
    };
    if event == complete {
        if verbose {
            out(&[b"Service '", name, b"' ", describe_state(do_stop), b".\n"]);
        }
        Some(0)
    } else if event == cancelled {
        if verbose {
            out(&[
                b"Service '",
                name,
                b"' ",
                describe_verb(do_stop),
                b" cancelled.\n",
            ]);
        }
        Some(1)
    } else if !do_stop && event == ServiceEvent::FailedStart {
        if verbose {
            out(&[b"Service '", name, b"' failed to start.\n"]);
            let (si_code, si_status) = if v5 {
                (status.word1, status.word2)
            } else {
                (0, 0)
            };
            print_failure_details(
                status.stop_reason,
                status.exec_stage,
                status.word1,
                si_code,
                si_status,
            );
        }
        Some(1)
    } else {
        None
    }
}

/// Linux `si_code` values for a child's exit.
pub(crate) const CLD_EXITED: i32 = 1;
pub(crate) const CLD_KILLED: i32 = 2;

/// "signalled - signal N" / "exited - status N" / "unknown reason".
pub(crate) fn termination_details(si_code: i32, si_status: i32) -> String {
    match si_code {
        CLD_KILLED => format!("signalled - signal {si_status}"),
        CLD_EXITED => format!("exited - status {si_status}"),
        _ => "unknown reason".into(),
    }
}

/// The same from an old-style `wait` status word (glibc's macros).
pub(crate) fn termination_details_wstatus(ws: i32) -> String {
    if ((((ws & 0x7f) + 1) as i8) >> 1) > 0 {
        format!("signalled - signal {}", ws & 0x7f)
    } else if ws & 0x7f == 0 {
        format!("exited - status {}", (ws >> 8) & 0xff)
    } else {
        "unknown reason".into()
    }
}

/// What each launch stage is called (indexed by the exec-failure stage of
/// the status buffer), as in a Linux build with cgroups and I/O-priority
/// support but without capabilities.
pub(crate) fn exec_stage_description(stage: u16) -> &'static str {
    const STAGES: [&str; 19] = [
        "arranging file descriptors",
        "reading environment file",
        "setting environment variable",
        "setting up activation socket",
        "setting up control socket",
        "changing directory",
        "setting up standard input/output descriptors",
        "entering cgroup",
        "setting resource limits",
        "setting user/group ID",
        "opening log file",
        "",
        "setting I/O priority",
        "",
        "",
        "",
        "",
        "",
        "executing command",
    ];
    STAGES.get(usize::from(stage)).copied().unwrap_or("")
}

/// The "Reason: ..." block after "failed to start".
pub(crate) fn print_failure_details(
    reason: StopReason,
    stage: u16,
    exit_status: i32,
    si_code: i32,
    si_status: i32,
) {
    match reason {
        StopReason::DepFailed => {
            out(&[b"Reason: a dependency of the service failed to start. Check dinit log.\n"]);
        }
        StopReason::TimedOut => out(&[b"Reason: start timed out.\n"]),
        StopReason::ExecFailed => out(&[
            b"Reason: execution of service process failed:\n        Stage: ",
            exec_stage_description(stage).as_bytes(),
            b"\n        Error: ",
            strerror(exit_status).as_bytes(),
            b"\n",
        ]),
        StopReason::Failed => {
            let details = if si_code != 0 || si_status != 0 {
                termination_details(si_code, si_status)
            } else {
                termination_details_wstatus(exit_status)
            };
            out(&[
                b"Reason: service process terminated before ready: ",
                details.as_bytes(),
                b"\n",
            ]);
        }
        _ => out(&[b"Reason unknown/unrecognised. Check dinit log.\n"]),
    }
}
