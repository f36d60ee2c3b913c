//! braid's own settings, written as `@meta` lines: dinit passes `@meta`
//! lines over ("information for other tools"), so a description using them
//! still loads in the real dinit, unchanged in meaning there.
//!
//! `@meta braid-logfile-rotate [size=BYTES] [count=N]`: a `logfile` is
//! rotated the way svlogd rotates `current` (defaults as svlogd's: 1000000
//! bytes, 10 old files), old files being `PATH.1` (newest) to `PATH.N`.

use braid_core::spec::Rotation;

/// The command that asks for log file rotation.
pub const LOGFILE_ROTATE: &str = "braid-logfile-rotate";

/// svlogd's defaults (`s` and `n`).
const DEFAULT_ROTATION: Rotation = Rotation {
    size: 1_000_000,
    count: 10,
};

/// The rotation an `@meta` line's text (after `@meta`) asks for: `None`
/// when the line is not braid's, `Some(Err(message))` when it is malformed.
pub fn logfile_rotation(meta: &str) -> Option<Result<Rotation, String>> {
    let mut words = meta.split_ascii_whitespace();
    if words.next() != Some(LOGFILE_ROTATE) {
        return None;
    }
    let mut rotation = DEFAULT_ROTATION;
    for word in words {
        let parsed = match word.split_once('=') {
            Some(("size", v)) => v.parse().ok().filter(|&n| n > 0).map(|n| rotation.size = n),
            Some(("count", v)) => v.parse().ok().filter(|&n| n > 0).map(|n| rotation.count = n),
            _ => {
                return Some(Err(format!(
                    "'@meta {LOGFILE_ROTATE}': unknown argument '{word}' (expected size=BYTES or count=N)"
                )))
            }
        };
        if parsed.is_none() {
            return Some(Err(format!(
                "'@meta {LOGFILE_ROTATE}': '{word}' needs a whole number of at least 1"
            )));
        }
    }
    Some(Ok(rotation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(logfile_rotation("enable-via boot"), None);
        assert_eq!(logfile_rotation(""), None);
        assert_eq!(
            logfile_rotation("braid-logfile-rotate"),
            Some(Ok(DEFAULT_ROTATION))
        );
        assert_eq!(
            logfile_rotation("braid-logfile-rotate  count=3   size=4096"),
            Some(Ok(Rotation {
                size: 4096,
                count: 3
            }))
        );
        assert_eq!(
            logfile_rotation("braid-logfile-rotate size=0"),
            Some(Err(
                "'@meta braid-logfile-rotate': 'size=0' needs a whole number of at least 1".into()
            ))
        );
        assert_eq!(
            logfile_rotation("braid-logfile-rotate keep=2"),
            Some(Err("'@meta braid-logfile-rotate': unknown argument 'keep=2' (expected size=BYTES or count=N)".into()))
        );
    }
}
