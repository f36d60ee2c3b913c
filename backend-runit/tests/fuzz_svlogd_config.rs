//! Property tests of svlogd's reading of a log directory's `config`:
//! random bytes, and valid directive lines (`s n N t ! p u U + - e E`)
//! with one mutation each (a changed byte, a huge number, a cut line, an
//! embedded NUL).
//!
//! For every input: parsing returns (no panic, no hang, numbers wrap as in
//! runit rather than overflow), the result holds no more than the input
//! did, and parsing is deterministic.
//!
//! Bad `u`/`U` lines make svlogd warn on stderr; the cases run with stderr
//! sent to /dev/null, one at a time.
//!
//! `PROPTEST_CASES` sets the number of cases (see the README's "Fuzzing").

use std::os::fd::AsRawFd;
use std::sync::Mutex;

use braid_runit::fuzzing::svlogd_config;
use braid_tests::fuzz::{config, damage, guarded, Damage};
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 1500;

/// Standard error is the process's: one case at a time.
static STDERR: Mutex<()> = Mutex::new(());

/// Parses with stderr silenced.
fn parse_quietly(text: &[u8]) -> String {
    let _lock = STDERR.lock().unwrap_or_else(|e| e.into_inner());
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null");
    let saved = nix::unistd::dup(2).expect("dup stderr");
    nix::unistd::dup2(null.as_raw_fd(), 2).expect("silence stderr");
    let parsed = svlogd_config(text);
    nix::unistd::dup2(saved, 2).expect("restore stderr");
    let _ = nix::unistd::close(saved);
    parsed
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..100_000).prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("99999999999999999999999999".to_string()),
        Just(String::new()),
        Just("0".to_string()),
    ]
}

fn directive() -> impl Strategy<Value = String> {
    let octet = prop_oneof![(0u32..=255).prop_map(|n| n.to_string()), number()];
    prop_oneof![
        (
            number(),
            prop_oneof![Just(""), Just("k"), Just("m"), Just("x")]
        )
            .prop_map(|(n, u)| format!("s{n}{u}")),
        number().prop_map(|n| format!("n{n}")),
        number().prop_map(|n| format!("N{n}")),
        (number(), prop_oneof![Just(""), Just("h"), Just("m")])
            .prop_map(|(n, u)| format!("t{n}{u}")),
        "[ -~]{0,20}".prop_map(|c| format!("!{c}")),
        "[ -~]{0,20}".prop_map(|p| format!("p{p}")),
        (
            prop_oneof![Just('u'), Just('U')],
            prop::collection::vec(octet, 1..6),
            prop::option::of(number())
        )
            .prop_map(|(k, o, port)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                format!("{k}{}{port}", o.join("."))
            }),
        (
            prop_oneof![Just('+'), Just('-'), Just('e'), Just('E')],
            "[*a-z ]{0,12}"
        )
            .prop_map(|(k, p)| format!("{k}{p}")),
        "[ -~]{0,12}",
    ]
}

fn mutation() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Set(i, b)),
        (any::<Index>(), prop_oneof![Just(0u8), Just(b'\n')]).prop_map(|(i, b)| Damage::Set(i, b)),
        any::<Index>().prop_map(Damage::Truncate),
        (
            any::<Index>(),
            prop_oneof![
                Just(b"99999999999999999999".to_vec()),
                Just(b"\n".to_vec()),
                prop::collection::vec(any::<u8>(), 1..6)
            ]
        )
            .prop_map(|(i, b)| Damage::Insert(i, b)),
    ]
}

fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(directive(), 0..12),
        any::<bool>(),
        prop::collection::vec(mutation(), 0..3),
    )
        .prop_map(|(lines, final_newline, mutations)| {
            let mut text = lines.join("\n").into_bytes();
            if final_newline {
                text.push(b'\n');
            }
            damage(&mut text, mutations);
            text
        })
}

fn check(text: &[u8]) -> Result<(), TestCaseError> {
    guarded(&String::from_utf8_lossy(text), || {
        let parsed = parse_quietly(text);
        // Debug prints a byte as at most "255, ": five characters each.
        prop_assert!(
            parsed.len() <= 5 * text.len() + 512,
            "{} bytes of config parsed into {}",
            text.len(),
            parsed
        );
        prop_assert_eq!(parse_quietly(text), parsed);
        Ok(())
    })
}

proptest! {
    #![proptest_config(config(DEFAULT_CASES))]

    #[test]
    fn fuzz_svlogd_config_random(text in prop::collection::vec(any::<u8>(), 0..200)) {
        check(&text)?;
    }

    #[test]
    fn fuzz_svlogd_config_near_valid(text in near_valid()) {
        check(&text)?;
    }
}
