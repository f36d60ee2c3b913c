//! Text that came from service files or services, made safe to print.
//!
//! A service name is a file or directory name, and a description or a log
//! line is whatever a service wrote: any of them can hold a newline, an
//! escape sequence or a NUL. Printed raw in `list` or `status` output they
//! could forge lines or drive the terminal, so braid's clients show the
//! bytes 0x00–0x1F and 0x7F as `\xHH` (lower-case hex). Every other byte,
//! backslash and UTF-8 included, is left alone, so ordinary output stays
//! byte-identical to the real programs'.

use std::borrow::Cow;
use std::fmt::Write as _;

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// `bytes` with each control byte written as `\xHH`; borrowed when there is
/// none.
pub fn escape_controls(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !bytes.iter().copied().any(is_control) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for &b in bytes {
        if is_control(b) {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        } else {
            out.push(b);
        }
    }
    Cow::Owned(out)
}

/// [`escape_controls`] for a `str` (the escapes are ASCII, so the result is
/// still a `str`).
pub fn escape_controls_str(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match u8::try_from(c) {
            Ok(b) if is_control(b) => {
                let _ = write!(out, "\\x{b:02x}");
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_hex_escapes() {
        assert_eq!(
            &*escape_controls(b"a\nb\x1b[31m\x00\x7f"),
            b"a\\x0ab\\x1b[31m\\x00\\x7f"
        );
        assert_eq!(escape_controls_str("t\tab\u{1f}"), "t\\x09ab\\x1f");
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in ["svc", "back\\slash", "caf\u{e9} \u{2603}", "~/.x-y_z@1", ""] {
            assert!(matches!(escape_controls_str(s), Cow::Borrowed(t) if t == s));
        }
        // Bytes that are not UTF-8 pass through too.
        assert!(matches!(escape_controls(b"\xff\x80"), Cow::Borrowed(_)));
    }
}
