//! The lane for answers that need no AAS, run while a batch waits on
//! in.aasd: a stopped or slow in.aasd must not hold back clients with a
//! fixed address (or anything else answered from dhcpd.conf alone).
//!
//! Datagrams that arrive during the wait are read here. Each handler runs
//! with an [`Asker::Never`]: one that ends without asking is answered at
//! once; one that asks is set aside, whole, for the next batch, and its
//! log lines are dropped, since it runs again from the start there.

use std::task::Poll;

use super::{arrival, Outlet};
use crate::aas::pipeline::{self, Asker};
use crate::config::Config;
use crate::dhcp::{self, packet};
use crate::log;
use crate::net::{Batch, Datagram};
use crate::{log_debug, log_error};

/// At most this many datagrams set aside; past it the rest wait in the
/// socket's receive buffer, as they would without the lane. The next batch
/// is what was set aside, so this bounds how far a batch grows while
/// in.aasd is slow (a slow fsync): 1,024 in 20 ms is 50,000 a second.
const MAX_DEFERRED: usize = 1024;

/// Datagrams read per system call.
const LANE_BATCH: usize = 32;

#[derive(Default)]
pub struct Lane {
    /// Receive buffers, made at the first wait.
    batch: Option<Batch>,
    deferred: Vec<(Vec<u8>, Datagram)>,
}

impl Lane {
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Whether another datagram may be set aside.
    pub fn has_room(&self) -> bool {
        self.deferred.len() < MAX_DEFERRED
    }

    pub fn take_deferred(&mut self) -> Vec<(Vec<u8>, Datagram)> {
        std::mem::take(&mut self.deferred)
    }

    /// Read what has arrived; answer what needs no AAS; set the rest aside.
    /// With `-b` (`bootp_forwarded`) BOOTP requests are set aside too: the
    /// serve loop forwards them.
    /// Reads until the socket is empty or nothing more may be set aside.
    pub fn serve(&mut self, outlet: &Outlet, config: &Config, bootp_forwarded: bool) {
        let mut batch = self.batch.take().unwrap_or_else(|| Batch::new(LANE_BATCH));
        while self.has_room() {
            self.serve_some(&mut batch, outlet, config, bootp_forwarded);
            if batch.len() < batch.capacity() {
                break; // the socket is empty
            }
        }
        self.batch = Some(batch);
    }

    fn serve_some(
        &mut self,
        batch: &mut Batch,
        outlet: &Outlet,
        config: &Config,
        bootp_forwarded: bool,
    ) {
        if let Err(e) = outlet.socket.recv_batch(batch) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                log_error!("recvmmsg: {e}");
            }
            return;
        }
        for (bytes, d) in batch.datagrams() {
            if d.truncated {
                log_debug!("drop from {}: datagram truncated", d.src);
                continue;
            }
            let bootp = || packet::parse(bytes).is_ok_and(|r| r.message_type.is_none());
            // An interface not in the table yet is looked up by the batch.
            let known = !outlet.interfaces.known(d.ifindex).name.is_empty();
            if !known || (bootp_forwarded && bootp()) {
                self.deferred.push((bytes.to_vec(), *d));
                continue;
            }
            let at = arrival(outlet.interfaces, d, outlet.interfaces.all_addrs());
            let (result, lines) = log::capture_shown(|| {
                pipeline::without_aas(dhcp::answer(bytes, &at, config, &Asker::Never))
            });
            let Poll::Ready(result) = result else {
                self.deferred.push((bytes.to_vec(), *d));
                continue;
            };
            for (level, line) in lines {
                log::write(level, format_args!("{line}"));
            }
            match result {
                Some(Some(reply)) => outlet.send(&reply, d),
                Some(None) => {}
                None => log_error!("internal error on a datagram from {}: dropped", d.src),
            }
        }
    }
}
