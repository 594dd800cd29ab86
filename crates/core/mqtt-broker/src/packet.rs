//! The packets the broker exchanges, per protocol version, and small builders for the
//! acknowledgements it sends.
//!
//! The broker speaks both versions through one [`Packet`] enum wrapping the codec's
//! per-version packets. A PUBLISH is the same [`Publish`] struct in both (MQTT 5
//! properties are `Some` only on 5.0 connections), which is what lets one message fan out to
//! subscribers of either version without conversion.

use std::num::NonZeroU16;

use rmqtt_codec::types::{Publish, QoS};
use rmqtt_codec::{v3, v5};

/// A connection, named by the embedder (the listener). Never reused while the broker
/// knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A packet of either protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// MQTT 3.1 / 3.1.1.
    V3(v3::Packet),
    /// MQTT 5.0.
    V5(v5::Packet),
}

impl From<v3::Packet> for Packet {
    fn from(p: v3::Packet) -> Self {
        Packet::V3(p)
    }
}

impl From<v5::Packet> for Packet {
    fn from(p: v5::Packet) -> Self {
        Packet::V5(p)
    }
}

/// The protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1 or 3.1.1 (protocol levels 3 and 4).
    V3,
    /// MQTT 5.0.
    V5,
}

/// The lower of two QoS levels.
pub(crate) fn qos_min(a: QoS, b: QoS) -> QoS {
    if u8::from(a) <= u8::from(b) { a } else { b }
}

/// The higher of two QoS levels.
pub(crate) fn qos_max(a: QoS, b: QoS) -> QoS {
    if u8::from(a) >= u8::from(b) { a } else { b }
}

/// PUBACK with a reason (the reason is dropped on 3.1.1, which has none).
pub(crate) fn puback(v: Version, packet_id: NonZeroU16, reason: v5::PublishAckReason) -> Packet {
    match v {
        Version::V3 => Packet::V3(v3::Packet::PublishAck { packet_id }),
        Version::V5 => Packet::V5(v5::Packet::PublishAck(ack(packet_id, reason))),
    }
}

/// PUBREC with a reason.
pub(crate) fn pubrec(v: Version, packet_id: NonZeroU16, reason: v5::PublishAckReason) -> Packet {
    match v {
        Version::V3 => Packet::V3(v3::Packet::PublishReceived { packet_id }),
        Version::V5 => Packet::V5(v5::Packet::PublishReceived(ack(packet_id, reason))),
    }
}

/// PUBREL; `found = false` is *Packet Identifier not found* on 5.0.
pub(crate) fn pubrel(v: Version, packet_id: NonZeroU16, found: bool) -> Packet {
    match v {
        Version::V3 => Packet::V3(v3::Packet::PublishRelease { packet_id }),
        Version::V5 => Packet::V5(v5::Packet::PublishRelease(ack2(packet_id, found))),
    }
}

/// PUBCOMP; `found = false` is *Packet Identifier not found* on 5.0.
pub(crate) fn pubcomp(v: Version, packet_id: NonZeroU16, found: bool) -> Packet {
    match v {
        Version::V3 => Packet::V3(v3::Packet::PublishComplete { packet_id }),
        Version::V5 => Packet::V5(v5::Packet::PublishComplete(ack2(packet_id, found))),
    }
}

fn ack(packet_id: NonZeroU16, reason_code: v5::PublishAckReason) -> v5::PublishAck {
    v5::PublishAck {
        packet_id,
        reason_code,
        properties: Vec::new(),
        reason_string: None,
    }
}

fn ack2(packet_id: NonZeroU16, found: bool) -> v5::PublishAck2 {
    v5::PublishAck2 {
        packet_id,
        reason_code: if found {
            v5::PublishAck2Reason::Success
        } else {
            v5::PublishAck2Reason::PacketIdNotFound
        },
        properties: Vec::new(),
        reason_string: None,
    }
}

/// A DISCONNECT from the server (5.0 only: 3.1.1 servers just close).
pub(crate) fn disconnect_v5(reason: v5::DisconnectReasonCode) -> Packet {
    Packet::V5(v5::Packet::Disconnect(v5::Disconnect::new(reason)))
}

/// An upper bound of the encoded size of `p`, for the client's Maximum Packet Size. An
/// upper bound may drop a message that would just have fitted; it never sends one that does
/// not.
pub(crate) fn publish_size_bound(p: &Publish) -> usize {
    // Fixed header (1 + up to 4 length bytes), topic (2 + len), packet id (2).
    let mut n = 5 + 2 + p.topic.len() + 2 + p.payload.len();
    if let Some(pr) = &p.properties {
        n += 4; // property length
        n += 5 + 2 + 3 + 3; // expiry, payload format, topic alias, and slack
        n += pr.correlation_data.as_ref().map_or(0, |b| 3 + b.len());
        n += pr.content_type.as_ref().map_or(0, |s| 3 + s.len());
        n += pr.response_topic.as_ref().map_or(0, |s| 3 + s.len());
        n += pr
            .user_properties
            .iter()
            .map(|(k, v)| 5 + k.len() + v.len())
            .sum::<usize>();
        n += 5 * pr.subscription_ids.len();
    }
    n
}
