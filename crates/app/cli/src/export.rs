//! `rampart export`: the live picture or a track from a data directory, in GeoJSON, KML, CSV,
//! CoT XML or GPX, without a running node (for a running node, use the API's `format=`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use rampart_engine::{Engine, Metrics};
use rampart_history::{HistoryStore, SegmentLog, TrackQuery};
use rampart_http::formats::{self, Format};
use rampart_model::Timestamp;
use rampart_picture::{BBox, Query};

use crate::config::Config;

/// What to export.
pub struct ExportJob {
    /// `geojson`, `kml`, `csv`, `cot` (picture) or `gpx` (track).
    pub format: String,
    /// Export this entity's track instead of the live picture.
    pub track: Option<String>,
    /// Track range start.
    pub from: Option<String>,
    /// Track range end.
    pub to: Option<String>,
    /// Picture filter: bounding box `minLon,minLat,maxLon,maxLat`.
    pub bbox: Option<String>,
    /// Picture filter: CoT type prefix.
    pub type_prefix: Option<String>,
    /// Most entities or points.
    pub limit: usize,
    /// Output file; stdout when absent.
    pub out: Option<PathBuf>,
}

/// Runs an export against the data directory of `cfg`.
pub fn run(cfg: Config, job: ExportJob) -> anyhow::Result<()> {
    let Some(format) = Format::from_name(&job.format) else {
        bail!(
            "--format {:?}: choose geojson, kml, csv, cot or gpx",
            job.format
        );
    };
    let history = SegmentLog::open(cfg.history_config()).with_context(|| {
        format!(
            "opening history under {} (if a node is running there, ask it instead: GET /api/v1/entities?format={})",
            cfg.data.display(),
            job.format
        )
    })?;
    let store: Arc<dyn HistoryStore> = history;
    let bytes = match &job.track {
        Some(uid) => {
            if !formats::TRACK_FORMATS.contains(&format) {
                bail!(
                    "--format {}: a track exports as geojson, gpx, kml or csv",
                    job.format
                );
            }
            let time = |t: &Option<String>, default| -> anyhow::Result<Timestamp> {
                t.as_deref()
                    .map(|t| Timestamp::parse_rfc3339(t).map_err(anyhow::Error::from))
                    .unwrap_or(Ok(default))
            };
            let q = TrackQuery {
                uid: uid.clone(),
                from: time(&job.from, Timestamp(i64::MIN)).context("--from")?,
                to: time(&job.to, Timestamp(i64::MAX)).context("--to")?,
                limit: job.limit,
            };
            let points = store.track(&q)?;
            formats::track_bytes(format, uid, &points)
        }
        None => {
            if !formats::ENTITY_FORMATS.contains(&format) {
                bail!(
                    "--format {}: the picture exports as geojson, kml, csv or cot",
                    job.format
                );
            }
            let engine = Engine::open(cfg.engine_config()?, store, Arc::new(Metrics::new()))?;
            let q = Query {
                bbox: job
                    .bbox
                    .as_deref()
                    .map(BBox::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--bbox: {e}"))?,
                type_prefix: job.type_prefix.clone(),
                limit: Some(job.limit),
                ..Query::default()
            };
            let entities: Vec<_> = engine.picture().query(&q).into_iter().cloned().collect();
            formats::entities_bytes(format, &entities)
        }
    };
    match &job.out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}
