//! Entry points for the property tests (`tests/fuzz_*.rs`) into parsers
//! that belong to one program and are otherwise private. Not an API.

/// `chpst -e DIR` (`fatal_subdirs` false) or `envdir DIR` (true): the
/// environment edits read from the envdir, in order (`NAME=value`, or a
/// bare `NAME` to remove), or the exit code and message chpst would end
/// with. Changes the working directory while it runs, as runit does.
pub fn envdir(dir: &[u8], fatal_subdirs: bool) -> Result<Vec<Vec<u8>>, (i32, Vec<u8>)> {
    crate::chpst::read_envdir(dir, fatal_subdirs)
}

/// svlogd's reading of a log directory's `config` file, in `Debug` form.
/// Bad `u`/`U` lines are warned about on stderr, as svlogd does.
pub fn svlogd_config(text: &[u8]) -> String {
    crate::svlogd::parse_config(text)
}
