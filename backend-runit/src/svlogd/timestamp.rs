//! Line timestamps for `-t` (TAI64N), `-tt` and `-ttt` (UTC date and time).

use crate::supervise::{Tai64, Tai64N};

/// Which stamp `-t`, `-tt` or `-ttt` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    None,
    Tai64N,
    /// `YYYY-MM-DD_HH:MM:SS.fffff`
    Underscore,
    /// `YYYY-MM-DDTHH:MM:SS.fffff`
    Iso8601,
}

/// The stamp and its trailing space (26 bytes), or nothing.
pub(super) fn stamp(style: Style, now: Tai64N) -> Vec<u8> {
    let mut s = match style {
        Style::None => return Vec::new(),
        Style::Tai64N => now.to_string().into_bytes(),
        Style::Underscore => date_time(now, b'_'),
        Style::Iso8601 => date_time(now, b'T'),
    };
    s.push(b' ');
    s
}

/// runit's `fmt_ptime`: UTC broken-down time and the first five digits of
/// the nanosecond field (not rounded).
fn date_time(now: Tai64N, sep: u8) -> Vec<u8> {
    let secs = now.secs.to_unix();
    let (days, in_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let text = format!(
        "{y:04}-{m:02}-{d:02}{}{:02}:{:02}:{:02}.{:05}",
        sep as char,
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        now.nanos / 10_000
    );
    text.into_bytes()
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `t` plus whole seconds.
pub(super) fn add_secs(t: Tai64N, secs: u64) -> Tai64N {
    Tai64N {
        secs: Tai64(t.secs.0.wrapping_add(secs)),
        nanos: t.nanos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = Tai64N {
            secs: Tai64::from_unix(1_700_000_000),
            nanos: 123_456_500,
        };
        assert_eq!(stamp(Style::Underscore, t), b"2023-11-14_22:13:20.12345 ");
        assert_eq!(stamp(Style::Iso8601, t), b"2023-11-14T22:13:20.12345 ");
        assert_eq!(stamp(Style::Tai64N, t), b"@400000006553f10a075bcbf4 ");
        assert_eq!(stamp(Style::None, t), b"");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
