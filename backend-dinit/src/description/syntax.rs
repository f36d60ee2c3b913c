//! The line syntax of a service description: character classes, setting
//! names, operators and values (quotes, escapes, comments, whitespace
//! collapse).
//!
//! Character classes follow the C "classic" locale, as dinit uses it: bytes
//! at or above 0x80 belong to no class, so they count as name characters.

use super::Pos;

/// `isspace` in the classic locale.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_name_byte(b: u8) -> bool {
    // Not a control, punctuation or space character (bytes >= 0x80 are none of those).
    b == b'_' || !(b < 0x20 || b == 0x7f || b.is_ascii_punctuation() || is_space(b))
}

/// Reads a setting or meta-command name starting at `*i`, advancing `*i` past it.
/// Returns an empty string when no valid name starts there.
pub fn read_setting_name(s: &str, i: &mut usize) -> String {
    let b = s.as_bytes();
    let start = *i;
    match b.get(start) {
        None | Some(b'-' | b'.' | b'0'..=b'9') => return String::new(),
        _ => {}
    }
    while *i < b.len() && (matches!(b[*i], b'-' | b'.') || is_name_byte(b[*i])) {
        *i += 1;
    }
    s[start..*i].to_string()
}

/// Reads a variable name for substitution within `s[*i..end]`: either a run
/// of digits (an argument reference, `numeric` is then true) or a name of
/// `_` and non-punctuation characters.
pub fn read_var_name(s: &str, i: &mut usize, end: usize) -> (String, bool) {
    let b = s.as_bytes();
    let start = *i;
    if start < end && b[start].is_ascii_digit() {
        while *i < end && b[*i].is_ascii_digit() {
            *i += 1;
        }
        return (s[start..*i].to_string(), true);
    }
    if start >= end || matches!(b[start], b'-' | b'.') {
        return (String::new(), false);
    }
    while *i < end && is_name_byte(b[*i]) {
        *i += 1;
    }
    (s[start..*i].to_string(), false)
}

/// Skips whitespace, counting newlines (left by line continuations) into `line`.
pub fn skip_ws_ln(s: &str, mut i: usize, line: &mut u32) -> usize {
    let b = s.as_bytes();
    while i < b.len() && is_space(b[i]) {
        if b[i] == b'\n' {
            *line += 1;
        }
        i += 1;
    }
    i
}

/// Skips whitespace and `#` comments (a comment ends at an embedded newline).
fn skip_comment(s: &str, mut i: usize, line: &mut u32) -> usize {
    let b = s.as_bytes();
    let mut comment = false;
    while i < b.len() {
        if b[i] == b'#' {
            comment = true;
        } else if b[i] == b'\n' {
            *line += 1;
            comment = false;
        }
        if !comment && !is_space(b[i]) {
            break;
        }
        i += 1;
    }
    i
}

/// The operator between a setting name and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `=`
    Assign,
    /// `:`
    Colon,
    /// `+=`
    Append,
}

/// A value as read from a line: the collapsed text and the byte range of
/// each token ("part") within it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub parts: Vec<(usize, usize)>,
}

impl Value {
    /// The tokens as separate strings (the argv of a command).
    pub fn tokens(&self) -> Vec<String> {
        self.parts
            .iter()
            .map(|&(a, b)| self.text[a..b].to_string())
            .collect()
    }
}

/// Reads the value of a setting from `s[i..]` into `value`. With
/// `Operator::Append` the new tokens are added after the existing ones,
/// separated by `delimiter`; otherwise `value` is replaced.
///
/// `pos` is the position of the setting; errors report it advanced by the
/// newlines crossed so far.
pub fn read_value(
    value: &mut Value,
    op: Operator,
    s: &str,
    i: usize,
    pos: &Pos,
    delimiter: char,
) -> Result<(), (Pos, &'static str)> {
    let b = s.as_bytes();
    let mut line = pos.line;
    let mut i = skip_ws_ln(s, i, &mut line);
    let err = |line: u32, msg| Err((pos.with_line(line), msg));

    if op == Operator::Append {
        if !value.text.is_empty() {
            value.text.push(delimiter);
        }
    } else {
        value.text.clear();
        value.parts.clear();
    }
    // Collected as bytes so that multi-byte characters pass through whole.
    let mut out: Vec<u8> = std::mem::take(&mut value.text).into_bytes();
    let mut part_start: Option<usize> = None;

    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            part_start.get_or_insert(out.len());
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                    if i == b.len() {
                        break;
                    }
                }
                out.push(b[i]);
                i += 1;
            }
            if i >= b.len() {
                value.text = String::from_utf8_lossy(&out).into_owned();
                return err(line, "unterminated quoted string");
            }
        } else if c == b'\\' {
            part_start.get_or_insert(out.len());
            i += 1;
            if i == b.len() {
                break;
            }
            out.push(b[i]);
        } else if is_space(c) {
            if let Some(start) = part_start.take() {
                value.parts.push((start, out.len()));
            }
            i = skip_comment(s, i, &mut line);
            if i == b.len() {
                break;
            }
            out.push(b' ');
            continue;
        } else if c == b'#' {
            value.text = String::from_utf8_lossy(&out).into_owned();
            return err(
                line,
                "hashmark (`#') comment must be separated from setting value by whitespace",
            );
        } else {
            part_start.get_or_insert(out.len());
            out.push(c);
        }
        i += 1;
    }
    if let Some(start) = part_start {
        value.parts.push((start, out.len()));
    }
    value.text = String::from_utf8_lossy(&out).into_owned();
    Ok(())
}

