//! The engine's view of a service, as the protocol's status buffer.

use std::time::{SystemTime, UNIX_EPOCH};

use braid_core::engine::{
    ExitStatus, LaunchStage, State, Status as EngineStatus, StopReason as EngineReason,
};

use crate::protocol::{ServiceState, Status, StopReason, Timespec};

/// Linux `si_code` values of a child's exit.
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;

pub fn state(s: State) -> ServiceState {
    match s {
        State::Stopped => ServiceState::Stopped,
        State::Starting => ServiceState::Starting,
        State::Started => ServiceState::Started,
        State::Stopping => ServiceState::Stopping,
    }
}

fn reason(r: EngineReason) -> StopReason {
    match r {
        EngineReason::Normal => StopReason::Normal,
        EngineReason::DepRestart => StopReason::DepRestart,
        EngineReason::DepFailed => StopReason::DepFailed,
        EngineReason::Failed => StopReason::Failed,
        EngineReason::ExecFailed => StopReason::ExecFailed,
        EngineReason::TimedOut => StopReason::TimedOut,
        EngineReason::Terminated => StopReason::Terminated,
    }
}

/// The status buffer of a service (all layouts; the encoder picks).
/// `mtime` is the description file's modification time at load.
pub fn status(s: &EngineStatus, mtime: Option<SystemTime>) -> Status {
    let mut flags = 0;
    if s.start_skipped {
        flags |= Status::START_SKIPPED;
    }
    if s.explicit {
        flags |= Status::MARKED_ACTIVE;
    }
    let stop_reason = reason(s.stop_reason);
    let (exec_stage, word1, word2) = match (s.pid, &s.exec_failure) {
        (Some(pid), _) => {
            flags |= Status::HAS_PID;
            (0, pid, 0)
        }
        (None, Some(failure)) if stop_reason == StopReason::ExecFailed => {
            (wire_stage(failure.stage), failure.errno as i32, 0)
        }
        (None, _) => match s.last_exit {
            None => (0, 0, 0),
            Some(ExitStatus::Exited(code)) => (0, CLD_EXITED, code),
            Some(ExitStatus::Signaled(sig)) => (0, CLD_KILLED, sig as i32),
        },
    };
    let mtime = mtime
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| Timespec {
            sec: d.as_secs() as i64,
            nsec: i64::from(d.subsec_nanos()),
        })
        .unwrap_or_default();
    Status {
        state: state(s.state),
        target: state(s.target),
        flags,
        stop_reason,
        exec_stage,
        word1,
        word2,
        mtime,
    }
}

/// The v1 buffer's single word for a process that is gone: 0 after a
/// clean exit (or none), -1 otherwise; pid and errno are kept.
pub fn v1(mut st: Status) -> Status {
    let has_pid = st.has_flag(Status::HAS_PID);
    if !has_pid && st.stop_reason != StopReason::ExecFailed {
        let clean = st.word1 == 0 || (st.word1 == CLD_EXITED && st.word2 == 0);
        st.word1 = if clean { 0 } else { -1 };
    }
    st.word2 = 0;
    st
}

/// dinit's number for a launch stage: its enum has five spare values
/// before the last one, "executing command". A failed fork is not a dinit
/// stage; it is reported as the first.
fn wire_stage(stage: LaunchStage) -> u16 {
    match stage {
        LaunchStage::DoExec => 18,
        LaunchStage::Fork => 0,
        other => other as u16,
    }
}
