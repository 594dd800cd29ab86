//! `cot-mesh`: TAK mesh SA on an IPv4 multicast group (ATAK's default `239.2.3.1:6969`). It
//! owns the group socket (joined on `[cot] mesh_interface`, shared with other TAK apps on the
//! host through `SO_REUSEADDR`) and the optional mesh proxy (`[cot] mesh_proxy`, like TAK
//! Server's `<input protocol="mcast" proxy="true">`).
//!
//! The proxy is a router client: every event the router delivers to it (from `cot-tcp` and
//! `cot-tls` clients, `cot-udp`, and other sources through the bridge) leaves on the group as
//! one mesh-framed TAK protocol v1 datagram. Events received on the group are published with
//! the proxy's id as origin, so the router's no-echo rule never hands them back to it: nothing
//! is reflected onto the mesh. The proxy's own datagrams, which the host loops back to the
//! group socket, are recognised by their bytes and dropped, so TAK clients never get their
//! own event back from the mesh.
//!
//! Labels: the proxy joins with the anonymous clearance ([`crate::CotEdge::clearance_for`]
//! with no certificate, i.e. `[labels] anonymous`, the clearance every `cot-mesh` peer gets),
//! so data labelled above it never leaves on the mesh. Directed events (`marti/dest`) are not
//! sent either: the proxy has no callsign.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rampart_codec_cot::{CotEvent, CotLimits, XmlStreamSplitter, encode_mesh, parse_xml};
use rampart_model::Timestamp;
use tokio::net::UdpSocket;

use crate::router::{ClientHandle, ClientId};
use crate::{CotConfigError, CotEdge};

/// Hashes of the proxy's most recent datagrams kept to recognise them when the host loops them
/// back to the group socket. An echo arrives within microseconds, so this only needs to cover
/// the datagrams in flight.
pub const MESH_ECHO_MEMORY: usize = 1024;

/// Most bytes of queued events the proxy takes from its router queue at once.
pub const MESH_DRAIN_BYTES: usize = 64 * 1024;

/// Largest UDP payload over IPv4: the upper bound of `max_mesh_datagram_bytes`.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Smallest accepted `max_mesh_datagram_bytes` (a bare PLI is about 200 bytes).
pub const MIN_MESH_DATAGRAM_BYTES: usize = 512;

/// Parses `[cot] mesh_interface`: the IPv4 address of a local interface (`0.0.0.0`: the
/// kernel's choice).
pub(crate) fn parse_interface(value: &str) -> Result<Ipv4Addr, CotConfigError> {
    match value.trim().parse::<Ipv4Addr>() {
        Ok(ip) if !ip.is_multicast() && !ip.is_broadcast() => Ok(ip),
        _ => Err(CotConfigError::BadMeshInterface(value.to_string())),
    }
}

/// Binds the group's port on all interfaces (shared with other TAK apps on the host) and joins
/// `group` on `[cot] mesh_interface`. Call from within the runtime.
pub fn bind_mesh(edge: &CotEdge, group: SocketAddrV4) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let interface = parse_interface(&edge.cfg.mesh_interface)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, group.port())).into())?;
    socket.join_multicast_v4(group.ip(), &interface)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// The sending socket of the proxy: from `interface`, multicast out of it with `ttl`.
fn bind_sender(interface: Ipv4Addr, ttl: u32) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.bind(&SocketAddr::from((interface, 0)).into())?;
    if !interface.is_unspecified() {
        socket.set_multicast_if_v4(&interface)?;
    }
    socket.set_multicast_ttl_v4(ttl)?;
    // Other TAK apps on this host are mesh peers too.
    socket.set_multicast_loop_v4(true)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// Serves `cot-mesh` on `socket` (from [`bind_mesh`]): datagrams in, and with `[cot]
/// mesh_proxy` the proxy out to `group`. A proxy that cannot start is logged; the listener
/// still serves.
pub async fn run_mesh(socket: UdpSocket, edge: Arc<CotEdge>, group: SocketAddrV4) {
    let proxy = if edge.cfg.mesh_proxy {
        match MeshProxy::start(&edge, group) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(%group, error = %e, "TAK mesh proxy not started");
                None
            }
        }
    } else {
        None
    };
    crate::udp::serve(socket, edge, "cot-mesh", proxy).await;
}

/// Recent datagram hashes, oldest first, at most [`MESH_ECHO_MEMORY`].
#[derive(Debug, Default)]
struct SentMemory {
    hashes: VecDeque<u64>,
}

impl SentMemory {
    fn remember(&mut self, h: u64) {
        if self.hashes.len() >= MESH_ECHO_MEMORY {
            self.hashes.pop_front();
        }
        self.hashes.push_back(h);
    }

    /// True (and forgotten) when `h` was sent.
    fn take(&mut self, h: u64) -> bool {
        match self.hashes.iter().rposition(|x| *x == h) {
            Some(i) => {
                self.hashes.remove(i);
                true
            }
            None => false,
        }
    }
}

