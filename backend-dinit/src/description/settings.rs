//! The value grammars of settings: numbers (C base-0 syntax), times,
//! permissions, users and groups, resource limits and signal names.
//! Error texts are dinit's.

use std::time::Duration;

use nix::unistd::{Group, User};

use super::strerror;

/// The settings dinit knows, in its table order. (`capabilities` and
/// `securebits` exist only in libcap builds; the reference build has none.)
pub const SETTINGS: &[&str] = &[
    "type",
    "command",
    "working-dir",
    "env-file",
    "socket-listen",
    "socket-permissions",
    "socket-uid",
    "socket-gid",
    "stop-command",
    "pid-file",
    "depends-on",
    "depends-ms",
    "waits-for",
    "waits-for.d",
    "depends-on.d",
    "depends-ms.d",
    "after",
    "before",
    "prepared-by",
    "logfile",
    "logfile-permissions",
    "logfile-uid",
    "logfile-gid",
    "log-type",
    "log-buffer-size",
    "consumer-of",
    "restart",
    "smooth-recovery",
    "options",
    "load-options",
    "term-signal",
    "termsignal",
    "restart-limit-interval",
    "restart-delay",
    "restart-limit-count",
    "stop-timeout",
    "start-timeout",
    "run-as",
    "chain-to",
    "ready-notification",
    "inittab-id",
    "inittab-line",
    "rlimit-nofile",
    "rlimit-core",
    "rlimit-data",
    "rlimit-addrspace",
    "nice",
    "run-in-cgroup",
    "ioprio",
    "oom-score-adj",
];

/// Settings that accept `+=`.
pub fn allows_append(setting: &str) -> bool {
    matches!(setting, "command" | "stop-command")
}

pub const NUM_ERR: &str =
    "specified value contains invalid numeric characters or is outside allowed range.";

/// What C `strtoull`/`strtoll` with base 0 make of the start of `s`.
struct CNumber {
    negative: bool,
    magnitude: u64,
    overflow: bool,
    /// Bytes consumed; 0 when no number was found.
    consumed: usize,
}

fn c_number(s: &str) -> CNumber {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && super::syntax::is_space(b[i]) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&c @ (b'+' | b'-')) = b.get(i) {
        negative = c == b'-';
        i += 1;
    }
    let (radix, digits_at) = if b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        (16, i + 2)
    } else if b.get(i) == Some(&b'0') {
        (8, i)
    } else {
        (10, i)
    };
    let mut j = digits_at;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(d) = b.get(j).and_then(|&c| (c as char).to_digit(radix)) {
        match magnitude
            .checked_mul(radix as u64)
            .and_then(|m| m.checked_add(d as u64))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        j += 1;
    }
    let consumed = if j == digits_at { 0 } else { j };
    CNumber {
        negative,
        magnitude,
        overflow,
        consumed,
    }
}

/// `std::stoull(s, &ind, 0)`: `Err(true)` out of range, `Err(false)` no number.
fn stoull(s: &str) -> Result<(u64, usize), bool> {
    let n = c_number(s);
    if n.consumed == 0 {
        return Err(false);
    }
    if n.overflow {
        return Err(true);
    }
    let v = if n.negative {
        n.magnitude.wrapping_neg()
    } else {
        n.magnitude
    };
    Ok((v, n.consumed))
}

/// `std::stoll(s, &ind, 0)`.
fn stoll(s: &str) -> Result<(i64, usize), bool> {
    let n = c_number(s);
    if n.consumed == 0 {
        return Err(false);
    }
    let limit = if n.negative {
        i64::MAX as u64 + 1
    } else {
        i64::MAX as u64
    };
    if n.overflow || n.magnitude > limit {
        return Err(true);
    }
    let v = if n.negative {
        (n.magnitude as i64).wrapping_neg()
    } else {
        n.magnitude as i64
    };
    Ok((v, n.consumed))
}

/// An unsigned number no larger than `max`.
pub fn parse_unum(s: &str, max: u64) -> Result<u64, &'static str> {
    match stoull(s) {
        Ok((v, used)) if v <= max && used == s.len() => Ok(v),
        _ => Err(NUM_ERR),
    }
}

/// A signed number within `min..=max`.
pub fn parse_snum(s: &str, min: i64, max: i64) -> Result<i64, &'static str> {
    match stoll(s) {
        Ok((v, used)) if v >= min && v <= max && used == s.len() => Ok(v),
        _ => Err(NUM_ERR),
    }
}

