//! list, status, is-started, is-failed.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use braid_core::text::escape_controls;

use super::args::Command;
use super::conn::{strerror, Conn};
use super::startstop::{
    exec_stage_description, termination_details, termination_details_wstatus, CLD_EXITED,
    CLD_KILLED,
};
use super::{check_load_reply, description_dir, err, lookup, out, Lookup, Outcome};
use crate::protocol::{Reply, Request, ServiceState, Status, StatusVersion, StopReason};

pub(crate) fn list(conn: &mut Conn) -> Outcome {
    let (req, version) = if conn.version >= 5 {
        (Request::ListServices5, StatusVersion::V5)
    } else {
        (Request::ListServices, StatusVersion::V1)
    };
    conn.send(&req)?;
    let mut text = Vec::new();
    loop {
        match conn.reply(version)? {
            Reply::SvcInfo { status, name, .. } => {
                list_line(&mut text, &status, &name, version);
                // Print as we go, as the real client does.
                out(&[&text]);
                text.clear();
            }
            Reply::ListDone => return Ok(0),
            _ => {
                err(&[b"dinitctl: control socket protocol error\n"]);
                return Ok(1);
            }
        }
    }
}

/// One line of `list`: `[{+}     ] name (pid: N)`.
fn list_line(line: &mut Vec<u8>, st: &Status, name: &[u8], version: StatusVersion) {
    let target_started = st.target == ServiceState::Started;
    let target_stopped = st.target == ServiceState::Stopped;
    let active = st.has_flag(Status::MARKED_ACTIVE);
    line.push(b'[');
    line.push(if active {
        b'['
    } else if target_started {
        b'{'
    } else {
        b' '
    });
    line.push(match st.state {
        ServiceState::Started if st.has_flag(Status::START_SKIPPED) => b's',
        ServiceState::Started => b'+',
        _ => b' ',
    });
    line.push(if active {
        b']'
    } else if target_started {
        b'}'
    } else {
        b' '
    });
    line.extend_from_slice(match st.state {
        ServiceState::Starting => b"<<",
        ServiceState::Stopping => b">>",
        _ => b"  ",
    });
    line.push(if target_stopped { b'{' } else { b' ' });
    line.push(if st.state == ServiceState::Stopped {
        if did_fail(st, version) {
            b'X'
        } else {
            b'-'
        }
    } else {
        b' '
    });
    line.push(if target_stopped { b'}' } else { b' ' });
    line.extend_from_slice(b"] ");
    line.extend_from_slice(&escape_controls(name));
    if st.state != ServiceState::Stopped {
        if let Some(pid) = st.pid() {
            line.extend_from_slice(format!(" (pid: {pid})").as_bytes());
        }
    }
    if st.state == ServiceState::Stopped
        && st.stop_reason == StopReason::Terminated
        && st.pid().is_none()
    {
        if version == StatusVersion::V1 {
            let ws = st.word1;
            if ws & 0x7f == 0 {
                line.extend_from_slice(format!(" (exit status: {})", (ws >> 8) & 0xff).as_bytes());
            } else if ((((ws & 0x7f) + 1) as i8) >> 1) > 0 {
                line.extend_from_slice(format!(" (signal: {})", ws & 0x7f).as_bytes());
            }
        } else if st.word1 == CLD_EXITED {
            line.extend_from_slice(format!(" (exit status: {})", st.word2).as_bytes());
        } else if st.word1 == CLD_KILLED {
            line.extend_from_slice(format!(" (signal: {})", st.word2).as_bytes());
        }
    }
    if st.has_flag(Status::HAS_CONSOLE) {
        line.extend_from_slice(b" (has console)");
    } else if st.has_flag(Status::WAITING_FOR_CONSOLE) {
        line.extend_from_slice(b" (waiting for console)");
    }
    line.push(b'\n');
}

