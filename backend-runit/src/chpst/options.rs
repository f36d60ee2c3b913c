//! chpst's own command line.

use super::failure::Failure;
use super::getopt::{problem_line, GetOpt, Step};
use super::limits::{Limit, Limits};
use super::scan::whole_ulong;

/// Debian's usage text (no `-C`, `-V` listed).
pub(super) const USAGE: &[u8] = b" [-vVP012] [-u user[:group]] [-U user[:group]] [-b argv0] \
[-e dir] [-/ root] [-n nice] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-t n] prog";

/// The version line Debian's chpst prints for `-V`.
const VERSION: &[u8] = b"$Id: f279d44141c981dd7535a12260efcf1ef7beed26 $\n";

const SPEC: &[u8] = b"u:U:b:e:m:d:o:p:f:c:r:t:/:n:l:L:vP012V";

/// Everything chpst was asked to do, and the program to run.
#[derive(Debug, Default)]
pub(super) struct Options {
    pub(super) set_user: Option<Vec<u8>>,
    pub(super) env_user: Option<Vec<u8>>,
    pub(super) argv0: Option<Vec<u8>>,
    pub(super) env_dir: Option<Vec<u8>>,
    pub(super) root: Option<Vec<u8>>,
    pub(super) nice: i64,
    /// The lock file and whether to wait for it (`-l`) or not (`-L`).
    pub(super) lock: Option<(Vec<u8>, bool)>,
    pub(super) verbose: bool,
    pub(super) new_session: bool,
    pub(super) close_stdin: bool,
    pub(super) close_stdout: bool,
    pub(super) close_stderr: bool,
    pub(super) limits: Limits,
    /// The program and its arguments.
    pub(super) program: Vec<Vec<u8>>,
}

/// Parses argv (argv[0] included); `progname` is the name usage shows.
pub(super) fn parse(argv: &[Vec<u8>], progname: &[u8]) -> Result<Options, Failure> {
    let usage = |before: Vec<u8>| Failure::usage(before, progname, USAGE);
    let number = |v: &[u8]| whole_ulong(v).ok_or_else(|| usage(Vec::new()));
    let mut o = Options::default();
    let mut g = GetOpt::new();
    loop {
        let step = g.next(argv, SPEC);
        let (c, value) = match step {
            Step::Done => break,
            Step::Opt(c, v) => (c, v.unwrap_or_default()),
            Step::Illegal(_) | Step::MissingValue(_) => {
                return Err(usage(problem_line(
                    argv.first().map_or(&[][..], |a| a),
                    &step,
                )))
            }
        };
        match c {
            b'u' => o.set_user = Some(value.to_vec()),
            b'U' => o.env_user = Some(value.to_vec()),
            b'b' => o.argv0 = Some(value.to_vec()),
            b'e' => o.env_dir = Some(value.to_vec()),
            b'm' => o.limits.set_memory(Limit::from_number(number(value)?)),
            b'd' => o.limits.data = Limit::from_number(number(value)?),
            b'o' => o.limits.open_files = Limit::from_number(number(value)?),
            b'p' => o.limits.processes = Limit::from_number(number(value)?),
            b'f' => o.limits.file_size = Limit::from_number(number(value)?),
            b'c' => o.limits.core = Limit::from_number(number(value)?),
            b'r' => o.limits.resident = Limit::from_number(number(value)?),
            b't' => o.limits.cpu = Limit::from_number(number(value)?),
            b'/' => o.root = Some(value.to_vec()),
            b'n' => {
                o.nice = match value.split_first() {
                    Some((b'-', rest)) => (number(rest)? as i64).wrapping_neg(),
                    Some((b'+', rest)) => number(rest)? as i64,
                    _ => number(value)? as i64,
                }
            }
            b'l' | b'L' => {
                if o.lock.is_some() {
                    return Err(usage(Vec::new()));
                }
                o.lock = Some((value.to_vec(), c == b'l'));
            }
            b'v' => o.verbose = true,
            b'P' => o.new_session = true,
            b'0' => o.close_stdin = true,
            b'1' => o.close_stdout = true,
            b'2' => o.close_stderr = true,
            _ => return Err(usage(VERSION.to_vec())),
        }
    }
    o.program = argv[g.index().min(argv.len())..].to_vec();
    if o.program.is_empty() {
        return Err(usage(Vec::new()));
    }
    Ok(o)
}
