//! Geofences from GeoJSON and KML documents (sans-IO: text in, validated geofences out).
//!
//! GeoJSON: a FeatureCollection, a Feature or a bare geometry. `Polygon` and `MultiPolygon`
//! (holes kept), `Point` with a `radius_m` property (a circle) and `LineString` with a
//! `width_m` property (a corridor). Feature properties `id`, `name`, `priority`,
//! `triggers` and `filter` override the import defaults.
//!
//! KML: every `Placemark` with a `Polygon` (outer and inner boundaries) or a `LineString`
//! (a corridor; width from `<Data name="width_m">` or the defaults), inside `MultiGeometry`
//! too. KML coordinates are `lon,lat[,alt]` tuples.

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;

use crate::def::{DefError, DefLimits, Filter, Geofence, Polygon, Priority, Shape, Triggers};

/// What imported shapes get when the document does not say.
#[derive(Clone, Debug)]
pub struct ImportDefaults {
    /// Triggers (default: enter and exit).
    pub triggers: Triggers,
    /// Filter (default: every entity).
    pub filter: Filter,
    /// Priority.
    pub priority: Priority,
    /// Corridor width for line strings without one, metres.
    pub corridor_width_m: Option<f64>,
    /// Ids of shapes without one are `{id_prefix}-{n}`.
    pub id_prefix: String,
    /// Most shapes in one document.
    pub max_shapes: usize,
    /// Definition limits each shape is validated against.
    pub limits: DefLimits,
}

impl Default for ImportDefaults {
    fn default() -> Self {
        ImportDefaults {
            triggers: Triggers {
                enter: true,
                exit: true,
                ..Default::default()
            },
            filter: Filter::default(),
            priority: Priority::Normal,
            corridor_width_m: None,
            id_prefix: "import".into(),
            max_shapes: 10_000,
            limits: DefLimits::default(),
        }
    }
}

fn position(v: &Value, field: &str) -> Result<[f64; 2], DefError> {
    let a = v
        .as_array()
        .ok_or_else(|| DefError::new(field, "a position must be [lon, lat]"))?;
    match (
        a.first().and_then(Value::as_f64),
        a.get(1).and_then(Value::as_f64),
    ) {
        (Some(lon), Some(lat)) => Ok([lon, lat]),
        _ => Err(DefError::new(
            field,
            "a position must be [lon, lat] numbers",
        )),
    }
}

fn positions(v: &Value, field: &str) -> Result<Vec<[f64; 2]>, DefError> {
    let a = v
        .as_array()
        .ok_or_else(|| DefError::new(field, "expected an array of positions"))?;
    a.iter()
        .enumerate()
        .map(|(i, p)| position(p, &format!("{field}[{i}]")))
        .collect()
}

fn polygon(v: &Value, field: &str) -> Result<Polygon, DefError> {
    let rings = v
        .as_array()
        .ok_or_else(|| DefError::new(field, "expected an array of rings"))?;
    let mut it = rings.iter().enumerate();
    let (_, ext) = it
        .next()
        .ok_or_else(|| DefError::new(field, "a polygon needs an exterior ring"))?;
    Ok(Polygon {
        exterior: positions(ext, &format!("{field}[0]"))?,
        holes: it
            .map(|(i, r)| positions(r, &format!("{field}[{i}]")))
            .collect::<Result<_, _>>()?,
    })
}

fn num_prop(props: &Value, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| {
        props.get(*n).and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    })
}