/// The mesh proxy: a router client whose events leave on the group.
pub(crate) struct MeshProxy {
    edge: Arc<CotEdge>,
    group: SocketAddrV4,
    /// The current router client's id: the origin of events received on the mesh.
    origin: AtomicU64,
    sent: Mutex<SentMemory>,
    /// Keyed per process so a peer cannot craft collisions.
    hasher: std::collections::hash_map::RandomState,
}

impl MeshProxy {
    /// Binds the sending socket, joins the router and spawns the sending task.
    fn start(edge: &Arc<CotEdge>, group: SocketAddrV4) -> Result<Arc<MeshProxy>, String> {
        let interface = parse_interface(&edge.cfg.mesh_interface).map_err(|e| e.to_string())?;
        let socket = bind_sender(interface, edge.cfg.mesh_ttl)
            .map_err(|e| format!("binding the mesh sending socket on {interface}: {e}"))?;
        let proxy = Arc::new(MeshProxy {
            edge: Arc::clone(edge),
            group,
            origin: AtomicU64::new(0),
            sent: Mutex::new(SentMemory::default()),
            hasher: Default::default(),
        });
        let client = proxy.join();
        tokio::spawn(Arc::clone(&proxy).run(socket, client));
        Ok(proxy)
    }

    /// Joins the router under the anonymous clearance, in `cot-mesh`'s channels. The picture
    /// queued for a joiner is discarded: the proxy forwards live traffic, it does not flood the
    /// mesh with the cache.
    fn join(&self) -> Arc<ClientHandle> {
        let (send, recv) = self.edge.membership("cot-mesh");
        let client =
            self.edge
                .router
                .join(send, recv, self.edge.clearance_for(None), Timestamp::now());
        let mut discard = Vec::new();
        while client.drain_into(&mut discard, MESH_DRAIN_BYTES) > 0 {
            discard.clear();
        }
        self.origin.store(client.id, Ordering::Relaxed);
        client
    }

    /// The origin of events received on the mesh.
    pub(crate) fn origin(&self) -> ClientId {
        self.origin.load(Ordering::Relaxed)
    }

    fn hash(&self, datagram: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(datagram);
        h.finish()
    }

    /// True when `datagram` is one the proxy sent (looped back by the host): drop it.
    pub(crate) fn is_echo(&self, datagram: &[u8]) -> bool {
        let echo = self.sent.lock().take(self.hash(datagram));
        if echo {
            self.edge.cot_metrics.mesh_echoes.inc();
        }
        echo
    }

