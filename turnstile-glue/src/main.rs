//! `braid`: one binary, many programs. Invoked as `sv`, `dinitctl`, … (by
//! the name in argv[0]) it is that program; as `braid SUBCOMMAND` it offers
//! the same plus braid's own commands.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use braid_turnstile::inspect;
use clap::{CommandFactory, Parser, Subcommand};

/// One supervisor for runit service directories and dinit service
/// descriptions.
#[derive(Debug, Parser)]
#[command(name = "braid", version, after_help = PROGRAMS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

const PROGRAMS_HELP: &str = "\
Programs (run as `braid PROGRAM ARGS...`, or through a symlink named PROGRAM):
  dinit-check dinitctl dinit-monitor
  sv chpst envdir envuidgid pgrphack setuidgid setlock softlimit svlogd
  pause turnstile-update-runit-env; turnstile backends: runit dinit";

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run a built-in example session and show each state change live.
    Demo(braid_turnstile::demo::DemoArgs),
    /// Link braid's programs and turnstile's backends under a prefix.
    Install(braid_turnstile::install::InstallArgs),
    /// Lint runit service directories and dinit service files.
    Check(inspect::check::CheckArgs),
    /// Show the dependency graph of a session (text, dot, svg, json).
    Graph(inspect::graph::GraphArgs),
    /// Show every service's state, pid, uptime, last exit and restarts.
    #[command(visible_alias = "list")]
    Status(inspect::status_json::StatusArgs),
    /// Show each service's start, readiness, stop and restarts over time.
    Timeline(inspect::timeline::TimelineArgs),
    /// Explain why a service is in its state.
    Why(inspect::why::WhyArgs),
    /// Show a service's recent output.
    Log(inspect::log::LogArgs),
    /// Print a shell completion script for braid.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write braid's man pages to a directory.
    Man {
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
    },
    /// Any of the programs listed below, with its own arguments.
    #[command(external_subcommand)]
    Program(Vec<OsString>),
}

/// The program this face offers under `name`.
fn personality(name: &str) -> Option<fn(Vec<OsString>) -> i32> {
    braid_dinit::personality(name).or_else(|| braid_runit::personality(name))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let program = braid_turnstile::backend::personality(&invoked_as, &args)
        .or_else(|| personality(&invoked_as));
    let code = match program {
        Some(program) => program(args),
        None if invoked_as.starts_with("braid") => run_cli(),
        // Any other name is an init script linked to sv (runit's LSB mode:
        // `/etc/init.d/foo start` acts on the service `foo`).
        None => braid_runit::personality("sv").map_or(100, |sv| sv(args)),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(111))
}

fn run_cli() -> i32 {
    match Cli::parse().command {
        Commands::Demo(args) => braid_turnstile::demo::run(&args),
        Commands::Install(args) => match braid_turnstile::install::run(&args) {
            0 => {
                let mut cmd = Cli::command();
                match inspect::manuals::install(&mut cmd, &args.prefix, args.dry_run) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("braid install: completions and man pages: {e}");
                        1
                    }
                }
            }
            code => code,
        },
        Commands::Check(args) => inspect::check::run(&args),
        Commands::Graph(args) => inspect::graph::run(&args),
        Commands::Status(args) => inspect::status_json::run(&args),
        Commands::Timeline(args) => inspect::timeline::run(&args),
        Commands::Why(args) => inspect::why::run(&args),
        Commands::Log(args) => inspect::log::run(&args),
        Commands::Completions { shell } => {
            let script = inspect::manuals::completions(&mut Cli::command(), shell);
            std::io::Write::write_all(&mut std::io::stdout(), &script).map_or(1, |()| 0)
        }
        Commands::Man { dir } => {
            match inspect::manuals::man_pages(&Cli::command()).and_then(|pages| {
                std::fs::create_dir_all(&dir)?;
                pages
                    .iter()
                    .try_for_each(|(name, page)| std::fs::write(dir.join(name), page))
            }) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("braid man: {}: {e}", dir.display());
                    1
                }
            }
        }
        Commands::Program(argv) => {
            let name = argv
                .first()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let program =
                braid_turnstile::backend::personality(&name, &argv).or_else(|| personality(&name));
            match program {
                Some(program) => program(argv),
                None => {
                    eprintln!("braid: no program called {name:?} (see braid --help)");
                    2
                }
            }
        }
    }
}
