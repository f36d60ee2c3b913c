//! The option parser runit's `chpst`, `sv` and `svlogd` share: djb's
//! getopt clone. It stops at the first non-option, `--` ends the options and
//! is consumed, a lone `-` ends them and is kept; flags cluster and values
//! may be attached (`-ttt`, `-e./env`).

/// One step of option parsing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// A known option, with its value if the option takes one.
    Opt(u8, Option<&'a [u8]>),
    /// An option letter not in the option string.
    Illegal(u8),
    /// An option that needs a value came last.
    MissingValue(u8),
    /// No more options; the operands start at [`GetOpt::index`].
    Done,
}

/// Parser state over one argv (argv[0] included).
#[derive(Debug)]
pub(crate) struct GetOpt {
    index: usize,
    pos: usize,
}

impl GetOpt {
    pub(crate) fn new() -> Self {
        GetOpt { index: 1, pos: 0 }
    }

    /// Index in argv of the first operand, once [`Step::Done`] was returned.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Parses the next option. `spec` is the classic option string, a
    /// letter followed by `:` taking a value.
    pub(crate) fn next<'a>(&mut self, argv: &'a [Vec<u8>], spec: &[u8]) -> Step<'a> {
        if self.index >= argv.len() {
            return Step::Done;
        }
        if self.pos > 0 && self.pos >= argv[self.index].len() {
            self.index += 1;
            self.pos = 0;
            if self.index >= argv.len() {
                return Step::Done;
            }
        }
        if self.pos == 0 {
            let arg = &argv[self.index];
            if arg.first() != Some(&b'-') {
                return Step::Done;
            }
            match arg.get(1) {
                None => return Step::Done,
                Some(b'-') => {
                    self.index += 1;
                    return Step::Done;
                }
                Some(_) => self.pos = 1,
            }
        }
        let arg = &argv[self.index];
        let c = arg[self.pos];
        self.pos += 1;
        let mut s = 0;
        while s < spec.len() {
            let takes_value = spec.get(s + 1) == Some(&b':');
            if spec[s] == c {
                if !takes_value {
                    return Step::Opt(c, None);
                }
                let attached = &arg[self.pos..];
                self.index += 1;
                self.pos = 0;
                if !attached.is_empty() {
                    return Step::Opt(c, Some(attached));
                }
                return match argv.get(self.index) {
                    Some(value) => {
                        self.index += 1;
                        Step::Opt(c, Some(value))
                    }
                    None => Step::MissingValue(c),
                };
            }
            s += if takes_value { 2 } else { 1 };
        }
        Step::Illegal(c)
    }
}

/// The line the parser prints for a bad option: `PROG: illegal option -- X`
/// or `PROG: option requires an argument -- X`, PROG being argv[0]'s
/// basename.
pub(crate) fn problem_line(argv0: &[u8], step: &Step<'_>) -> Vec<u8> {
    let base = basename(argv0);
    let (text, c): (&[u8], u8) = match *step {
        Step::Illegal(c) => (b": illegal option -- ", c),
        Step::MissingValue(c) => (b": option requires an argument -- ", c),
        _ => return Vec::new(),
    };
    let mut line = base.to_vec();
    line.extend_from_slice(text);
    line.push(c);
    line.push(b'\n');
    line
}

/// The part of a path after its last `/`.
pub(crate) fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn clusters_values_and_terminators() {
        let argv = args(&["p", "-vte./env", "-u", "x", "--", "-v"]);
        let mut g = GetOpt::new();
        assert_eq!(g.next(&argv, b"vte:u:"), Step::Opt(b'v', None));
        assert_eq!(g.next(&argv, b"vte:u:"), Step::Opt(b't', None));
        assert_eq!(
            g.next(&argv, b"vte:u:"),
            Step::Opt(b'e', Some(&b"./env"[..]))
        );
        assert_eq!(g.next(&argv, b"vte:u:"), Step::Opt(b'u', Some(&b"x"[..])));
        assert_eq!(g.next(&argv, b"vte:u:"), Step::Done);
        assert_eq!(g.index(), 5);
    }

    #[test]
    fn lone_dash_stays_and_problems_are_named() {
        let argv = args(&["/bin/p", "-", "x"]);
        let mut g = GetOpt::new();
        assert_eq!(g.next(&argv, b"v"), Step::Done);
        assert_eq!(g.index(), 1);
        let argv = args(&["/bin/p", "-z"]);
        let step = GetOpt::new().next(&argv, b"u:");
        assert_eq!(problem_line(b"/bin/p", &step), b"p: illegal option -- z\n");
        let argv = args(&["p", "-u"]);
        let step = GetOpt::new().next(&argv, b"u:");
        assert_eq!(
            problem_line(b"p", &step),
            b"p: option requires an argument -- u\n"
        );
    }
}
