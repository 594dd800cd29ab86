//! The operator console end to end: the real `rampart demo` serves the embedded console, and
//! `web/tests/e2e.mjs` drives it in headless Chromium (Debian's `/usr/bin/chromium` through
//! playwright-core) with the outside network blocked. The script checks that the page loads
//! with nothing fetched from outside, symbols appear for the seeded entities, a click opens the
//! details, a live report moves a symbol, history playback shows an earlier position and the
//! stream reconnects; any browser console error fails it. Screenshots of every run are kept in
//! `target/console-screenshots/`.
//!
//! Needs Node.js (npm installs `web/node_modules` through the console's build script, or here)
//! and Chromium (`.ci/run` installs it; `RAMPART_CHROMIUM` points elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Node;
use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../..")
        .canonicalize()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_works_in_headless_chromium_offline() {
    let root = workspace_root();
    let browser = common::Browser::setup();

    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_cmd("demo", dir.path(), &["--entities", "300"]);
    let c = reqwest::Client::new();
    // The embedded console, not the fallback page, is what `/` serves.
    let page = c.get(node.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<title>Rampart console</title>"),
        "the binary embeds the fallback page, not the console: was npm available when it was built?\n{html}"
    );
    let full = common::eventually(Duration::from_secs(20), async || {
        let v: Value = c
            .get(node.url("/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["entities"].as_u64().unwrap_or(0) >= 300
    })
    .await;
    assert!(full, "the demo never seeded 300 entities");

    let shots = root.join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    browser
        .run(
            "e2e.mjs",
            vec![node.base.clone(), shots.display().to_string()],
            "all checks passed",
        )
        .await;
    for shot in [
        "01-symbols",
        "02-details",
        "03-moved",
        "04-playback",
        "05-day",
        "06-night",
    ] {
        let p = root.join(format!("target/console-screenshots/{shot}.png"));
        assert!(p.exists(), "no screenshot {}", p.display());
    }
}

/// The playback API: positions over a period, oldest first; bad periods named; the area and
/// `[console]` settings honoured.
#[tokio::test(flavor = "multi_thread")]
async fn history_and_console_config_apis() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        "[console]\ntile_url = \"http://tiles.local/{z}/{x}/{y}.png\"\nplayback_default_secs = 120\n\n[http]\nmax_history_points = 2\n",
    )
    .unwrap();
    let node = Node::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let c = reqwest::Client::new();
    let reports: Vec<Value> = (0..3)
        .map(|i| {
            serde_json::json!({"uid": "hist-1", "type": "a-f-G", "callsign": "H1",
                "lat": 50.0 + f64::from(i) * 0.01, "lon": 8.0, "time": common::time(-3000 + i64::from(i) * 1000)})
        })
        .collect();
    let r = c
        .post(node.url("/api/v1/reports"))
        .json(&reports)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let from = common::time(-60_000);
    let to = common::time(60_000);
    let get = async |q: &str| {
        let r = c
            .get(node.url(&format!("/api/v1/history?{q}")))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (status, v) = get(&format!("from={from}&to={to}&bbox=7,49,9,51")).await;
    assert_eq!(status, 200, "{v}");
    let e = &v["entities"][0];
    assert_eq!(e["uid"], "hist-1");
    assert_eq!(e["sidc"], "SFGP-----------");
    // max_history_points = 2: the newest two, oldest first, flagged as truncated.
    let pts = e["points"].as_array().unwrap();
    assert_eq!(pts.len(), 2, "{v}");
    assert!(pts[0][0].as_i64() < pts[1][0].as_i64());
    assert!((pts[1][1].as_f64().unwrap() - 50.02).abs() < 1e-6);
    assert_eq!(v["truncated"], true);
    let (_, v) = get(&format!("from={from}&to={to}&bbox=0,0,1,1")).await;
    assert_eq!(v["entities"].as_array().unwrap().len(), 0);
    let (status, v) = get(&format!("from={from}")).await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("to"), "{v}");
    let (status, _) = get(&format!("from={to}&to={from}")).await;
    assert_eq!(status, 400);

    let v: Value = c
        .get(node.url("/api/v1/console/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tile_url"], "http://tiles.local/{z}/{x}/{y}.png");
    assert_eq!(v["playback_default_secs"], 120);
    assert_eq!(v["pmtiles_url"], Value::Null);
}
