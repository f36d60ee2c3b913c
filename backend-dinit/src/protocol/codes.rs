//! Numeric codes of the protocol: packet types and the enumerations that
//! travel inside packets.

/// Request (command) packet types.
pub mod cmd {
    pub const QUERYVERSION: u8 = 0;
    pub const FINDSERVICE: u8 = 1;
    pub const LOADSERVICE: u8 = 2;
    pub const STARTSERVICE: u8 = 3;
    pub const STOPSERVICE: u8 = 4;
    pub const WAKESERVICE: u8 = 5;
    pub const RELEASESERVICE: u8 = 6;
    pub const UNPINSERVICE: u8 = 7;
    pub const LISTSERVICES: u8 = 8;
    pub const UNLOADSERVICE: u8 = 9;
    pub const SHUTDOWN: u8 = 10;
    pub const ADD_DEP: u8 = 11;
    pub const REM_DEP: u8 = 12;
    pub const QUERY_LOAD_MECH: u8 = 13;
    pub const ENABLESERVICE: u8 = 14;
    pub const QUERYSERVICENAME: u8 = 15;
    pub const RELOADSERVICE: u8 = 16;
    pub const SETENV: u8 = 17;
    pub const SERVICESTATUS: u8 = 18;
    pub const SETTRIGGER: u8 = 19;
    pub const CATLOG: u8 = 20;
    pub const SIGNAL: u8 = 21;
    pub const QUERYSERVICEDSCDIR: u8 = 22;
    pub const CLOSEHANDLE: u8 = 23;
    pub const GETALLENV: u8 = 24;
    pub const LISTSERVICES5: u8 = 25;
    pub const SERVICESTATUS5: u8 = 26;
    pub const LISTENENV: u8 = 27;
    pub const SERVICESTATUS6: u8 = 28;
    pub const ENABLE_SERVICE_V7: u8 = 29;
    /// braid's own: follow a service's log buffer (see
    /// `Request::BraidFollowLog`). Far above dinit's codes, which it
    /// allocates upward from 0; dinit answers it BADREQ.
    pub const BRAID_FOLLOWLOG: u8 = 240;
}

/// Reply packet types (all below 100).
pub mod rply {
    pub const ACK: u8 = 50;
    pub const NAK: u8 = 51;
    pub const BADREQ: u8 = 52;
    pub const OOM: u8 = 53;
    pub const CPVERSION: u8 = 58;
    pub const SERVICERECORD: u8 = 59;
    pub const NOSERVICE: u8 = 60;
    pub const ALREADYSS: u8 = 61;
    pub const SVCINFO: u8 = 62;
    pub const LISTDONE: u8 = 63;
    pub const LOADER_MECH: u8 = 64;
    pub const DEPENDENTS: u8 = 65;
    pub const SERVICENAME: u8 = 66;
    pub const PINNEDSTOPPED: u8 = 67;
    pub const PINNEDSTARTED: u8 = 68;
    pub const SHUTTINGDOWN: u8 = 69;
    pub const SERVICESTATUS: u8 = 70;
    pub const SERVICE_DESC_ERR: u8 = 71;
    pub const SERVICE_LOAD_ERR: u8 = 72;
    pub const SERVICE_LOG: u8 = 73;
    pub const SIGNAL_NOPID: u8 = 74;
    pub const SIGNAL_BADSIG: u8 = 75;
    pub const SIGNAL_KILLERR: u8 = 76;
    pub const SVCDSCDIR: u8 = 77;
    pub const ALLENV: u8 = 78;
    pub const PREACK: u8 = 79;
}

/// Information packet types (100 and above; may arrive at any time).
pub mod info {
    pub const SERVICEEVENT: u8 = 100;
    pub const SERVICEEVENT5: u8 = 101;
    pub const ENVEVENT: u8 = 102;
}

/// Defines a `u8`-coded enum with `code()` and `from_code()`.
macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $val:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant = $val),+ }

        impl $name {
            /// The wire value.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The value for a wire code, if it is one.
            pub fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($val => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

coded_enum! {
    /// A service's current or target state.
    ServiceState { Stopped = 0, Starting = 1, Started = 2, Stopping = 3 }
}

coded_enum! {
    /// Why a service last stopped.
    StopReason {
        Normal = 0,
        /// A hard dependency was restarted.
        DepRestart = 1,
        /// A dependency failed or terminated.
        DepFailed = 2,
        /// The process exited before it was ready, or the start command failed.
        Failed = 3,
        /// The process could not be launched.
        ExecFailed = 4,
        TimedOut = 5,
        /// The process exited after it had started.
        Terminated = 6,
    }
}

impl StopReason {
    /// Whether a STOPPED service with this reason counts as failed
    /// (`dinitctl is-failed`).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            StopReason::DepFailed
                | StopReason::Failed
                | StopReason::ExecFailed
                | StopReason::TimedOut
        )
    }
}

coded_enum! {
    /// What happened to a service (SERVICEEVENT packets).
    ServiceEvent { Started = 0, Stopped = 1, FailedStart = 2, StartCancelled = 3, StopCancelled = 4 }
}

coded_enum! {
    /// Kinds of dependency link.
    DependencyType {
        Regular = 0, Soft = 1, WaitsFor = 2, Milestone = 3, Before = 4, After = 5, PreparedBy = 6,
    }
}

impl DependencyType {
    /// Whether ADD_DEP / REM_DEP / ENABLESERVICE accept this type.
    pub fn allowed_in_requests(self) -> bool {
        matches!(
            self,
            DependencyType::Regular | DependencyType::WaitsFor | DependencyType::Milestone
        )
    }
}

coded_enum! {
    /// What SHUTDOWN asks for (NONE, 0, is never valid in a request).
    ShutdownType { Remain = 1, Halt = 2, Poweroff = 3, Reboot = 4, SoftReboot = 5, Kexec = 6 }
}
