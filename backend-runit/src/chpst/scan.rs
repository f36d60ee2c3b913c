//! runit's number scanner: leading decimal digits, wrapping on overflow.

/// Reads the decimal digits at the start of `s`; returns the value and how
/// many bytes were digits (0 digits gives value 0).
pub(crate) fn scan_ulong(s: &[u8]) -> (u64, usize) {
    let mut value: u64 = 0;
    let mut used = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        used += 1;
    }
    (value, used)
}

/// The whole of `s` as a number, or `None` if anything but digits follows.
/// An empty string is 0, as in runit.
pub(crate) fn whole_ulong(s: &[u8]) -> Option<u64> {
    let (value, used) = scan_ulong(s);
    (used == s.len()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_prefix() {
        assert_eq!(scan_ulong(b"12k"), (12, 2));
        assert_eq!(scan_ulong(b"x"), (0, 0));
        assert_eq!(whole_ulong(b""), Some(0));
        assert_eq!(whole_ulong(b"1x"), None);
    }
}
