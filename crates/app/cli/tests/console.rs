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
use std::process::Command;
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
    let web = root.join("web");
    let chromium = std::env::var("RAMPART_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: install it (apt-get install -y chromium, as .ci/run does) or set RAMPART_CHROMIUM"
    );
    if !web.join("node_modules/playwright-core").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&web)
            .status()
            .expect("npm is needed for the console test (install Node.js 18+ with npm)")
            .success();
        assert!(ok, "npm ci in web/ failed");
    }

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
    let base = node.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(web.join("tests/e2e.mjs"))
            .arg(&base)
            .arg(&shots)
            .env("CHROMIUM", &chromium)
            .output()
            .expect("node is needed for the console test")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the console end-to-end script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
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