    fn skipped(&self, reason: &str) {
        self.edge
            .cot_metrics
            .mesh_not_sent
            .get_or_create(&rampart_engine::ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The sending loop: drain the router queue, split it into events, send each.
    async fn run(self: Arc<Self>, socket: UdpSocket, mut client: Arc<ClientHandle>) {
        let limits = CotLimits {
            max_event_bytes: self.edge.cfg.max_event_bytes,
            ..CotLimits::default()
        };
        let mut splitter = XmlStreamSplitter::new(limits.max_event_bytes);
        let mut buf = Vec::with_capacity(MESH_DRAIN_BYTES);
        let mut send_errors = 0u64;
        loop {
            client.notify.notified().await;
            if client.is_cut() {
                // The mesh could not take the traffic (queue bound exceeded): start afresh.
                tracing::warn!(group = %self.group, "TAK mesh proxy fell behind; rejoining");
                self.edge.cot_metrics.disconnect("mesh_proxy_overflow");
                self.edge.router.leave(client.id);
                client = self.join();
                splitter = XmlStreamSplitter::new(limits.max_event_bytes);
                continue;
            }
            buf.clear();
            if client.drain_into(&mut buf, MESH_DRAIN_BYTES) == 0 {
                continue;
            }
            splitter.push(&buf);
            loop {
                let event = match splitter.next_event(&limits) {
                    Some((_, e)) => e,
                    None => match splitter.next_frame() {
                        Ok(None) => break,
                        Ok(Some(frame)) => match parse_xml(&frame, &limits) {
                            Ok(e) => e,
                            Err(_) => {
                                self.skipped("undecodable");
                                continue;
                            }
                        },
                        Err(_) => {
                            // Frames are our own encoding; never expected. Start afresh.
                            self.skipped("undecodable");
                            splitter = XmlStreamSplitter::new(limits.max_event_bytes);
                            break;
                        }
                    },
                };
                self.send(&socket, &event, &mut send_errors).await;
            }
        }
    }

    async fn send(&self, socket: &UdpSocket, event: &CotEvent, send_errors: &mut u64) {
        if event.cot_type.starts_with("t-x-") {
            return;
        }
        let datagram = encode_mesh(&event.to_tak_message());
        if datagram.len() > self.edge.cfg.max_mesh_datagram_bytes {
            self.skipped("oversize");
            tracing::debug!(uid = %event.uid, bytes = datagram.len(), "event too large for the TAK mesh");
            return;
        }
        self.sent.lock().remember(self.hash(&datagram));
        match socket.send_to(&datagram, SocketAddr::V4(self.group)).await {
            Ok(_) => {
                self.edge.cot_metrics.mesh_sent.inc();
            }
            Err(e) => {
                self.skipped("send_error");
                *send_errors += 1;
                // The first failure and then one in a thousand: a down interface fails them all.
                if *send_errors % 1000 == 1 {
                    tracing::warn!(group = %self.group, error = %e, failures = *send_errors, "TAK mesh send failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::CotConfig;

    #[test]
    fn the_mesh_is_off_and_on_the_kernels_interface_by_default() {
        let c = CotConfig::default();
        assert!(!c.mesh_proxy);
        assert_eq!(c.mesh_ttl, 1);
        assert_eq!(
            parse_interface(&c.mesh_interface).unwrap(),
            Ipv4Addr::UNSPECIFIED
        );
        assert!(c.max_mesh_datagram_bytes <= MAX_UDP_PAYLOAD);
    }

    #[test]
    fn the_interface_must_be_a_unicast_ipv4_address() {
        assert_eq!(parse_interface("127.0.0.1").unwrap(), Ipv4Addr::LOCALHOST);
        for bad in ["::1", "eth0", "239.2.3.1", "255.255.255.255", "10.0.0", ""] {
            let err = parse_interface(bad).unwrap_err().to_string();
            assert!(
                err.contains("mesh_interface") && err.contains(bad),
                "{bad}: {err}"
            );
        }
    }

    fn pli(uid: &str) -> CotEvent {
        let now = Timestamp::now();
        let xml = format!(
            "<event version='2.0' uid='{uid}' type='a-f-G-U-C' how='m-g' time='{t}' start='{t}' \
             stale='{s}'><point lat='1' lon='2' hae='0' ce='9' le='9'/><detail>\
             <contact callsign='{uid}'/></detail></event>",
            t = now.to_rfc3339(),
            s = now.plus_millis(60_000).to_rfc3339(),
        );
        parse_xml(xml.as_bytes(), &CotLimits::default()).unwrap()
    }

    /// With labels enforced, the proxy sends what the anonymous clearance may see and nothing
    /// above it; a mesh peer (here a socket on the group) decodes what it sends.
    #[tokio::test]
    async fn the_proxy_sends_only_what_the_anonymous_clearance_may_see() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            rampart_history::SegmentLog::open(rampart_history::SegmentLogConfig::new(dir.path()))
                .unwrap();
        let store: Arc<dyn rampart_history::HistoryStore> = log;
        let engine = rampart_engine::Engine::open(
            Default::default(),
            store,
            Arc::new(rampart_engine::Metrics::new()),
        )
        .unwrap();
        let sink: Arc<dyn rampart_engine::ReportSink> = engine.clone();
        let policy = rampart_labels::Policy::new(
            &Default::default(),
            true,
            rampart_model::Label::unclassified(),
        )
        .unwrap();
        let cfg = CotConfig {
            mesh_interface: "127.0.0.1".into(),
            mesh_proxy: true,
            ..CotConfig::default()
        };
        let edge = CotEdge::with_labels(cfg, engine, sink, Arc::new(policy));
        let port = std::net::UdpSocket::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 2, 3, 1), port);
        let peer = bind_mesh(&edge, group).unwrap();
        let _proxy = MeshProxy::start(&edge, group).unwrap();
        let secret = rampart_model::Label {
            classification: "SECRET".into(),
            releasability: vec![],
        };
        edge.publish_event(&pli("secret-1"), &secret);
        edge.publish_event(&pli("public-1"), &rampart_model::Label::unclassified());
        let mut buf = vec![0u8; 65_536];
        let (n, _) =
            tokio::time::timeout(std::time::Duration::from_secs(5), peer.recv_from(&mut buf))
                .await
                .expect("no mesh datagram")
                .unwrap();
        let msg = rampart_codec_cot::decode_mesh(&buf[..n]).unwrap();
        let event = CotEvent::from_tak_message(&msg, &CotLimits::default()).unwrap();
        assert_eq!(event.uid, "public-1", "the SECRET event left on the mesh");
        assert_eq!(edge.cot_metrics.mesh_sent.get(), 1);
    }

    #[test]
    fn sent_memory_recognises_each_datagram_once_and_is_bounded() {
        let mut m = SentMemory::default();
        for h in 0..(MESH_ECHO_MEMORY as u64 + 10) {
            m.remember(h);
        }
        assert_eq!(m.hashes.len(), MESH_ECHO_MEMORY);
        assert!(!m.take(0), "the oldest hashes are forgotten");
        assert!(m.take(500));
        assert!(!m.take(500), "an echo is recognised once");
        assert!(m.take(MESH_ECHO_MEMORY as u64 + 9));
    }
}
