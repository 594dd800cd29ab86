//! Decoding JSON report bodies into validated [`Report`]s.
//!
//! Two passes: the body is first split into raw items (which also checks that it is JSON at
//! all), then each item is decoded on its own. The split costs a little speed but means a
//! malformed item is reported by index and field while its neighbours are still accepted.

use std::borrow::Cow;

use rampart_model::{Attributes, Label, Limits, Report, ReportId, Text, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;

/// How to decode a body.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Field limits every report must meet.
    pub limits: Limits,
    /// Most reports in one body; a longer body is rejected whole.
    pub max_items: usize,
    /// Accept a single JSON object as a body of one report (MQTT payloads do this).
    pub allow_single_object: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            limits: Limits::default(),
            max_items: 10_000,
            allow_single_object: false,
        }
    }
}

/// The whole body is unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not parseable JSON.
    Malformed(String),
    /// JSON, but not an array of reports.
    NotAnArray(&'static str),
    /// More items than [`DecodeOptions::max_items`].
    TooManyItems {
        /// Items in the body.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl BodyError {
    /// A short machine-readable reason, used as a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            BodyError::Malformed(_) => "malformed_json",
            BodyError::NotAnArray(_) => "not_an_array",
            BodyError::TooManyItems { .. } => "too_many_items",
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Malformed(e) => write!(f, "body is not valid JSON: {e}"),
            BodyError::NotAnArray(got) => {
                write!(f, "body must be a JSON array of report objects, got {got}")
            }
            BodyError::TooManyItems { count, max } => {
                write!(
                    f,
                    "body holds {count} reports, the limit per request is {max}"
                )
            }
        }
    }
}

impl std::error::Error for BodyError {}

/// One rejected item of a body.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ItemError {
    /// Zero-based position in the body's array.
    pub index: usize,
    /// The field at fault (`uid`, `attributes.fuel`, …), or `""` when the item is not an object.
    pub field: String,
    /// Why it was rejected.
    pub reason: String,
}

impl ItemError {
    /// A short machine-readable reason class, used as a metrics label.
    pub fn reason_class(&self) -> &'static str {
        if self.reason.starts_with("each report must be") {
            "not_an_object"
        } else if self.reason.starts_with("missing field") {
            "missing_field"
        } else if self.reason.starts_with("unknown field") {
            "unknown_field"
        } else if self.reason.starts_with("invalid type")
            || self.reason.starts_with("invalid value")
        {
            "invalid_type"
        } else {
            "invalid_value"
        }
    }
}

/// The wire form of a report: the model's field names, flat.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireReport<'a> {
    #[serde(borrow)]
    uid: Cow<'a, str>,
    #[serde(rename = "type", borrow, default)]
    cot_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    callsign: Option<Cow<'a, str>>,
    lat: f64,
    lon: f64,
    #[serde(default)]
    hae: Option<f64>,
    #[serde(default)]
    ce: Option<f64>,
    #[serde(default)]
    le: Option<f64>,
    #[serde(default)]
    course: Option<f64>,
    #[serde(default)]
    speed: Option<f64>,
    #[serde(borrow, default)]
    how: Option<Cow<'a, str>>,
    time: Timestamp,
    #[serde(default)]
    start: Option<Timestamp>,
    #[serde(default)]
    stale: Option<Timestamp>,
    #[serde(default)]
    attributes: Option<Attributes>,
    #[serde(default)]
    label: Option<Label>,
    #[serde(default)]
    id: Option<ReportId>,
}

impl WireReport<'_> {
    fn into_report(self) -> Report {
        Report {
            uid: Text::from(self.uid.as_ref()),
            cot_type: self.cot_type.map(|s| Text::from(s.as_ref())),
            callsign: self.callsign.map(|s| Text::from(s.as_ref())),
            lat: self.lat,
            lon: self.lon,
            hae: self.hae,
            ce: self.ce,
            le: self.le,
            course: self.course,
            speed: self.speed,
            how: self.how.map(|s| Text::from(s.as_ref())),
            time: self.time,
            start: self.start,
            stale: self.stale,
            attributes: self.attributes.unwrap_or_default(),
            label: self.label,
            id: self.id,
            provenance: Default::default(),
        }
    }
}

/// Extracts the field named in serde's "missing field `x`" / "unknown field `x`" messages.
fn field_from_message(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Strips serde_json's " at line L column C" suffix: the index already locates the item.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

fn decode_item(index: usize, raw: &str, limits: &Limits) -> Result<Report, ItemError> {
    // serde would also accept a struct written as an array; a report must be an object.
    if !raw.trim_start().starts_with('{') {
        return Err(ItemError {
            index,
            field: String::new(),
            reason: format!("each report must be a JSON object, got {}", kind_of(raw)),
        });
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let wire: WireReport<'_> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        let msg = strip_position(&msg);
        let field = if path == "." || path.is_empty() {
            field_from_message(msg).unwrap_or("").to_string()
        } else {
            path
        };
        ItemError {
            index,
            field,
            reason: msg.to_string(),
        }
    })?;
    let report = wire.into_report();
    limits.validate(&report).map_err(|e| ItemError {
        index,
        field: e.field,
        reason: e.reason,
    })?;
    Ok(report)
}

