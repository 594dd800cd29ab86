//! Engine behaviour over a real segment log in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rampart_engine::{Delta, Engine, EngineConfig, Metrics};
use rampart_history::{HistoryStore, SegmentLog, SegmentLogConfig};
use rampart_model::{Provenance, Report, ReportId, Timestamp};
use rampart_picture::{PictureConfig, Query};

fn open(dir: &std::path::Path, cfg: EngineConfig) -> (Arc<Engine>, Arc<SegmentLog>) {
    let log = SegmentLog::open(SegmentLogConfig::new(dir)).unwrap();
    let store: Arc<dyn HistoryStore> = log.clone();
    (
        Engine::open(cfg, store, Arc::new(Metrics::new())).unwrap(),
        log,
    )
}

fn report(uid: &str, lat: f64, t: i64) -> Report {
    let mut r = Report::new(uid, lat, 10.0, Timestamp::now().plus_millis(t));
    r.provenance = Provenance::new("test", "tester");
    r
}

#[tokio::test]
async fn ingest_is_durable_folded_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _log) = open(dir.path(), EngineConfig::default());
    let mut keyed = report("a", 1.0, 0);
    keyed.id = Some(ReportId::Key("k".into()));
    let receipt = engine
        .ingest(vec![keyed.clone(), report("b", 2.0, 0)])
        .await
        .unwrap();
    assert_eq!((receipt.accepted, receipt.duplicates), (2, 0));
    // Same key again, twice in one batch: stored once in all.
    let receipt = engine.ingest(vec![keyed.clone(), keyed]).await.unwrap();
    assert_eq!((receipt.accepted, receipt.duplicates), (0, 2));
    // A late report is stored but does not regress the picture.
    let receipt = engine
        .ingest(vec![report("a", 50.0, -60_000)])
        .await
        .unwrap();
    assert_eq!((receipt.accepted, receipt.late), (1, 1));
    assert_eq!(engine.picture().get("a").unwrap().lat, 1.0);
    let track = engine
        .history()
        .track(&rampart_history::TrackQuery {
            uid: "a".into(),
            from: Timestamp(0),
            to: Timestamp(i64::MAX),
            limit: 100,
        })
        .unwrap();
    assert_eq!(track.len(), 2);
    assert_eq!(track[0].lat, 50.0, "oldest first");
}

#[tokio::test]
async fn restart_rebuilds_picture_and_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (engine, log) = open(dir.path(), EngineConfig::default());
        let mut r = report("a", 1.0, 0);
        r.id = Some(ReportId::Seq {
            source: "gw".into(),
            seq: 9,
        });
        engine
            .ingest(vec![r, report("b", 2.0, 0), report("b", 3.0, 1000)])
            .await
            .unwrap();
        drop(engine);
        log.close().unwrap();
    }
    let (engine, _log) = open(dir.path(), EngineConfig::default());
    assert_eq!(engine.picture().len(), 2);
    assert_eq!(engine.picture().get("b").unwrap().lat, 3.0);
    let mut again = report("a", 1.0, 0);
    again.id = Some(ReportId::Seq {
        source: "gw".into(),
        seq: 9,
    });
    let receipt = engine.ingest(vec![again]).await.unwrap();
    assert_eq!(receipt.duplicates, 1);
}

#[tokio::test]
async fn a_full_picture_rejects_new_entities_but_updates_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        picture: PictureConfig {
            max_entities: 2,
            ..PictureConfig::default()
        },
        ..EngineConfig::default()
    };
    let (engine, _log) = open(dir.path(), cfg);
    let receipt = engine
        .ingest(vec![
            report("a", 1.0, 0),
            report("b", 1.0, 0),
            report("c", 1.0, 0),
            report("a", 2.0, 10),
        ])
        .await
        .unwrap();
    assert_eq!(receipt.accepted, 3);
    assert_eq!(receipt.rejected.len(), 1);
    assert_eq!(receipt.rejected[0].index, 2);
    assert_eq!(receipt.rejected[0].field, "uid");
    assert_eq!(engine.picture().len(), 2);
}

#[tokio::test]
async fn subscribers_get_a_snapshot_then_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _log) = open(dir.path(), EngineConfig::default());
    engine.ingest(vec![report("a", 1.0, 0)]).await.unwrap();
    let mut sub = engine.subscribe(&Query::default());
    assert_eq!(sub.snapshot.len(), 1);
    engine
        .ingest(vec![report("a", 5.0, 1000), report("n", 7.0, 0)])
        .await
        .unwrap();
    let delta = sub.deltas.recv().await.unwrap();
    let Delta::Updated(updates) = &*delta else {
        panic!("expected an update")
    };
    let mut seen: Vec<(String, Option<(f64, f64)>)> = updates
        .iter()
        .map(|u| (u.entity.uid.to_string(), u.prev))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("a".to_string(), Some((1.0, 10.0))),
            ("n".to_string(), None)
        ]
    );

    // Going stale, then being removed after the grace period, are deltas too.
    let mut fading = report("f", 1.0, 0);
    fading.stale = Some(fading.time.plus_millis(10));
    engine.ingest(vec![fading]).await.unwrap();
    let _ = sub.deltas.recv().await.unwrap();
    let grace = engine.config().picture.stale_grace_ms;
    engine.sweep(Timestamp::now().plus_millis(1_000));
    let Delta::Stale(stale) = &*sub.deltas.recv().await.unwrap() else {
        panic!("expected stale")
    };
    assert_eq!(stale[0].uid, "f");
    engine.sweep(Timestamp::now().plus_millis(2_000 + grace));
    // That sweep also turns "a" and "n" stale (their default stale is 5 minutes).
    loop {
        match &*sub.deltas.recv().await.unwrap() {
            Delta::Removed(removed) => {
                assert_eq!(removed.len(), 1);
                assert_eq!(removed[0], "f");
                break;
            }
            Delta::Stale(stale) => assert!(stale.iter().all(|e| e.uid != "f")),
            Delta::Updated(_) => panic!("no updates expected"),
        }
    }
}

