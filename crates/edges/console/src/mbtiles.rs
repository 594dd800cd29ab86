//! MBTiles basemaps (`[console] mbtiles_file`): a SQLite file of tiles, opened read-only at
//! startup, served one tile per request at `GET /api/v1/console/tiles/{z}/{x}/{y}`.
//!
//! MBTiles stores rows in TMS order (row 0 at the south), the browser asks in XYZ order (row 0
//! at the north): `tile_row = 2^z - 1 - y`. The tile format comes from the `metadata` table
//! (`png`, `jpg`, `webp` raster; `pbf` vector, usually gzip-compressed, which is then sent with
//! `Content-Encoding: gzip`). One connection behind a mutex is enough: a tile read is one
//! indexed lookup, far shorter than the HTTP round trip around it.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// Where the node serves MBTiles tiles (an axum route pattern).
pub const MBTILES_ROUTE: &str = "/api/v1/console/tiles/{z}/{x}/{y}";

/// The URL template the console's map layer uses for [`MBTILES_ROUTE`].
pub const MBTILES_URL: &str = "/api/v1/console/tiles/{z}/{x}/{y}";

/// Highest zoom level a tile request may name (2^30 rows still fits an `i64` with room).
pub const MAX_ZOOM: u32 = 30;

/// Most bytes of one metadata value kept (names and attributions are short; a `json` value
/// with a vector tileset's layer list can be long and is not needed).
const MAX_METADATA_VALUE: usize = 4096;

/// Most metadata rows read.
const MAX_METADATA_ROWS: usize = 256;

/// The tile format of an MBTiles file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileFormat {
    /// PNG raster tiles.
    Png,
    /// JPEG raster tiles.
    Jpg,
    /// WebP raster tiles.
    Webp,
    /// Mapbox vector tiles (protobuf).
    Pbf,
}

impl TileFormat {
    fn parse(text: &str) -> Option<TileFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "png" => Some(TileFormat::Png),
            "jpg" | "jpeg" => Some(TileFormat::Jpg),
            "webp" => Some(TileFormat::Webp),
            "pbf" | "mvt" => Some(TileFormat::Pbf),
            _ => None,
        }
    }

    /// Guesses the format of a tile from its first bytes (for files whose metadata lacks it).
    fn sniff(data: &[u8]) -> Option<TileFormat> {
        if data.starts_with(b"\x89PNG") {
            Some(TileFormat::Png)
        } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(TileFormat::Jpg)
        } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
            Some(TileFormat::Webp)
        } else if data.starts_with(&[0x1F, 0x8B]) {
            Some(TileFormat::Pbf) // gzip: vector tiles are stored compressed
        } else {
            None
        }
    }

    /// The name the console reads (`png`, `jpg`, `webp`, `pbf`).
    pub fn name(self) -> &'static str {
        match self {
            TileFormat::Png => "png",
            TileFormat::Jpg => "jpg",
            TileFormat::Webp => "webp",
            TileFormat::Pbf => "pbf",
        }
    }

    /// The HTTP content type of its tiles.
    pub fn content_type(self) -> &'static str {
        match self {
            TileFormat::Png => "image/png",
            TileFormat::Jpg => "image/jpeg",
            TileFormat::Webp => "image/webp",
            TileFormat::Pbf => "application/vnd.mapbox-vector-tile",
        }
    }

    /// Whether the console draws it as a raster layer.
    pub fn is_raster(self) -> bool {
        self != TileFormat::Pbf
    }
}

/// An open MBTiles file.
pub struct MbTiles {
    path: PathBuf,
    conn: Mutex<Connection>,
    format: TileFormat,
    /// `metadata` rows the console shows (name, attribution, zooms, bounds), bounded.
    metadata: Vec<(String, String)>,
}

