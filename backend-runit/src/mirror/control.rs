//! The control letters runsv accepts on `supervise/control`, as engine
//! commands:
//!
//! | letter | runsv | engine |
//! |---|---|---|
//! | `u` | want up, start if down | `Start` |
//! | `d` | want down; TERM, CONT | `Stop` (TERM then CONT) |
//! | `o` | want down, start if down | `Once` |
//! | `x` | want exit; TERM, CONT; exit when down | `Stop`, then the exit sequence |
//! | `t` | TERM (then CONT unless want up) | `Signal(TERM)` |
//! | `k` | KILL | `Signal(KILL)` |
//! | `p` / `c` | STOP / CONT, paused flag | `Pause` / `Continue` |
//! | `h a i q 1 2` | HUP ALRM INT QUIT USR1 USR2 | `Signal` |
//!
//! Signals go only to a running `./run`. On a service's FIFO (never a
//! logger's) a `control/X` hook may replace the signal by exiting 0: then
//! [`apply`] asks for the hook, the host runs it without blocking the
//! loop, and [`resume`] finishes the command with the hook's answer.
//! `control/d` and `control/x` run after the stop sequence.

use std::path::Path;

use braid_core::engine::Command;
use braid_core::runtime::Runtime;
use braid_core::spec::ServiceSpec;
use nix::sys::signal::Signal;

use super::hooks;
use super::Mirror;
use crate::supervise::{Want, Which};

/// Where the command is applied.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The service directory (hooks live in its `control/`).
    pub dir: &'a Path,
    /// runsv's name for it in messages.
    pub label: &'a str,
}

/// What is left to do once the command's effects have been executed.
#[derive(Debug, Default)]
pub struct After {
    /// `control/d` or `control/x`, run after the stop sequence.
    pub hook: Option<char>,
    /// The service's spec to restore once it is down: `control/t` handled
    /// the TERM, so it was reloaded with no stop signal.
    pub restore: Option<Box<ServiceSpec>>,
}

/// The first step of a command.
#[derive(Debug)]
pub enum Step {
    /// Applied; what is left for later.
    Done(After),
    /// Run `control/<hook>` first, then [`resume`] the command.
    Hook(char),
}

/// The signal a plain signalling letter stands for.
fn signal_of(letter: u8) -> Option<Signal> {
    Some(match letter {
        b'h' => Signal::SIGHUP,
        b'a' => Signal::SIGALRM,
        b'i' => Signal::SIGINT,
        b'q' => Signal::SIGQUIT,
        b'1' => Signal::SIGUSR1,
        b'2' => Signal::SIGUSR2,
        b't' => Signal::SIGTERM,
        b'k' => Signal::SIGKILL,
        _ => return None,
    })
}

/// The hook that decides whether `letter` sends its signal: runsv asks one
/// only while `./run` runs, and only on the service's FIFO.
fn deciding_hook(letter: u8) -> Option<char> {
    match letter {
        b'd' | b'x' => Some('t'),
        b'p' | b'c' => Some(letter as char),
        _ => signal_of(letter).map(|_| letter as char),
    }
}

/// Applies one control byte to the process `m` mirrors, or asks for the
/// hook that decides it first.
pub fn apply(rt: &mut Runtime, m: &mut Mirror, ctx: Context<'_>, letter: u8) -> Step {
    if letter == b'x' && m.which == Which::Log {
        return Step::Done(After::default());
    }
    if let Some(hook) = deciding_hook(letter) {
        if m.which == Which::Service && m.running(rt) && hooks::exists(ctx.dir, ctx.label, hook) {
            return Step::Hook(hook);
        }
    }
    Step::Done(resume(rt, m, letter, false))
}

/// Applies `letter`, its deciding hook (if any) having `handled` it or not.
pub fn resume(rt: &mut Runtime, m: &mut Mirror, letter: u8, handled: bool) -> After {
    let mut after = After::default();
    let id = m.id;
    let running = m.running(rt);
    // Errors mean "no process" or "shutting down": runsv ignores those too.
    match letter {
        b'u' => {
            m.want = Want::Up;
            m.relaunch_pending = false;
            let _ = rt.command(id, Command::Start { pin: false });
        }
        b'o' => {
            m.want = Want::Down;
            m.relaunch_pending = false;
            let _ = rt.command(id, Command::Once);
        }
        b'd' | b'x' => {
            m.want = if letter == b'x' {
                Want::Exit
            } else {
                Want::Down
            };
            m.relaunch_pending = false;
            if !running {
                let _ = rt.command(
                    id,
                    Command::Stop {
                        pin: false,
                        gentle: false,
                    },
                );
                return after;
            }
            if handled {
                // Stop without TERM; CONT is still sent, as runsv does.
                let spec = rt.engine().spec(id).clone();
                let mut quiet = spec.clone();
                quiet.stop_signal = None;
                if rt.engine_mut().reload(id, quiet).is_ok() {
                    after.restore = Some(Box::new(spec));
                }
                let _ = rt.command(
                    id,
                    Command::Stop {
                        pin: false,
                        gentle: false,
                    },
                );
                let _ = rt.command(id, Command::Continue);
            } else {
                m.set_got_term();
                let _ = rt.command(
                    id,
                    Command::Stop {
                        pin: false,
                        gentle: false,
                    },
                );
            }
            after.hook = (m.which == Which::Service).then_some(letter as char);
        }
        b't' => {
            if !running {
                return after;
            }
            if !handled {
                m.set_got_term();
                let _ = rt.command(id, Command::Signal(Signal::SIGTERM));
            }
            if m.want != Want::Up {
                let _ = rt.command(id, Command::Continue);
                if m.which == Which::Service {
                    after.hook = Some(if m.want == Want::Exit { 'x' } else { 'd' });
                }
            }
        }
        b'p' | b'c' => {
            let pause = letter == b'p';
            if running && !handled {
                let cmd = if pause {
                    Command::Pause
                } else {
                    Command::Continue
                };
                let _ = rt.command(id, cmd);
            }
            m.set_paused(pause);
        }
        _ => {
            if let Some(signal) = signal_of(letter) {
                if running && !handled {
                    let _ = rt.command(id, Command::Signal(signal));
                }
            }
        }
    }
    after
}
