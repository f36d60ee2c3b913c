//! Turning `-u`/`-U` specs and account names into a uid and gid list.

use super::scan::scan_ulong;
use nix::errno::Errno;
use nix::unistd::{Gid, Group, Uid, User};

/// runit keeps at most this many gids.
const MAX_GIDS: usize = 60;

/// A uid and its gids (the first is the primary one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UidGids {
    pub(super) uid: Uid,
    pub(super) gids: Vec<Gid>,
}

/// Why a spec gave no credentials.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LookupError {
    /// No such user or group (or a malformed numeric spec).
    NotFound,
    /// The password or group database could not be read.
    System(Errno),
}

fn user(name: &[u8]) -> Result<User, LookupError> {
    let name = std::str::from_utf8(name).map_err(|_| LookupError::NotFound)?;
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(LookupError::NotFound),
        Err(e) => Err(LookupError::System(e)),
    }
}

fn group(name: &[u8]) -> Result<Gid, LookupError> {
    let name = std::str::from_utf8(name).map_err(|_| LookupError::NotFound)?;
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(LookupError::NotFound),
        Err(e) => Err(LookupError::System(e)),
    }
}

/// An account name: its uid and primary gid only (personalities, no groups).
pub(super) fn account(name: &[u8]) -> Result<UidGids, LookupError> {
    let u = user(name)?;
    Ok(UidGids {
        uid: u.uid,
        gids: vec![u.gid],
    })
}

/// `[:]user[:group[:group...]]` as chpst's `-u` and `-U` take it: names
/// looked up, or with a leading colon `:uid:gid[:gid...]` numerically.
pub(super) fn spec(spec: &[u8]) -> Result<UidGids, LookupError> {
    if let Some(numeric) = spec.strip_prefix(b":") {
        return numeric_spec(numeric).ok_or(LookupError::NotFound);
    }
    let (name, groups) = match spec.iter().position(|&b| b == b':') {
        Some(i) => (&spec[..i], Some(&spec[i + 1..])),
        None => (spec, None),
    };
    let u = user(name)?;
    let Some(mut rest) = groups else {
        return Ok(UidGids {
            uid: u.uid,
            gids: vec![u.gid],
        });
    };
    let mut gids = Vec::new();
    while gids.len() < MAX_GIDS {
        match rest.iter().position(|&b| b == b':') {
            Some(i) => {
                gids.push(group(&rest[..i])?);
                rest = &rest[i + 1..];
            }
            None => {
                gids.push(group(rest)?);
                break;
            }
        }
    }
    Ok(UidGids { uid: u.uid, gids })
}

/// `uid:gid[:gid...]` (the leading colon already removed). Empty gid fields
/// count as 0, as runit's scanner makes them.
fn numeric_spec(s: &[u8]) -> Option<UidGids> {
    let (uid, used) = scan_ulong(s);
    let mut rest = s[used..].strip_prefix(b":")?;
    let mut gids = Vec::new();
    loop {
        let (gid, used) = scan_ulong(rest);
        // runit stores ids in the C types, truncating larger numbers.
        gids.push(Gid::from_raw(gid as u32));
        rest = &rest[used..];
        match rest.strip_prefix(b":") {
            Some(more) if gids.len() < MAX_GIDS => rest = more,
            Some(more) => {
                rest = more;
                break;
            }
            None => break,
        }
    }
    rest.is_empty().then_some(UidGids {
        uid: Uid::from_raw(uid as u32),
        gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_specs() {
        let ids = numeric_spec(b"12:34:56").map(|u| (u.uid.as_raw(), u.gids.len()));
        assert_eq!(ids, Some((12, 2)));
        assert_eq!(numeric_spec(b"12"), None);
        assert_eq!(numeric_spec(b"12:x"), None);
        assert_eq!(
            numeric_spec(b"12:").map(|u| u.gids),
            Some(vec![Gid::from_raw(0)])
        );
    }

    #[test]
    fn root_by_name() {
        assert_eq!(account(b"root").map(|u| u.uid.as_raw()), Ok(0));
        assert_eq!(spec(b"root:root").map(|u| u.gids.len()), Ok(1));
        assert_eq!(spec(b"no-such-user-here"), Err(LookupError::NotFound));
    }
}
