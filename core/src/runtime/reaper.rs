//! Child processes: which service and role each pid belongs to, and reaping.

use std::collections::{HashMap, VecDeque};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::engine::{ExitStatus, Role, ServiceId};

/// How many exits of unknown pids are remembered (see `Children::orphan_exit`).
const ORPHANS_KEPT: usize = 64;

/// The processes braid launched and still waits for.
#[derive(Debug, Default)]
pub struct Children {
    by_pid: HashMap<Pid, (ServiceId, Role)>,
    by_role: HashMap<(ServiceId, Role), Pid>,
    /// Recent exits of processes braid did not know about: reparented
    /// grandchildren (braid is a subreaper). A background service's daemon
    /// may exit before its pid file is read; this tells it.
    orphans: VecDeque<(Pid, ExitStatus)>,
    /// Counts insertions and removals (for the process record).
    changes: u64,
    /// Insertions (with the service) and removals since the last
    /// `take_journal`, when kept (`keep_journal`), for the process record.
    journal: Option<Vec<(Pid, Option<ServiceId>)>>,
}

impl Children {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `pid` as the process of `service` in `role`, replacing the
    /// previous one of that role.
    pub fn insert(&mut self, pid: Pid, service: ServiceId, role: Role) {
        self.changes += 1;
        if let Some(old) = self.by_role.insert((service, role), pid) {
            if self.by_pid.remove(&old).is_some() {
                self.note(old, None);
            }
        }
        self.by_pid.insert(pid, (service, role));
        self.note(pid, Some(service));
    }

    /// Keeps a journal of insertions and removals from now on.
    pub fn keep_journal(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The insertions (pid and service) and removals (pid and `None`), in
    /// order, since the last call; empty unless `keep_journal` was called.
    pub fn take_journal(&mut self) -> Vec<(Pid, Option<ServiceId>)> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn note(&mut self, pid: Pid, service: Option<ServiceId>) {
        if let Some(journal) = &mut self.journal {
            journal.push((pid, service));
        }
    }

    pub fn pid(&self, service: ServiceId, role: Role) -> Option<Pid> {
        self.by_role.get(&(service, role)).copied()
    }

    pub fn owner(&self, pid: Pid) -> Option<(ServiceId, Role)> {
        self.by_pid.get(&pid).copied()
    }

    /// Every process: pid, service, role.
    pub fn iter(&self) -> impl Iterator<Item = (Pid, ServiceId, Role)> + '_ {
        self.by_pid.iter().map(|(pid, (s, r))| (*pid, *s, *r))
    }

    /// How many times a process was added or removed.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }

    /// Forgets `pid`, returning whom it belonged to.
    pub fn remove(&mut self, pid: Pid) -> Option<(ServiceId, Role)> {
        let owner = self.by_pid.remove(&pid)?;
        self.changes += 1;
        self.note(pid, None);
        self.by_role.remove(&owner);
        Some(owner)
    }

    /// The exit status of `pid` if it was reaped recently without an owner.
    pub fn orphan_exit(&mut self, pid: Pid) -> Option<ExitStatus> {
        let at = self.orphans.iter().position(|(p, _)| *p == pid)?;
        self.orphans.remove(at).map(|(_, status)| status)
    }

    pub fn has_orphan(&self, pid: Pid) -> bool {
        self.orphans.iter().any(|(p, _)| *p == pid)
    }

    fn record_orphan(&mut self, pid: Pid, status: ExitStatus) {
        if self.orphans.len() == ORPHANS_KEPT {
            self.orphans.pop_front();
        }
        self.orphans.push_back((pid, status));
    }

    /// Reaps every child that has exited, without blocking, and returns the
    /// exits of known processes in the order they were reaped.
    pub fn reap(&mut self) -> Vec<(ServiceId, Role, Pid, ExitStatus)> {
        let mut exits = Vec::new();
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Exited(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, ExitStatus::Signaled(signal)),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(_) => break,
            };
            match self.remove(pid) {
                Some((service, role)) => exits.push((service, role, pid, status)),
                None => self.record_orphan(pid, status),
            }
        }
        exits
    }
}