/// Reads a whole value (plain assignment) and returns its text.
pub fn read_plain(s: &str, i: usize, pos: &Pos) -> Result<Value, (Pos, &'static str)> {
    let mut v = Value::default();
    read_value(&mut v, Operator::Assign, s, i, pos, ' ')?;
    Ok(v)
}

/// One logical line of a description after joining continuations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// A comment or blank line.
    Nothing,
    /// `@name rest`: `rest_at` is the byte offset just after the name,
    /// `line` the line number counting newlines crossed.
    Meta {
        name: String,
        rest_at: usize,
        line: u32,
    },
    /// `name op value`: `value_at` is the offset of the value (after
    /// whitespace), `line` the line number counting newlines crossed.
    Setting {
        name: String,
        op: Operator,
        value_at: usize,
        line: u32,
    },
    /// Neither a valid setting nor a comment.
    BadlyFormed,
}

/// Classifies a logical line that starts at physical line `first_line`.
pub fn classify(s: &str, first_line: u32) -> LineKind {
    let b = s.as_bytes();
    let mut line = first_line;
    let mut i = skip_ws_ln(s, 0, &mut line);
    if i == b.len() || b[i] == b'#' {
        return LineKind::Nothing;
    }
    if b[i] == b'@' {
        i += 1;
        let name = read_setting_name(s, &mut i);
        return LineKind::Meta {
            name,
            rest_at: i,
            line,
        };
    }
    let name = read_setting_name(s, &mut i);
    i = skip_ws_ln(s, i, &mut line);
    if name.is_empty() {
        return LineKind::BadlyFormed;
    }
    let op = match b.get(i) {
        Some(b'=') => Operator::Assign,
        Some(b':') => Operator::Colon,
        Some(b'+') if b.get(i + 1) == Some(&b'=') => {
            i += 1;
            Operator::Append
        }
        _ => return LineKind::BadlyFormed,
    };
    let value_at = skip_ws_ln(s, i + 1, &mut line);
    LineKind::Setting {
        name,
        op,
        value_at,
        line,
    }
}

/// Whether a line ends with an odd number of backslashes (a continuation).
pub fn continues(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> Pos {
        Pos::new("f", 1)
    }

    fn val(s: &str) -> Result<Value, &'static str> {
        read_plain(s, 0, &pos()).map_err(|e| e.1)
    }

    #[test]
    fn whitespace_collapses_and_parts_split() {
        let v = val("  a   b\t c  ").unwrap();
        assert_eq!(v.text, "a b c");
        assert_eq!(v.tokens(), ["a", "b", "c"]);
    }

    #[test]
    fn quotes_keep_spaces_and_hash() {
        let v = val(r#""a  # b"c "" d"#).unwrap();
        assert_eq!(v.tokens(), ["a  # bc", "", "d"]);
        assert_eq!(val(r#""abc"#), Err("unterminated quoted string"));
    }

    #[test]
    fn backslash_escapes() {
        let v = val(r#"a\ b \\c "q\"x""#).unwrap();
        assert_eq!(v.tokens(), ["a b", "\\c", "q\"x"]);
    }

    #[test]
    fn comments_need_whitespace() {
        assert_eq!(val("a #b").unwrap().text, "a");
        assert_eq!(
            val("a#b"),
            Err("hashmark (`#') comment must be separated from setting value by whitespace")
        );
        assert_eq!(val(r"a\#b").unwrap().text, "a#b");
    }

    #[test]
    fn comment_ends_at_continuation_newline() {
        let v = val("a # comment\n b").unwrap();
        assert_eq!(v.tokens(), ["a", "b"]);
    }

    #[test]
    fn error_line_counts_newlines() {
        let e = read_plain("a\n \"x", 0, &pos()).unwrap_err();
        assert_eq!(e.0.line, 2);
    }

    #[test]
    fn append_adds_delimiter() {
        let mut v = val("a b").unwrap();
        read_value(&mut v, Operator::Append, "c", 0, &pos(), ' ').unwrap();
        assert_eq!(v.text, "a b c");
        assert_eq!(v.tokens(), ["a", "b", "c"]);
    }

    #[test]
    fn classify_lines() {
        assert_eq!(classify("   # x", 1), LineKind::Nothing);
        assert_eq!(classify("", 1), LineKind::Nothing);
        assert!(
            matches!(classify("a.b-c += x", 1), LineKind::Setting { op: Operator::Append, ref name, .. } if name == "a.b-c")
        );
        assert!(matches!(
            classify("x: y", 1),
            LineKind::Setting {
                op: Operator::Colon,
                ..
            }
        ));
        assert_eq!(classify("-x = y", 1), LineKind::BadlyFormed);
        assert_eq!(classify("x y", 1), LineKind::BadlyFormed);
        assert_eq!(classify("x + y", 1), LineKind::BadlyFormed);
        assert!(
            matches!(classify("@include f", 1), LineKind::Meta { ref name, .. } if name == "include")
        );
    }

    #[test]
    fn continuation_parity() {
        assert!(continues("a\\"));
        assert!(!continues("a\\\\"));
        assert!(continues("a\\\\\\"));
        assert!(!continues("a"));
    }

    #[test]
    fn var_names() {
        let s = "ab_c-d";
        let mut i = 0;
        assert_eq!(read_var_name(s, &mut i, s.len()), ("ab_c".into(), false));
        let mut i = 0;
        assert_eq!(read_var_name("12x", &mut i, 3), ("12".into(), true));
        let mut i = 0;
        assert_eq!(read_var_name("-x", &mut i, 2), (String::new(), false));
    }
}
