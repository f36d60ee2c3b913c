//! enable / disable: add or remove a `waits-for` link from one service to
//! another, both in the running daemon (online) and persistently, as a
//! symlink in the `waits-for.d` directory named in the "from" service's
//! description. Offline mode does only the latter, finding description
//! files in the service directories itself.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::args::{Command, Invocation};
use super::conn::{home_dir, strerror, Conn, ConnError};
use super::startstop::wait_for_state;
use super::svcfile::{self, FileError, Resolve};
use super::{base_name, combine_paths, description_dir, err, load, out, Failure, Outcome};
use crate::protocol::{DependencyType, Reply, Request, ServiceState, StatusVersion};

type Env = HashMap<Vec<u8>, Vec<u8>>;

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(nix::libc::EIO)
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

/// The "from" service and its description file, and everything needed to
/// edit its `waits-for.d`.
struct Target<'a> {
    from: Vec<u8>,
    from_file: Vec<u8>,
    to: &'a [u8],
    to_file: Vec<u8>,
}

/// The daemon's environment, parsed from GETALLENV.
fn remote_env(conn: &mut Conn) -> Result<Env, Failure> {
    conn.send(&Request::GetAllEnv)?;
    let block = match conn.reply(StatusVersion::V1)? {
        Reply::AllEnv { block } => block,
        _ => return Err(ConnError::Protocol.into()),
    };
    let mut env = Env::new();
    for entry in block.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        if let Some(eq) = entry.iter().position(|&b| b == b'=') {
            env.insert(entry[..eq].to_vec(), entry[eq + 1..].to_vec());
        }
    }
    Ok(env)
}

