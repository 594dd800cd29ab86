//! Offline basemaps served by the node: an MBTiles file tile by tile
//! (`/api/v1/console/tiles/{z}/{x}/{y}`, with the TMS row flip and the content type from its
//! metadata), a file that is not MBTiles refused at startup, and, in headless Chromium with
//! the outside network blocked, the console's map fetching its tiles from the node for both a
//! PMTiles and an MBTiles file (`web/tests/tiles.mjs`). Both files are written here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Node;
use serde_json::Value;

/// A 256×256 solid green PNG.
const PNG: &[u8] = b"\
\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x01\x00\x00\x00\x01\x00\x08\x02\x00\x00\
    \x00\xd3\x10\x3f\x31\x00\x00\x02\x00\x49\x44\x41\x54\x78\xda\xed\xd3\x31\x0d\x00\x00\x08\x04\xb1\x57\xc4\x80\x3f\
    \xbc\x33\xa3\x81\x26\x55\x70\xc9\xa5\xa6\xe1\xad\x48\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\
    \x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\
    \x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\
    \x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x0c\xa0\x02\
    \x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\
    \x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\
    \x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\
    \x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\
    \x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\
    \x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\
    \x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x80\x01\x54\xc0\x00\x60\
    \x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\
    \x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\
    \x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\
    \x03\x80\x01\xc0\x00\x60\x00\x30\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\
    \x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\
    \x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\
    \x06\x00\x03\x80\x01\xc0\x00\x60\x00\x30\x00\x18\x00\x0c\x00\xd7\x02\x1e\x3d\x0c\xf4\x06\x87\xbd\x0f\x00\x00\x00\
    \x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// Highest zoom of the test files.
const MAX_ZOOM: u8 = 3;

/// An MBTiles file holding `PNG` at every tile of zooms 0..=MAX_ZOOM, or (`only`) at one.
fn write_mbtiles(path: &Path, only: Option<(u32, u32, u32)>) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
         CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
         INSERT INTO metadata VALUES ('name', 'e2e theatre'), ('format', 'png'), ('minzoom', '0'),
           ('maxzoom', '3'), ('bounds', '-180,-85.05,180,85.05'), ('attribution', 'e2e tiles');",
    )
    .unwrap();
    let put = |z: u32, x: u32, tms_row: u32| {
        c.execute(
            "INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![z, x, tms_row, PNG],
        )
        .unwrap();
    };
    match only {
        Some((z, x, tms_row)) => put(z, x, tms_row),
        None => {
            for z in 0..=u32::from(MAX_ZOOM) {
                for x in 0..1 << z {
                    for y in 0..1 << z {
                        put(z, x, y);
                    }
                }
            }
        }
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A PMTiles v3 file (127-byte header, root directory, `{}` metadata, one tile) in which one
/// run-length entry maps every tile of zooms 0..=MAX_ZOOM to `PNG`. No compression.
fn pmtiles() -> Vec<u8> {
    let tiles: u64 = (0..=MAX_ZOOM).map(|z| 1u64 << (2 * z)).sum();
    let mut dir = Vec::new();
    varint(&mut dir, 1); // entries
    varint(&mut dir, 0); // tile id (delta)
    varint(&mut dir, tiles); // run length
    varint(&mut dir, PNG.len() as u64); // length
    varint(&mut dir, 1); // offset + 1
    let meta = b"{}";
    let root = 127u64;
    let meta_at = root + dir.len() as u64;
    let data_at = meta_at + meta.len() as u64;
    let mut h = Vec::with_capacity(127);
    h.extend_from_slice(b"PMTiles");
    h.push(3);
    for v in [
        root,
        dir.len() as u64,
        meta_at,
        meta.len() as u64,
        data_at, // leaf directories: none
        0,
        data_at,
        PNG.len() as u64,
        tiles, // addressed tiles
        1,     // tile entries
        1,     // tile contents
    ] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.extend_from_slice(&[1, 1, 1, 2, 0, MAX_ZOOM]); // clustered, no compression ×2, PNG, zooms
    for v in [-1_800_000_000i32, -850_000_000, 1_800_000_000, 850_000_000] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h.push(0); // centre zoom
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    assert_eq!(h.len(), 127);
    [h, dir, meta.to_vec(), PNG.to_vec()].concat()
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let cfg = dir.join("rampart.toml");
    std::fs::write(&cfg, body).unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread")]
async fn mbtiles_tiles_are_served_with_the_tms_flip() {
    let dir = tempfile::tempdir().unwrap();
    let mb = dir.path().join("one.mbtiles");
    // XYZ 2/1/0 is TMS row 3 at zoom 2.
    write_mbtiles(&mb, Some((2, 1, 3)));
    let cfg = write_config(
        dir.path(),
        &format!("[console]\nmbtiles_file = {:?}\n", mb.to_str().unwrap()),
    );
    let node = Node::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let c = reqwest::Client::new();
    let r = c
        .get(node.url("/api/v1/console/tiles/2/1/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);
    // The same tile with an extension; then tiles the file does not hold (the unflipped row,
    // another zoom, outside the zoom's grid) and coordinates that are not numbers.
    let status = async |p: &str| c.get(node.url(p)).send().await.unwrap().status().as_u16();
    assert_eq!(status("/api/v1/console/tiles/2/1/0.png").await, 200);
    assert_eq!(status("/api/v1/console/tiles/2/1/3").await, 404);
    assert_eq!(status("/api/v1/console/tiles/3/1/0").await, 404);
    assert_eq!(status("/api/v1/console/tiles/2/9/0").await, 404);
    assert_eq!(status("/api/v1/console/tiles/2/x/0").await, 400);
    let v: Value = c
        .get(node.url("/api/v1/console/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["mbtiles"]["format"], "png", "{v}");
    assert_eq!(v["mbtiles"]["raster"], true);
    assert_eq!(v["mbtiles"]["url"], "/api/v1/console/tiles/{z}/{x}/{y}");
    assert_eq!(v["mbtiles"]["maxzoom"], 3);
    let doc: Value = c
        .get(node.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/console/tiles/{z}/{x}/{y}"].is_object());
}

#[test]
fn a_file_that_is_not_mbtiles_stops_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("theatre.mbtiles");
    std::fs::write(
        &junk,
        b"PK\x03\x04 this is a zip file, not SQLite, whatever its name says",
    )
    .unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("[console]\nmbtiles_file = {:?}\n", junk.to_str().unwrap()),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--listen", "http=127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mbtiles_file")
            && stderr.contains("theatre.mbtiles")
            && stderr.contains("not a usable MBTiles file"),
        "{stderr}"
    );
}

/// In headless Chromium, offline: the map's PMTiles and MBTiles layers fetch their tiles from
/// the node (requests counted by the script) and nothing leaves it.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_map_draws_pmtiles_and_mbtiles_from_the_node() {
    let browser = common::Browser::setup();
    let dir = tempfile::tempdir().unwrap();
    let mb = dir.path().join("theatre.mbtiles");
    write_mbtiles(&mb, None);
    let pm = dir.path().join("theatre.pmtiles");
    std::fs::write(&pm, pmtiles()).unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[console]\nmbtiles_file = {:?}\npmtiles_file = {:?}\n",
            mb.to_str().unwrap(),
            pm.to_str().unwrap()
        ),
    );
    let node = Node::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let shots = browser.web.join("../target/console-screenshots");
    browser
        .run(
            "tiles.mjs",
            vec![node.base.clone(), shots.display().to_string()],
            "tiles checks passed",
        )
        .await;
}
