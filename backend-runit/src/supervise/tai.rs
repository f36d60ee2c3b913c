//! TAI64 and TAI64N labels as runit stores and prints them.
//!
//! runit does not apply leap seconds: the label is simply
//! `2^62 + 10 + unix_seconds`. Its clock has microsecond resolution and
//! always sets the nanosecond field to `1000 * usec + 500`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2^62 + 10`: the TAI64 label of the Unix epoch, as runit computes it.
pub const TAI64_UNIX_EPOCH: u64 = 0x4000_0000_0000_000A;

/// A TAI64 seconds label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tai64(pub u64);

impl Tai64 {
    /// The label of a Unix time in seconds (negative times wrap as in runit).
    pub fn from_unix(secs: i64) -> Self {
        Tai64(TAI64_UNIX_EPOCH.wrapping_add(secs as u64))
    }

    /// The Unix time in seconds this label stands for.
    pub fn to_unix(self) -> i64 {
        self.0.wrapping_sub(TAI64_UNIX_EPOCH) as i64
    }

    /// The 8-byte big-endian external form.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Reads the 8-byte big-endian external form.
    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        Tai64(u64::from_be_bytes(bytes))
    }
}

/// A TAI64N timestamp: seconds label plus nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tai64N {
    pub secs: Tai64,
    pub nanos: u32,
}

impl Tai64N {
    /// Now, with runit's resolution (microseconds, nanoseconds ending in 500).
    pub fn now() -> Self {
        Self::from_system_time_runit(SystemTime::now())
    }

    /// `t` truncated to microseconds, nanoseconds set to `1000 * usec + 500`
    /// as runit's `taia_now` does.
    pub fn from_system_time_runit(t: SystemTime) -> Self {
        let (secs, sub) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
            Err(before) => {
                // Before 1970: floor to the second below, as gettimeofday does.
                let d = before.duration();
                let micros = d.subsec_micros();
                if micros == 0 {
                    (-(d.as_secs() as i64), 0)
                } else {
                    (-(d.as_secs() as i64) - 1, 1_000_000 - micros)
                }
            }
        };
        Tai64N {
            secs: Tai64::from_unix(secs),
            nanos: 1000 * sub + 500,
        }
    }

    /// The 12-byte external form: 8 bytes label, 4 bytes nanoseconds, both
    /// big-endian.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&self.secs.to_bytes());
        out[8..].copy_from_slice(&self.nanos.to_be_bytes());
        out
    }

    /// Reads the 12-byte external form.
    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        let mut secs = [0u8; 8];
        secs.copy_from_slice(&bytes[..8]);
        let mut nanos = [0u8; 4];
        nanos.copy_from_slice(&bytes[8..]);
        Tai64N {
            secs: Tai64::from_bytes(secs),
            nanos: u32::from_be_bytes(nanos),
        }
    }

    /// How long after `earlier` this is; zero if it is not later. Any two
    /// labels work, even ones read from a file (seconds near `u64::MAX`, a
    /// nanosecond field of 10^9 or more).
    pub fn since(self, earlier: Tai64N) -> Duration {
        const NANOS: u128 = 1_000_000_000;
        let nanos = |t: Tai64N| u128::from(t.secs.0) * NANOS + u128::from(t.nanos);
        let d = nanos(self).saturating_sub(nanos(earlier));
        // Below 10^9, so the nanoseconds fit and carry nothing.
        let sub = (d % NANOS) as u32;
        u64::try_from(d / NANOS).map_or(Duration::MAX, |secs| Duration::new(secs, sub))
    }
}

/// The printed form used by svlogd and tai64n: `@` and 24 lowercase hex digits.
impl fmt::Display for Tai64N {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{:016x}{:08x}", self.secs.0, self.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_label() {
        assert_eq!(Tai64::from_unix(0).0, 4611686018427387914);
        assert_eq!(
            Tai64::from_unix(0x6b07_8100).to_bytes(),
            [0x40, 0, 0, 0, 0x6b, 0x07, 0x81, 0x0a]
        );
        assert_eq!(Tai64::from_unix(1_700_000_000).to_unix(), 1_700_000_000);
        assert_eq!(Tai64::from_unix(-1).0, TAI64_UNIX_EPOCH - 1);
    }

    #[test]
    fn runit_resolution() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let n = Tai64N::from_system_time_runit(t);
        assert_eq!(n.secs, Tai64::from_unix(1_700_000_000));
        assert_eq!(n.nanos, 123_456_500);
    }

    #[test]
    fn external_form_round_trips() {
        let n = Tai64N {
            secs: Tai64(0x4000_0000_6b07_819b),
            nanos: 0x0325_0fb4,
        };
        let bytes = n.to_bytes();
        assert_eq!(
            bytes,
            [0x40, 0, 0, 0, 0x6b, 0x07, 0x81, 0x9b, 0x03, 0x25, 0x0f, 0xb4]
        );
        assert_eq!(Tai64N::from_bytes(bytes), n);
        assert_eq!(n.to_string(), "@400000006b07819b03250fb4");
    }

    #[test]
    fn since_saturates() {
        let a = Tai64N {
            secs: Tai64::from_unix(10),
            nanos: 500,
        };
        let b = Tai64N {
            secs: Tai64::from_unix(12),
            nanos: 250_000_500,
        };
        assert_eq!(b.since(a), Duration::new(2, 250_000_000));
        assert_eq!(a.since(b), Duration::ZERO);
    }

    /// Found by tests/fuzz_supervise.rs: labels at the top of the range
    /// (as a `status` file can hold) overflowed `Duration` and panicked.
    #[test]
    fn since_works_for_any_labels() {
        let top = Tai64N {
            secs: Tai64(u64::MAX),
            nanos: u32::MAX,
        };
        let zero = Tai64N {
            secs: Tai64(0),
            nanos: 0,
        };
        assert_eq!(top.since(zero), Duration::MAX);
        assert_eq!(zero.since(top), Duration::ZERO);
        let a = Tai64N {
            secs: Tai64(u64::MAX - 1),
            nanos: 1_500_000_000,
        };
        let b = Tai64N {
            secs: Tai64(u64::MAX - 1),
            nanos: 0,
        };
        assert_eq!(a.since(b), Duration::new(1, 500_000_000));
    }
}
