//! CoT and rules (sans-IO): drawings TAK clients share become geofences, and alerts become
//! CoT events for TAK clients.
//!
//! Drawings: `u-d-f` (freehand; closed → polygon, open → corridor of `DRAWING_CORRIDOR_M`),
//! `u-d-r` (rectangle: four `<link point="lat,lon"/>` vertices) and `u-d-c-c` (circle: the
//! event point and `<shape><ellipse major=…/></shape>`, radius = the larger semi-axis, in
//! metres). The geofence id is `cot-<event uid>`, so a redrawn shape replaces the old one; a
//! `t-x-d-d` deletion names the uid in its link, see [`deleted_drawing`].
//!
//! Alerts: type `b-a-o-tbl` for emergencies and SOS (TAK clients show them as such),
//! `b-a-g` (geofence breach) for geofence alerts and `b-a` for the rest; the message is in
//! `<remarks>`, the uid is `rampart-alert-<id>`. A cleared alert is re-sent stale at once, so
//! clients drop it.

use quick_xml::Reader;
use quick_xml::events::Event;
use rampart_codec_cot::{Contact, CotEvent, CotLimits, Remarks, parse_xml};
use rampart_model::{Text, Timestamp};

use crate::alert::{AlertEvent, AlertKind, AlertState};
use crate::def::{DefError, DefLimits, Geofence, Shape, Triggers};

/// Width of the corridor an open freehand line becomes, in metres.
pub const DRAWING_CORRIDOR_M: f64 = 100.0;
/// How long an alert event stays on TAK maps unless cleared earlier, in milliseconds.
pub const ALERT_STALE_MS: i64 = 3_600_000;

/// Whether a CoT type is a drawing this module turns into a geofence.
pub fn is_drawing(cot_type: &str) -> bool {
    matches!(cot_type, "u-d-f" | "u-d-r" | "u-d-c-c")
}

fn link_point(p: &str, field: &str) -> Result<[f64; 2], DefError> {
    let mut it = p.split(',');
    let lat = it.next().and_then(|x| x.trim().parse::<f64>().ok());
    let lon = it.next().and_then(|x| x.trim().parse::<f64>().ok());
    match (lat, lon) {
        (Some(lat), Some(lon)) => Ok([lon, lat]),
        _ => Err(DefError::new(
            field,
            format!("{p:?} is not \"lat,lon[,hae]\""),
        )),
    }
}

/// The larger semi-axis of the first `<ellipse>` in verbatim detail elements.
fn ellipse_radius(unknown: &[String]) -> Option<f64> {
    for raw in unknown.iter().filter(|u| u.contains("ellipse")) {
        let mut reader = Reader::from_str(raw);
        while let Ok(e) = reader.read_event() {
            let start = match e {
                Event::Start(s) | Event::Empty(s) => s,
                Event::Eof => break,
                _ => continue,
            };
            if start.local_name().as_ref() != b"ellipse" {
                continue;
            }
            let mut r: Option<f64> = None;
            for a in start.attributes().flatten() {
                if matches!(a.key.as_ref(), b"major" | b"minor")
                    && let Some(v) = std::str::from_utf8(&a.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<f64>().ok())
                {
                    r = Some(r.map_or(v, |x: f64| x.max(v)));
                }
            }
            return r;
        }
    }
    None
}

/// The geofence a TAK drawing event describes (validated), with `triggers`.
pub fn geofence_from_event(
    ev: &CotEvent,
    triggers: &Triggers,
    lim: &DefLimits,
) -> Result<Geofence, DefError> {
    let points = || -> Result<Vec<[f64; 2]>, DefError> {
        ev.detail
            .links
            .iter()
            .filter_map(|l| l.point.as_deref())
            .enumerate()
            .map(|(i, p)| link_point(p, &format!("link[{i}].point")))
            .collect()
    };
    let shape = match ev.cot_type.as_str() {
        "u-d-r" => {
            let pts = points()?;
            if pts.len() != 4 {
                return Err(DefError::new(
                    "link",
                    format!("a rectangle needs 4 link points, got {}", pts.len()),
                ));
            }
            Shape::Polygon {
                exterior: pts,
                holes: vec![],
            }
        }
        "u-d-f" => {
            let pts = points()?;
            let closed = pts.len() >= 4 && pts.first() == pts.last();
            if closed {
                Shape::Polygon {
                    exterior: pts,
                    holes: vec![],
                }
            } else {
                Shape::Corridor {
                    line: pts,
                    width_m: DRAWING_CORRIDOR_M,
                }
            }
        }
        "u-d-c-c" => {
            let r = ellipse_radius(&ev.detail.unknown).ok_or_else(|| {
                DefError::new(
                    "shape.ellipse",
                    "a circle drawing needs <shape><ellipse major=… minor=…/></shape>",
                )
            })?;
            Shape::Circle {
                center: [ev.point.lon, ev.point.lat],
                radius_m: r,
            }
        }
        other => {
            return Err(DefError::new(
                "type",
                format!("{other:?} is not a drawing (u-d-f, u-d-r, u-d-c-c)"),
            ));
        }
    };
    let g = Geofence {
        id: format!("cot-{}", ev.uid),
        name: ev.callsign().unwrap_or(&ev.uid).to_string(),
        shape,
        filter: Default::default(),
        triggers: triggers.clone(),
        priority: Default::default(),
        enabled: true,
    };
    g.validate(lim)?;
    Ok(g)
}

/// The geofence a TAK drawing (CoT XML) describes, with enter and exit triggers.
pub fn geofence_from_cot(xml: &str) -> Result<Geofence, DefError> {
    let ev = parse_xml(xml.as_bytes(), &CotLimits::default())
        .map_err(|e| DefError::new("event", e.to_string()))?;
    let triggers = Triggers {
        enter: true,
        exit: true,
        ..Default::default()
    };
    geofence_from_event(&ev, &triggers, &DefLimits::default())
}