/// The exit words of a status as the real client reads them: zero where a
/// pid occupies the buffer.
fn exit_words(st: &Status) -> (i32, i32) {
    if st.pid().is_some() {
        (0, 0)
    } else {
        (st.word1, st.word2)
    }
}

fn did_fail(st: &Status, version: StatusVersion) -> bool {
    if st.stop_reason != StopReason::Terminated {
        return st.stop_reason != StopReason::Normal;
    }
    let (w1, w2) = exit_words(st);
    if version == StatusVersion::V1 {
        // !WIFEXITED || WEXITSTATUS != 0
        w1 & 0x7f != 0 || (w1 >> 8) & 0xff != 0
    } else {
        w1 != CLD_EXITED || w2 != 0
    }
}

pub(crate) fn status(conn: &mut Conn, name: &[u8], command: Command, verbose: bool) -> Outcome {
    let is_status = command == Command::Status;
    let reply = lookup(conn, name, true)?;
    if reply == Reply::NoService {
        if is_status {
            err(&[b"dinitctl: service not loaded.\n"]);
        }
        return Ok(1);
    }
    let Lookup::Found { handle, .. } = check_load_reply(reply, is_status)? else {
        return Ok(1);
    };

    let mut sdf_path = description_dir(conn, handle)?;
    sdf_path.push(b'/');
    sdf_path.extend_from_slice(super::base_name(name));

    let (req, version) = match conn.version {
        v if v >= 6 => (Request::ServiceStatus6 { handle }, StatusVersion::V6),
        5 => (Request::ServiceStatus5 { handle }, StatusVersion::V5),
        _ => (Request::ServiceStatus { handle }, StatusVersion::V1),
    };
    conn.send(&req)?;
    let st = match conn.reply(version)? {
        Reply::ServiceStatus { status, .. } => status,
        _ => {
            err(&[b"dinitctl: protocol error.\n"]);
            return Ok(1);
        }
    };

    let mut changed = false;
    if version == StatusVersion::V6 {
        if let Ok(meta) = std::fs::metadata(std::ffi::OsStr::from_bytes(&sdf_path)) {
            changed = st.mtime.sec != meta.mtime() || st.mtime.nsec != meta.mtime_nsec();
        }
    }

    if command != Command::Status {
        if verbose {
            let word: &[u8] = match st.state {
                ServiceState::Stopped => b"STOPPED\n",
                ServiceState::Starting => b"STARTING\n",
                ServiceState::Started => b"STARTED\n",
                ServiceState::Stopping => b"STOPPING\n",
            };
            out(&[word]);
        }
        let ok = if command == Command::IsStarted {
            st.state == ServiceState::Started
        } else {
            st.state == ServiceState::Stopped && st.stop_reason.is_failure()
        };
        return Ok(if ok { 0 } else { 1 });
    }

    let mut text: Vec<u8> = Vec::new();
    text.extend_from_slice(b"Service: ");
    text.extend_from_slice(&escape_controls(name));
    text.extend_from_slice(b"\n    File: ");
    text.extend_from_slice(&escape_controls(&sdf_path));
    if changed {
        text.extend_from_slice(b" (modified since loaded)");
    }
    text.extend_from_slice(b"\n    State: ");
    text.extend_from_slice(state_text(&st, version).as_bytes());
    if st.has_flag(Status::HAS_CONSOLE) {
        text.extend_from_slice(b" (holding console)");
    }
    if st.has_flag(Status::WAITING_FOR_CONSOLE) {
        text.extend_from_slice(b" (waiting for console)");
    }
    text.push(b'\n');
    if st.target == ServiceState::Started {
        text.extend_from_slice(b"    Activation: ");
        text.extend_from_slice(if st.has_flag(Status::MARKED_ACTIVE) {
            b"explicitly started\n"
        } else {
            b"start due to dependent(s)\n"
        });
    }
    if let Some(pid) = st.pid() {
        if pid != -1 {
            text.extend_from_slice(format!("    Process ID: {pid}\n").as_bytes());
        }
    }
    out(&[&text]);
    Ok(0)
}