/// A permission mask in octal (`std::stoi(s, &ind, 8)`).
pub fn parse_perms(s: &str) -> Result<i32, &'static str> {
    const ERR: &str = "badly-formed or out-of-range numeric value";
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && super::syntax::is_space(b[i]) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&c @ (b'+' | b'-')) = b.get(i) {
        negative = c == b'-';
        i += 1;
    }
    let start = i;
    let mut v: i64 = 0;
    while i < b.len() && (b'0'..=b'7').contains(&b[i]) {
        v = v.saturating_mul(8).saturating_add((b[i] - b'0') as i64);
        i += 1;
    }
    if i == start || i != b.len() {
        return Err(ERR);
    }
    let v = if negative { -v } else { v };
    i32::try_from(v).map_err(|_| ERR)
}

/// A time in seconds: decimal digits, optionally `.` or `,` and a fraction.
/// `Err(false)`: bad value; `Err(true)`: too large.
pub fn parse_seconds(s: &str) -> Result<Duration, bool> {
    const MAX_SECS: i64 = i64::MAX / 10;
    let b = s.as_bytes();
    let mut secs: i64 = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'.' || c == b',' {
            i += 1;
            break;
        }
        if !c.is_ascii_digit() {
            return Err(false);
        }
        if secs >= MAX_SECS {
            return Err(true);
        }
        secs = secs * 10 + (c - b'0') as i64;
        i += 1;
    }
    let mut nanos: u32 = 0;
    let mut scale: u32 = 100_000_000;
    for &c in &b[i..] {
        if !c.is_ascii_digit() {
            return Err(false);
        }
        nanos += (c - b'0') as u32 * scale;
        scale /= 10;
    }
    Ok(Duration::new(secs as u64, nanos))
}

/// A user given by number or name, and the user's primary group when given
/// by name. Errors carry dinit's text (some with the setting as prefix).
pub fn parse_uid(s: &str, setting: &str) -> Result<(u32, Option<u32>), String> {
    const ERR: &str =
        "specified user id contains invalid numeric characters or is outside allowed range.";
    match stoull(s) {
        Ok((v, used)) => {
            if v > u32::MAX as u64 || used != s.len() {
                return Err(format!("{setting}: {ERR}"));
            }
            return Ok((v as u32, None));
        }
        Err(true) => return Err(ERR.to_string()),
        Err(false) => {}
    }
    match User::from_name(s) {
        Ok(Some(u)) => Ok((u.uid.as_raw(), Some(u.gid.as_raw()))),
        Ok(None) => Err(format!(
            "{setting}: specified user \"{s}\" does not exist in system database."
        )),
        Err(e) => Err(format!(
            "error accessing user database: {}",
            strerror(e as i32)
        )),
    }
}

/// A group given by number or name.
pub fn parse_gid(s: &str, setting: &str) -> Result<u32, String> {
    const ERR: &str =
        "specified group id contains invalid numeric characters or is outside allowed range.";
    match stoull(s) {
        Ok((v, used)) => {
            if v > u32::MAX as u64 || used != s.len() {
                return Err(format!("{setting}: {ERR}"));
            }
            return Ok(v as u32);
        }
        Err(true) => return Err(format!("{setting}: {ERR}")),
        Err(false) => {}
    }
    match Group::from_name(s) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!(
            "{setting}: specified group \"{s}\" does not exist in system database."
        )),
        Err(e) => Err(format!(
            "error accessing group database: {}",
            strerror(e as i32)
        )),
    }
}

/// One half of a resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Unlimited,
    Value(u64),
}

/// A resource limit setting; `None` halves keep the current limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitPair {
    pub soft: Option<Limit>,
    pub hard: Option<Limit>,
}

/// `N`, `S:H`, `S:`, `:H`, with `-` for unlimited.
pub fn parse_rlimit(s: &str, setting: &str) -> Result<LimitPair, String> {
    let bad = || format!("{setting}: bad value.");
    let too_large = || format!("{setting}: too-large value.");
    if s.is_empty() {
        return Err(bad());
    }
    let mut pair = LimitPair::default();
    let mut rest = s;
    if !s.starts_with(':') {
        let soft = if let Some(r) = s.strip_prefix('-') {
            rest = r;
            Limit::Unlimited
        } else {
            let n = c_number(s);
            if n.consumed == 0 {
                return Err(bad());
            }
            if n.overflow {
                return Err(too_large());
            }
            rest = &s[n.consumed..];
            Limit::Value(if n.negative {
                n.magnitude.wrapping_neg()
            } else {
                n.magnitude
            })
        };
        pair.soft = Some(soft);
        if rest.is_empty() {
            pair.hard = Some(soft);
            return Ok(pair);
        }
        if !rest.starts_with(':') {
            return Err(bad());
        }
    }
    let hard = &rest[1..];
    if hard.is_empty() {
        return Ok(pair);
    }
    if let Some(after) = hard.strip_prefix('-') {
        if !after.is_empty() {
            return Err(bad());
        }
        pair.hard = Some(Limit::Unlimited);
    } else {
        // (Anything after the hard limit's digits is ignored, as in dinit.)
        let n = c_number(hard);
        if n.consumed == 0 {
            return Err(bad());
        }
        if n.overflow {
            return Err(too_large());
        }
        pair.hard = Some(Limit::Value(if n.negative {
            n.magnitude.wrapping_neg()
        } else {
            n.magnitude
        }));
    }
    Ok(pair)
}

