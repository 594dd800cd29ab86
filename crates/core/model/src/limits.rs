//! Validation limits for reports, and the error that names the offending field.
//!
//! Every source codec runs [`Limits::validate`] before a report enters the engine, so the
//! engine can rely on finite coordinates, bounded strings and sane timestamps.

use std::fmt;

use crate::{AttrValue, Report, ReportId, Timestamp};

/// A validation failure: the field it concerns and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as it appears in the JSON report, e.g. `lat` or `attributes.fuel`.
    pub field: String,
    /// A human-readable reason.
    pub reason: String,
}

impl FieldError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

/// Size limits a report must respect. Each is a named, configurable bound.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest `uid` in bytes.
    pub max_uid_len: usize,
    /// Longest `type` in bytes.
    pub max_type_len: usize,
    /// Longest `callsign` in bytes.
    pub max_callsign_len: usize,
    /// Longest `how` in bytes.
    pub max_how_len: usize,
    /// Most attributes on one report.
    pub max_attributes: usize,
    /// Longest attribute name in bytes.
    pub max_attribute_key_len: usize,
    /// Longest text attribute value in bytes.
    pub max_attribute_text_len: usize,
    /// Longest classification name in bytes.
    pub max_classification_len: usize,
    /// Most releasability groups on one label.
    pub max_releasability_groups: usize,
    /// Longest releasability group name in bytes.
    pub max_group_len: usize,
    /// Longest idempotency key (or sequence source name) in bytes.
    pub max_id_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uid_len: 256,
            max_type_len: 64,
            max_callsign_len: 128,
            max_how_len: 16,
            max_attributes: 64,
            max_attribute_key_len: 64,
            max_attribute_text_len: 1024,
            max_classification_len: 64,
            max_releasability_groups: 32,
            max_group_len: 64,
            max_id_len: 128,
        }
    }
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.len() > max {
        return Err(FieldError::new(
            field,
            format!("too long: {} bytes, the limit is {max}", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(FieldError::new(
            field,
            format!("contains the control character U+{:04X}", c as u32),
        ));
    }
    Ok(())
}

fn check_range(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), FieldError> {
    if !value.is_finite() || value < lo || value > hi {
        return Err(FieldError::new(
            field,
            format!("must be between {lo} and {hi}, got {value}"),
        ));
    }
    Ok(())
}

fn check_time(field: &str, t: Timestamp) -> Result<(), FieldError> {
    if t < Timestamp::MIN_VALID || t > Timestamp::MAX_VALID {
        return Err(FieldError::new(
            field,
            "must be between 1970-01-01 and 9999-12-31",
        ));
    }
    Ok(())
}

impl Limits {
    /// Checks every field of `report`; the first problem found is returned.
    pub fn validate(&self, r: &Report) -> Result<(), FieldError> {
        if r.uid.is_empty() {
            return Err(FieldError::new("uid", "must not be empty"));
        }
        check_text("uid", &r.uid, self.max_uid_len)?;
        if let Some(t) = &r.cot_type {
            check_text("type", t, self.max_type_len)?;
            let well_formed = !t.is_empty()
                && t.split('-').all(|atom| {
                    !atom.is_empty() && atom.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if !well_formed {
                return Err(FieldError::new(
                    "type",
                    format!(
                        "{t:?} is not a CoT type (letters and digits separated by '-', e.g. a-f-G-U-C)"
                    ),
                ));
            }
        }
        if let Some(c) = &r.callsign {
            check_text("callsign", c, self.max_callsign_len)?;
        }
        if let Some(h) = &r.how {
            check_text("how", h, self.max_how_len)?;
        }
        check_range("lat", r.lat, -90.0, 90.0)?;
        check_range("lon", r.lon, -180.0, 180.0)?;
        if let Some(v) = r.hae {
            check_range("hae", v, -12_000.0, 1_000_000_000.0)?;
        }
        // CoT uses 9999999 for "unknown" ce/le; accept it, codecs map it to None.
        if let Some(v) = r.ce {
            check_range("ce", v, 0.0, 1.0e9)?;
        }
        if let Some(v) = r.le {
            check_range("le", v, 0.0, 1.0e9)?;
        }
        if let Some(v) = r.course {
            check_range("course", v, 0.0, 360.0)?;
        }
        if let Some(v) = r.speed {
            check_range("speed", v, 0.0, 1.0e6)?;
        }
        check_time("time", r.time)?;
        if let Some(s) = r.start {
            check_time("start", s)?;
        }
        if let Some(s) = r.stale {
            check_time("stale", s)?;
            if s < r.time {
                return Err(FieldError::new("stale", "must not be before time"));
            }
        }
        if r.attributes.len() > self.max_attributes {
            return Err(FieldError::new(
                "attributes",
                format!(
                    "too many: {}, the limit is {}",
                    r.attributes.len(),
                    self.max_attributes
                ),
            ));
        }
        for (k, v) in &r.attributes {
            if k.is_empty() {
                return Err(FieldError::new("attributes", "a name must not be empty"));
            }
            check_text("attributes", k, self.max_attribute_key_len)?;
            match v {
                AttrValue::Num(n) if !n.is_finite() => {
                    return Err(FieldError::new(format!("attributes.{k}"), "must be finite"));
                }
                // The field name is only built when there is an error to report: this runs
                // for every attribute of every report.
                AttrValue::Text(t) => check_text("", t, self.max_attribute_text_len)
                    .map_err(|e| FieldError::new(format!("attributes.{k}"), e.reason))?,
                AttrValue::Num(_) => {}
            }
        }
        if let Some(l) = &r.label {
            if l.classification.is_empty() {
                return Err(FieldError::new("label.classification", "must not be empty"));
            }
            check_text(
                "label.classification",
                &l.classification,
                self.max_classification_len,
            )?;
            if l.releasability.len() > self.max_releasability_groups {
                return Err(FieldError::new(
                    "label.releasability",
                    format!(
                        "too many groups, the limit is {}",
                        self.max_releasability_groups
                    ),
                ));
            }
            for g in &l.releasability {
                check_text("label.releasability", g, self.max_group_len)?;
            }
        }
        match &r.id {
            Some(ReportId::Key(k)) => {
                if k.is_empty() {
                    return Err(FieldError::new("id", "must not be empty"));
                }
                check_text("id", k, self.max_id_len)?
            }
            Some(ReportId::Seq { source, .. }) => check_text("id.source", source, self.max_id_len)?,
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Report {
        Report::new("u1", 10.0, 20.0, Timestamp(1_000))
    }

    #[test]
    fn accepts_minimal() {
        Limits::default().validate(&ok()).unwrap();
    }

    #[test]
    fn names_the_field() {
        let mut r = ok();
        r.lat = 91.0;
        assert_eq!(Limits::default().validate(&r).unwrap_err().field, "lat");
        let mut r = ok();
        r.lon = f64::NAN;
        assert_eq!(Limits::default().validate(&r).unwrap_err().field, "lon");
        let mut r = ok();
        r.cot_type = Some("a--f".into());
        assert_eq!(Limits::default().validate(&r).unwrap_err().field, "type");
        let mut r = ok();
        r.stale = Some(Timestamp(10));
        assert_eq!(Limits::default().validate(&r).unwrap_err().field, "stale");
        let mut r = ok();
        r.uid = "a\u{0}b".into();
        assert!(
            Limits::default()
                .validate(&r)
                .unwrap_err()
                .reason
                .contains("U+0000")
        );
    }
}