/// `@meta enable-via NAME` in the "to" service's description, if any.
fn enable_via(to: &[u8], path: &[u8], resolve: Resolve<'_>) -> Result<Option<Vec<u8>>, Failure> {
    let mut via = None;
    let result = svcfile::walk(os(path), resolve, &mut |_| Ok(()), &mut |meta| {
        let words: Vec<&[u8]> = meta
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        if words.first() == Some(&&b"enable-via"[..]) {
            if words.len() != 2 {
                return Err(FileError::Syntax(
                    "'@meta enable-via' argument missing or malformed".into(),
                ));
            }
            via = Some(words[1].to_vec());
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(via),
        Err(FileError::Syntax(desc)) => {
            err(&[
                b"dinitctl: error loading ",
                to,
                b": ",
                desc.as_bytes(),
                b"\n",
            ]);
            Err(Failure::Reported)
        }
        Err(FileError::Io(p, e)) => {
            err(&[
                b"dinitctl: error loading ",
                to,
                b": ",
                p.as_os_str().as_bytes(),
                b": ",
                strerror(e).as_bytes(),
                b"\n\n",
            ]);
            Err(Failure::Reported)
        }
    }
}

/// Checks that a description file can be opened, with the real client's
/// message when it cannot.
fn check_open(path: &[u8], verb: &str) -> Result<(), Failure> {
    match std::fs::File::open(os(path)) {
        Ok(_) => Ok(()),
        Err(e) => {
            err(&[
                format!("dinitctl: could not {verb} service description file '").as_bytes(),
                path,
                b"': ",
                strerror(errno_of(&e)).as_bytes(),
                b"\n",
            ]);
            Err(Failure::Reported)
        }
    }
}

pub(crate) fn online(conn: &mut Conn, inv: &Invocation) -> Outcome {
    let enable = inv.command == Command::Enable;
    let to = inv.to_service.as_deref().unwrap_or_default();
    if reject_from_with_argument(inv) {
        return Ok(1);
    }
    let env = remote_env(conn)?;
    let resolve = |n: &[u8]| env.get(n).cloned();

    let Some((to_handle, _)) = load(conn, to, true)? else {
        return Ok(1);
    };
    let to_dir = description_dir(conn, to_handle)?;
    let mut to_file = to_dir;
    if to_file.last() != Some(&b'/') {
        to_file.push(b'/');
    }
    to_file.extend_from_slice(base_name(to));

    let from = match &inv.service {
        Some(f) => f.clone(),
        None => {
            check_open(&to_file, "open")?;
            enable_via(to, &to_file, &resolve)?.unwrap_or_else(|| b"boot".to_vec())
        }
    };
    let Some((from_handle, from_state)) = load(conn, &from, true)? else {
        return Ok(1);
    };
    let mut from_file = description_dir(conn, from_handle)?;
    if from_file.last() != Some(&b'/') {
        from_file.push(b'/');
    }
    from_file.extend_from_slice(&from);
    check_open(&from_file, "open")?;

    let target = Target {
        from,
        from_file,
        to,
        to_file,
    };
    let Some(link) = prepare_link(&target, enable, &resolve)? else {
        return Ok(1);
    };

    // Change the running daemon first.
    let mut v7_status = None;
    if enable && from_state != ServiceState::Started {
        err(&[b"dinitctl: warning: enabling dependency for non-started service\n"]);
    }
    let (from_h, to_h, dep_type) = (from_handle, to_handle, DependencyType::WaitsFor);
    let req = if !enable {
        Request::RemDep {
            dep_type,
            from: from_h,
            to: to_h,
        }
    } else if conn.version >= 7 {
        Request::EnableServiceV7 {
            dep_type,
            from: from_h,
            to: to_h,
        }
    } else {
        Request::EnableService {
            dep_type,
            from: from_h,
            to: to_h,
        }
    };
    let v7 = matches!(req, Request::EnableServiceV7 { .. });
    conn.send(&req)?;
    match conn.reply(StatusVersion::V6)? {
        Reply::Nak => {
            err(&[if enable {
                b"dinitctl: could not enable service: possible circular dependency\n".as_slice()
            } else {
                b"dinitctl: service not currently enabled\n".as_slice()
            }]);
            return Ok(1);
        }
        Reply::ServiceStatus { status, .. } if v7 => v7_status = Some(status),
        Reply::Ack if !v7 => {}
        _ if v7 => {
            err(&[b"dinitctl: protocol error.\n"]);
            return Ok(1);
        }
        _ => {
            err(&[b"dinitctl: control socket protocol error\n"]);
            return Ok(1);
        }
    }

    if !edit_link(&link, &target, enable, true) {
        return Ok(1);
    }
    if inv.verbose {
        out(&[
            b"Service '",
            to,
            b"' has been ",
            if enable { b"enabled" } else { b"disabled" },
            b".\n",
        ]);
    }

    let status = match v7_status {
        Some(s) => s,
        None => {
            let (req, version) = if conn.version >= 5 {
                (
                    Request::ServiceStatus5 { handle: to_handle },
                    StatusVersion::V5,
                )
            } else {
                (
                    Request::ServiceStatus { handle: to_handle },
                    StatusVersion::V1,
                )
            };
            conn.send(&req)?;
            match conn.reply(version)? {
                Reply::ServiceStatus { status, .. } => status,
                _ => {
                    err(&[b"dinitctl: protocol error.\n"]);
                    return Ok(1);
                }
            }
        }
    };
    if enable {
        if status.state != ServiceState::Started && status.target == ServiceState::Started {
            return wait_for_state(conn, to_handle, to, false, inv.verbose);
        }
    } else if status.target != ServiceState::Stopped {
        err(&[b"dinitctl: note: disabled service may have other dependents\n"]);
    }
    Ok(0)
}

fn reject_from_with_argument(inv: &Invocation) -> bool {
    if inv.service.as_ref().is_some_and(|f| f.contains(&b'@')) {
        err(&[b"dinitctl: cannot enable/disable from a service with argument (service@arg).\n"]);
        return true;
    }
    false
}

pub(crate) fn offline(inv: &Invocation) -> Outcome {
    let enable = inv.command == Command::Enable;
    let to = inv.to_service.as_deref().unwrap_or_default();
    if reject_from_with_argument(inv) {
        return Ok(1);
    }
    let env = if inv.user {
        Env::new()
    } else {
        let file = "/etc/dinit/environment";
        match read_env_file(Path::new(file)) {
            Ok(env) => env,
            Err(e) => {
                err(&[
                    b"dinitctl: cannot read environment file '",
                    file.as_bytes(),
                    b"' :",
                    strerror(e).as_bytes(),
                    b"\n",
                ]);
                return Ok(1);
            }
        }
    };
    let resolve = |n: &[u8]| env.get(n).cloned();
    let dirs = service_dirs(inv);

    let (to_file, to_err) = match find_description(to, &dirs) {
        Some(found) => found,
        None => {
            err(&[
                b"dinitctl: could not locate service file for target service '",
                to,
                b"'\n",
            ]);
            return Ok(1);
        }
    };
    let from = match &inv.service {
        Some(f) => f.clone(),
        None => {
            if let Some(e) = to_err {
                err(&[
                    b"dinitctl: could not read service description file '",
                    &to_file,
                    b"': ",
                    strerror(e).as_bytes(),
                    b"\n",
                ]);
                return Ok(1);
            }
            enable_via(to, &to_file, &resolve)?.unwrap_or_else(|| b"boot".to_vec())
        }
    };
    let from_file = match find_description(&from, &dirs) {
        Some((path, None)) => path,
        Some((path, Some(e))) => {
            err(&[
                b"dinitctl: could not open service description file '",
                &path,
                b"': ",
                strerror(e).as_bytes(),
                b"\n",
            ]);
            return Ok(1);
        }
        None => {
            err(&[
                b"dinitctl: could not locate service file for service '",
                &from,
                b"'\n",
            ]);
            return Ok(1);
        }
    };
    let target = Target {
        from,
        from_file,
        to,
        to_file,
    };
    let Some(link) = prepare_link(&target, enable, &resolve)? else {
        return Ok(1);
    };
    if !edit_link(&link, &target, enable, false) {
        return Ok(1);
    }
    if inv.verbose {
        out(&[
            b"Service '",
            to,
            b"' has been ",
            if enable { b"enabled" } else { b"disabled" },
            b".\n",
        ]);
    }
    Ok(0)
}

/// Service directories for offline mode: `-d` options, else the defaults
/// for the mode.
fn service_dirs(inv: &Invocation) -> Vec<Vec<u8>> {
    if !inv.services_dirs.is_empty() {
        return inv.services_dirs.clone();
    }
    let mut dirs: Vec<Vec<u8>> = Vec::new();
    if inv.user {
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(|x| x.as_bytes().to_vec())
            .filter(|x| !x.is_empty());
        let xdg = xdg.map(|mut x| {
            if x.last() == Some(&b'/') {
                x.pop();
            }
            x
        });
        if let Some(x) = &xdg {
            dirs.push([x.as_slice(), b"/dinit.d"].concat());
        }
        if let Some(home) = home_dir().filter(|h| !h.is_empty()) {
            let config = [home.as_slice(), b"/.config"].concat();
            if xdg.as_deref() != Some(config.as_slice()) {
                dirs.push([home.as_slice(), b"/.config/dinit.d"].concat());
            }
        }
    }
    let defaults: &[&[u8]] = if dirs.is_empty() {
        &[
            b"/etc/dinit.d",
            b"/run/dinit.d",
            b"/usr/local/lib/dinit.d",
            b"/lib/dinit.d",
        ]
    } else {
        &[
            b"/etc/dinit.d/user",
            b"/usr/lib/dinit.d/user",
            b"/usr/local/lib/dinit.d/user",
        ]
    };
    dirs.extend(defaults.iter().map(|d| d.to_vec()));
    dirs
}

/// The first directory holding the service's file: its path, and the
/// errno if it exists but cannot be opened.
fn find_description(name: &[u8], dirs: &[Vec<u8>]) -> Option<(Vec<u8>, Option<i32>)> {
    let base = base_name(name);
    for dir in dirs {
        let path = combine_paths(dir, base);
        match std::fs::File::open(os(&path)) {
            Ok(_) => return Some((path, None)),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Some((path, Some(errno_of(&e)))),
        }
    }
    None
}

/// An environment file (`NAME=VALUE` lines, `!clear`, `!unset`, `!import`).
fn read_env_file(path: &Path) -> Result<Env, i32> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Env::new()),
        Err(e) => return Err(errno_of(&e)),
    };
    let mut env = Env::new();
    for line in text.split(|&b| b == b'\n') {
        let start = line
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(line.len());
        let line = &line[start..];
        if line.is_empty() || line[0] == b'#' || line[0] == b'=' {
            continue;
        }
        let words = || {
            line.split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .skip(1)
        };
        if line.starts_with(b"!clear") {
            env.clear();
        } else if line.starts_with(b"!unset") {
            for w in words() {
                env.remove(w);
            }
        } else if line.starts_with(b"!import") {
            for w in words() {
                if let Some(v) = std::env::var_os(OsStr::from_bytes(w)) {
                    env.insert(w.to_vec(), v.as_bytes().to_vec());
                }
            }
        } else if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let name = line[..eq]
                .split(|b| b.is_ascii_whitespace())
                .next()
                .unwrap_or_default();
            env.insert(name.to_vec(), line[eq + 1..].to_vec());
        }
    }
    Ok(env)
}