fn kind_of(raw: &str) -> &'static str {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "nothing",
    }
}

/// Decodes a body of reports. The outer error means the body as a whole is unusable;
/// otherwise each item is decoded and validated on its own.
pub fn decode_reports(
    body: &[u8],
    opts: &DecodeOptions,
) -> Result<Vec<Result<Report, ItemError>>, BodyError> {
    let root: &RawValue =
        serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))?;
    let text = root.get();
    let items: Vec<&RawValue> = match text.trim_start().as_bytes().first() {
        Some(b'[') => {
            serde_json::from_str(text).map_err(|e| BodyError::Malformed(e.to_string()))?
        }
        Some(b'{') if opts.allow_single_object => vec![root],
        _ => return Err(BodyError::NotAnArray(kind_of(text))),
    };
    if items.len() > opts.max_items {
        return Err(BodyError::TooManyItems {
            count: items.len(),
            max: opts.max_items,
        });
    }
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, raw)| decode_item(i, raw.get(), &opts.limits))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> Vec<Result<Report, ItemError>> {
        decode_reports(body.as_bytes(), &DecodeOptions::default()).unwrap()
    }

    #[test]
    fn decodes_minimal_and_full() {
        let items = decode(
            r#"[{"uid":"a","lat":1.5,"lon":2.5,"time":"2026-01-01T00:00:00Z"},
                {"uid":"b","type":"a-f-G-U-C","callsign":"VIPER","lat":1,"lon":2,"hae":3,"ce":4,"le":5,
                 "course":90,"speed":3.5,"how":"m-g","time":"2026-01-01T00:00:00.250Z",
                 "start":"2026-01-01T00:00:00Z","stale":"2026-01-01T00:05:00Z",
                 "attributes":{"fuel":0.5,"fw":"1.2"},"label":{"classification":"SECRET","releasability":["NATO"]},
                 "id":{"source":"gw","seq":7}}]"#,
        );
        let a = items[0].as_ref().unwrap();
        assert_eq!(a.uid, "a");
        assert_eq!(a.lat, 1.5);
        let b = items[1].as_ref().unwrap();
        assert_eq!(b.cot_type.as_deref(), Some("a-f-G-U-C"));
        assert_eq!(b.time.millis() % 1000, 250);
        assert_eq!(b.attributes.len(), 2);
        assert_eq!(b.label.as_ref().unwrap().classification, "SECRET");
        assert_eq!(
            b.id,
            Some(ReportId::Seq {
                source: "gw".into(),
                seq: 7
            })
        );
    }

    #[test]
    fn item_errors_name_field_and_index() {
        let items = decode(
            r#"[{"uid":"ok","lat":1,"lon":2,"time":"2026-01-01T00:00:00Z"},
                {"uid":"x","lat":"north","lon":2,"time":"2026-01-01T00:00:00Z"},
                {"uid":"x","lon":2,"time":"2026-01-01T00:00:00Z"},
                {"uid":"x","lat":95,"lon":2,"time":"2026-01-01T00:00:00Z"},
                {"uid":"x","lat":1,"lon":2,"time":"noon"},
                {"uid":"x","lat":1,"lon":2,"time":"2026-01-01T00:00:00Z","colour":"red"},
                42]"#,
        );
        assert!(items[0].is_ok());
        let errs: Vec<_> = items
            .iter()
            .skip(1)
            .map(|r| r.clone().unwrap_err())
            .collect();
        assert_eq!((errs[0].index, errs[0].field.as_str()), (1, "lat"));
        assert_eq!(errs[1].field, "lat");
        assert!(errs[1].reason.contains("missing field"));
        assert_eq!(errs[2].field, "lat");
        assert!(errs[2].reason.contains("between"));
        assert_eq!(errs[3].field, "time");
        assert!(errs[3].reason.contains("RFC 3339"));
        assert_eq!(errs[4].field, "colour");
        assert!(errs[5].reason.contains("JSON object"));
    }

    #[test]
    fn body_errors() {
        let o = DecodeOptions::default();
        assert!(matches!(
            decode_reports(b"{not json", &o),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode_reports(b"", &o),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            decode_reports(b"{\"uid\":1}", &o),
            Err(BodyError::NotAnArray(_))
        ));
        assert!(matches!(
            decode_reports(b"\"x\"", &o),
            Err(BodyError::NotAnArray(_))
        ));
        let small = DecodeOptions {
            max_items: 1,
            ..DecodeOptions::default()
        };
        assert!(matches!(
            decode_reports(b"[{},{}]", &small),
            Err(BodyError::TooManyItems { count: 2, max: 1 })
        ));
        let single = DecodeOptions {
            allow_single_object: true,
            ..DecodeOptions::default()
        };
        let one = decode_reports(
            br#"{"uid":"a","lat":1,"lon":2,"time":"2026-01-01T00:00:00Z"}"#,
            &single,
        )
        .unwrap();
        assert!(one[0].is_ok());
    }

    #[test]
    fn escaped_strings_decode() {
        let items =
            decode(r#"[{"uid":"a\"b\u00e9","lat":1,"lon":2,"time":"2026-01-01T00:00:00Z"}]"#);
        assert_eq!(items[0].as_ref().unwrap().uid, "a\"bé");
    }
}
