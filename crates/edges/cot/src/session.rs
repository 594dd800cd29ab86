//! One streaming client's protocol state: what it has sent so far, which wire format it
//! speaks, and what must be written back to it directly (control answers).
//!
//! The session does no I/O. The connection loop feeds it bytes with [`Session::on_bytes`]
//! and writes [`Session::direct`] followed by the client's routed queue.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rampart_codec_cot::control::{self, Control};
use rampart_codec_cot::{
    CotEvent, CotLimits, ProtoStreamSplitter, XmlStreamSplitter, encode_xml, parse_xml,
};
use rampart_model::{Provenance, Report, Timestamp};

use crate::CotEdge;
use crate::frame;
use crate::router::{ClientHandle, Format};

/// Why a session ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Close {
    /// Metrics label.
    pub reason: &'static str,
    /// Log message.
    pub message: String,
}

impl Close {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Close {
            reason,
            message: message.into(),
        }
    }
}

enum Input {
    Xml(XmlStreamSplitter),
    Proto(ProtoStreamSplitter),
}

/// A connected streaming client.
pub(crate) struct Session {
    edge: Arc<CotEdge>,
    /// The client's routing handle.
    pub client: Arc<ClientHandle>,
    kind: &'static str,
    provenance: Provenance,
    limits: CotLimits,
    input: Input,
    /// Bytes to write to this client before its routed queue.
    pub direct: Vec<u8>,
    /// Since when an event has been half-received (slowloris guard).
    pub partial_since: Option<Instant>,
    /// When the client last sent anything.
    pub last_rx: Instant,
    reports: Vec<Report>,
    /// The routing label of this client's events: its listener's default label, which its
    /// reports get in the engine (no CoT detail carries a label the codec reads).
    label: Option<Arc<rampart_model::Label>>,
    /// The certificate CN of an authenticated client (`None`: unauthenticated), which owns
    /// the uids it reports its position under (`[cot] bind_uids`).
    owner: Option<Arc<str>>,
}

/// The event's bytes as relayed to streaming clients. The splitter's frames already start at
/// the root element (declarations and whitespace between events are dropped there), so this
/// is a plain copy: a copy in its own allocation, because a slice would keep the whole read
/// buffer it came from alive for as long as the late-joiner cache holds the event.
fn own_frame(frame: &[u8]) -> Bytes {
    Bytes::copy_from_slice(frame)
}

impl Session {
    /// Joins the router with `clearance` (queueing the current picture the client may see)
    /// and, if configured, offers TAK protocol v1.
    pub fn new(
        edge: Arc<CotEdge>,
        kind: &'static str,
        identity: &str,
        clearance: rampart_labels::Clearance,
    ) -> Session {
        let now = Timestamp::now();
        let (send, recv) = edge.membership(kind);
        let client = edge.router.join(send, recv, clearance, now);
        let label = edge.route_label(edge.labels.source_default(kind));
        let mut direct = Vec::new();
        if edge.cfg.offer_protocol {
            let offer = control::protocol_support(&edge.server_uid, now, None);
            direct.extend_from_slice(encode_xml(&offer).as_bytes());
        }
        let limits = CotLimits {
            max_event_bytes: edge.cfg.max_event_bytes,
            ..CotLimits::default()
        };
        Session {
            input: Input::Xml(XmlStreamSplitter::new(edge.cfg.max_event_bytes)),
            provenance: Provenance::new(kind, identity),
            edge,
            client,
            kind,
            limits,
            direct,
            partial_since: None,
            last_rx: Instant::now(),
            reports: Vec::new(),
            label,
            owner: None,
        }
    }

    /// Marks the client as authenticated as `cn` (a `cot-tls` client certificate).
    pub fn set_authenticated(&mut self, cn: &str) {
        self.owner = Some(Arc::from(cn));
    }