/// Where the link goes, once the "from" description has been checked.
struct Link {
    /// The link's path as the user sees it.
    display: Vec<u8>,
    /// The path actually used: inside the real directory of the "from"
    /// file (descriptions may be symlinks).
    path: PathBuf,
    /// The parent of `display`'s waits-for.d directory, for the link target.
    waits_for_d_full: Vec<u8>,
}

/// Reads the "from" description: refuses a fixed dependency on "to",
/// finds the single `waits-for.d`, and checks whether the link exists.
/// `None` after reporting a refusal.
fn prepare_link(
    t: &Target<'_>,
    enable: bool,
    resolve: Resolve<'_>,
) -> Result<Option<Link>, Failure> {
    let mut waits_for_d: Option<Vec<u8>> = None;
    let mut refused = false;
    let result = svcfile::walk(
        os(&t.from_file),
        resolve,
        &mut |s| {
            match s.name.as_str() {
                "waits-for" | "depends-on" | "depends-ms" if s.value == t.to => {
                    err(&[
                        b"dinitctl: there is a fixed dependency to service '",
                        t.to,
                        b"' in the service description of '",
                        &t.from,
                        b"'.\n",
                    ]);
                    refused = true;
                    return Err(FileError::Syntax(String::new()));
                }
                "waits-for.d" => {
                    if waits_for_d.is_some() {
                        err(&[b"dinitctl: service '", &t.from, b"' has multiple waits-for.d directories specified in service description\n"]);
                        refused = true;
                        return Err(FileError::Syntax(String::new()));
                    }
                    waits_for_d = Some(s.value);
                }
                _ => {}
            }
            Ok(())
        },
        &mut |_| Ok(()),
    );
    match result {
        Ok(()) => {}
        Err(_) if refused => return Ok(None),
        Err(FileError::Io(p, e)) => {
            err(&[
                b"dinitctl: ",
                p.as_os_str().as_bytes(),
                b": ",
                strerror(e).as_bytes(),
                b"\n",
            ]);
            return Ok(None);
        }
        Err(FileError::Syntax(desc)) => {
            err(&[
                b"dinitctl: error in service description: ",
                desc.as_bytes(),
                b"\n",
            ]);
            return Ok(None);
        }
    }
    let Some(waits_for_d) = waits_for_d.filter(|w| !w.is_empty()) else {
        err(&[
            b"dinitctl: service '",
            &t.from,
            b"' has no waits-for.d directory specified\n",
        ]);
        return Ok(None);
    };

    let parent = parent_path(&t.from_file);
    let waits_for_d_full = combine_paths(parent, &waits_for_d);
    let display = combine_paths(&waits_for_d_full, t.to);
    // Relative to the real directory of the file, as the real client opens it.
    let real_dir = std::fs::canonicalize(os(&t.from_file))
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| os(parent).to_path_buf());
    let path = real_dir.join(os(&combine_paths(&waits_for_d, t.to)));

    match std::fs::symlink_metadata(&path) {
        Ok(_) if enable => {
            err(&[b"dinitctl: service already enabled.\n"]);
            return Ok(None);
        }
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            err(&[
                b"dinitctl: checking for existing dependency link: ",
                &display,
                b": ",
                strerror(errno_of(&e)).as_bytes(),
                b"\n",
            ]);
            return Ok(None);
        }
    }
    Ok(Some(Link {
        display,
        path,
        waits_for_d_full,
    }))
}

