//! Just enough of the service-description syntax for `enable`/`disable`:
//! walk a file's lines (continuations, comments, `@include`, `@meta`) and
//! read setting values with quoting, escapes and `$VAR` substitution from
//! the daemon's environment.

use std::path::{Path, PathBuf};

/// A setting line: its name, and its value with variables substituted.
#[derive(Debug)]
pub(crate) struct Setting {
    pub name: String,
    pub value: Vec<u8>,
}

/// What goes wrong while reading a description.
#[derive(Debug)]
pub(crate) enum FileError {
    /// A file could not be read: the path and errno.
    Io(PathBuf, i32),
    /// A syntax error, described.
    Syntax(String),
}

/// Looks variables up (the daemon's environment).
pub(crate) type Resolve<'a> = &'a dyn Fn(&[u8]) -> Option<Vec<u8>>;

/// Reads the file at `path` (and what it includes), calling `on_setting`
/// for every setting and `on_meta` with the text after each `@meta`. Stops
/// at the first error, including one returned by a callback.
pub(crate) fn walk(
    path: &Path,
    resolve: Resolve<'_>,
    on_setting: &mut dyn FnMut(Setting) -> Result<(), FileError>,
    on_meta: &mut dyn FnMut(&[u8]) -> Result<(), FileError>,
) -> Result<(), FileError> {
    let text = std::fs::read(path)
        .map_err(|e| FileError::Io(path.to_path_buf(), e.raw_os_error().unwrap_or(0)))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let mut n = 0;
    while n < lines.len() {
        let mut line = lines[n].to_vec();
        n += 1;
        // A line ending in an odd number of backslashes continues on the
        // next one, which must begin with whitespace.
        while line.last() == Some(&b'\\')
            && line.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
        {
            let Some(next) = lines
                .get(n)
                .filter(|_| n < lines.len() - 1 || !lines[n].is_empty())
            else {
                return Err(FileError::Syntax(
                    "end-of-file follows backslash escape character (`\\')".into(),
                ));
            };
            n += 1;
            if !next.first().is_some_and(|b| is_ws(*b)) {
                return Err(FileError::Syntax(
                    "line following line-continuation backslash (`\\') does not begin with whitespace character".into(),
                ));
            }
            if let Some(last) = line.last_mut() {
                *last = b'\n';
            }
            line.extend_from_slice(next);
        }
        let mut i = skip_ws(&line, 0);
        if i >= line.len() || line[i] == b'#' {
            continue;
        }
        if line[i] == b'@' {
            i += 1;
            let (cmd, after) = read_name(&line, i, false);
            match cmd.as_str() {
                "include" | "include-opt" => {
                    let value = read_value(&line[after..], resolve)?;
                    let inc = dir.join(std::ffi::OsStr::from_encoded_bytes_checked(&value));
                    if cmd == "include-opt" && !inc.exists() {
                        continue;
                    }
                    walk(&inc, resolve, on_setting, on_meta)?;
                }
                "meta" => on_meta(&line[after..])?,
                _ => return Err(FileError::Syntax("bad meta command".into())),
            }
            continue;
        }
        let (name, after) = read_name(&line, i, false);
        let j = skip_ws(&line, after);
        let op_len = match line.get(j) {
            Some(b'=') | Some(b':') if !name.is_empty() => 1,
            Some(b'+') if !name.is_empty() && line.get(j + 1) == Some(&b'=') => 2,
            _ => return Err(FileError::Syntax("badly formed line.".into())),
        };
        let value = read_value(&line[j + op_len..], resolve)?;
        on_setting(Setting { name, value })?;
    }
    Ok(())
}

/// Reads the OS-string bytes of a path (always valid on Unix).
trait FromBytes {
    fn from_encoded_bytes_checked(b: &[u8]) -> &Self;
}