impl std::fmt::Debug for MbTiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbTiles")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl MbTiles {
    /// Opens `path` read-only and checks that it is an MBTiles file: a SQLite database with a
    /// `metadata` table and a `tiles` table (or view), whose tile format is known (from the
    /// metadata's `format`, else from the first tile). The error names the file and what is
    /// wrong with it.
    pub fn open(path: &Path) -> Result<MbTiles, String> {
        let bad = |what: String| format!("{} is not a usable MBTiles file: {what}", path.display());
        if !path.is_file() {
            return Err(bad("no such file".into()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| bad(e.to_string()))?;
        let metadata = read_metadata(&conn).map_err(|e| bad(format!("metadata table: {e}")))?;
        let first: Option<Vec<u8>> = conn
            .query_row("SELECT tile_data FROM tiles LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| bad(format!("tiles table: {e}")))?;
        let format = match metadata.iter().find(|(k, _)| k == "format") {
            Some((_, v)) => TileFormat::parse(v).ok_or_else(|| {
                bad(format!(
                    "metadata format {v:?} is not one of png, jpg, webp, pbf"
                ))
            })?,
            None => first
                .as_deref()
                .and_then(TileFormat::sniff)
                .ok_or_else(
                    || bad("the metadata has no format and no tile tells it".to_string()),
                )?,
        };
        Ok(MbTiles {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            format,
            metadata,
        })
    }

    /// The tile format.
    pub fn format(&self) -> TileFormat {
        self.format
    }

    /// One metadata value (`name`, `attribution`, `minzoom`, …).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// What the console needs to add the layer (`GET /api/v1/console/config`'s `mbtiles`).
    pub fn to_json(&self) -> serde_json::Value {
        let zoom = |k: &str| self.meta(k).and_then(|v| v.trim().parse::<u8>().ok());
        let bounds: Option<Vec<f64>> = self.meta("bounds").and_then(|b| {
            let v: Vec<f64> = b.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            (v.len() == 4).then_some(v)
        });
        serde_json::json!({
            "url": MBTILES_URL,
            "format": self.format.name(),
            "raster": self.format.is_raster(),
            "name": self.meta("name"),
            "attribution": self.meta("attribution"),
            "minzoom": zoom("minzoom"),
            "maxzoom": zoom("maxzoom"),
            "bounds": bounds,
        })
    }

    /// The tile at XYZ `z/x/y` (`None` when the file has none there). Blocking: call it off
    /// the async runtime.
    pub fn tile(&self, z: u32, x: u32, y: u32) -> Result<Option<Vec<u8>>, String> {
        if z > MAX_ZOOM {
            return Ok(None);
        }
        let n: i64 = 1 << z;
        let (x, y) = (i64::from(x), i64::from(y));
        if x >= n || y >= n {
            return Ok(None);
        }
        let row = n - 1 - y; // TMS
        let conn = self.conn.lock();
        conn.query_row(
            "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
            [i64::from(z), x, row],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .optional()
        .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

fn read_metadata(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT name, value FROM metadata")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        if out.len() >= MAX_METADATA_ROWS {
            break;
        }
        let (Ok(k), Ok(v)) = (r.get::<_, String>(0), r.get::<_, String>(1)) else {
            continue; // a non-text value: not one the console uses
        };
        if v.len() <= MAX_METADATA_VALUE {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Parses one `{z}`, `{x}` or `{y}` path segment; `{y}` may carry an extension (`3.png`).
fn coord(text: &str) -> Option<u32> {
    let digits = text.split_once('.').map_or(text, |(d, _)| d);
    digits.parse().ok()
}

/// Answers `GET /api/v1/console/tiles/{z}/{x}/{y}` from `tiles` (if configured).
pub async fn serve_tile(
    tiles: Option<std::sync::Arc<MbTiles>>,
    z: &str,
    x: &str,
    y: &str,
) -> Response {
    let text = |status: StatusCode, msg: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg,
        )
            .into_response()
    };
    let Some(tiles) = tiles else {
        return text(
            StatusCode::NOT_FOUND,
            "no MBTiles file is configured ([console] mbtiles_file)".into(),
        );
    };
    let (Some(z), Some(x), Some(y)) = (coord(z), coord(x), coord(y)) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("tile {z}/{x}/{y}: z, x and y must be non-negative integers"),
        );
    };
    let format = tiles.format();
    let found = tokio::task::spawn_blocking(move || tiles.tile(z, x, y)).await;
    let data = match found {
        Ok(Ok(Some(d))) => d,
        Ok(Ok(None)) => return text(StatusCode::NOT_FOUND, format!("no tile {z}/{x}/{y}")),
        Ok(Err(e)) => return text(StatusCode::SERVICE_UNAVAILABLE, e),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if format == TileFormat::Pbf && data.starts_with(&[0x1F, 0x8B]) {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // The file may be replaced by the operator; a short cache still spares repeated pans.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    (h, data).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot really";

    fn make(path: &Path, format: Option<&str>) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(
            "CREATE TABLE metadata (name TEXT, value TEXT);
             CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
             INSERT INTO metadata VALUES ('name', 'test'), ('minzoom', '0'), ('maxzoom', '2'), ('bounds', '-180,-85,180,85');",
        )
        .unwrap();
        if let Some(f) = format {
            c.execute("INSERT INTO metadata VALUES ('format', ?1)", [f])
                .unwrap();
        }
        // XYZ 2/1/0 is TMS row 3.
        c.execute(
            "INSERT INTO tiles VALUES (2, 1, 3, ?1)",
            [rusqlite::types::Value::Blob(PNG.to_vec())],
        )
        .unwrap();
    }

    #[test]
    fn tiles_are_read_with_the_tms_flip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.mbtiles");
        make(&p, Some("png"));
        let m = MbTiles::open(&p).unwrap();
        assert_eq!(m.format(), TileFormat::Png);
        assert_eq!(m.tile(2, 1, 0).unwrap().as_deref(), Some(PNG));
        assert_eq!(m.tile(2, 1, 3).unwrap(), None);
        assert_eq!(m.tile(2, 9, 0).unwrap(), None);
        assert_eq!(m.tile(40, 0, 0).unwrap(), None);
        let j = m.to_json();
        assert_eq!(j["format"], "png");
        assert_eq!(j["raster"], true);
        assert_eq!(j["maxzoom"], 2);
        assert_eq!(j["bounds"][0], -180.0);
    }

    #[test]
    fn the_format_is_sniffed_when_the_metadata_lacks_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.mbtiles");
        make(&p, None);
        assert_eq!(MbTiles::open(&p).unwrap().format(), TileFormat::Png);
        let q = dir.path().join("u.mbtiles");
        make(&q, Some("tiff"));
        let e = MbTiles::open(&q).unwrap_err();
        assert!(e.contains("tiff") && e.contains("u.mbtiles"), "{e}");
    }

    #[test]
    fn other_files_are_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.mbtiles");
        std::fs::write(
            &p,
            b"this is not a database, just some text .................",
        )
        .unwrap();
        let e = MbTiles::open(&p).unwrap_err();
        assert!(
            e.contains("junk.mbtiles") && e.contains("not a usable MBTiles file"),
            "{e}"
        );
        let e = MbTiles::open(&dir.path().join("missing.mbtiles")).unwrap_err();
        assert!(e.contains("no such file"), "{e}");
        // A SQLite database without the MBTiles tables.
        let q = dir.path().join("other.sqlite");
        Connection::open(&q)
            .unwrap()
            .execute_batch("CREATE TABLE t (a INTEGER);")
            .unwrap();
        let e = MbTiles::open(&q).unwrap_err();
        assert!(e.contains("metadata table"), "{e}");
    }

    #[test]
    fn coordinates_are_parsed() {
        assert_eq!(coord("3"), Some(3));
        assert_eq!(coord("3.png"), Some(3));
        assert_eq!(coord("-1"), None);
        assert_eq!(coord("x"), None);
    }
}
