//! svlogd's command line.

use super::logdir::Limits;
use super::timestamp::Style;
use crate::chpst::getopt::{problem_line, GetOpt, Step};
use crate::chpst::scan::scan_ulong;

const USAGE: &[u8] = b" [-ttv] [-r c] [-R abc] [-l len] [-b buflen] dir ...";

/// The version line Debian's svlogd prints for `-V`.
const VERSION: &[u8] = b"$Id: 5e55a90e0a1b35ec47fed3021453c50675ea1117 $\n";

/// What the command line asked for.
#[derive(Debug)]
pub(super) struct Options {
    pub(super) limits: Limits,
    pub(super) timestamp: Style,
    /// Replacement for unprintable bytes and `replace` bytes, if any.
    pub(super) replacement: Option<u8>,
    pub(super) replace: Vec<u8>,
    pub(super) dirs: Vec<Vec<u8>>,
}

/// The usage text (with anything to print before it); svlogd exits 111.
/// argv[0] is shown as given.
fn usage(before: Vec<u8>, argv0: &[u8]) -> Vec<u8> {
    let mut text = before;
    text.extend_from_slice(b"usage: ");
    text.extend_from_slice(argv0);
    text.extend_from_slice(USAGE);
    text.extend_from_slice(b"\n\n");
    text
}

/// Parses argv; `Err` holds the bytes to print before exiting 111.
pub(super) fn parse(argv: &[Vec<u8>]) -> Result<Options, Vec<u8>> {
    let argv0 = argv.first().map_or(&[][..], |a| a);
    let mut o = Options {
        limits: Limits {
            line_max: 1000,
            buf_len: 1024,
            verbose: false,
        },
        timestamp: Style::None,
        replacement: None,
        replace: Vec::new(),
        dirs: Vec::new(),
    };
    let mut g = GetOpt::new();
    loop {
        let step = g.next(argv, b"R:r:l:b:tvV");
        let (c, value) = match step {
            Step::Done => break,
            Step::Opt(c, v) => (c, v.unwrap_or_default()),
            _ => return Err(usage(problem_line(argv0, &step), argv0)),
        };
        match c {
            b'R' => {
                o.replace = value.to_vec();
                o.replacement.get_or_insert(b'_');
            }
            b'r' => match value {
                [c] if *c != 0 => o.replacement = Some(*c),
                _ => return Err(usage(Vec::new(), argv0)),
            },
            b'l' => o.limits.line_max = size(value, 1000),
            b'b' => o.limits.buf_len = size(value, 1024),
            b't' => {
                o.timestamp = match o.timestamp {
                    Style::None => Style::Tai64N,
                    Style::Tai64N => Style::Underscore,
                    _ => Style::Iso8601,
                }
            }
            b'v' => o.limits.verbose = true,
            _ => return Err(usage(VERSION.to_vec(), argv0)),
        }
    }
    o.dirs = argv[g.index().min(argv.len())..].to_vec();
    if o.dirs.is_empty() || o.limits.buf_len <= o.limits.line_max {
        return Err(usage(Vec::new(), argv0));
    }
    Ok(o)
}

/// A leading number, 0 (or none) meaning `default`.
fn size(value: &[u8], default: usize) -> usize {
    match scan_ulong(value).0 {
        0 => default,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    }
}
