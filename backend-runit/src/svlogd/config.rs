//! A log directory's `config` file: one directive per line, chosen by the
//! first character; unknown lines are ignored.

use super::message::warn;
use crate::chpst::scan::scan_ulong;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Default UDP port for `u`/`U` lines without one.
const SYSLOG_PORT: u64 = 514;

/// The settings of one log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Config {
    /// Rotate when `current` reaches this many bytes; 0 = never.
    pub(super) size_max: u64,
    /// Keep at most this many old files; 0 = keep all.
    pub(super) n_max: u64,
    /// On a full disk, delete old files only while more than this remain.
    pub(super) n_min: u64,
    /// Rotate a non-empty `current` every this many seconds; 0 = never.
    pub(super) t_max: u64,
    /// `!command`: run on each rotated file.
    pub(super) processor: Option<Vec<u8>>,
    /// `u`/`U` address; the port is 0 when UDP is off.
    pub(super) udp_ip: [u8; 4],
    pub(super) udp_port: u16,
    /// `U`: lines go only to UDP, not to `current`.
    pub(super) udp_only: bool,
    /// `p`: written before each line.
    pub(super) prefix: Vec<u8>,
    /// `+ - e E` lines in order: (kind, pattern).
    pub(super) patterns: Vec<(u8, Vec<u8>)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            size_max: 1_000_000,
            n_max: 10,
            n_min: 10,
            t_max: 0,
            processor: None,
            udp_ip: [0; 4],
            udp_port: 0,
            udp_only: false,
            prefix: Vec::new(),
            patterns: Vec::new(),
        }
    }
}

impl Config {
    /// Where selected lines are also sent, if anywhere.
    pub(super) fn udp_target(&self) -> Option<SocketAddrV4> {
        (self.udp_port != 0).then(|| SocketAddrV4::new(Ipv4Addr::from(self.udp_ip), self.udp_port))
    }
}

/// Parses `text`. Bad UDP lines are reported on stderr, as svlogd does, and
/// otherwise skipped.
pub(super) fn parse(text: &[u8]) -> Config {
    let mut c = Config::default();
    // runit stops one byte short of the end: a final one-character line
    // without a newline is ignored.
    let mut i = 0;
    while i + 1 < text.len() {
        let len = text[i..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(text.len() - i);
        let raw = &text[i..i + len];
        // runit handles each line as a C string
        let line = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        if let Some((&kind, arg)) = line.split_first() {
            directive(&mut c, kind, arg);
        }
        i += len + 1;
    }
    c
}

fn directive(c: &mut Config, kind: u8, arg: &[u8]) {
    match kind {
        b'+' | b'-' | b'e' | b'E' => c.patterns.push((kind, arg.to_vec())),
        b's' => {
            let (n, used) = scan_ulong(arg);
            c.size_max = match arg.get(used) {
                Some(b'm') => n.wrapping_mul(1024 * 1024),
                Some(b'k') => n.wrapping_mul(1024),
                _ => n,
            };
        }
        b'n' => c.n_max = scan_ulong(arg).0,
        b'N' => c.n_min = scan_ulong(arg).0,
        b't' => {
            let (n, used) = scan_ulong(arg);
            c.t_max = match arg.get(used) {
                Some(b'h') => n.wrapping_mul(3600),
                Some(b'm') => n.wrapping_mul(60),
                _ => n,
            };
        }
        b'!' if !arg.is_empty() => c.processor = Some(arg.to_vec()),
        b'p' if !arg.is_empty() => c.prefix = arg.to_vec(),
        b'u' | b'U' => {
            // `U` takes effect even when the address is bad (runit).
            c.udp_only |= kind == b'U';
            udp(c, arg);
        }
        _ => {}
    }
}

/// `A.B.C.D[:PORT]`. Like runit, octets are stored as they are scanned, so
/// a bad address can leave a partly changed one behind.
fn udp(c: &mut Config, arg: &[u8]) {
    let mut used = 0;
    for k in 0..4 {
        if k > 0 {
            if arg.get(used) != Some(&b'.') {
                warn(&[b"unable to scan ip address", b": ", arg]);
                return;
            }
            used += 1;
        }
        let (n, digits) = scan_ulong(&arg[used..]);
        if digits == 0 {
            warn(&[b"unable to scan ip address", b": ", arg]);
            return;
        }
        c.udp_ip[k] = n as u8;
        used += digits;
    }
    let port = match arg.get(used) {
        Some(b':') => {
            let rest = &arg[used + 1..];
            let port = scan_ulong(rest).0;
            if port == 0 {
                warn(&[b"unable to scan port number", b": ", rest]);
                return;
            }
            port
        }
        _ => SYSLOG_PORT,
    };
    c.udp_port = port as u16;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        let c = parse(b"s2k\nn3\nN1\nt2m\n!tr a-z A-Z\npPRE: \n+*x*\n-y\n# c\n\nEz\nu1.2.3.4:99\n");
        assert_eq!(c.size_max, 2048);
        assert_eq!((c.n_max, c.n_min, c.t_max), (3, 1, 120));
        assert_eq!(c.processor.as_deref(), Some(&b"tr a-z A-Z"[..]));
        assert_eq!(c.prefix, b"PRE: ");
        assert_eq!(c.patterns.len(), 3);
        assert_eq!(c.udp_target(), Some("1.2.3.4:99".parse().expect("addr")));
        assert!(!c.udp_only);
    }

    #[test]
    fn edge_lines() {
        assert_eq!(parse(b"s1m").size_max, 1024 * 1024);
        assert_eq!(parse(b"n5\nn").n_max, 5);
        assert_eq!(parse(b"!\np\n").processor, None);
        assert_eq!(parse(b"u10.0.0.1\n").udp_port, 514);
        let c = parse(b"Ubad\n");
        assert!(c.udp_only && c.udp_target().is_none());
    }
}
