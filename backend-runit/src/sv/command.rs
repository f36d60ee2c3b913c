//! sv's command words: what each sends to runsv, what it then waits for,
//! and whether a timeout ends in a kill.

/// What the first pass does for each service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// Print the status line(s).
    Status,
    /// Send the command bytes to `supervise/control`.
    Control,
    /// Nothing (`check` only waits).
    Nothing,
}

/// When the wait loop runs after the first pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    Never,
    /// Only with `-v` or `-w`.
    IfVerbose,
    Always,
}

/// One parsed command word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) act: Act,
    /// Bytes sent to runsv, and the letters checked while waiting.
    pub(crate) letters: &'static [u8],
    pub(crate) wait: Wait,
    /// On timeout report `kill:` and send `k`.
    pub(crate) kill: bool,
}

const fn lsb_verb(letters: &'static [u8], kill: bool) -> Command {
    Command {
        act: Act::Control,
        letters,
        wait: Wait::Always,
        kill,
    }
}

/// The command for `word`, or `None` for a usage error. In LSB mode (sv
/// called by another name) only `status` of the `s` words is allowed.
pub(crate) fn parse(word: &[u8], lsb: bool) -> Option<Command> {
    let plain = |letters| Command {
        act: Act::Control,
        letters,
        wait: Wait::IfVerbose,
        kill: false,
    };
    let first = *word.first()?;
    Some(match first {
        b'x' | b'e' => plain(b"x"),
        b'X' | b'E' => lsb_verb(b"x", true),
        b'D' => lsb_verb(b"d", true),
        b'T' => lsb_verb(b"tc", true),
        b't' if word == b"try-restart" => lsb_verb(b"tc", false),
        b'c' if word == b"check" => Command {
            act: Act::Nothing,
            letters: b"C",
            wait: Wait::Always,
            kill: false,
        },
        b'u' => plain(b"u"),
        b'd' => plain(b"d"),
        b'o' => plain(b"o"),
        b'p' => plain(b"p"),
        b'c' => plain(b"c"),
        b't' => plain(b"t"),
        b'k' => plain(b"k"),
        b'h' => plain(b"h"),
        b'a' => plain(b"a"),
        b'i' => plain(b"i"),
        b'q' => plain(b"q"),
        b'1' => plain(b"1"),
        b'2' => plain(b"2"),
        b's' => match word {
            b"shutdown" => lsb_verb(b"x", false),
            b"start" => lsb_verb(b"u", false),
            b"stop" => lsb_verb(b"d", false),
            b"status" => status(),
            _ if lsb => return None,
            _ => status(),
        },
        b'r' => match word {
            b"restart" => lsb_verb(b"tcu", false),
            b"reload" => lsb_verb(b"h", false),
            _ => return None,
        },
        b'f' => match word {
            b"force-reload" => lsb_verb(b"tc", true),
            b"force-restart" => lsb_verb(b"tcu", true),
            b"force-shutdown" => lsb_verb(b"x", true),
            b"force-stop" => lsb_verb(b"d", true),
            _ => return None,
        },
        _ => return None,
    })
}

fn status() -> Command {
    // The letter only matters for the "runsv not running" wording (not `x`).
    Command {
        act: Act::Status,
        letters: b"s",
        wait: Wait::Never,
        kill: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(word: &str, lsb: bool) -> Option<(Act, String, Wait, bool)> {
        parse(word.as_bytes(), lsb).map(|c| {
            (
                c.act,
                String::from_utf8(c.letters.to_vec()).unwrap(),
                c.wait,
                c.kill,
            )
        })
    }

    #[test]
    fn first_letter_commands() {
        for (word, letters) in [
            ("up", "u"),
            ("uptown", "u"),
            ("down", "d"),
            ("once", "o"),
            ("pause", "p"),
            ("cont", "c"),
            ("hup", "h"),
            ("alarm", "a"),
            ("interrupt", "i"),
            ("quit", "q"),
            ("1", "1"),
            ("2", "2"),
            ("term", "t"),
            ("kill", "k"),
            ("exit", "x"),
            ("e", "x"),
        ] {
            assert_eq!(
                summary(word, false),
                Some((Act::Control, letters.into(), Wait::IfVerbose, false)),
                "{word}"
            );
        }
    }

    #[test]
    fn lsb_verbs() {
        use Act::*;
        use Wait::*;
        let cases = [
            ("start", "u", false),
            ("stop", "d", false),
            ("restart", "tcu", false),
            ("reload", "h", false),
            ("shutdown", "x", false),
            ("try-restart", "tc", false),
            ("force-stop", "d", true),
            ("force-reload", "tc", true),
            ("force-restart", "tcu", true),
            ("force-shutdown", "x", true),
            ("Xanything", "x", true),
            ("Exit", "x", true),
            ("Down", "d", true),
            ("Term", "tc", true),
        ];
        for (word, letters, kill) in cases {
            assert_eq!(
                summary(word, false),
                Some((Control, letters.into(), Always, kill)),
                "{word}"
            );
        }
        assert_eq!(
            summary("check", false),
            Some((Nothing, "C".into(), Always, false))
        );
    }

    #[test]
    fn status_words_and_usage() {
        assert_eq!(summary("status", false).map(|s| s.0), Some(Act::Status));
        assert_eq!(summary("stat", false).map(|s| s.0), Some(Act::Status));
        assert_eq!(summary("stat", true), None);
        assert_eq!(summary("status", true).map(|s| s.0), Some(Act::Status));
        for bad in ["", "rerun", "fly", "zap", "Up", "-"] {
            assert_eq!(summary(bad, false), None, "{bad:?}");
        }
        assert_eq!(summary("up", true).map(|s| s.1), Some("u".into()));
    }
}
