//! Acknowledged means durable: every report acknowledged before a `kill -9` is there after
//! a restart, in the live picture and in history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Node, time};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_reports_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let base = node.base.clone();
    let stop = Arc::new(AtomicBool::new(false));

    // Four writers post continuously; each records what was acknowledged.
    let mut writers = Vec::new();
    for w in 0..4 {
        let base = base.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut acked: Vec<(String, usize)> = Vec::new();
            let mut seq = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Value> = (0..50)
                    .map(|i| {
                        json!({"uid": format!("w{w}-e{i}"), "lat": 10.0 + seq as f64 * 1e-4, "lon": 20.0,
                               "time": time(seq as i64), "attributes": {"seq": seq}})
                    })
                    .collect();
                match c.post(format!("{base}/api/v1/reports")).json(&batch).send().await {
                    Ok(r) if r.status() == 200 => {
                        for i in 0..50 {
                            acked.push((format!("w{w}-e{i}"), seq));
                        }
                    }
                    // The server died mid-request: not acknowledged, so no promise.
                    _ => break,
                }
                seq += 1;
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for w in writers {
        for (uid, seq) in w.await.unwrap() {
            total += 1;
            let e = acked.entry(uid).or_insert(0);
            *e = (*e).max(seq);
        }
    }
    assert!(total > 0, "nothing was acknowledged before the kill");

    let node = Node::start(dir.path(), &[]);
    let c = reqwest::Client::new();
    for (uid, max_seq) in &acked {
        let e: Value = c
            .get(node.url(&format!("/api/v1/entities/{uid}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let seq = e["properties"]["attributes"]["seq"]
            .as_f64()
            .unwrap_or(-1.0);
        assert!(
            seq >= *max_seq as f64,
            "{uid}: live state seq {seq} < acknowledged {max_seq}"
        );
        let track: Value = c
            .get(node.url(&format!("/api/v1/entities/{uid}/track?limit=200000")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let seqs: std::collections::HashSet<i64> = track["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["properties"]["attributes"]["seq"].as_f64().unwrap() as i64)
            .collect();
        for s in 0..=*max_seq as i64 {
            assert!(
                seqs.contains(&s),
                "{uid}: acknowledged report seq {s} missing from history"
            );
        }
    }
    eprintln!(
        "{total} acknowledged reports over {} entities all survived kill -9",
        acked.len()
    );
}