fn feature(
    geom: &Value,
    props: &Value,
    field: &str,
    d: &ImportDefaults,
    n: usize,
) -> Result<Geofence, DefError> {
    let kind = geom.get("type").and_then(Value::as_str).unwrap_or("");
    let coords = geom.get("coordinates").unwrap_or(&Value::Null);
    let cf = format!("{field}.geometry.coordinates");
    let shape = match kind {
        "Polygon" => {
            let p = polygon(coords, &cf)?;
            Shape::Polygon {
                exterior: p.exterior,
                holes: p.holes,
            }
        }
        "MultiPolygon" => {
            let parts = coords
                .as_array()
                .ok_or_else(|| DefError::new(&cf, "expected an array of polygons"))?;
            Shape::MultiPolygon {
                polygons: parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| polygon(p, &format!("{cf}[{i}]")))
                    .collect::<Result<_, _>>()?,
            }
        }
        "Point" => {
            let r = num_prop(props, &["radius_m", "radius"]).ok_or_else(|| {
                DefError::new(
                    format!("{field}.properties.radius_m"),
                    "a Point becomes a circle and needs a radius_m property",
                )
            })?;
            Shape::Circle {
                center: position(coords, &cf)?,
                radius_m: r,
            }
        }
        "LineString" => {
            let w = num_prop(props, &["width_m", "width"])
                .or(d.corridor_width_m)
                .ok_or_else(|| {
                    DefError::new(
                        format!("{field}.properties.width_m"),
                        "a LineString becomes a corridor and needs a width_m property",
                    )
                })?;
            Shape::Corridor {
                line: positions(coords, &cf)?,
                width_m: w,
            }
        }
        other => {
            return Err(DefError::new(
                format!("{field}.geometry.type"),
                format!(
                    "{other:?} is not supported; use Polygon, MultiPolygon, Point (+radius_m) or LineString (+width_m)"
                ),
            ));
        }
    };
    let parse = |name: &str| -> Result<Option<Value>, DefError> {
        Ok(props.get(name).filter(|v| !v.is_null()).cloned())
    };
    let mut g = Geofence {
        id: props
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}-{n}", d.id_prefix)),
        name: props
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        shape,
        filter: d.filter.clone(),
        triggers: d.triggers.clone(),
        priority: d.priority,
        enabled: true,
    };
    if let Some(t) = parse("triggers")? {
        g.triggers = serde_json::from_value(t)
            .map_err(|e| DefError::new(format!("{field}.properties.triggers"), e.to_string()))?;
    }
    if let Some(f) = parse("filter")? {
        g.filter = serde_json::from_value(f)
            .map_err(|e| DefError::new(format!("{field}.properties.filter"), e.to_string()))?;
    }
    if let Some(p) = parse("priority")? {
        g.priority = serde_json::from_value(p)
            .map_err(|e| DefError::new(format!("{field}.properties.priority"), e.to_string()))?;
    }
    g.validate(&d.limits)
        .map_err(|e| DefError::new(format!("{field}: {}", e.field), e.reason))?;
    Ok(g)
}

/// Geofences from a GeoJSON document.
pub fn from_geojson(text: &str, d: &ImportDefaults) -> Result<Vec<Geofence>, DefError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| DefError::new("body", format!("not JSON: {e}")))?;
    let empty = Value::Object(Default::default());
    let mut out = Vec::new();
    match v.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => {
            let feats = v
                .get("features")
                .and_then(Value::as_array)
                .ok_or_else(|| DefError::new("features", "expected an array"))?;
            if feats.len() > d.max_shapes {
                return Err(DefError::new(
                    "features",
                    format!("{} features; at most {}", feats.len(), d.max_shapes),
                ));
            }
            for (i, f) in feats.iter().enumerate() {
                let geom = f
                    .get("geometry")
                    .ok_or_else(|| DefError::new(format!("features[{i}].geometry"), "missing"))?;
                out.push(feature(
                    geom,
                    f.get("properties")
                        .filter(|p| p.is_object())
                        .unwrap_or(&empty),
                    &format!("features[{i}]"),
                    d,
                    i + 1,
                )?);
            }
        }
        Some("Feature") => {
            let geom = v
                .get("geometry")
                .ok_or_else(|| DefError::new("geometry", "missing"))?;
            out.push(feature(
                geom,
                v.get("properties")
                    .filter(|p| p.is_object())
                    .unwrap_or(&empty),
                "feature",
                d,
                1,
            )?);
        }
        Some(_) => out.push(feature(&v, &empty, "geometry", d, 1)?),
        None => {
            return Err(DefError::new(
                "type",
                "expected a GeoJSON FeatureCollection, Feature or geometry",
            ));
        }
    }
    Ok(out)
}