/// "STOPPED (terminated; exited - status 1)" and the like.
fn state_text(st: &Status, version: StatusVersion) -> String {
    let (w1, w2) = exit_words(st);
    // Old clients saw one status word; v5+ has si_code, si_status.
    let details = |prefix: &str| -> String {
        if version == StatusVersion::V1 {
            if w1 != 0 {
                return format!("{prefix}{}", termination_details_wstatus(w1));
            }
        } else if w2 != 0 {
            return format!("{prefix}{}", termination_details(w1, w2));
        }
        String::new()
    };
    match st.state {
        ServiceState::Stopped => {
            let extra = match st.stop_reason {
                StopReason::Normal => String::new(),
                StopReason::DepRestart => " (dependency restarted)".into(),
                StopReason::DepFailed => " (dependency failed/terminated)".into(),
                StopReason::Failed => format!(" (failed to start{})", details("; ")),
                StopReason::ExecFailed => {
                    // The first word is the errno in every layout.
                    format!(
                        " (could not be launched)\n        Stage: {}\n        Error: {}",
                        exec_stage_description(st.exec_stage),
                        strerror(w1)
                    )
                }
                StopReason::Terminated => format!(" (terminated{})", details("; ")),
                StopReason::TimedOut => " (start timed out)".into(),
            };
            format!("STOPPED{extra}")
        }
        ServiceState::Starting => {
            if st.target == ServiceState::Stopped {
                "STARTING (target state: STOPPED)".into()
            } else {
                "STARTING".into()
            }
        }
        ServiceState::Started => {
            if st.has_flag(Status::START_SKIPPED) {
                "STARTED (startup skipped)".into()
            } else {
                "STARTED".into()
            }
        }
        ServiceState::Stopping => {
            let mut s = String::from("STOPPING");
            if st.target == ServiceState::Started {
                s.push_str(" (target state: STARTED)");
            }
            let d = details("");
            if !d.is_empty() {
                s.push_str(&format!("(terminated ;{d})"));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(st: Status) -> String {
        let mut l = Vec::new();
        list_line(&mut l, &st, b"svc", StatusVersion::V5);
        String::from_utf8(l).unwrap()
    }

    #[test]
    fn list_indicators() {
        let mut st = Status::stopped();
        assert_eq!(line(st), "[     {-}] svc\n");
        st.stop_reason = StopReason::Failed;
        assert_eq!(line(st), "[     {X}] svc\n");
        st.stop_reason = StopReason::Terminated;
        st.word1 = CLD_EXITED;
        assert_eq!(line(st), "[     {-}] svc (exit status: 0)\n");
        st.word1 = CLD_KILLED;
        st.word2 = 15;
        assert_eq!(line(st), "[     {X}] svc (signal: 15)\n");
        let mut st = Status::stopped();
        st.state = ServiceState::Started;
        st.target = ServiceState::Started;
        st.flags = Status::MARKED_ACTIVE | Status::HAS_PID;
        st.word1 = 42;
        assert_eq!(line(st), "[[+]     ] svc (pid: 42)\n");
        st.flags = Status::START_SKIPPED;
        assert_eq!(line(st), "[{s}     ] svc\n");
        st.state = ServiceState::Stopping;
        assert_eq!(line(st), "[{ }>>   ] svc\n");
        st.target = ServiceState::Stopped;
        st.state = ServiceState::Starting;
        assert_eq!(line(st), "[   <<{ }] svc\n");
    }

    #[test]
    fn list_escapes_control_bytes_in_names() {
        let mut l = Vec::new();
        list_line(
            &mut l,
            &Status::stopped(),
            b"a\x1b[2Jb\nc",
            StatusVersion::V5,
        );
        assert_eq!(l, b"[     {-}] a\\x1b[2Jb\\x0ac\n");
    }
}
