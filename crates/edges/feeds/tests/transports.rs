//! Transports against a real engine, with a trivial `uid,lat,lon` decoder standing in for the
//! protocol codecs (which have their own tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rampart_edge_feeds::{
    Batcher, DecoderFactory, FeedConfig, FeedDecoder, FeedError, FeedInput, ReplayOptions,
    replay_file, run_tcp_connect, run_tcp_listener, run_udp_listener,
};
use rampart_engine::{Engine, EngineConfig, Metrics, ReportSink};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_model::{Report, Timestamp};
use tokio::io::AsyncWriteExt;

struct Csv;

impl FeedDecoder for Csv {
    fn line(
        &mut self,
        line: &[u8],
        now: Timestamp,
        out: &mut Vec<Report>,
    ) -> Result<(), FeedError> {
        let text =
            std::str::from_utf8(line).map_err(|_| FeedError::new("not_utf8", "not UTF-8"))?;
        let f: Vec<&str> = text.split(',').collect();
        let [uid, lat, lon] = f[..] else {
            return Err(FeedError::new(
                "bad_field",
                format!("expected uid,lat,lon, got {text:?}"),
            ));
        };
        let num = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| FeedError::new("bad_field", format!("{s:?} is not a number")))
        };
        out.push(Report::new(uid, num(lat)?, num(lon)?, now));
        Ok(())
    }

    fn line_time(&mut self, line: &[u8]) -> Option<Timestamp> {
        // Lines may start with "@<ms>," to carry a time, for replay pacing.
        let text = std::str::from_utf8(line).ok()?;
        let ms = text.strip_prefix('@')?.split(',').next()?.parse().ok()?;
        Some(Timestamp(ms))
    }
}

struct Timed;

impl FeedDecoder for Timed {
    fn line(
        &mut self,
        line: &[u8],
        now: Timestamp,
        out: &mut Vec<Report>,
    ) -> Result<(), FeedError> {
        let text = std::str::from_utf8(line).unwrap();
        let rest = text.split_once(',').map(|x| x.1).unwrap_or(text);
        Csv.line(rest.as_bytes(), now, out)
    }

    fn line_time(&mut self, line: &[u8]) -> Option<Timestamp> {
        Csv.line_time(line)
    }
}

fn setup(
    dir: &std::path::Path,
    kind: &str,
    factory: DecoderFactory,
) -> (Arc<Engine>, FeedInput, tokio::task::JoinHandle<()>) {
    let log = SegmentLog::open(SegmentLogConfig::new(dir)).unwrap();
    let store: Arc<dyn HistoryStore> = log;
    let engine = Engine::open(EngineConfig::default(), store, Arc::new(Metrics::new())).unwrap();
    let sink: Arc<dyn ReportSink> = engine.clone();
    let (batcher, handle) = Batcher::new(sink, 64, 4096);
    let task = tokio::spawn(batcher.run());
    let input = FeedInput {
        kind: kind.to_string(),
        factory,
        batcher: handle,
        metrics: engine.metrics().clone(),
        cfg: FeedConfig {
            max_line_bytes: 64,
            reconnect_min_ms: 50,
            reconnect_max_ms: 200,
            ..FeedConfig::default()
        },
    };
    (engine, input, task)
}

async fn wait_for(engine: &Engine, n: usize) -> bool {
    for _ in 0..200 {
        if engine.picture().len() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

fn csv() -> DecoderFactory {
    Arc::new(|_| Box::new(Csv) as Box<dyn FeedDecoder>)
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_datagrams_are_decoded_counted_and_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, input, _batcher) = setup(dir.path(), "test-udp", csv());
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(run_udp_listener(socket, input));
    let tx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    tx.send_to(b"a,1,2\r\nb,3,4\nbroken line\nc,5,6", addr)
        .await
        .unwrap();
    tx.send_to(&[b'x'; 200], addr).await.unwrap();
    assert!(wait_for(&engine, 3).await);
    let a = engine.picture().get("a").cloned().unwrap();
    assert_eq!(a.provenance.source, "test-udp");
    assert_eq!(a.provenance.identity, tx.local_addr().unwrap().to_string());
    // The second datagram may still be on its way: wait for its count.
    let mut m = String::new();
    for _ in 0..200 {
        m = engine.metrics().render();
        if m.contains(r#"reason="line_too_long"} 1"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        m.contains(r#"rampart_reports_rejected_total{source="test-udp",reason="bad_field"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"rampart_reports_rejected_total{source="test-udp",reason="line_too_long"} 1"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_listener_takes_a_stream_split_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, input, _batcher) = setup(dir.path(), "test-tcp", csv());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(run_tcp_listener(listener, input));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    for chunk in [&b"u1,1,"[..], b"1\nu2,2,2\r", b"\nu3,3,3"] {
        s.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(s); // the unterminated last line is delivered at end of stream
    assert!(wait_for(&engine, 3).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_connections_reconnect_after_a_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, input, _batcher) = setup(dir.path(), "test-upstream", csv());
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap();
    tokio::spawn(run_tcp_connect(addr.to_string(), input));
    // First connection: one line, then the upstream hangs up.
    let (mut s, _) = upstream.accept().await.unwrap();
    s.write_all(b"first,1,1\n").await.unwrap();
    drop(s);
    // The input comes back by itself.
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(5), upstream.accept())
        .await
        .unwrap()
        .unwrap();
    s.write_all(b"second,2,2\n").await.unwrap();
    assert!(wait_for(&engine, 2).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_keeps_timing_scaled_by_speed() {
    let dir = tempfile::tempdir().unwrap();
    let factory: DecoderFactory = Arc::new(|_| Box::new(Timed) as Box<dyn FeedDecoder>);
    let (engine, input, batcher) = setup(dir.path(), "test-replay", factory);
    let file = dir.path().join("feed.txt");
    // Three lines spanning 2 s of original time.
    std::fs::write(&file, "@1000,r1,1,1\n@2000,r2,2,2\n@3000,r3,3,3\n").unwrap();
    let started = std::time::Instant::now();
    let stats = replay_file(
        &file,
        &input,
        ReplayOptions {
            speed: 4.0,
            chunk: 1000,
        },
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(stats.reports, 3);
    // 2 s at 4x speed is 0.5 s: the pacing must have waited, but not the full 2 s.
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1900), "{elapsed:?}");
    drop(input);
    batcher.await.unwrap();
    assert_eq!(engine.picture().len(), 3);
    // As fast as possible ignores the times.
    let (engine2, input2, batcher2) = setup(
        &dir.path().join("b"),
        "test-replay",
        Arc::new(|_| Box::new(Timed) as Box<dyn FeedDecoder>),
    );
    let started = std::time::Instant::now();
    replay_file(
        &file,
        &input2,
        ReplayOptions {
            speed: 0.0,
            chunk: 1000,
        },
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_millis(400));
    drop(input2);
    batcher2.await.unwrap();
    assert_eq!(engine2.picture().len(), 3);
}
