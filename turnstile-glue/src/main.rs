//! `braid`: one binary, many programs. Invoked as `sv`, `dinitctl`, … (by
//! the name in argv[0]) it is that program; as `braid SUBCOMMAND` it offers
//! the same plus braid's own commands.

use std::ffi::OsString;
use std::path::Path;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let personality = braid_dinit::personality(&name).or_else(|| braid_runit::personality(&name));
    let code = match personality {
        Some(program) => program(args),
        None => {
            eprintln!("braid: no program called {name}");
            100
        }
    };
    std::process::exit(code);
}
