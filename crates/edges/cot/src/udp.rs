//! `cot-udp` (and `cot-mesh`, the same on a multicast group): one event per datagram, as XML
//! or as a mesh-framed TAK protocol v1 message. Events are routed to streaming clients and
//! folded into the picture; a bad datagram is counted and dropped. A datagram's event is routed
//! with its listener's default label (`[labels.sources]`), the label its report gets. On
//! `cot-mesh` with the mesh proxy on, events are routed with the proxy as origin (so they never
//! go back to the mesh) and the proxy's own looped-back datagrams are dropped (see `mesh`).

use std::net::SocketAddr;
use std::sync::Arc;

use rampart_codec_cot::{CotEvent, CotLimits, decode_mesh, parse_xml};
use rampart_model::{Label, Report};
use tokio::net::UdpSocket;

use crate::CotEdge;
use crate::frame;
use crate::mesh::MeshProxy;
use crate::router::ClientId;

/// Most datagrams folded into one engine batch.
const DATAGRAMS_PER_BATCH: usize = 256;

fn decode(datagram: &[u8], limits: &CotLimits) -> Result<CotEvent, (&'static str, String)> {
    if datagram.first() == Some(&0xbf) {
        let msg = decode_mesh(datagram).map_err(|e| (e.reason(), e.to_string()))?;
        CotEvent::from_tak_message(&msg, limits).map_err(|e| (e.reason(), e.to_string()))
    } else {
        parse_xml(datagram, limits).map_err(|e| (e.reason(), e.to_string()))
    }
}

/// Handles one datagram; its report (if any) goes into `batch`. Its event is routed with
/// `origin` as sender (the mesh proxy on `cot-mesh`, which must not get it back).
#[allow(clippy::too_many_arguments)]
fn handle(
    edge: &CotEdge,
    kind: &str,
    from: SocketAddr,
    datagram: &[u8],
    limits: &CotLimits,
    label: &Option<Arc<Label>>,
    origin: Option<ClientId>,
    batch: &mut Vec<Report>,
) {
    // Signed envelopes are verified whether or not signatures are required; the identity of
    // a verified datagram is the signing device.
    let security = edge.security.get();
    let verifier = security.and_then(|s| s.verifier.as_ref());
    let mut signer = None;
    let datagram = if rampart_pki::sign::is_signed(datagram) || edge.cfg.require_signatures {
        let verdict = match verifier {
            Some(v) => v.verify(datagram, rampart_model::Timestamp::now().0),
            None if rampart_pki::sign::is_signed(datagram) => Err(rampart_pki::Refusal::UnknownKey),
            None => Err(rampart_pki::Refusal::Unsigned),
        };
        match verdict {
            Ok((device, payload)) => {
                signer = Some(device);
                payload
            }
            Err(refusal) => {
                edge.cot_metrics
                    .signature_refusals
                    .get_or_create(&rampart_engine::ReasonLabel {
                        reason: refusal.reason().to_string(),
                    })
                    .inc();
                edge.metrics.reject(kind, refusal.reason(), 1);
                tracing::debug!(kind, peer = %from, reason = refusal.reason(), "CoT datagram refused: {refusal}");
                return;
            }
        }
    } else {
        datagram
    };
    let event = match decode(datagram, limits) {
        Ok(e) => e,
        Err((reason, message)) => {
            edge.metrics.reject(kind, reason, 1);
            tracing::debug!(kind, peer = %from, reason, message, "CoT datagram refused");
            return;
        }
    };
    if event.cot_type.starts_with("t-x-") {
        return;
    }
    edge.cot_metrics.events_in.inc();
    let f = frame::build(
        &event,
        None,
        origin,
        edge.channels_for(kind),
        label.clone(),
        edge.router.has_proto_clients(),
    );
    edge.router.publish(f, true);
    match event.to_report() {
        Ok(mut r) => {
            let who = match signer {
                Some(device) => device.to_string(),
                None => from.to_string(),
            };
            r.provenance = rampart_model::Provenance::new(kind, &who);
            batch.push(r);
        }
        Err(_) => edge.metrics.reject(kind, "not_folded", 1),
    }
}

/// Serves CoT datagrams on `socket`.
pub async fn run_udp_listener(socket: UdpSocket, edge: Arc<CotEdge>, kind: &'static str) {
    serve(socket, edge, kind, None).await;
}

/// [`run_udp_listener`], with the mesh proxy of a `cot-mesh` listener when it runs one.
pub(crate) async fn serve(
    socket: UdpSocket,
    edge: Arc<CotEdge>,
    kind: &'static str,
    proxy: Option<Arc<MeshProxy>>,
) {
    let limits = CotLimits {
        max_event_bytes: edge.cfg.max_event_bytes,
        ..CotLimits::default()
    };
    // No datagram carries a label the codec reads: each gets the source default, as its
    // report does in the engine.
    let label = edge.route_label(edge.labels.source_default(kind));
    let mut buf = vec![0u8; 65_536];
    let mut batch = Vec::new();
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(kind, error = %e, "udp receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let one = |from: SocketAddr, datagram: &[u8], batch: &mut Vec<Report>| {
            let origin = match &proxy {
                Some(p) if p.is_echo(datagram) => return,
                Some(p) => Some(p.origin()),
                None => None,
            };
            handle(&edge, kind, from, datagram, &limits, &label, origin, batch);
        };
        one(from, &buf[..n], &mut batch);
        // Take whatever else is already waiting, so a burst rides one engine batch.
        for _ in 1..DATAGRAMS_PER_BATCH {
            match socket.try_recv_from(&mut buf) {
                Ok((n, from)) => one(from, &buf[..n], &mut batch),
                Err(_) => break,
            }
        }
        if !batch.is_empty()
            && let Err(e) = edge.sink.submit_unacked(std::mem::take(&mut batch))
        {
            tracing::error!(error = %e, kind, "CoT datagrams not stored");
        }
    }
}
