//! The operator console: the web assets of `web/` (built by esbuild, see `build.rs`) embedded
//! in the binary and served at `/`, plus the `[console]` settings the page reads.
//!
//! Hashed files under `/assets/` are cached for a year (their names change with their
//! content); `/` and other files are revalidated with an `ETag`. Text assets are stored twice,
//! plain and gzip-compressed at build time, so compression costs nothing per request.
//!
//! An operator's own basemap can be a raster PMTiles file on the node's disk: [`pmtiles`]
//! serves it with HTTP range requests, which is how the browser's PMTiles reader fetches it.
//! Or an MBTiles file (raster or vector), opened read-only at startup and served tile by tile
//! ([`mbtiles`]).

pub mod mbtiles;

pub use mbtiles::{MBTILES_ROUTE, MbTiles, TileFormat};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file of `web/dist`.
struct Asset {
    /// Path relative to `web/dist`, with `/` separators.
    path: &'static str,
    body: &'static [u8],
    /// The same bytes, gzip-compressed at build time.
    gzip: Option<&'static [u8]>,
    /// A content hash, quoted as HTTP wants it.
    etag: &'static str,
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Shown when the binary was built without npm: the API works, the console does not.
const FALLBACK: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rampart: console not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em}code{background:#eee;padding:0 .3em}</style>
</head><body>
<h1>The operator console was not built into this binary</h1>
<p>npm was not available (or the web build failed) when this binary was compiled, so only a
placeholder is embedded. The API works: <a href="/api/v1/entities">/api/v1/entities</a>,
<code>/api/v1/stream</code> (WebSocket), <a href="/metrics">/metrics</a>,
<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
<p>To build the console, install Node.js 18+ with npm, then rebuild:
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, then <code>cargo build --release</code>.</p>
</body></html>
"#;

/// Settings of the console, from the `[console]` section of the configuration.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// An XYZ raster tile URL on the operator's own network, e.g.
    /// `http://tiles.local/osm/{z}/{x}/{y}.png`. Empty: only the built-in Natural Earth basemap.
    pub tile_url: String,
    /// Attribution shown for `tile_url`.
    pub tile_attribution: String,
    /// Highest zoom level `tile_url` serves.
    pub tile_max_zoom: u8,
    /// A raster PMTiles file on this node (PNG, JPEG or WebP tiles) served to the console as
    /// its basemap at `/api/v1/console/tiles.pmtiles`. Empty: none. MBTiles files convert with
    /// `pmtiles convert in.mbtiles out.pmtiles`.
    pub pmtiles_file: String,
    /// An MBTiles file on this node (PNG, JPEG or WebP raster, or PBF vector tiles, per its
    /// `metadata` table) served at `/api/v1/console/tiles/{z}/{x}/{y}`. Empty: none. Opened
    /// read-only at startup; a file that is not MBTiles stops the node with an error.
    pub mbtiles_file: String,
    /// Seconds of history the playback panel proposes by default.
    pub playback_default_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            tile_url: String::new(),
            tile_attribution: String::new(),
            tile_max_zoom: 18,
            pmtiles_file: String::new(),
            mbtiles_file: String::new(),
            playback_default_secs: 600,
        }
    }
}

impl ConsoleConfig {
    /// Opens `mbtiles_file` when one is configured; an error names the file and what is wrong
    /// with it (the node refuses to start rather than serve a broken basemap).
    pub fn open_mbtiles(&self) -> Result<Option<std::sync::Arc<MbTiles>>, String> {
        if self.mbtiles_file.is_empty() {
            return Ok(None);
        }
        MbTiles::open(std::path::Path::new(&self.mbtiles_file))
            .map(|m| Some(std::sync::Arc::new(m)))
    }

    /// The settings as the page reads them from `GET /api/v1/console/config`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tile_url": self.tile_url,
            "tile_attribution": self.tile_attribution,
            "tile_max_zoom": self.tile_max_zoom,
            "pmtiles_url": (!self.pmtiles_file.is_empty()).then_some(PMTILES_PATH),
            // Filled in by the HTTP edge from the opened file (format, zooms, attribution).
            "mbtiles": serde_json::Value::Null,
            "playback_default_secs": self.playback_default_secs,
            "built": built(),
        })
    }
}

/// Where the node serves `pmtiles_file`.
pub const PMTILES_PATH: &str = "/api/v1/console/tiles.pmtiles";

/// Most bytes one range request of the PMTiles file may ask for (a directory or a tile is far
/// smaller); larger ranges are refused with 416.
pub const MAX_RANGE_BYTES: u64 = 16 * 1024 * 1024;

/// Parses a single `bytes=` range against a file of `len` bytes: `(start, length)`.
fn parse_range(text: &str, len: u64) -> Result<(u64, u64), String> {
    let spec = text
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| format!("range {text:?} is not bytes=START-END"))?;
    if spec.contains(',') {
        return Err("multiple ranges are not supported".into());
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| format!("range {text:?} is not bytes=START-END"))?;
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("range {text:?}: {t:?} is not a number"))
    };
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            let suffix = num(b)?.min(len);
            (len - suffix, len.saturating_sub(1))
        }
        (false, true) => (num(a)?, len.saturating_sub(1)),
        (false, false) => (num(a)?, num(b)?.min(len.saturating_sub(1))),
        (true, true) => return Err(format!("range {text:?} is empty")),
    };
    if len == 0 || start >= len || end < start {
        return Err(format!("range {text:?} is outside the file ({len} bytes)"));
    }
    let n = end - start + 1;
    if n > MAX_RANGE_BYTES {
        return Err(format!(
            "range {text:?} asks for {n} bytes; at most {MAX_RANGE_BYTES} per request"
        ));
    }
    Ok((start, n))
}