fn kml_coords(text: &str, field: &str) -> Result<Vec<[f64; 2]>, DefError> {
    text.split_whitespace()
        .map(|tuple| {
            let mut it = tuple.split(',');
            let lon = it.next().and_then(|x| x.trim().parse::<f64>().ok());
            let lat = it.next().and_then(|x| x.trim().parse::<f64>().ok());
            match (lon, lat) {
                (Some(lon), Some(lat)) => Ok([lon, lat]),
                _ => Err(DefError::new(
                    field,
                    format!("{tuple:?} is not lon,lat[,alt]"),
                )),
            }
        })
        .collect()
}

#[derive(Default)]
struct Placemark {
    name: String,
    id: Option<String>,
    polygons: Vec<Polygon>,
    lines: Vec<Vec<[f64; 2]>>,
    width: Option<f64>,
}

/// Geofences from a KML document.
pub fn from_kml(text: &str, d: &ImportDefaults) -> Result<Vec<Geofence>, DefError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut pm: Option<Placemark> = None;
    let mut data_name: Option<String> = None;
    let mut out = Vec::new();
    let mut count = 0usize;
    loop {
        let ev = reader.read_event().map_err(|e| {
            DefError::new(
                "body",
                format!(
                    "not well-formed KML at byte {}: {e}",
                    reader.buffer_position()
                ),
            )
        })?;
        match ev {
            Event::Start(s) => {
                let name = s.local_name().as_ref().to_vec();
                if name == b"Placemark" {
                    let id = s
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == b"id")
                        .and_then(|a| std::str::from_utf8(&a.value).ok().map(str::to_string));
                    pm = Some(Placemark {
                        id,
                        ..Default::default()
                    });
                }
                if name == b"Data" {
                    data_name = s
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"name")
                        .and_then(|a| std::str::from_utf8(&a.value).ok().map(str::to_string));
                }
                if name == b"Polygon"
                    && let Some(p) = pm.as_mut()
                {
                    p.polygons.push(Polygon {
                        exterior: Vec::new(),
                        holes: Vec::new(),
                    });
                }
                stack.push(name);
                if stack.len() > 64 {
                    return Err(DefError::new("body", "KML nested more than 64 deep"));
                }
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if name == b"Placemark"
                    && let Some(p) = pm.take()
                {
                    count += 1;
                    let field = format!("Placemark[{count}] {:?}", p.name);
                    let shape = if !p.polygons.is_empty() {
                        if p.polygons.len() == 1 {
                            let mut ps = p.polygons;
                            let one = ps.remove(0);
                            Shape::Polygon {
                                exterior: one.exterior,
                                holes: one.holes,
                            }
                        } else {
                            Shape::MultiPolygon {
                                polygons: p.polygons,
                            }
                        }
                    } else if let Some(line) = p.lines.into_iter().next() {
                        let w = p.width.or(d.corridor_width_m).ok_or_else(|| {
                            DefError::new(&field, "a LineString becomes a corridor and needs <Data name=\"width_m\"> or the width_m parameter")
                        })?;
                        Shape::Corridor { line, width_m: w }
                    } else {
                        continue; // points and other placemarks are not areas
                    };
                    if out.len() >= d.max_shapes {
                        return Err(DefError::new(
                            "body",
                            format!("more than {} shapes", d.max_shapes),
                        ));
                    }
                    let g = Geofence {
                        id: p
                            .id
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| format!("{}-{count}", d.id_prefix)),
                        name: p.name,
                        shape,
                        filter: d.filter.clone(),
                        triggers: d.triggers.clone(),
                        priority: d.priority,
                        enabled: true,
                    };
                    g.validate(&d.limits)
                        .map_err(|e| DefError::new(format!("{field}: {}", e.field), e.reason))?;
                    out.push(g);
                }
            }
            Event::Text(t) => {
                let Some(p) = pm.as_mut() else { continue };
                let text = String::from_utf8_lossy(&t).to_string();
                let top = stack.last().map(Vec::as_slice).unwrap_or(b"");
                let inside = |n: &[u8]| stack.iter().any(|s| s == n);
                match top {
                    b"name" if stack.len() >= 2 && stack[stack.len() - 2] == b"Placemark" => {
                        p.name = text.trim().to_string()
                    }
                    b"value" if data_name.as_deref() == Some("width_m") => {
                        p.width = text.trim().parse().ok()
                    }
                    b"coordinates" => {
                        let field = format!("Placemark {:?} coordinates", p.name);
                        let pts = kml_coords(&text, &field)?;
                        if inside(b"Polygon") {
                            if let Some(poly) = p.polygons.last_mut() {
                                if inside(b"innerBoundaryIs") {
                                    poly.holes.push(pts);
                                } else {
                                    poly.exterior = pts;
                                }
                            }
                        } else if inside(b"LineString") {
                            p.lines.push(pts);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn geojson_polygons_circles_and_corridors() {
        let doc = r#"{"type":"FeatureCollection","features":[
          {"type":"Feature","properties":{"id":"base","name":"Base","triggers":{"enter":true,"dwell_secs":60}},
           "geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]],[[0.2,0.2],[0.4,0.2],[0.4,0.4],[0.2,0.2]]]}},
          {"type":"Feature","properties":{"radius_m":250},"geometry":{"type":"Point","coordinates":[10,50]}},
          {"type":"Feature","properties":{"width_m":100},"geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]}},
          {"type":"Feature","properties":{},"geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,5]]]]}}
        ]}"#;
        let g = from_geojson(doc, &ImportDefaults::default()).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g[0].id, "base");
        assert_eq!(g[0].triggers.dwell_secs, Some(60.0));
        assert!(matches!(&g[0].shape, Shape::Polygon { holes, .. } if holes.len() == 1));
        assert!(matches!(g[1].shape, Shape::Circle { radius_m, .. } if radius_m == 250.0));
        assert!(matches!(g[2].shape, Shape::Corridor { width_m, .. } if width_m == 100.0));
        assert!(matches!(&g[3].shape, Shape::MultiPolygon { polygons } if polygons.len() == 2));
        assert_eq!(g[1].id, "import-2");
        let e = from_geojson(
            r#"{"type":"Point","coordinates":[1,2]}"#,
            &ImportDefaults::default(),
        )
        .unwrap_err();
        assert!(e.reason.contains("radius_m"), "{e}");
        let bow = r#"{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}"#;
        let e = from_geojson(bow, &ImportDefaults::default()).unwrap_err();
        assert!(e.reason.contains("self-intersecting"), "{e}");
    }

    #[test]
    fn kml_polygon_with_hole_and_linestring() {
        let doc = r#"<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>
          <Placemark id="zone"><name>Zone A</name><Polygon>
            <outerBoundaryIs><LinearRing><coordinates>0,0,0 1,0,0 1,1,0 0,1,0 0,0,0</coordinates></LinearRing></outerBoundaryIs>
            <innerBoundaryIs><LinearRing><coordinates>0.2,0.2 0.4,0.2 0.4,0.4 0.2,0.2</coordinates></LinearRing></innerBoundaryIs>
          </Polygon></Placemark>
          <Placemark><name>Route</name><ExtendedData><Data name="width_m"><value>500</value></Data></ExtendedData>
            <LineString><coordinates>0,0 1,1 2,1</coordinates></LineString></Placemark>
          <Placemark><name>Pin</name><Point><coordinates>3,3</coordinates></Point></Placemark>
        </Document></kml>"#;
        let g = from_kml(doc, &ImportDefaults::default()).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].id, "zone");
        assert_eq!(g[0].name, "Zone A");
        assert!(
            matches!(&g[0].shape, Shape::Polygon { exterior, holes } if exterior.len() == 5 && holes.len() == 1)
        );
        assert!(
            matches!(&g[1].shape, Shape::Corridor { line, width_m } if line.len() == 3 && *width_m == 500.0)
        );
        assert!(from_kml("<kml><Placemark><LineString><coordinates>0,0 1,1</coordinates></LineString></Placemark></kml>", &ImportDefaults::default()).is_err());
    }
}