/// A termination signal name: `Some(0)` for `none`, `None` if unknown.
pub fn signal_number(name: &str) -> Option<i32> {
    use nix::sys::signal::Signal::*;
    let sig = match name {
        "none" | "NONE" => return Some(0),
        "HUP" => SIGHUP,
        "INT" => SIGINT,
        "QUIT" => SIGQUIT,
        "KILL" => SIGKILL,
        "USR1" => SIGUSR1,
        "USR2" => SIGUSR2,
        "TERM" => SIGTERM,
        "CONT" => SIGCONT,
        "STOP" => SIGSTOP,
        _ => return None,
    };
    Some(sig as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_use_c_base_zero() {
        assert_eq!(parse_unum("0x1F", u64::MAX), Ok(31));
        assert_eq!(parse_unum("017", u64::MAX), Ok(15));
        assert_eq!(parse_unum("08", u64::MAX), Err(NUM_ERR));
        assert_eq!(parse_unum("12a", u64::MAX), Err(NUM_ERR));
        assert_eq!(parse_unum("-1", i32::MAX as u64), Err(NUM_ERR));
        assert_eq!(parse_unum("", u64::MAX), Err(NUM_ERR));
        assert_eq!(parse_unum("99999999999999999999", u64::MAX), Err(NUM_ERR));
        assert_eq!(parse_snum("-20", -100, 100), Ok(-20));
        assert_eq!(parse_snum("-2000", -1000, 1000), Err(NUM_ERR));
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("0,25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds(""), Ok(Duration::ZERO));
        assert_eq!(parse_seconds("1e3"), Err(false));
        assert_eq!(parse_seconds("-1"), Err(false));
        assert_eq!(parse_seconds("99999999999999999999"), Err(true));
    }

    #[test]
    fn permissions() {
        assert_eq!(parse_perms("0600"), Ok(0o600));
        assert!(parse_perms("0800").is_err());
        assert!(parse_perms("").is_err());
    }

    #[test]
    fn users_and_groups() {
        assert_eq!(parse_uid("0", "run-as"), Ok((0, None)));
        assert_eq!(parse_uid("root", "run-as"), Ok((0, Some(0))));
        assert_eq!(
            parse_uid("nosuchuser-x", "run-as").unwrap_err(),
            "run-as: specified user \"nosuchuser-x\" does not exist in system database."
        );
        assert_eq!(
            parse_uid("12x", "run-as").unwrap_err(),
            "run-as: specified user id contains invalid numeric characters or is outside allowed range."
        );
        assert_eq!(parse_gid("root", "socket-gid"), Ok(0));
    }

    #[test]
    fn rlimits() {
        let v = |s| parse_rlimit(s, "rlimit-core");
        use Limit::*;
        assert_eq!(
            v("4").unwrap(),
            LimitPair {
                soft: Some(Value(4)),
                hard: Some(Value(4))
            }
        );
        assert_eq!(
            v("4:-").unwrap(),
            LimitPair {
                soft: Some(Value(4)),
                hard: Some(Unlimited)
            }
        );
        assert_eq!(
            v("4:").unwrap(),
            LimitPair {
                soft: Some(Value(4)),
                hard: None
            }
        );
        assert_eq!(
            v(":8").unwrap(),
            LimitPair {
                soft: None,
                hard: Some(Value(8))
            }
        );
        assert_eq!(
            v("-").unwrap(),
            LimitPair {
                soft: Some(Unlimited),
                hard: Some(Unlimited)
            }
        );
        assert_eq!(v("").unwrap_err(), "rlimit-core: bad value.");
        assert_eq!(v("x").unwrap_err(), "rlimit-core: bad value.");
        assert_eq!(v("4x").unwrap_err(), "rlimit-core: bad value.");
        assert_eq!(v("1:-x").unwrap_err(), "rlimit-core: bad value.");
        assert_eq!(
            v("99999999999999999999").unwrap_err(),
            "rlimit-core: too-large value."
        );
    }

    #[test]
    fn signals() {
        assert_eq!(signal_number("none"), Some(0));
        assert_eq!(signal_number("HUP"), Some(1));
        assert_eq!(signal_number("SIGHUP"), None);
        assert_eq!(signal_number("9"), None);
    }
}
