//! Variable substitution in setting values: `$NAME`, `${NAME}`,
//! `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`, the
//! service argument `$1`, `$$`, and the word-splitting `$/` forms.
//!
//! Substitution works on a value's text and its token ranges together, so
//! that a command keeps its argument boundaries: a plain reference never
//! splits or removes an argument, while a `$/` reference splits at
//! whitespace and an argument that ends up empty through it disappears.

use super::syntax::{is_space, read_var_name, Value};

/// Looks up a variable; `None` means unset.
pub type Lookup<'a> = dyn FnMut(&str) -> Option<String> + 'a;

/// Substitutes every reference in `value`. `arg` is the service argument
/// (`None`: the service has none). Errors are dinit's messages.
pub fn substitute(
    value: &Value,
    arg: Option<&str>,
    lookup: &mut Lookup<'_>,
) -> Result<Value, &'static str> {
    let line = value.text.as_str();
    if !line.contains('$') {
        return Ok(value.clone());
    }
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut parts = Vec::with_capacity(value.parts.len());
    let mut copied_to = 0;

    for &(start, end) in &value.parts {
        out.push_str(&line[copied_to..start]);
        let mut tok_start = out.len();
        // A plain reference keeps the token even when it expands to nothing.
        let mut inhibit_collapse = false;
        let mut do_collapse = false;
        let mut k = start;
        while k < end {
            let Some(off) = line[k..end].find('$') else {
                out.push_str(&line[k..end]);
                break;
            };
            out.push_str(&line[k..k + off]);
            k += off;
            if b.get(k + 1) == Some(&b'$') {
                out.push('$');
                k += 2;
                continue;
            }
            let mut j = k + 1;
            let split = b.get(j) == Some(&b'/');
            if split {
                j += 1;
            }
            let brace = b.get(j) == Some(&b'{');
            if brace {
                j += 1;
            }
            let (name, is_arg) = read_var_name(line, &mut j, end);
            if name.is_empty() {
                return Err("invalid/missing variable name after '$'");
            }
            if is_arg && name != "1" {
                return Err("only one service argument may be present");
            }
            let mut alt: Option<(u8, bool, &str)> = None;
            if brace {
                let mut colon = false;
                if b.get(j) == Some(&b':') {
                    colon = true;
                    j += 1;
                    if !matches!(b.get(j), Some(b'+' | b'-')) {
                        return Err("invalid syntax in variable substitution");
                    }
                }
                if let Some(&mode @ (b'+' | b'-')) = b.get(j) {
                    j += 1;
                    let word_start = j;
                    while j < end && b[j] != b'}' {
                        j += 1;
                    }
                    alt = Some((mode, colon, &line[word_start..j]));
                }
                if !(j < end && b[j] == b'}') {
                    return Err("unmatched '{' in variable substitution");
                }
                j += 1;
            }
            let resolved: Option<String> = if is_arg {
                arg.map(str::to_string)
            } else {
                lookup(&name)
            };
            let text: String = match alt {
                Some((b'-', colon, word)) => match resolved {
                    Some(v) if !(colon && v.is_empty()) => v,
                    _ => word.to_string(),
                },
                Some((_, colon, word)) => match resolved {
                    Some(v) if !colon || !v.is_empty() => word.to_string(),
                    _ => String::new(),
                },
                None => match resolved {
                    Some(v) => v,
                    None if is_arg => return Err("missing value in argument substitution"),
                    None => String::new(),
                },
            };
            k = j;

            if !split {
                inhibit_collapse = true;
                do_collapse = false;
                out.push_str(&text);
                continue;
            }
            let mut rest = text.as_str();
            while let Some(ws) = rest.bytes().position(is_space) {
                out.push_str(&rest[..ws]);
                if out.len() == tok_start && !inhibit_collapse {
                    // whitespace at the start of the argument: trimmed
                } else {
                    parts.push((tok_start, out.len()));
                    out.push(' ');
                    tok_start = out.len();
                }
                rest = rest[ws..].trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
                inhibit_collapse = false;
            }
            out.push_str(rest);
            do_collapse = !inhibit_collapse;
        }
        if !(do_collapse && out.len() == tok_start) {
            parts.push((tok_start, out.len()));
        }
        copied_to = end;
    }
    out.push_str(&line[copied_to..]);
    Ok(Value { text: out, parts })
}

/// Substitutes in a single-valued setting (the whole text is one token).
pub fn substitute_text(
    text: &str,
    arg: Option<&str>,
    lookup: &mut Lookup<'_>,
) -> Result<String, &'static str> {
    let v = Value {
        text: text.to_string(),
        parts: vec![(0, text.len())],
    };
    substitute(&v, arg, lookup).map(|v| v.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::description::syntax::read_plain;
    use crate::description::Pos;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("x y".into()),
            "E" => Some(String::new()),
            "S" => Some("  ".into()),
            _ => None,
        }
    }

    fn args(s: &str, arg: Option<&str>) -> Result<Vec<String>, &'static str> {
        let v = read_plain(s, 0, &Pos::new("f", 1)).unwrap();
        substitute(&v, arg, &mut env).map(|v| v.tokens())
    }

    #[test]
    fn plain_references_keep_argument_boundaries() {
        assert_eq!(args("a $A b", None).unwrap(), ["a", "x y", "b"]);
        assert_eq!(args("a $U b", None).unwrap(), ["a", "", "b"]);
        assert_eq!(args("p${A}q", None).unwrap(), ["px yq"]);
        assert_eq!(args("$$A", None).unwrap(), ["$A"]);
    }

    #[test]
    fn split_references() {
        assert_eq!(args("a $/A b", None).unwrap(), ["a", "x", "y", "b"]);
        assert_eq!(args("a $/U b", None).unwrap(), ["a", "b"]);
        assert_eq!(args("a $/S b", None).unwrap(), ["a", "b"]);
        assert_eq!(args("a $/{A}", None).unwrap(), ["a", "x", "y"]);
    }

    #[test]
    fn conditional_forms() {
        assert_eq!(
            args("${U:-d} ${E:-d} ${E-d} ${U-d}", None).unwrap(),
            ["d", "d", "", "d"]
        );
        assert_eq!(
            args("${A:+p} ${E:+p} ${E+p} ${U+p}", None).unwrap(),
            ["p", "", "p", ""]
        );
    }

    #[test]
    fn service_argument() {
        assert_eq!(args("x$1 ${1}", Some("z")).unwrap(), ["xz", "z"]);
        assert_eq!(
            args("$1", None),
            Err("missing value in argument substitution")
        );
        assert_eq!(args("${1:-d}", None).unwrap(), ["d"]);
        assert_eq!(
            args("$2", Some("z")),
            Err("only one service argument may be present")
        );
    }

    #[test]
    fn malformed_references() {
        assert_eq!(
            args("a$", None),
            Err("invalid/missing variable name after '$'")
        );
        assert_eq!(
            args("$-", None),
            Err("invalid/missing variable name after '$'")
        );
        assert_eq!(
            args("${A:x}", None),
            Err("invalid syntax in variable substitution")
        );
        assert_eq!(
            args("${A", None),
            Err("unmatched '{' in variable substitution")
        );
        assert_eq!(
            args("${A-x", None),
            Err("unmatched '{' in variable substitution")
        );
    }
}
