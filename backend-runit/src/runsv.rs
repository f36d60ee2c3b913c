//! `runsv dir`: supervises one service directory (and its `log/`), with
//! the same machinery as braid's runsvdir. Exits 0 once `x` (or SIGTERM)
//! has brought the service and its logger down; 111 when the directory
//! cannot be supervised; 1 on a usage error.

use std::ffi::OsString;
use std::path::Path;
use std::rc::Rc;

use nix::sys::signal::Signal;

use crate::runsvdir::host::{Host, Mode};
use crate::runsvdir::runtime;

/// The `runsv` program.
pub fn main(argv: Vec<OsString>) -> i32 {
    let prog = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runsv".into());
    if argv.len() != 2 {
        eprint!("usage: {prog} dir\n\n");
        return 1;
    }
    let label = argv[1].to_string_lossy().into_owned();
    let dir = Path::new(&argv[1]);
    let fatal = |e: std::io::Error| {
        eprintln!("runsv {label}: fatal: {}", crate::errstr::io_errstr(&e));
        111
    };
    let mut rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fatal(e),
    };
    let host = match Host::install(&mut rt, Mode::Runsv) {
        Ok(host) => host,
        Err(e) => return fatal(e),
    };
    // The engine's name for it: the directory's own name.
    let name = std::path::absolute(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.starts_with('.'))
        .unwrap_or_else(|| "service".to_string());
    let Some(key) = host.borrow_mut().start(&mut rt, dir, &label, &name) else {
        return 111;
    };
    // SIGTERM is `x`.
    let weak = Rc::downgrade(&host);
    if let Err(e) = rt.on_signal(Signal::SIGTERM, move |rt, _| {
        if let Some(h) = weak.upgrade() {
            h.borrow_mut().exit(rt, key, false);
        }
    }) {
        return fatal(e);
    }
    rt.run().unwrap_or_else(fatal)
}