impl FromBytes for std::ffi::OsStr {
    fn from_encoded_bytes_checked(b: &[u8]) -> &Self {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

/// A setting or variable name, and the position after it. Setting names
/// may contain `-` and `.` (not first); variable names may not, but may be
/// all digits.
fn read_name(s: &[u8], start: usize, env: bool) -> (String, usize) {
    let mut i = start;
    if env && s.get(i).is_some_and(u8::is_ascii_digit) {
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        return (String::from_utf8_lossy(&s[start..i]).into_owned(), i);
    }
    match s.get(i) {
        None | Some(b'-' | b'.') => return (String::new(), i),
        Some(b) if b.is_ascii_digit() => return (String::new(), i),
        _ => {}
    }
    while let Some(&b) = s.get(i) {
        let ok = ((b == b'-' || b == b'.') && !env)
            || b == b'_'
            || b >= 0x80
            || (b.is_ascii_graphic() && !b.is_ascii_punctuation());
        if !ok {
            break;
        }
        i += 1;
    }
    (String::from_utf8_lossy(&s[start..i]).into_owned(), i)
}

/// A setting value: whitespace collapsed, quotes and backslashes applied,
/// a `#` after whitespace starting a comment, then `$` substitution.
pub(crate) fn read_value(s: &[u8], resolve: Resolve<'_>) -> Result<Vec<u8>, FileError> {
    let mut v = Vec::new();
    let mut i = skip_ws(s, 0);
    while i < s.len() {
        let c = s[i];
        if c == b'"' {
            i += 1;
            loop {
                match s.get(i) {
                    None => return Err(FileError::Syntax("unterminated quoted string".into())),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        i += 1;
                        if let Some(&e) = s.get(i) {
                            v.push(e);
                        }
                    }
                    Some(&o) => v.push(o),
                }
                i += 1;
            }
        } else if c == b'\\' {
            i += 1;
            if let Some(&e) = s.get(i) {
                v.push(e);
            }
        } else if is_ws(c) {
            i = skip_ws(s, i);
            if i >= s.len() || s[i] == b'#' {
                break;
            }
            v.push(b' ');
            continue;
        } else if c == b'#' {
            return Err(FileError::Syntax(
                "hashmark (`#') comment must be separated from setting value by whitespace".into(),
            ));
        } else {
            v.push(c);
        }
        i += 1;
    }
    substitute(&v, resolve)
}

/// `$$`, `$NAME`, `${NAME}`, `${NAME:-alt}`, `${NAME-alt}`, `${NAME:+alt}`,
/// `${NAME+alt}`; `$/` is accepted (word splitting does not matter for the
/// single names read here).
fn substitute(v: &[u8], resolve: Resolve<'_>) -> Result<Vec<u8>, FileError> {
    let bad = |m: &str| FileError::Syntax(m.into());
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        if v[i] != b'$' {
            out.push(v[i]);
            i += 1;
            continue;
        }
        if v.get(i + 1) == Some(&b'$') {
            out.push(b'$');
            i += 2;
            continue;
        }
        let mut j = i + 1;
        if v.get(j) == Some(&b'/') {
            j += 1;
        }
        let brace = v.get(j) == Some(&b'{');
        if brace {
            j += 1;
        }
        let (name, after) = read_name(v, j, true);
        if name.is_empty() {
            return Err(bad("invalid/missing variable name after '$'"));
        }
        let is_arg = name.bytes().all(|b| b.is_ascii_digit());
        if is_arg && name != "1" {
            return Err(bad("only one service argument may be present"));
        }
        j = after;
        let resolved = if is_arg {
            None
        } else {
            resolve(name.as_bytes())
        };
        let mut value = resolved.clone();
        let mut alt_mode = None;
        if brace {
            let colon = v.get(j) == Some(&b':');
            if colon {
                j += 1;
                if !matches!(v.get(j), Some(b'+' | b'-')) {
                    return Err(bad("invalid syntax in variable substitution"));
                }
            }
            if let Some(&m @ (b'+' | b'-')) = v.get(j) {
                j += 1;
                let start = j;
                while j < v.len() && v[j] != b'}' {
                    j += 1;
                }
                let alt = v[start..j].to_vec();
                let empty = resolved.as_ref().map_or(true, |r| r.is_empty());
                alt_mode = Some(m);
                let use_alt = if m == b'-' {
                    resolved.is_none() || (colon && empty)
                } else {
                    resolved.is_some() && (!colon || !empty)
                };
                if use_alt {
                    value = Some(alt);
                }
            }
            if v.get(j) != Some(&b'}') {
                return Err(bad("unmatched '{' in variable substitution"));
            }
            j += 1;
        }
        if is_arg && alt_mode.is_none() {
            return Err(bad("missing value in argument substitution"));
        }
        out.extend_from_slice(&value.unwrap_or_default());
        i = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &[u8]) -> Option<Vec<u8>> {
        (name == b"X").then(|| b"ex".to_vec())
    }

    #[test]
    fn values() {
        let r: Resolve<'_> = &env;
        assert_eq!(read_value(b"  a  b # c", r).unwrap(), b"a b");
        assert_eq!(read_value(b"\"a  b\"\\#", r).unwrap(), b"a  b#");
        assert_eq!(read_value(b"$X-${X}-${Y:-d}-$$", r).unwrap(), b"ex-ex-d-$");
        assert!(read_value(b"a#b", r).is_err());
        assert!(read_value(b"$1", r).is_err());
    }
}
