//! The 20-byte `supervise/status` record and the `supervise/stat` line.
//!
//! Layout (bytes 0–17 are daemontools' `supervise` format, 18–19 runit's):
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 12 | TAI64N time of the last change (big-endian) |
//! | 12 | 4 | pid, little-endian, 0 = no process |
//! | 16 | 1 | 1 if paused |
//! | 17 | 1 | `u` if want up, else `d` (want down and want exit) |
//! | 18 | 1 | 1 if TERM was sent and the process has not exited yet |
//! | 19 | 1 | 0 down, 1 run, 2 finish |

use super::tai::Tai64N;

/// Size of the `status` file.
pub const STATUS_LEN: usize = 20;

/// What the supervised process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Down,
    Run,
    Finish,
}

impl RunState {
    fn byte(self) -> u8 {
        match self {
            RunState::Down => 0,
            RunState::Run => 1,
            RunState::Finish => 2,
        }
    }

    fn word(self) -> &'static str {
        match self {
            RunState::Down => "down",
            RunState::Run => "run",
            RunState::Finish => "finish",
        }
    }
}

/// What the supervisor wants the process to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Up,
    Down,
    /// Down, and the supervisor exits afterwards. `status` cannot tell this
    /// from `Down`; only `stat` can.
    Exit,
}

/// The supervisor's view of one process, as runsv keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// When `./run` last started, or the process last became down.
    pub since: Tai64N,
    /// The running `./run` or `./finish`, if any.
    pub pid: Option<u32>,
    pub paused: bool,
    pub want: Want,
    /// TERM was sent and the process has not exited since.
    pub got_term: bool,
    pub state: RunState,
}

impl Record {
    /// The `status` file's bytes.
    pub fn encode(&self) -> Status {
        let mut b = [0u8; STATUS_LEN];
        b[..12].copy_from_slice(&self.since.to_bytes());
        b[12..16].copy_from_slice(&self.pid.unwrap_or(0).to_le_bytes());
        b[16] = u8::from(self.paused);
        b[17] = if self.want == Want::Up { b'u' } else { b'd' };
        b[18] = u8::from(self.got_term);
        b[19] = self.state.byte();
        Status(b)
    }

    /// The `stat` file's line, newline included: `run`, `down, paused`,
    /// `run, got TERM, want down`, … (`want up` is never written, and no
    /// want at all while down).
    pub fn stat_line(&self) -> String {
        let mut line = String::from(self.state.word());
        if self.paused {
            line.push_str(", paused");
        }
        if self.got_term {
            line.push_str(", got TERM");
        }
        if self.state != RunState::Down {
            match self.want {
                Want::Up => {}
                Want::Down => line.push_str(", want down"),
                Want::Exit => line.push_str(", want exit"),
            }
        }
        line.push('\n');
        line
    }

    /// The `pid` file's content: the pid and a newline, or nothing.
    pub fn pid_text(&self) -> String {
        self.pid.map(|p| format!("{p}\n")).unwrap_or_default()
    }
}

/// A `status` record exactly as stored. Readers such as `sv` interpret the
/// raw bytes (any non-zero flag byte counts as set, unknown states are kept),
/// so nothing is lost by decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub [u8; STATUS_LEN]);

impl Status {
    pub fn as_bytes(&self) -> &[u8; STATUS_LEN] {
        &self.0
    }

    /// Time of the last change.
    pub fn since(&self) -> Tai64N {
        let mut t = [0u8; 12];
        t.copy_from_slice(&self.0[..12]);
        Tai64N::from_bytes(t)
    }

    /// The process id, 0 when there is none.
    pub fn pid(&self) -> u32 {
        u32::from_le_bytes([self.0[12], self.0[13], self.0[14], self.0[15]])
    }

    pub fn paused(&self) -> bool {
        self.0[16] != 0
    }

    /// The want byte: `u` or `d` as runsv writes it.
    pub fn want_byte(&self) -> u8 {
        self.0[17]
    }

    /// The term-flag byte (runsv writes 0 or 1).
    pub fn term_byte(&self) -> u8 {
        self.0[18]
    }

    pub fn got_term(&self) -> bool {
        self.0[18] != 0
    }