/// The geofence id a `t-x-d-d` deletion event removes, if it deletes a drawing.
pub fn deleted_drawing(ev: &CotEvent) -> Option<String> {
    if ev.cot_type != "t-x-d-d" {
        return None;
    }
    ev.detail
        .links
        .iter()
        .find_map(|l| l.uid.as_deref())
        .map(|u| format!("cot-{u}"))
}

/// The CoT event that shows an alert change on TAK clients.
pub fn alert_to_cot(ev: &AlertEvent, now: Timestamp) -> CotEvent {
    let a = &ev.alert;
    let cot_type = match a.kind {
        AlertKind::Emergency | AlertKind::Sos => "b-a-o-tbl",
        AlertKind::Enter | AlertKind::Exit | AlertKind::Dwell | AlertKind::Count => "b-a-g",
        _ => "b-a",
    };
    let stale = if ev.event == AlertState::Cleared {
        now
    } else {
        now.plus_millis(ALERT_STALE_MS)
    };
    let mut c = CotEvent::new(&format!("rampart-alert-{}", a.id), cot_type, now, stale);
    c.how = Some(Text::const_new("m-g"));
    let [lon, lat] = a.position.unwrap_or([0.0, 0.0]);
    c.point.lat = lat;
    c.point.lon = lon;
    c.detail.contact = Some(Contact {
        callsign: Some(Text::from(format!("ALERT {}", a.kind.as_str()).as_str())),
        ..Default::default()
    });
    let state = match ev.event {
        AlertState::Raised => "RAISED",
        AlertState::Acknowledged => "ACKNOWLEDGED",
        AlertState::Cleared => "CLEARED",
    };
    let mut text = format!("[{state}] [{}] {}", a.priority.as_str(), a.message);
    if let Some(by) = &a.acked_by {
        text.push_str(&format!(" (acknowledged by {by})"));
    }
    c.detail.remarks = Some(Remarks {
        text,
        source: Some(Text::const_new("Rampart")),
        ..Default::default()
    });
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tak_drawings_become_geofences() {
        let rect = r#"<event version="2.0" uid="R1" type="u-d-r" how="h-e" time="2026-01-01T00:00:00Z" start="2026-01-01T00:00:00Z" stale="2027-01-01T00:00:00Z"><point lat="50.0" lon="10.0" hae="0" ce="9999999" le="9999999"/><detail><link point="50.0,10.0"/><link point="50.0,10.1"/><link point="50.1,10.1"/><link point="50.1,10.0"/><contact callsign="Rectangle 1"/></detail></event>"#;
        let g = geofence_from_cot(rect).unwrap();
        assert_eq!(g.id, "cot-R1");
        assert_eq!(g.name, "Rectangle 1");
        assert!(matches!(&g.shape, Shape::Polygon { exterior, .. } if exterior[1] == [10.1, 50.0]));
        let circle = r#"<event version="2.0" uid="C1" type="u-d-c-c" how="h-e" time="2026-01-01T00:00:00Z" start="2026-01-01T00:00:00Z" stale="2027-01-01T00:00:00Z"><point lat="50.0" lon="10.0" hae="0" ce="9999999" le="9999999"/><detail><shape><ellipse major="250.5" minor="200" angle="360"/></shape></detail></event>"#;
        let g = geofence_from_cot(circle).unwrap();
        assert!(
            matches!(g.shape, Shape::Circle { radius_m, center } if radius_m == 250.5 && center == [10.0, 50.0])
        );
        let line = r#"<event version="2.0" uid="F1" type="u-d-f" how="h-e" time="2026-01-01T00:00:00Z" start="2026-01-01T00:00:00Z" stale="2027-01-01T00:00:00Z"><point lat="50.0" lon="10.0" hae="0" ce="9999999" le="9999999"/><detail><link point="50.0,10.0"/><link point="50.0,10.1"/><link point="50.1,10.1"/></detail></event>"#;
        assert!(matches!(
            geofence_from_cot(line).unwrap().shape,
            Shape::Corridor { .. }
        ));
        let bow = r#"<event version="2.0" uid="F2" type="u-d-f" how="h-e" time="2026-01-01T00:00:00Z" start="2026-01-01T00:00:00Z" stale="2027-01-01T00:00:00Z"><point lat="50.0" lon="10.0" hae="0" ce="9999999" le="9999999"/><detail><link point="0,0"/><link point="1,1"/><link point="0,1"/><link point="1,0"/><link point="0,0"/></detail></event>"#;
        assert!(
            geofence_from_cot(bow)
                .unwrap_err()
                .reason
                .contains("self-intersecting")
        );
    }

    #[test]
    fn alerts_become_cot() {
        let a = crate::alert::Alert {
            id: 7,
            rule_id: "sos".into(),
            kind: AlertKind::Sos,
            priority: crate::def::Priority::Emergency,
            entities: vec!["u".into()],
            message: "SOS from u".into(),
            position: Some([10.0, 50.0]),
            raised_at: Timestamp(0),
            state: AlertState::Raised,
            acked_by: None,
            acked_at: None,
            cleared_at: None,
            key: "sos|u".into(),
            label: Default::default(),
        };
        let c = alert_to_cot(
            &AlertEvent {
                event: AlertState::Raised,
                alert: a,
            },
            Timestamp(1000),
        );
        assert_eq!(c.cot_type, "b-a-o-tbl");
        assert_eq!(c.uid, "rampart-alert-7");
        assert_eq!(c.point.lat, 50.0);
        let xml = rampart_codec_cot::encode_xml(&c);
        assert!(xml.contains("SOS from u"), "{xml}");
    }
}
