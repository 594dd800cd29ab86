//! Measures the broker core alone: 10 publishers, one subscriber on `bench/#`, QoS 0 or 1
//! publishes of 64 bytes routed through [`Broker::packet`]. Prints publishes per second.
//!
//! `cargo run --release -p rampart-mqtt-broker --example route -- [qos] [messages]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::num::NonZeroU16;
use std::time::Instant;

use bytes::Bytes;
use rampart_mqtt_broker::codec::types::{Protocol, Publish, QoS};
use rampart_mqtt_broker::codec::v3;
use rampart_mqtt_broker::{Action, Broker, Config, ConnId, Packet};

fn connect(b: &mut Broker, conn: u64, id: &str, now: Instant) {
    let c = v3::Connect {
        protocol: Protocol::default(),
        clean_session: true,
        keep_alive: 60,
        last_will: None,
        client_id: id.into(),
        username: None,
        password: None,
        cert: None,
    };
    b.packet(
        ConnId(conn),
        Packet::V3(v3::Packet::Connect(Box::new(c))),
        now,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let qos = match args.get(1).map(String::as_str) {
        Some("1") => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    };
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let mut b = Broker::new(Config::default());
    let now = Instant::now();
    connect(&mut b, 100, "sub", now);
    let sub = v3::Packet::Subscribe {
        packet_id: NonZeroU16::MIN,
        topic_filters: vec![("bench/#".into(), qos)],
    };
    b.packet(ConnId(100), Packet::V3(sub), now);
    for p in 0..10 {
        connect(&mut b, p, &format!("pub{p}"), now);
    }
    let topics: Vec<_> = (0..10).map(|p| format!("bench/run/{p}")).collect();
    let payload = Bytes::from(vec![7u8; 64]);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut out_pid = 0u16;
    for i in 0..n {
        let p = (i % 10) as usize;
        let pid = NonZeroU16::new((i % 60000 + 1) as u16);
        let publish = Publish {
            dup: false,
            retain: false,
            qos,
            topic: topics[p].as_str().into(),
            packet_id: if qos == QoS::AtMostOnce { None } else { pid },
            payload: payload.clone(),
            properties: None,
        };
        let actions = b.packet(
            ConnId(p as u64),
            Packet::V3(v3::Packet::Publish(Box::new(publish))),
            now,
        );
        for a in actions {
            if let Action::Send {
                conn: ConnId(100),
                packet: Packet::V3(v3::Packet::Publish(p)),
            } = a
            {
                sent += 1;
                if let Some(id) = p.packet_id {
                    out_pid = id.get();
                    let ack = v3::Packet::PublishAck { packet_id: id };
                    b.packet(ConnId(100), Packet::V3(ack), now);
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} publishes, {sent} deliveries in {secs:.3} s: {:.0} publishes/s ({:.0} ns each) last pid {out_pid}",
        n as f64 / secs,
        secs * 1e9 / n as f64
    );
}