    /// The state byte (runsv writes 0, 1 or 2).
    pub fn state_byte(&self) -> u8 {
        self.0[19]
    }

    /// The state, if the byte is one runsv writes.
    pub fn state(&self) -> Option<RunState> {
        match self.0[19] {
            0 => Some(RunState::Down),
            1 => Some(RunState::Run),
            2 => Some(RunState::Finish),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tai::Tai64;
    use super::*;

    fn at(label_low: u32, nanos: u32) -> Tai64N {
        Tai64N {
            secs: Tai64(0x4000_0000_0000_0000 | u64::from(label_low)),
            nanos,
        }
    }

    fn hex(s: &str) -> [u8; STATUS_LEN] {
        let digits: Vec<u8> = s
            .split_whitespace()
            .flat_map(|w| {
                w.as_bytes()
                    .chunks(2)
                    .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        digits.try_into().unwrap()
    }

    /// The records runit's documentation shows, byte for byte.
    #[test]
    fn encodes_observed_records() {
        let run = Record {
            since: at(0x6b07_8100, 0x2608_cb24),
            pid: Some(0x13a2),
            paused: false,
            want: Want::Up,
            got_term: false,
            state: RunState::Run,
        };
        assert_eq!(
            run.encode().0,
            hex("40000000 6b078100 2608cb24 a2130000 00 75 00 01")
        );
        assert_eq!(run.stat_line(), "run\n");
        assert_eq!(run.pid_text(), "5026\n");

        let down = Record {
            since: at(0x6b07_8100, 0x25af_06ac),
            pid: None,
            paused: false,
            want: Want::Down,
            got_term: false,
            state: RunState::Down,
        };
        assert_eq!(
            down.encode().0,
            hex("40000000 6b078100 25af06ac 00000000 00 64 00 00")
        );
        assert_eq!(down.stat_line(), "down\n");
        assert_eq!(down.pid_text(), "");

        let paused_once = Record {
            since: at(0x6b07_8109, 0x04f7_37a4),
            pid: Some(0x1486),
            paused: true,
            want: Want::Down,
            got_term: false,
            state: RunState::Run,
        };
        assert_eq!(
            paused_once.encode().0,
            hex("40000000 6b078109 04f737a4 86140000 01 64 00 01")
        );
        assert_eq!(paused_once.stat_line(), "run, paused, want down\n");

        let termed = Record {
            since: at(0x6b07_8100, 0x25c9_12a4),
            pid: Some(0x139f),
            paused: false,
            want: Want::Down,
            got_term: true,
            state: RunState::Run,
        };
        assert_eq!(
            termed.encode().0,
            hex("40000000 6b078100 25c912a4 9f130000 00 64 01 01")
        );
        assert_eq!(termed.stat_line(), "run, got TERM, want down\n");
    }

    #[test]
    fn stat_lines() {
        let mut r = Record {
            since: at(0, 0),
            pid: Some(7),
            paused: false,
            want: Want::Up,
            got_term: false,
            state: RunState::Finish,
        };
        assert_eq!(r.stat_line(), "finish\n");
        assert_eq!(r.encode().0[17..], [b'u', 0, 2]);
        r.want = Want::Exit;
        assert_eq!(r.stat_line(), "finish, want exit\n");
        assert_eq!(r.encode().want_byte(), b'd');
        r.state = RunState::Down;
        r.pid = None;
        r.paused = true;
        assert_eq!(r.stat_line(), "down, paused\n");
    }

    #[test]
    fn decodes_fields() {
        let s = Status(hex("40000000 6b078100 25c912a4 9f130000 00 64 01 01"));
        assert_eq!(s.since(), at(0x6b07_8100, 0x25c9_12a4));
        assert_eq!(s.pid(), 5023);
        assert!(!s.paused());
        assert_eq!(s.want_byte(), b'd');
        assert!(s.got_term());
        assert_eq!(s.state(), Some(RunState::Run));
        let odd = Status(hex("40000000 6b078100 25c912a4 00000000 00 64 00 07"));
        assert_eq!(odd.state(), None);
        assert_eq!(odd.state_byte(), 7);
    }
}