    /// Absorbs bytes from the client: routes its events, answers control events, and keeps
    /// its reports for [`Session::take_reports`]. An error closes the connection.
    pub fn on_bytes(&mut self, data: &[u8]) -> Result<(), Close> {
        self.last_rx = Instant::now();
        let result = self.absorb(data);
        let pending = match &self.input {
            Input::Xml(s) => s.buffered(),
            Input::Proto(s) => s.buffered(),
        };
        self.partial_since = match (pending > 0, self.partial_since) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(Instant::now()),
        };
        if pending == 0 && result.is_ok() {
            // Between events a splitter holds no state but its grown buffer: start afresh so
            // an idle connection holds no read memory.
            let max = self.edge.cfg.max_event_bytes;
            self.input = match self.input {
                Input::Xml(_) => Input::Xml(XmlStreamSplitter::new(max)),
                Input::Proto(_) => Input::Proto(ProtoStreamSplitter::new(max)),
            };
        }
        result
    }

    fn absorb(&mut self, data: &[u8]) -> Result<(), Close> {
        // Some clients (pytak with TAK_PROTO set, for one) stream protobuf without negotiating.
        // Between XML events the magic byte 0xbf cannot start anything valid, so it is safe
        // to take it as the switch, in both directions.
        if let Input::Xml(splitter) = &self.input
            && splitter.buffered() == 0
            && data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&0xbf)
        {
            self.input = Input::Proto(ProtoStreamSplitter::new(self.edge.cfg.max_event_bytes));
            self.edge.router.set_format(&self.client, Format::Proto);
        }
        match &mut self.input {
            Input::Xml(s) => s.push(data),
            Input::Proto(s) => s.push(data),
        }
        loop {
            match &mut self.input {
                Input::Xml(splitter) => {
                    // One pass for the plain XML clients write; the lexer and the full parser
                    // for everything else (and for every error).
                    let (frame, event) = match splitter.next_event(&self.limits) {
                        Some(fast) => fast,
                        None => {
                            let frame = splitter
                                .next_frame()
                                .map_err(|e| Close::new(e.reason(), e.to_string()))?;
                            let Some(frame) = frame else { return Ok(()) };
                            let frame = own_frame(&frame);
                            let event = parse_xml(&frame, &self.limits)
                                .map_err(|e| Close::new(e.reason(), e.to_string()))?;
                            (frame, event)
                        }
                    };
                    if self.on_event(event, Some(frame)) {
                        // Switched to protobuf: whatever followed the request is protobuf.
                        if let Input::Xml(old) = &mut self.input {
                            let rest = old.take_remaining();
                            self.input = Input::Proto(ProtoStreamSplitter::with_buffered(
                                self.edge.cfg.max_event_bytes,
                                rest,
                            ));
                        }
                    }
                }
                Input::Proto(splitter) => {
                    let msg = splitter
                        .next_message()
                        .map_err(|e| Close::new(e.reason(), e.to_string()))?;
                    let Some(msg) = msg else { return Ok(()) };
                    let event = CotEvent::from_tak_message(&msg, &self.limits)
                        .map_err(|e| Close::new(e.reason(), e.to_string()))?;
                    self.on_event(event, None);
                }
            }
        }
    }

    /// Handles one event. Returns true when the client switched to protobuf.
    fn on_event(&mut self, event: CotEvent, xml: Option<Bytes>) -> bool {
        let now = Timestamp::now();
        match control::classify(&event) {
            Some(Control::Ping) => {
                let pong = control::pong(now);
                self.write_control(&pong);
                return false;
            }
            Some(Control::ProtocolRequest { version }) => {
                let accepted = version == Some(1);
                let answer = control::protocol_response(&self.edge.server_uid, now, accepted);
                // The answer still goes out as XML; everything after it is protobuf.
                self.write_control(&answer);
                if accepted {
                    self.edge.router.set_format(&self.client, Format::Proto);
                }
                return accepted;
            }
            Some(_) => return false,
            None => {}
        }
        if let Some(hook) = self.edge.event_hook.get() {
            hook(&event);
        }
        if event.cot_type.starts_with("t-x-") {
            return false;
        }
        self.edge.cot_metrics.events_in.inc();
        if self.edge.cfg.bind_uids {
            // A position report of its own binds the uid to an authenticated sender.
            let claim = event.cot_type.starts_with("a-") && event.detail.contact.is_some();
            let (verdict, full) = self
                .edge
                .owners
                .check(&event.uid, self.owner.as_deref(), claim);
            if full {
                self.edge.cot_metrics.uid_unbound_full.inc();
            }
            if let crate::owners::Verdict::Foreign(owner) = verdict {
                self.edge.cot_metrics.uid_refused.inc();
                self.edge
                    .metrics
                    .reject(self.kind, "uid_bound_to_another_identity", 1);
                tracing::warn!(
                    uid = %event.uid,
                    owner = %owner,
                    sender = %self.provenance.identity,
                    "CoT event refused: its uid belongs to another certificate identity"
                );
                return false;
            }
        }
        if event.cot_type.starts_with("a-")
            && let Some(callsign) = event.callsign()
        {
            self.client.set_callsign(callsign);
        }
        let frame = frame::build(
            &event,
            xml,
            Some(self.client.id),
            self.client.channels.clone(),
            self.label.clone(),
            self.edge.router.has_proto_clients(),
        );
        self.edge.router.publish(frame, true);
        match event.to_report_with(&rampart_model::Limits::default()) {
            Ok(mut r) => {
                r.provenance = self.provenance.clone();
                self.reports.push(r);
            }
            Err(e) => {
                // Routed to TAK clients, but not representable in the picture.
                self.edge.metrics.reject(self.kind, "not_folded", 1);
                tracing::debug!(uid = %event.uid, error = %e, "CoT event routed but not folded");
            }
        }
        false
    }

    fn write_control(&mut self, event: &CotEvent) {
        // Control answers go out in the client's current format; before the switch that is XML.
        match self.client.format() {
            Format::Xml => self.direct.extend_from_slice(encode_xml(event).as_bytes()),
            Format::Proto => self
                .direct
                .extend_from_slice(&rampart_codec_cot::encode_stream(&event.to_tak_message())),
        }
    }

    /// The reports of the events absorbed since the last call, for the engine (also after an
    /// error: what arrived before the bad input is kept).
    pub fn take_reports(&mut self) -> Option<Vec<Report>> {
        (!self.reports.is_empty()).then(|| std::mem::take(&mut self.reports))
    }

    /// Puts reports the engine could not take yet back in front of any newer ones.
    pub fn defer_reports(&mut self, mut reports: Vec<Report>) {
        reports.append(&mut self.reports);
        self.reports = reports;
    }

    /// True when reports wait for the engine.
    pub fn has_reports(&self) -> bool {
        !self.reports.is_empty()
    }

    /// Leaves the router.
    pub fn finish(&self) {
        self.edge.router.leave(self.client.id);
    }
}
