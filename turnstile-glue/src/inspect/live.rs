//! A running session's states, through each face's own interface: runit's
//! `supervise/` files and dinit's control socket.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use braid_dinit::protocol::{ServiceState, Status as WireStatus, StopReason};
use braid_runit::supervise::{RunState, SuperviseFiles};

use super::dinit_client::Client;
use super::session::{load_dinit_service, Exit, Face, Live, Session};

/// Whether a supervisor runs for the `supervise/` directory `dir`: its
/// `ok` FIFO has a reader (sv's test).
pub fn supervised(dir: &Path) -> bool {
    OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(dir.join("ok"))
        .is_ok()
}

/// Fills in the live state of every runit service of `session` whose
/// supervisor runs; returns how many were found running a supervisor.
pub fn read_runit(session: &mut Session) -> usize {
    let mut found = 0;
    for s in session
        .services
        .iter_mut()
        .filter(|s| s.face == Face::Runit)
    {
        let Some(dir) = &s.source else { continue };
        let sup = dir.join("supervise");
        if !supervised(&sup) {
            continue;
        }
        let Ok(status) = SuperviseFiles::new(&sup).read_status() else {
            continue;
        };
        found += 1;
        let want_up = status.want_byte() == b'u';
        let state = match status.state() {
            Some(RunState::Run) if want_up && !status.got_term() => "started",
            Some(RunState::Run) | Some(RunState::Finish) => "stopping",
            _ if want_up => "starting",
            _ => "stopped",
        };
        let since = status.since();
        let unix = since.secs.to_unix() as f64 + f64::from(since.nanos) / 1e9;
        s.live = Some(Live {
            state: state.to_string(),
            target: Some(if want_up { "started" } else { "stopped" }.to_string()),
            ready: status.state() == Some(RunState::Run),
            pid: (status.pid() != 0).then_some(i64::from(status.pid())),
            since: Some(unix),
            paused: status.paused(),
            ..Live::default()
        });
    }
    found
}

/// Lists the services of the dinit daemon at `socket`, with their states,
/// and reads their descriptions from the daemon's service directories for
/// their links.
pub fn read_dinit(session: &mut Session, socket: &Path) -> io::Result<()> {
    let mut client = Client::connect(socket)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", socket.display())))?;
    let list = client.list()?;
    let dirs = client.service_dirs().unwrap_or_default();
    for (name, status) in list {
        if session.find(&name).is_none() && !dirs.is_empty() {
            load_dinit_service(session, &dirs, &name);
        }
        let s = session.ensure(&name, Face::Dinit);
        s.live = Some(live_of(&status));
    }
    Ok(())
}

fn state_word(s: ServiceState) -> &'static str {
    match s {
        ServiceState::Stopped => "stopped",
        ServiceState::Starting => "starting",
        ServiceState::Started => "started",
        ServiceState::Stopping => "stopping",
    }
}

fn reason_word(r: StopReason) -> &'static str {
    match r {
        StopReason::Normal => "normal",
        StopReason::DepRestart => "dependency-restarted",
        StopReason::DepFailed => "dependency-failed",
        StopReason::Failed => "failed",
        StopReason::ExecFailed => "exec-failed",
        StopReason::TimedOut => "timed-out",
        StopReason::Terminated => "terminated",
    }
}

fn live_of(st: &WireStatus) -> Live {
    let pid = st.pid().map(i64::from);
    // v5: without a pid, words are si_code and si_status of the last exit.
    let last_exit = match (pid, st.word1) {
        (None, 1) => Some(Exit::Code(i64::from(st.word2))),
        (None, 2 | 3) => Some(Exit::Signal(
            nix::sys::signal::Signal::try_from(st.word2).map_or_else(
                |_| format!("signal {}", st.word2),
                |s| s.as_str().to_string(),
            ),
        )),
        _ => None,
    };
    Live {
        state: state_word(st.state).to_string(),
        target: Some(state_word(st.target).to_string()),
        ready: st.state == ServiceState::Started,
        pid,
        since: None,
        last_exit,
        restarts: None,
        stop_reason: (st.state == ServiceState::Stopped)
            .then(|| reason_word(st.stop_reason).to_string()),
        paused: false,
    }
}

/// dinitctl's default socket: `$DINIT_SOCKET_PATH`, else
/// `$XDG_RUNTIME_DIR/dinitctl`, else `~/.dinitctl`.
pub fn default_dinit_socket() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DINIT_SOCKET_PATH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return Some(PathBuf::from(d).join("dinitctl"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".dinitctl"))
}
