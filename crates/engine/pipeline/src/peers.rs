//! Connections per peer: the per-identity connection cap every listener applies at accept.
//!
//! At accept time the only identity a connection has is its source address (a TLS client's
//! certificate, an MQTT device's token come later, and their own limits apply then: one
//! session per MQTT client id, revocation). So a listener asks [`PeerLimiter::admit`] with
//! the peer IP and holds the returned [`PeerSlot`] for the connection's life; a peer at its
//! cap is refused (and counted by the caller) while every other peer is unaffected.
//!
//! The map is bounded by `max_peers`: when that many distinct addresses hold connections, a
//! new address is refused too. Entries are removed when their last connection closes, so the
//! map holds only live peers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Default most open connections from one source address on one listener.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 256;

/// Counts open connections per source address, bounded.
#[derive(Debug)]
pub struct PeerLimiter {
    max_per_peer: usize,
    max_peers: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRefusal {
    /// This address already holds `max_per_peer` connections.
    PeerFull,
    /// `max_peers` distinct addresses hold connections already.
    TooManyPeers,
}

impl PeerRefusal {
    /// The metrics reason.
    pub fn reason(self) -> &'static str {
        match self {
            PeerRefusal::PeerFull => "connections_per_peer",
            PeerRefusal::TooManyPeers => "distinct_peers",
        }
    }
}

/// One admitted connection; dropping it frees its slot.
#[derive(Debug)]
pub struct PeerSlot {
    limiter: Arc<PeerLimiter>,
    ip: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl PeerLimiter {
    /// A limiter allowing `max_per_peer` connections per address and `max_peers` addresses
    /// (both at least 1).
    pub fn new(max_per_peer: usize, max_peers: usize) -> Arc<Self> {
        Arc::new(PeerLimiter {
            max_per_peer: max_per_peer.max(1),
            max_peers: max_peers.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<PeerSlot, PeerRefusal> {
        let mut open = self.open.lock();
        let held = open.len();
        match open.get_mut(&ip) {
            Some(n) if *n >= self.max_per_peer => return Err(PeerRefusal::PeerFull),
            Some(n) => *n += 1,
            None if held >= self.max_peers => return Err(PeerRefusal::TooManyPeers),
            None => {
                open.insert(ip, 1);
            }
        }
        Ok(PeerSlot {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// Open connections from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.lock().get(&ip).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn caps_one_peer_without_touching_others() {
        let l = PeerLimiter::new(2, 10);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = l.admit(a).unwrap();
        let _s2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).unwrap_err(), PeerRefusal::PeerFull);
        let _s3 = l.admit(b).unwrap();
        drop(s1);
        let _s4 = l.admit(a).unwrap();
        assert_eq!(l.open_from(a), 2);
    }

    #[test]
    fn the_map_is_bounded_and_forgets_closed_peers() {
        let l = PeerLimiter::new(5, 2);
        let ips: Vec<IpAddr> = (1..=3)
            .map(|i| format!("10.0.0.{i}").parse().unwrap())
            .collect();
        let s1 = l.admit(ips[0]).unwrap();
        let _s2 = l.admit(ips[1]).unwrap();
        assert_eq!(l.admit(ips[2]).unwrap_err(), PeerRefusal::TooManyPeers);
        drop(s1);
        assert_eq!(l.open_from(ips[0]), 0);
        let _s3 = l.admit(ips[2]).unwrap();
    }
}