#[tokio::test]
async fn far_future_reports_are_rejected_so_they_cannot_freeze_an_entity() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _log) = open(dir.path(), EngineConfig::default());
    let receipt = engine
        .ingest(vec![report("a", 1.0, 2 * 3_600_000), report("a", 2.0, 0)])
        .await
        .unwrap();
    assert_eq!(receipt.accepted, 1);
    assert_eq!(receipt.rejected.len(), 1);
    assert_eq!(receipt.rejected[0].index, 0);
    assert_eq!(receipt.rejected[0].field, "time");
    assert!(
        receipt.rejected[0]
            .reason
            .contains("ahead of the server clock")
    );
    assert_eq!(engine.picture().get("a").unwrap().lat, 2.0);
}

fn from(uid: &str, lat: f64, t: i64, source: &str) -> Report {
    let mut r = report(uid, lat, t);
    r.provenance = Provenance::new(source, "tester");
    r
}

fn updated_uids(delta: &Delta) -> Vec<String> {
    let Delta::Updated(updates) = delta else {
        panic!("expected an update, got {delta:?}")
    };
    let mut uids: Vec<String> = updates.iter().map(|u| u.entity.uid.to_string()).collect();
    uids.sort();
    uids
}

#[tokio::test]
async fn filtered_subscribers_get_no_deltas_nobody_wants() {
    use rampart_engine::Interest;
    use tokio::sync::broadcast::error::TryRecvError;

    let dir = tempfile::tempdir().unwrap();
    let (engine, _log) = open(dir.path(), EngineConfig::default());
    let no_cot = || Interest {
        exclude_source_prefixes: vec!["cot-".into()],
    };
    let mut bridge = engine.subscribe_with(&Query::default(), no_cot());

    // Only the filtered subscriber listens and the batch is all CoT: nothing is published.
    engine
        .ingest(vec![
            from("c", 1.0, 0, "cot-tcp"),
            from("d", 2.0, 0, "cot-udp"),
        ])
        .await
        .unwrap();
    assert!(matches!(bridge.deltas.try_recv(), Err(TryRecvError::Empty)));

    // A mixed batch: only the wanted entity is cloned into the delta.
    engine
        .ingest(vec![
            from("h", 3.0, 0, "http"),
            from("c", 4.0, 1000, "cot-tcp"),
        ])
        .await
        .unwrap();
    assert_eq!(updated_uids(&bridge.deltas.recv().await.unwrap()), ["h"]);

    // An unfiltered subscriber still gets every update, CoT included, and so does the
    // filtered one (it filters what it reads).
    let mut all = engine.subscribe(&Query::default());
    engine
        .ingest(vec![from("c", 5.0, 2000, "cot-tcp")])
        .await
        .unwrap();
    assert_eq!(updated_uids(&all.deltas.recv().await.unwrap()), ["c"]);
    assert_eq!(updated_uids(&bridge.deltas.recv().await.unwrap()), ["c"]);

    // Once the unfiltered one leaves, CoT batches are skipped again.
    drop(all);
    engine
        .ingest(vec![from("c", 6.0, 3000, "cot-tcp")])
        .await
        .unwrap();
    assert!(matches!(bridge.deltas.try_recv(), Err(TryRecvError::Empty)));

    // Two filtered subscribers: a batch one of them wants is published.
    let mut cot_only = engine.subscribe_with(
        &Query::default(),
        Interest {
            exclude_source_prefixes: vec!["http".into()],
        },
    );
    engine
        .ingest(vec![from("c", 7.0, 4000, "cot-tcp")])
        .await
        .unwrap();
    assert_eq!(updated_uids(&cot_only.deltas.recv().await.unwrap()), ["c"]);
    drop(bridge);
    engine
        .ingest(vec![from("h", 8.0, 5000, "http")])
        .await
        .unwrap();
    assert!(matches!(
        cot_only.deltas.try_recv(),
        Err(TryRecvError::Empty)
    ));
}

/// `try_ingest_now` hands the batch back untouched while the engine is held (here by a
/// reader), and ingests it once the engine is free.
#[tokio::test]
async fn try_ingest_hands_the_batch_back_while_the_engine_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _log) = open(dir.path(), EngineConfig::default());
    let batch = vec![report("t1", 1.0, 0), report("t2", 2.0, 0)];
    let held = engine.picture();
    let back = engine
        .try_ingest_now(batch, Timestamp::now())
        .unwrap()
        .expect_err("ingested while the engine was held");
    drop(held);
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].uid.as_str(), "t1");
    assert!(engine.picture().get("t1").is_none());
    let receipt = engine
        .try_ingest_now(back, Timestamp::now())
        .unwrap()
        .expect("the engine was free");
    assert_eq!(receipt.accepted, 2);
    assert_eq!(engine.picture().get("t2").unwrap().lat, 2.0);
}
