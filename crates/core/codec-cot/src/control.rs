//! The control events a TAK server exchanges with its clients: protocol negotiation
//! (`t-x-takp-v` offer, `t-x-takp-q` request, `t-x-takp-r` response) and the keepalive ping
//! (`t-x-c-t`) with its pong (`t-x-c-t-r`).
//!
//! Shapes follow ATAK-CIV's `commoncommo/core/impl/protobuf/protocol.txt` ("Streaming
//! Connection Protocol Negotiation"): the detail is one `<TakControl>` holding one or more
//! `<TakProtocolSupport version="N"/>` (offer), one `<TakRequest version="N"/>` (request) or
//! one `<TakResponse status="true|false"/>` (response); the point is 0,0 with hae 0 and
//! ce/le 999999; `how` is `m-g`; the client reuses the offer's uid. TAK Server adds
//! `<TakServerVersionInfo serverVersion=… apiVersion="3"/>` to the offer and gives it a
//! 60 s stale (its `StreamingProtoBufOrCoTProtocol`). The pong matches TAK Server's reply to
//! ATAK's `t-x-c-t`: uid `takPong`, `how` `h-g-i-g-o`, stale +20 s, no detail.

use quick_xml::Reader;
use quick_xml::events::Event;
use rampart_model::{Text, Timestamp};

use crate::{CotEvent, Point};

/// Server → client: the protocol versions the server supports.
pub const TYPE_PROTOCOL_SUPPORT: &str = "t-x-takp-v";
/// Client → server: switch to this protocol version.
pub const TYPE_PROTOCOL_REQUEST: &str = "t-x-takp-q";
/// Server → client: whether the switch is accepted.
pub const TYPE_PROTOCOL_RESPONSE: &str = "t-x-takp-r";
/// Client → server keepalive.
pub const TYPE_PING: &str = "t-x-c-t";
/// Server → client keepalive answer.
pub const TYPE_PONG: &str = "t-x-c-t-r";

/// Validity of negotiation events; the server accepts a request this long after its offer.
pub const NEGOTIATION_STALE_MS: i64 = 60_000;
/// Validity of a pong.
pub const PONG_STALE_MS: i64 = 20_000;
/// The `apiVersion` TAK Server announces in `TakServerVersionInfo`.
pub const API_VERSION: &str = "3";

/// A recognised control event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// `t-x-c-t`: answer with [`pong`].
    Ping,
    /// `t-x-c-t-r`.
    Pong,
    /// `t-x-takp-v` with the versions offered (unparseable ones left out).
    ProtocolSupport {
        /// Offered versions.
        versions: Vec<u32>,
    },
    /// `t-x-takp-q`; `None` when the request names no usable version.
    ProtocolRequest {
        /// Requested version.
        version: Option<u32>,
    },
    /// `t-x-takp-r`; `None` when the status is neither `true` nor `false`.
    ProtocolResponse {
        /// Whether the server accepted.
        accepted: Option<bool>,
    },
}

/// What kind of control event `ev` is, if any.
pub fn classify(ev: &CotEvent) -> Option<Control> {
    Some(match ev.cot_type.as_str() {
        TYPE_PING => Control::Ping,
        TYPE_PONG => Control::Pong,
        TYPE_PROTOCOL_SUPPORT => Control::ProtocolSupport {
            versions: control_values(ev, "TakProtocolSupport", "version")
                .iter()
                .filter_map(|v| v.trim().parse().ok())
                .collect(),
        },
        TYPE_PROTOCOL_REQUEST => Control::ProtocolRequest {
            // Exactly one TakRequest is allowed; anything else is not a usable request.
            version: match control_values(ev, "TakRequest", "version").as_slice() {
                [v] => v.trim().parse().ok(),
                _ => None,
            },
        },
        TYPE_PROTOCOL_RESPONSE => Control::ProtocolResponse {
            accepted: match control_values(ev, "TakResponse", "status").as_slice() {
                [v] if v.trim().eq_ignore_ascii_case("true") => Some(true),
                [v] if v.trim().eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            },
        },
        _ => return None,
    })
}

/// The values of `attr` on every `<element>` inside a `<TakControl>` of the detail.
fn control_values(ev: &CotEvent, element: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in &ev.detail.unknown {
        if !raw.starts_with("<TakControl") {
            continue;
        }
        let mut reader = Reader::from_str(raw);
        // `raw` came out of the parser, so it is well-formed and bounded by the event limit.
        while let Ok(e) = reader.read_event() {
            let start = match e {
                Event::Start(s) | Event::Empty(s) => s,
                Event::Eof => break,
                _ => continue,
            };
            if start.local_name().as_ref() != element.as_bytes() {
                continue;
            }
            for a in start.attributes().flatten() {
                if a.key.as_ref() == attr.as_bytes()
                    && let Ok(v) = std::str::from_utf8(&a.value)
                    && let Ok(v) = quick_xml::escape::unescape(v)
                {
                    out.push(v.into_owned());
                }
            }
        }
    }
    out
}