/// Serves `cfg.pmtiles_file` with single-range requests (what PMTiles readers send).
pub async fn pmtiles(cfg: &ConsoleConfig, headers: &HeaderMap) -> Response {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let text = |status: StatusCode, msg: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg,
        )
            .into_response()
    };
    if cfg.pmtiles_file.is_empty() {
        return text(
            StatusCode::NOT_FOUND,
            "no PMTiles file is configured ([console] pmtiles_file)".into(),
        );
    }
    let opened = async {
        let f = tokio::fs::File::open(&cfg.pmtiles_file).await?;
        let meta = f.metadata().await?;
        Ok::<_, std::io::Error>((f, meta))
    }
    .await;
    let (mut file, meta) = match opened {
        Ok(x) => x,
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the PMTiles file cannot be read: {e}"),
            );
        }
    };
    let len = meta.len();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let etag = format!("\"{len:x}-{mtime:x}\"");
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| parse_range(r, len));
    let (start, n, status) = match range {
        Some(Ok((start, n))) => (start, n, StatusCode::PARTIAL_CONTENT),
        Some(Err(e)) => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, e);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        None if len <= MAX_RANGE_BYTES => (0, len, StatusCode::OK),
        None => {
            return text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the file has {len} bytes; ask for ranges of at most {MAX_RANGE_BYTES}"),
            );
        }
    };
    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
    let read = async {
        file.seek(std::io::SeekFrom::Start(start)).await?;
        file.read_exact(&mut buf).await
    }
    .await;
    if let Err(e) = read {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("reading the PMTiles file: {e}"),
        );
    }
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.pmtiles"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + n - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    (status, h, buf).into_response()
}

/// True when the real console is embedded (false: the fallback page).
pub fn built() -> bool {
    ASSETS.iter().any(|a| a.path == "index.html")
}

/// The console's routes: `/`, `/favicon.svg` and `/assets/*`. Merge it into the API router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/favicon.svg", get(favicon))
        .route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    respond("index.html", &headers)
}

async fn favicon(headers: HeaderMap) -> Response {
    respond("favicon.svg", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    respond(&format!("assets/{path}"), &headers)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Answers a request for the embedded file `path`.
fn respond(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        if path == "index.html" {
            return (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                FALLBACK,
            )
                .into_response();
        }
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no console asset {path:?}"),
        )
            .into_response();
    };
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let etag = HeaderValue::from_static(asset.etag);
    let mut common = HeaderMap::new();
    common.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    common.insert(header::ETAG, etag.clone());
    common.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == asset.etag || t.trim() == "*");
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    common.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    match asset.gzip {
        Some(gz) if accepts_gzip(headers) => {
            common.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (common, gz).into_response()
        }
        _ => (common, asset.body).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use http_body_util::BodyExt;

    async fn body(r: Response) -> Vec<u8> {
        r.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn index_is_html_and_revalidated() {
        let r = respond("index.html", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        let text = String::from_utf8(body(r).await).unwrap();
        assert!(text.contains("<html"));
        if built() {
            // The built page loads its hashed bundle, which is cached for good.
            let js = text
                .split('"')
                .find(|s| s.starts_with("assets/") && s.ends_with(".js"))
                .expect("the page names its script");
            let r = respond(js, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK);
            assert!(
                r.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/javascript")
            );
            assert!(
                r.headers()[header::CACHE_CONTROL]
                    .to_str()
                    .unwrap()
                    .contains("immutable")
            );
        } else {
            assert!(text.contains("npm ci"));
        }
    }

    #[tokio::test]
    async fn gzip_and_etag_are_honoured() {
        let Some(a) = ASSETS.iter().find(|a| a.gzip.is_some()) else {
            return; // fallback build: nothing compressed to check
        };
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        let r = respond(a.path, &h);
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        let gz = body(r).await;
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        let r = respond(a.path, &h);
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(r).await, a.body);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static(a.etag));
        assert_eq!(respond(a.path, &h).status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn ranges_are_parsed_and_bounded() {
        assert_eq!(parse_range("bytes=0-99", 1000), Ok((0, 100)));
        assert_eq!(parse_range("bytes=900-", 1000), Ok((900, 100)));
        assert_eq!(parse_range("bytes=-10", 1000), Ok((990, 10)));
        assert_eq!(parse_range("bytes=990-5000", 1000), Ok((990, 10)));
        assert!(parse_range("bytes=1000-1001", 1000).is_err());
        assert!(parse_range("bytes=5-1", 1000).is_err());
        assert!(parse_range("bytes=0-1,5-6", 1000).is_err());
        assert!(parse_range("items=0-1", 1000).is_err());
        assert!(parse_range(&format!("bytes=0-{MAX_RANGE_BYTES}"), u64::MAX).is_err());
    }

    #[tokio::test]
    async fn pmtiles_file_is_served_by_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pmtiles");
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        std::fs::write(&path, &data).unwrap();
        let cfg = ConsoleConfig {
            pmtiles_file: path.to_string_lossy().into_owned(),
            ..ConsoleConfig::default()
        };
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=100-199"));
        let r = pmtiles(&cfg, &h).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 100-199/5000");
        assert!(r.headers().contains_key(header::ETAG));
        assert_eq!(body(r).await, &data[100..200]);
        h.insert(header::RANGE, HeaderValue::from_static("bytes=6000-"));
        let r = pmtiles(&cfg, &h).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes */5000");
        let r = pmtiles(&ConsoleConfig::default(), &HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(cfg.to_json()["pmtiles_url"], PMTILES_PATH);
    }

    #[test]
    fn unknown_assets_are_404() {
        assert_eq!(
            respond("assets/nope.js", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
