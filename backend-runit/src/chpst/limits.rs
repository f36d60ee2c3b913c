//! Soft resource limits (`-m -d -o -p -f -c -r -t` and `softlimit`).

use super::failure::Failure;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// One requested soft limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Limit {
    /// Leave the limit alone.
    #[default]
    Unset,
    /// Raise the soft limit to the hard limit (`softlimit -x =`).
    Hard,
    /// This many units; values above the hard limit are clamped to it.
    Value(u64),
}

impl Limit {
    /// runit keeps the value in a C `long`: numbers at or above 2^63 turn
    /// negative there and so mean "the hard limit".
    pub(super) fn from_number(n: u64) -> Limit {
        if n > i64::MAX as u64 {
            Limit::Hard
        } else {
            Limit::Value(n)
        }
    }
}

/// The soft limits to set before exec.
#[derive(Debug, Default)]
pub(super) struct Limits {
    pub(super) data: Limit,
    pub(super) stack: Limit,
    pub(super) memlock: Limit,
    pub(super) address_space: Limit,
    pub(super) open_files: Limit,
    pub(super) processes: Limit,
    pub(super) file_size: Limit,
    pub(super) core: Limit,
    pub(super) resident: Limit,
    pub(super) cpu: Limit,
}

impl Limits {
    /// `-m`: data, stack, locked memory and address space together.
    pub(super) fn set_memory(&mut self, l: Limit) {
        self.data = l;
        self.stack = l;
        self.memlock = l;
        self.address_space = l;
    }

    /// Applies the limits in runit's order.
    pub(super) fn apply(&self) -> Result<(), Failure> {
        let all = [
            (Resource::RLIMIT_DATA, self.data),
            (Resource::RLIMIT_STACK, self.stack),
            (Resource::RLIMIT_MEMLOCK, self.memlock),
            (Resource::RLIMIT_AS, self.address_space),
            (Resource::RLIMIT_NOFILE, self.open_files),
            (Resource::RLIMIT_NPROC, self.processes),
            (Resource::RLIMIT_FSIZE, self.file_size),
            (Resource::RLIMIT_CORE, self.core),
            (Resource::RLIMIT_RSS, self.resident),
            (Resource::RLIMIT_CPU, self.cpu),
        ];
        for (resource, limit) in all {
            let wanted = match limit {
                Limit::Unset => continue,
                Limit::Hard => None,
                Limit::Value(v) => Some(v),
            };
            let (_, hard) =
                getrlimit(resource).map_err(|e| Failure::sys(&[b"unable to getrlimit()"], e))?;
            let soft = wanted.filter(|&v| v <= hard).unwrap_or(hard);
            setrlimit(resource, soft, hard)
                .map_err(|e| Failure::sys(&[b"unable to setrlimit()"], e))?;
        }
        Ok(())
    }
}
