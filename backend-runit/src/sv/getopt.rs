//! djb's getopt clone as runit's programs use it: options end at the first
//! non-option argument, `--` ends them and is consumed, a lone `-` ends them
//! and is kept; flags cluster and values may be attached (`-w5`).

/// One step of option parsing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opt<'a> {
    /// An option letter from the option string, with its value if it takes one.
    Flag(u8, Option<&'a [u8]>),
    /// A letter not in the option string.
    Illegal(u8),
    /// An option that takes a value came last, without one.
    MissingValue(u8),
}

/// The parser over `args` (argv without argv[0] is *not* assumed: index 0 is
/// skipped, as in C).
#[derive(Debug)]
pub(crate) struct Getopt<'a> {
    args: &'a [Vec<u8>],
    spec: &'a [u8],
    /// Index of the first argument not consumed yet.
    pub(crate) optind: usize,
    pos: usize,
}

impl<'a> Getopt<'a> {
    pub(crate) fn new(args: &'a [Vec<u8>], spec: &'a [u8]) -> Self {
        Getopt {
            args,
            spec,
            optind: 1,
            pos: 0,
        }
    }

    fn takes_value(&self, c: u8) -> Option<bool> {
        let mut i = 0;
        while i < self.spec.len() {
            let has_colon = self.spec.get(i + 1) == Some(&b':');
            if self.spec[i] == c {
                return Some(has_colon);
            }
            i += if has_colon { 2 } else { 1 };
        }
        None
    }

    /// The next option, or `None` when options are over.
    pub(crate) fn next_opt(&mut self) -> Option<Opt<'a>> {
        let args = self.args;
        if self.optind >= args.len() {
            return None;
        }
        if self.pos > 0 && self.pos >= args[self.optind].len() {
            self.optind += 1;
            self.pos = 0;
            if self.optind >= args.len() {
                return None;
            }
        }
        let arg = &args[self.optind];
        if self.pos == 0 {
            if arg.first() != Some(&b'-') {
                return None;
            }
            match arg.get(1) {
                None => return None,
                Some(b'-') => {
                    self.optind += 1;
                    return None;
                }
                Some(_) => self.pos = 1,
            }
        }
        let c = arg[self.pos];
        self.pos += 1;
        match self.takes_value(c) {
            None => Some(Opt::Illegal(c)),
            Some(false) => Some(Opt::Flag(c, None)),
            Some(true) => {
                let attached = &arg[self.pos..];
                self.optind += 1;
                self.pos = 0;
                if !attached.is_empty() {
                    return Some(Opt::Flag(c, Some(attached)));
                }
                match args.get(self.optind) {
                    Some(value) => {
                        self.optind += 1;
                        Some(Opt::Flag(c, Some(value)))
                    }
                    None => Some(Opt::MissingValue(c)),
                }
            }
        }
    }
}

/// runit's `scan_ulong`: the leading decimal digits of `s` (0 if none),
/// wrapping on overflow as C's unsigned arithmetic does.
pub(crate) fn scan_ulong(s: &[u8]) -> u64 {
    s.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |acc, b| {
            acc.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    fn all(words: &[&str]) -> (Vec<String>, usize) {
        let args = argv(words);
        let mut g = Getopt::new(&args, b"w:vV");
        let mut seen = Vec::new();
        while let Some(o) = g.next_opt() {
            seen.push(match o {
                Opt::Flag(c, None) => format!("{}", c as char),
                Opt::Flag(c, Some(v)) => format!("{}={}", c as char, String::from_utf8_lossy(v)),
                Opt::Illegal(c) => format!("?{}", c as char),
                Opt::MissingValue(c) => format!(":{}", c as char),
            });
        }
        (seen, g.optind)
    }

    #[test]
    fn clusters_and_values() {
        assert_eq!(
            all(&["sv", "-vw5", "up", "x"]),
            (vec!["v".into(), "w=5".into()], 2)
        );
        assert_eq!(
            all(&["sv", "-w", "3", "-v", "up"]),
            (vec!["w=3".into(), "v".into()], 4)
        );
        assert_eq!(all(&["sv", "up", "-v"]), (vec![], 1));
    }

    #[test]
    fn terminators() {
        assert_eq!(all(&["sv", "--", "-v"]), (vec![], 2));
        assert_eq!(all(&["sv", "-", "up"]), (vec![], 1));
        assert_eq!(all(&["sv", "-v", "--", "up"]), (vec!["v".into()], 3));
    }

    #[test]
    fn problems() {
        assert_eq!(all(&["sv", "-x"]).0, vec!["?x".to_string()]);
        assert_eq!(all(&["sv", "-w"]).0, vec![":w".to_string()]);
        assert_eq!(
            all(&["sv", "-vw"]).0,
            vec!["v".to_string(), ":w".to_string()]
        );
    }

    #[test]
    fn scans_leading_digits() {
        assert_eq!(scan_ulong(b"12abc"), 12);
        assert_eq!(scan_ulong(b"x1"), 0);
        assert_eq!(scan_ulong(b""), 0);
    }
}
