//! Starting the rules engine of a node: open it under `DATA/rules/`, attach it to the engine
//! (after the picture was rebuilt from history, before any listener takes reports), start
//! webhook delivery, and deliver alerts to TAK clients when the TAK edge runs.

use std::sync::Arc;

use anyhow::Context;
use rampart_engine::Engine;
use rampart_rules::RulesService;

use crate::config::Config;

/// Opens and attaches the rules engine; alerts are then on `RulesService::subscribe`.
pub fn start(cfg: &Config, engine: &Arc<Engine>) -> anyhow::Result<Arc<RulesService>> {
    let dir = cfg.data.join("rules");
    let rules = RulesService::open(cfg.rules.clone(), Some(dir.clone()), engine.metrics())
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("opening the rules engine under {}", dir.display()))?;
    rules
        .attach(engine)
        .map_err(anyhow::Error::msg)
        .context("attaching the rules engine")?;
    let _ = rules.spawn_webhooks();
    Ok(rules)
}

/// Starts spoofing and abuse detection when `[guard]` enables it (by default, under
/// `--secure`): the guard screens every report the engine takes and raises its detections in
/// `rules`' alert stream. Call it before any listener takes reports.
pub fn start_guard(
    cfg: &Config,
    engine: &Arc<Engine>,
    rules: &Arc<RulesService>,
) -> anyhow::Result<Option<Arc<rampart_guard::GuardScreen>>> {
    if !cfg.guard.enabled.unwrap_or(cfg.security.secure) {
        return Ok(None);
    }
    let guard = rampart_guard::GuardScreen::new(
        cfg.guard.clone(),
        Arc::clone(&engine.config().labels),
        engine.metrics(),
    )
    .map_err(anyhow::Error::msg)
    .context("[guard]")?;
    guard.set_alerts(rules.clone());
    guard
        .attach(engine)
        .map_err(anyhow::Error::msg)
        .context("attaching the guard")?;
    Ok(Some(guard))
}

/// Drawings queued for the rules engine before TAK events are dropped from the hook.
const DRAWING_QUEUE: usize = 256;

/// Connects the rules engine and the TAK edge: alerts go as CoT to every TAK client cleared
/// for the alert's label, and drawings TAK clients share (`u-d-f`, `u-d-r`, `u-d-c-c`) become
/// geofences (`cot-<uid>`; a `t-x-d-d` deletion removes them).
pub fn attach_cot(rules: &Arc<RulesService>, edge: &Arc<rampart_edge_cot::CotEdge>) {
    let mut alerts = rules.subscribe();
    let weak = Arc::downgrade(edge);
    tokio::spawn(async move {
        loop {
            match alerts.recv().await {
                Ok(ev) => {
                    let Some(edge) = weak.upgrade() else { return };
                    let cot =
                        rampart_rules::cot::alert_to_cot(&ev, rampart_model::Timestamp::now());
                    edge.publish_event(&cot, &ev.alert.label);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "TAK alert delivery fell behind");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<rampart_codec_cot::CotEvent>(DRAWING_QUEUE);
    let hook: rampart_edge_cot::EventHook = Arc::new(move |ev: &rampart_codec_cot::CotEvent| {
        if (rampart_rules::cot::is_drawing(&ev.cot_type) || ev.cot_type == "t-x-d-d")
            && tx.try_send(ev.clone()).is_err()
        {
            tracing::warn!(uid = %ev.uid, "drawing queue full; TAK drawing not turned into a geofence");
        }
    });
    edge.set_event_hook(hook);
    let rules = rules.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            let rules = rules.clone();
            let done = tokio::task::spawn_blocking(move || -> Result<(), String> {
                if let Some(id) = rampart_rules::cot::deleted_drawing(&ev) {
                    if rules.geofence(&id).is_some() {
                        rules.delete_geofence(&id).map_err(|e| e.to_string())?;
                    }
                    return Ok(());
                }
                let triggers = rampart_rules::Triggers {
                    enter: true,
                    exit: true,
                    ..Default::default()
                };
                let g =
                    rampart_rules::cot::geofence_from_event(&ev, &triggers, &rules.config().limits)
                        .map_err(|e| format!("drawing {}: {e}", ev.uid))?;
                rules
                    .put_geofences(vec![g], true)
                    .map_err(|e| e.to_string())?;
                Ok(())
            })
            .await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "TAK drawing not turned into a geofence"),
                Err(e) => tracing::error!(error = %e, "drawing task failed"),
            }
        }
    });
}
