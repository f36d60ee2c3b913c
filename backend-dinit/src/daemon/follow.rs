//! braid's log following (`braid log -f` on a `log-type = buffer` service):
//! a connection that asked `BraidFollowLog` gets the buffer once, then
//! each piece of output as the runtime reads it from the service's pipe,
//! pushed by the runtime's output tap (nothing polls). The request is
//! braid's own; dinit's clients never send it, so they see the daemon as
//! before.

use braid_core::engine::ServiceId;
use braid_core::runtime::Runtime;

use super::connection::ConnId;
use super::Shared;
use crate::protocol::Reply;

/// Makes the runtime's tap send tapped output to the connections that
/// follow the service; a service nobody follows any more is untapped.
pub fn install(rt: &mut Runtime, shared: &Shared) {
    let s = shared.clone();
    rt.set_output_tap(move |service, bytes| {
        let Ok(mut d) = s.try_borrow_mut() else {
            // Only reachable if the runtime broke its promise to call the
            // tap outside handlers; keep the service tapped.
            return true;
        };
        let packet = Reply::ServiceLog {
            flags: 0,
            data: bytes.to_vec(),
        }
        .to_bytes();
        let mut followed = false;
        for c in d.conns.values_mut() {
            if c.follows == Some(service) && !c.dead {
                c.send(&packet);
                followed = true;
            }
        }
        followed
    });
}

/// Answers `BraidFollowLog` for `name` on connection `cid`.
pub fn start(shared: &Shared, rt: &mut Runtime, cid: ConnId, name: &[u8]) {
    let reply = |r: Reply| {
        if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
            c.send_reply(&r);
        }
    };
    let Some(id) = rt.engine().lookup(&String::from_utf8_lossy(name)) else {
        return reply(Reply::NoService);
    };
    if !shared.borrow().services.has_log_buffer(id) {
        return reply(Reply::Nak);
    }
    // Output read before now goes to the earlier followers only; the
    // buffer read now is this follower's start, and all output read after
    // it reaches this follower too.
    rt.deliver_output();
    let data = rt.log_buffer(id).map(<[u8]>::to_vec).unwrap_or_default();
    rt.deliver_output();
    if let Some(c) = shared.borrow_mut().conns.get_mut(&cid) {
        c.send_reply(&Reply::ServiceLog { flags: 0, data });
        c.follows = Some(id);
    }
    rt.tap_output(id);
}

/// The service was unloaded: its followers' connections are closed.
pub fn end(shared: &Shared, rt: &mut Runtime, id: ServiceId) {
    let ended: Vec<_> = {
        let mut d = shared.borrow_mut();
        let cids: Vec<ConnId> = d
            .conns
            .iter()
            .filter(|(_, c)| c.follows == Some(id))
            .map(|(cid, _)| *cid)
            .collect();
        cids.into_iter()
            .filter_map(|cid| d.conns.remove(&cid))
            .collect()
    };
    for c in ended {
        if let Some(token) = c.token {
            rt.deregister_fd(token);
        }
    }
}
