//! The service status buffer embedded in several packets, in its three
//! sizes: v1 (10 bytes), v5 (14) and v6 (30).

use super::{DecodeError, Reader, ServiceState, StopReason};

/// Which layout of the status buffer a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusVersion {
    /// 10 bytes: one 32-bit word of pid / errno / exit indicator.
    V1,
    /// 14 bytes: two words (pid or errno, 0; or si_code, si_status).
    V5,
    /// 30 bytes: v5 followed by the description file's mtime.
    V6,
}

impl StatusVersion {
    /// Encoded size in bytes.
    pub fn size(self) -> usize {
        match self {
            StatusVersion::V1 => 10,
            StatusVersion::V5 => 14,
            StatusVersion::V6 => 30,
        }
    }
}

/// A `struct timespec` as the daemon sends it (64-bit seconds and nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

/// One service's status, the superset of all three layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: ServiceState,
    pub target: ServiceState,
    /// Bit set of the `Status::*` flag constants.
    pub flags: u8,
    pub stop_reason: StopReason,
    /// Stage at which launching failed: meaningful only when `stop_reason`
    /// is `ExecFailed` and there is no pid; 0 otherwise.
    pub exec_stage: u16,
    /// First word: the pid if `HAS_PID`; else the errno if `ExecFailed`;
    /// else, in v1, 0 for a clean last exit and -1 otherwise, and in v5+,
    /// the `si_code` of the last exit.
    pub word1: i32,
    /// Second word (v5+): the `si_status` of the last exit, else 0.
    pub word2: i32,
    /// v6 only: the description file's modification time at load.
    pub mtime: Timespec,
}

impl Status {
    pub const WAITING_FOR_CONSOLE: u8 = 1;
    pub const HAS_CONSOLE: u8 = 2;
    pub const START_SKIPPED: u8 = 4;
    pub const MARKED_ACTIVE: u8 = 8;
    pub const HAS_PID: u8 = 16;

    /// A stopped, never-run service.
    pub fn stopped() -> Self {
        Status {
            state: ServiceState::Stopped,
            target: ServiceState::Stopped,
            flags: 0,
            stop_reason: StopReason::Normal,
            exec_stage: 0,
            word1: 0,
            word2: 0,
            mtime: Timespec::default(),
        }
    }

    pub fn has_flag(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The pid, when the status carries one.
    pub fn pid(&self) -> Option<i32> {
        self.has_flag(Status::HAS_PID).then_some(self.word1)
    }

    /// Appends the buffer in the given layout.
    pub fn encode(&self, version: StatusVersion, out: &mut Vec<u8>) {
        out.push(self.state.code());
        out.push(self.target.code());
        out.push(self.flags);
        out.push(self.stop_reason.code());
        out.extend_from_slice(&self.exec_stage.to_ne_bytes());
        out.extend_from_slice(&self.word1.to_ne_bytes());
        if version == StatusVersion::V1 {
            return;
        }
        out.extend_from_slice(&self.word2.to_ne_bytes());
        if version == StatusVersion::V6 {
            out.extend_from_slice(&self.mtime.sec.to_ne_bytes());
            out.extend_from_slice(&self.mtime.nsec.to_ne_bytes());
        }
    }

    /// Reads a buffer in the given layout; fields absent from it are zero.
    pub(crate) fn read(version: StatusVersion, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let state =
            ServiceState::from_code(r.u8()?).ok_or(DecodeError::Malformed("bad service state"))?;
        let target =
            ServiceState::from_code(r.u8()?).ok_or(DecodeError::Malformed("bad target state"))?;
        let flags = r.u8()?;
        let stop_reason =
            StopReason::from_code(r.u8()?).ok_or(DecodeError::Malformed("bad stop reason"))?;
        let exec_stage = r.u16()?;
        let word1 = r.i32()?;
        let mut status = Status {
            state,
            target,
            flags,
            stop_reason,
            exec_stage,
            word1,
            word2: 0,
            mtime: Timespec::default(),
        };
        if version != StatusVersion::V1 {
            status.word2 = r.i32()?;
        }
        if version == StatusVersion::V6 {
            status.mtime = Timespec {
                sec: r.i64()?,
                nsec: r.i64()?,
            };
        }
        Ok(status)
    }

    /// Decodes a buffer standing alone.
    pub fn decode(version: StatusVersion, buf: &[u8]) -> Result<Self, DecodeError> {
        Status::read(version, &mut Reader::new(buf))
    }
}
