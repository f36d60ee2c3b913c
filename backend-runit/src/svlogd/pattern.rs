//! runit's pattern matching for config `+ - e E` lines: anchored at both
//! ends, `*c` skips to the next `c` (`*` at the end matches the rest), `+c`
//! is one or more `c`, anything else matches itself.

/// Whether `pattern` matches all of `line`.
pub(super) fn matches(pattern: &[u8], line: &[u8]) -> bool {
    let (mut p, mut s) = (pattern, line);
    loop {
        let Some((&c, rest)) = p.split_first() else {
            return s.is_empty();
        };
        p = rest;
        match c {
            b'*' => {
                let Some(&next) = p.first() else { return true };
                // Skip to the next `next`; the pattern keeps it, so it is
                // matched as an ordinary character afterwards.
                match s.iter().position(|&b| b == next) {
                    Some(i) => s = &s[i..],
                    None => return false,
                }
            }
            b'+' => {
                let Some((&want, rest)) = p.split_first() else {
                    return false;
                };
                p = rest;
                if s.first() != Some(&want) {
                    return false;
                }
                let run = s.iter().take_while(|&&b| b == want).count();
                s = &s[run..];
                // runit reports a match once the input runs out while
                // repeating, whatever pattern is left.
                if s.is_empty() {
                    return true;
                }
            }
            _ => match s.split_first() {
                Some((&b, rest)) if b == c => s = rest,
                _ => return false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn runit_examples() {
        assert!(matches(b"*skip*", b"skip err"));
        assert!(!matches(b"*skip*", b"please skip this"));
        assert!(matches(b"abc", b"abc"));
        assert!(!matches(b"abc", b"abcd"));
        assert!(matches(b"a*", b"a whatever"));
        assert!(matches(b"*", b""));
        assert!(matches(b"x+yz", b"xyyyz"));
        assert!(matches(b"x+yqqq", b"xyy"));
        assert!(!matches(b"x+y", b"xz"));
        // no backtracking: `*` stops at the first blank
        assert!(!matches(b"* x", b"a b x"));
    }
}
