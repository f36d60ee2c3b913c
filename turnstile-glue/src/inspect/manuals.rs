//! Shell completions (bash, zsh, fish) and man pages, generated from
//! braid's clap definitions so that they never drift from the parser;
//! printed by `braid completions SHELL` / `braid man`, and laid under a
//! prefix by `braid install`.

use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// The shells braid writes completions for, with where each looks for
/// them under a prefix.
pub const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "share/bash-completion/completions/braid"),
    (Shell::Zsh, "share/zsh/site-functions/_braid"),
    (Shell::Fish, "share/fish/vendor_completions.d/braid.fish"),
];

/// The completion script of `shell` for `cmd`.
pub fn completions(cmd: &mut clap::Command, shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, "braid", &mut out);
    out
}

/// Man pages: `braid.1` and one `braid-SUBCOMMAND.1` per subcommand (the
/// personalities' external subcommand has none), as (file name, roff).
pub fn man_pages(cmd: &clap::Command) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = Vec::new();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut top)?;
    pages.push(("braid.1".to_string(), top));
    for sub in cmd.get_subcommands() {
        let name = format!("braid-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone())
            .title(name.clone())
            .render(&mut page)?;
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
}

/// Every file `install` lays under `prefix`: completions and man pages.
pub fn files(cmd: &mut clap::Command, prefix: &Path) -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = SHELLS
        .iter()
        .map(|(shell, rel)| (prefix.join(rel), completions(cmd, *shell)))
        .collect();
    for (name, page) in man_pages(cmd)? {
        files.push((prefix.join("share/man/man1").join(name), page));
    }
    Ok(files)
}

/// Writes the files (or, with `dry_run`, says what it would write).
pub fn install(cmd: &mut clap::Command, prefix: &Path, dry_run: bool) -> io::Result<()> {
    for (path, bytes) in files(cmd, prefix)? {
        if dry_run {
            outln!("would write {}", path.display());
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    Ok(())
}
