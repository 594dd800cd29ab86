//! The batch observer seam (the rules engine's): every folded entity once per report, late
//! reports excluded, removals after the stale grace, a tick after each sweep.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use rampart_engine::{BatchObserver, Engine, EngineConfig, Metrics};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_model::{Entity, Provenance, Report, Timestamp, Uid};
use rampart_picture::PictureConfig;

#[derive(Default)]
struct Seen {
    batches: Mutex<Vec<Vec<(String, f64)>>>,
    removed: Mutex<Vec<String>>,
    ticks: Mutex<u32>,
}

impl BatchObserver for Seen {
    fn on_batch(&self, entities: &[&Entity], _now: Timestamp) {
        self.batches.lock().unwrap().push(
            entities
                .iter()
                .map(|e| (e.uid.to_string(), e.lat))
                .collect(),
        );
    }
    fn on_removed(&self, uids: &[Uid], _now: Timestamp) {
        self.removed
            .lock()
            .unwrap()
            .extend(uids.iter().map(|u| u.to_string()));
    }
    fn on_tick(&self, _now: Timestamp) {
        *self.ticks.lock().unwrap() += 1;
    }
}

fn report(uid: &str, lat: f64, t: i64) -> Report {
    let mut r = Report::new(uid, lat, 10.0, Timestamp::now().plus_millis(t));
    r.provenance = Provenance::new("test", "tester");
    r.stale = Some(r.time.plus_millis(1));
    r
}

#[tokio::test]
async fn observer_sees_folded_entities_removals_and_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let log = SegmentLog::open(SegmentLogConfig::new(dir.path())).unwrap();
    let store: Arc<dyn HistoryStore> = log.clone();
    let cfg = EngineConfig {
        picture: PictureConfig {
            stale_grace_ms: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let engine = Engine::open(cfg, store, Arc::new(Metrics::new())).unwrap();
    let seen = Arc::new(Seen::default());
    engine.set_observer(seen.clone()).map_err(|_| ()).unwrap();
    assert!(
        engine.set_observer(seen.clone()).is_err(),
        "only one observer"
    );

    engine
        .ingest(vec![
            report("a", 1.0, 0),
            report("b", 2.0, 0),
            report("a", 3.0, 10),
        ])
        .await
        .unwrap();
    // A late report is stored, not folded, not observed.
    engine
        .ingest(vec![report("a", 9.0, -60_000)])
        .await
        .unwrap();
    {
        let b = seen.batches.lock().unwrap();
        assert_eq!(b.len(), 1, "{b:?}");
        // The state after the whole batch, once per report.
        assert_eq!(
            b[0],
            vec![("a".into(), 3.0), ("b".into(), 2.0), ("a".into(), 3.0)]
        );
    }
    engine.sweep(Timestamp::now().plus_millis(10_000));
    engine.sweep(Timestamp::now().plus_millis(20_000));
    let mut removed = seen.removed.lock().unwrap().clone();
    removed.sort();
    assert_eq!(removed, ["a", "b"]);
    assert_eq!(*seen.ticks.lock().unwrap(), 2);
}