/// Creates (enable) or removes (disable) the link; false after reporting a
/// failure.
fn edit_link(link: &Link, t: &Target<'_>, enable: bool, online: bool) -> bool {
    let result = if enable {
        std::os::unix::fs::symlink(os(&link_target(link, t)), &link.path)
    } else {
        std::fs::remove_file(&link.path)
    };
    let Err(e) = result else { return true };
    let (what, note): (&[u8], &[u8]) = if enable {
        (
            b"dinitctl: could not create symlink at ",
            b"\ndinitctl: note: service was enabled for now; persistent enable failed.",
        )
    } else {
        (
            b"dinitctl: could not unlink dependency entry ",
            b"\ndinitctl: note: service was disabled for now; persistent disable failed.",
        )
    };
    err(&[
        what,
        &link.display,
        b": ",
        strerror(errno_of(&e)).as_bytes(),
        if online { note } else { b"" },
        b"\n",
    ]);
    false
}

/// The symlink's content: `../<to file relative to the shared parent>` when
/// the waits-for.d directory's parent is a prefix of the "to" file's path,
/// else the absolute "to" path, else `../<to>`.
fn link_target(link: &Link, t: &Target<'_>) -> Vec<u8> {
    let full = &link.waits_for_d_full;
    if let Some(spos) = full.iter().rposition(|&b| b == b'/') {
        if t.to_file.len() >= spos && full[..spos] == t.to_file[..spos] {
            let rest = t.to_file.get(spos + 1..).unwrap_or_default();
            return [b"../".as_slice(), rest].concat();
        }
    }
    if t.to_file.first() == Some(&b'/') {
        return t.to_file.clone();
    }
    [b"../".as_slice(), t.to].concat()
}

/// dinit's `parent_path`: "" without a slash, "/" for the root.
fn parent_path(p: &[u8]) -> &[u8] {
    let Some(mut spos) = p.iter().rposition(|&b| b == b'/') else {
        return b"";
    };
    while spos > 0 && p[spos - 1] == b'/' {
        spos -= 1;
    }
    if spos == 0 {
        &p[..1]
    } else {
        &p[..spos]
    }
}