fn control_event(uid: &str, cot_type: &str, now: Timestamp, control: String) -> CotEvent {
    let mut ev = CotEvent::new(uid, cot_type, now, now.plus_millis(NEGOTIATION_STALE_MS));
    ev.how = Some(Text::const_new("m-g"));
    ev.point = Point {
        lat: 0.0,
        lon: 0.0,
        hae: 0.0,
        ce: crate::UNKNOWN_VALUE_SHORT,
        le: crate::UNKNOWN_VALUE_SHORT,
        extra_attrs: Vec::new(),
    };
    ev.detail.unknown.push(control);
    ev
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// The server's offer of TAK protocol version 1 (`t-x-takp-v`). `uid` identifies the
/// negotiation (a fresh one per connection); `server_version`, when given, is announced in
/// `TakServerVersionInfo` as TAK Server does.
pub fn protocol_support(uid: &str, now: Timestamp, server_version: Option<&str>) -> CotEvent {
    let mut control = String::from(r#"<TakControl><TakProtocolSupport version="1"/>"#);
    if let Some(v) = server_version {
        control.push_str(&format!(
            r#"<TakServerVersionInfo serverVersion="{}" apiVersion="{API_VERSION}"/>"#,
            escape(v)
        ));
    }
    control.push_str("</TakControl>");
    control_event(uid, TYPE_PROTOCOL_SUPPORT, now, control)
}

/// A client's request for `version` (`t-x-takp-q`), reusing the offer's `uid`.
pub fn protocol_request(uid: &str, now: Timestamp, version: u32) -> CotEvent {
    control_event(
        uid,
        TYPE_PROTOCOL_REQUEST,
        now,
        format!(r#"<TakControl><TakRequest version="{version}"/></TakControl>"#),
    )
}

/// The server's answer to a request (`t-x-takp-r`), reusing the negotiation `uid`. After an
/// accepting answer both directions speak TAK protocol streaming frames.
pub fn protocol_response(uid: &str, now: Timestamp, accepted: bool) -> CotEvent {
    control_event(
        uid,
        TYPE_PROTOCOL_RESPONSE,
        now,
        format!(r#"<TakControl><TakResponse status="{accepted}"/></TakControl>"#),
    )
}

/// A client keepalive (`t-x-c-t`), as ATAK sends it (uid `<device uid>-ping`).
pub fn ping(uid: &str, now: Timestamp) -> CotEvent {
    let mut ev = CotEvent::new(uid, TYPE_PING, now, now.plus_millis(PONG_STALE_MS));
    ev.how = Some(Text::const_new("m-g"));
    ev
}

/// True for a client keepalive.
pub fn is_ping(ev: &CotEvent) -> bool {
    ev.cot_type == TYPE_PING
}

/// The server's answer to a ping (`t-x-c-t-r`), sent only to the pinging client.
pub fn pong(now: Timestamp) -> CotEvent {
    let mut ev = CotEvent::new("takPong", TYPE_PONG, now, now.plus_millis(PONG_STALE_MS));
    ev.how = Some(Text::const_new("h-g-i-g-o"));
    ev.point.hae = 0.0;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CotLimits, encode_xml, parse_xml};

    #[test]
    fn negotiation_round_trips_through_xml() {
        let now = Timestamp(1_700_000_000_000);
        let offer = protocol_support("neg-1", now, Some("rampart 0.1 <dev>"));
        let xml = encode_xml(&offer);
        assert!(xml.contains(r#"<detail><TakControl><TakProtocolSupport version="1"/><TakServerVersionInfo serverVersion="rampart 0.1 &lt;dev&gt;" apiVersion="3"/></TakControl></detail>"#), "{xml}");
        assert!(xml.contains(r#"ce="999999" le="999999""#));
        let back = parse_xml(xml.as_bytes(), &CotLimits::default()).unwrap();
        assert_eq!(
            classify(&back),
            Some(Control::ProtocolSupport { versions: vec![1] })
        );
        let req = parse_xml(
            br#"<event version='2.0' uid='neg-1' type='t-x-takp-q' time='2024-01-01T00:00:00Z' start='2024-01-01T00:00:00Z' stale='2024-01-01T00:01:00Z' how='m-g'>
  <point lat='0.0' lon='0.0' hae='0.0' ce='999999' le='999999'/>
  <detail><TakControl><TakRequest version="1"/></TakControl></detail></event>"#,
            &CotLimits::default(),
        )
        .unwrap();
        assert_eq!(
            classify(&req),
            Some(Control::ProtocolRequest { version: Some(1) })
        );
        assert_eq!(
            classify(&protocol_request("neg-1", now, 2)),
            Some(Control::ProtocolRequest { version: Some(2) })
        );
        for accepted in [true, false] {
            let r = parse_xml(
                encode_xml(&protocol_response("neg-1", now, accepted)).as_bytes(),
                &CotLimits::default(),
            )
            .unwrap();
            assert_eq!(
                classify(&r),
                Some(Control::ProtocolResponse {
                    accepted: Some(accepted)
                })
            );
        }
    }

    #[test]
    fn ping_and_pong() {
        let now = Timestamp(1_700_000_000_000);
        let p = ping("ANDROID-1-ping", now);
        assert!(is_ping(&p));
        assert_eq!(classify(&p), Some(Control::Ping));
        let xml = encode_xml(&pong(now));
        assert_eq!(
            xml,
            r#"<event version="2.0" uid="takPong" type="t-x-c-t-r" time="2023-11-14T22:13:20.000Z" start="2023-11-14T22:13:20.000Z" stale="2023-11-14T22:13:40.000Z" how="h-g-i-g-o"><point lat="0" lon="0" hae="0" ce="9999999" le="9999999"/></event>"#
        );
    }
}
