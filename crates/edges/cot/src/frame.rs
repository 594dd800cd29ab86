//! Turning a decoded event into a routable [`CotFrame`], encoded once per wire format.

use std::sync::Arc;

use bytes::Bytes;
use rampart_codec_cot::{CotEvent, encode_stream, encode_xml};
use rampart_model::Label;

use crate::router::{ClientId, CotFrame};

/// Callsigns named in a TAK `<marti><dest callsign="…"/></marti>` element, if any: such an
/// event is for those clients only (directed GeoChat, for instance).
fn marti_callsigns(event: &CotEvent) -> Option<Arc<[String]>> {
    let marti = event
        .detail
        .unknown
        .iter()
        .find(|x| x.trim_start().starts_with("<marti"))?;
    let mut out = Vec::new();
    let mut rest = marti.as_str();
    while let Some(i) = rest.find("callsign=") {
        rest = &rest[i + "callsign=".len()..];
        let Some(quote) = rest.chars().next() else {
            break;
        };
        if quote != '"' && quote != '\'' {
            continue;
        }
        let value = rest[1..].split(quote).next().unwrap_or("");
        out.push(value.to_string());
        rest = &rest[1..];
    }
    (!out.is_empty()).then(|| Arc::from(out))
}

/// Builds a frame. `xml` is the event's XML when the caller already has it (a client's
/// original bytes, relayed verbatim); `label` is the event's security label as
/// [`crate::CotEdge::route_label`] gives it (`None`: anyone may see it); `with_proto` asks for
/// the protobuf encoding too.
pub(crate) fn build(
    event: &CotEvent,
    xml: Option<Bytes>,
    origin: Option<ClientId>,
    channels: Arc<[Arc<str>]>,
    label: Option<Arc<Label>>,
    with_proto: bool,
) -> Arc<CotFrame> {
    let xml = xml.unwrap_or_else(|| Bytes::from(encode_xml(event)));
    let proto = if with_proto {
        Bytes::from(encode_stream(&event.to_tak_message()))
    } else {
        Bytes::new()
    };
    Arc::new(CotFrame {
        uid: Arc::from(event.uid.as_str()),
        cot_type: Arc::from(event.cot_type.as_str()),
        stale: event.stale,
        origin,
        channels,
        dest_callsigns: marti_callsigns(event),
        label,
        xml,
        proto,
    })
}
