//! The `supervise/` directory runsv keeps for each service and logger, byte
//! for byte, so that braid can write what runsv writes and read what the
//! real runsv writes.

pub mod dir;
pub mod files;
pub mod status;
pub mod tai;

pub use dir::{SetupError, Supervise, Which};
pub use files::{ReadStatusError, SuperviseFiles, UpdateReport, UpdateWarning};
pub use status::{Record, RunState, Status, Want, STATUS_LEN};
pub use tai::{Tai64, Tai64N};
