//! Sparkplug B payloads: bounded protobuf decoding ([`decode`]), encoding ([`encode`]), the
//! `DataType` codes ([`DataType`]) and the typed metric value ([`Value`]) with the
//! specification's rules for which protobuf field carries which type.
//!
//! Before `prost` allocates anything, a wire-level pass ([`scan`]) checks the framing of the
//! top-level fields (truncation, declared lengths past the end, wire types) and counts the
//! metrics, so an over-limit payload is refused without building its metrics.

use crate::proto::{self, metric::Value as Raw};

/// Payload bounds. Over-limit input is refused with an error naming the limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// Most metrics one payload may carry.
    pub max_metrics_per_payload: usize,
    /// Longest metric name, in bytes; a longer one is a per-metric error.
    pub max_name_bytes: usize,
    /// Longest topic name, in bytes.
    pub max_topic_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 1024 * 1024,
            max_metrics_per_payload: 10_000,
            max_name_bytes: 512,
            max_topic_bytes: 1024,
        }
    }
}

/// Why a payload was refused as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Larger than [`Limits::max_payload_bytes`].
    #[error("payload is {size} bytes, the limit max_payload_bytes is {max}")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// More metrics than [`Limits::max_metrics_per_payload`].
    #[error("payload has more than {max} metrics (limit max_metrics_per_payload)")]
    TooManyMetrics {
        /// The limit.
        max: usize,
    },
    /// Not a well-formed `Payload` message.
    #[error("malformed protobuf at byte {at}: {reason}")]
    Malformed {
        /// Byte offset of the field where decoding failed (0 when prost reports it).
        at: usize,
        /// What is wrong.
        reason: String,
    },
}

impl PayloadError {
    /// A short machine-readable reason, for a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            PayloadError::TooLarge { .. } => "payload_too_large",
            PayloadError::TooManyMetrics { .. } => "too_many_metrics",
            PayloadError::Malformed { .. } => "malformed_protobuf",
        }
    }
}

fn malformed(at: usize, reason: impl Into<String>) -> PayloadError {
    PayloadError::Malformed {
        at,
        reason: reason.into(),
    }
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if i == 9 && b > 1 {
            return None; // more than 64 bits
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Checks the framing of the top-level fields of a `Payload` and counts its metrics,
/// refusing more than `limits.max_metrics_per_payload`. Does not allocate.
pub fn scan(buf: &[u8], limits: &Limits) -> Result<usize, PayloadError> {
    if buf.len() > limits.max_payload_bytes {
        return Err(PayloadError::TooLarge {
            size: buf.len(),
            max: limits.max_payload_bytes,
        });
    }
    let mut pos = 0;
    let mut metrics = 0usize;
    while pos < buf.len() {
        let at = pos;
        let key = varint(buf, &mut pos).ok_or_else(|| malformed(at, "truncated field key"))?;
        let (tag, wire) = (key >> 3, key & 7);
        if tag == 0 || tag > u64::from(u32::MAX >> 3) {
            return Err(malformed(at, format!("invalid field number {tag}")));
        }
        let expected = match tag {
            1 | 3 => Some(0),
            2 | 4 | 5 => Some(2),
            _ => None,
        };
        if let Some(e) = expected
            && e != wire
        {
            let name = ["", "timestamp", "metrics", "seq", "uuid", "body"];
            return Err(malformed(
                at,
                format!(
                    "field {tag} ({}) has wire type {wire}, expected {e}",
                    name.get(tag as usize).copied().unwrap_or_default()
                ),
            ));
        }
        let rest = buf.len() - pos;
        match wire {
            0 => {
                varint(buf, &mut pos)
                    .ok_or_else(|| malformed(at, format!("field {tag}: truncated varint")))?;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if rest < n {
                    return Err(malformed(
                        at,
                        format!("field {tag}: {n}-byte value but {rest} bytes remain"),
                    ));
                }
                pos += n;
            }
            2 => {
                let len = varint(buf, &mut pos)
                    .ok_or_else(|| malformed(at, format!("field {tag}: truncated length")))?;
                let rest = buf.len() - pos;
                if len > rest as u64 {
                    return Err(malformed(
                        at,
                        format!("field {tag} declares {len} bytes but {rest} remain"),
                    ));
                }
                pos += len as usize;
                if tag == 2 {
                    metrics += 1;
                    if metrics > limits.max_metrics_per_payload {
                        return Err(PayloadError::TooManyMetrics {
                            max: limits.max_metrics_per_payload,
                        });
                    }
                }
            }
            _ => {
                return Err(malformed(
                    at,
                    format!("field {tag}: unsupported wire type {wire}"),
                ));
            }
        }
    }
    Ok(metrics)
}

/// Decodes a `Payload` within `limits` (size, metric count, then the full protobuf decode).
pub fn decode(buf: &[u8], limits: &Limits) -> Result<proto::Payload, PayloadError> {
    scan(buf, limits)?;
    <proto::Payload as prost::Message>::decode(buf).map_err(|e| malformed(0, e.to_string()))
}

/// Encodes a `Payload` (for commands and tests).
pub fn encode(payload: &proto::Payload) -> Vec<u8> {
    prost::Message::encode_to_vec(payload)
}

/// A Sparkplug B `DataType` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // the variants are the specification's names
pub enum DataType {
    Unknown,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float,
    Double,
    Boolean,
    String,
    DateTime,
    Text,
    Uuid,
    DataSet,
    Bytes,
    File,
    Template,
    PropertySet,
    PropertySetList,
    Int8Array,
    Int16Array,
    Int32Array,
    Int64Array,
    UInt8Array,
    UInt16Array,
    UInt32Array,
    UInt64Array,
    FloatArray,
    DoubleArray,
    BooleanArray,
    StringArray,
    DateTimeArray,
    /// A code the specification does not define.
    Other(u32),
}

const CODES: [DataType; 35] = [
    DataType::Unknown,
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::UInt8,
    DataType::UInt16,
    DataType::UInt32,
    DataType::UInt64,
    DataType::Float,
    DataType::Double,
    DataType::Boolean,
    DataType::String,
    DataType::DateTime,
    DataType::Text,
    DataType::Uuid,
    DataType::DataSet,
    DataType::Bytes,
    DataType::File,
    DataType::Template,
    DataType::PropertySet,
    DataType::PropertySetList,
    DataType::Int8Array,
    DataType::Int16Array,
    DataType::Int32Array,
    DataType::Int64Array,
    DataType::UInt8Array,
    DataType::UInt16Array,
    DataType::UInt32Array,
    DataType::UInt64Array,
    DataType::FloatArray,
    DataType::DoubleArray,
    DataType::BooleanArray,
    DataType::StringArray,
    DataType::DateTimeArray,
];

impl DataType {
    /// The type with wire code `code`.
    pub fn from_code(code: u32) -> DataType {
        CODES
            .get(code as usize)
            .copied()
            .unwrap_or(DataType::Other(code))
    }

    /// The wire code.
    pub fn code(self) -> u32 {
        match self {
            DataType::Other(c) => c,
            t => CODES.iter().position(|c| *c == t).unwrap_or_default() as u32,
        }
    }

    /// True for the types decoded to a [`Value`] other than [`Value::Unsupported`].
    pub fn is_scalar(self) -> bool {
        matches!(self.code(), 1..=15 | 17)
    }

    /// The type a metric without a datatype (and none known from its birth) is read as,
    /// from the oneof field that carries its value: `int_value` → UInt32, `long_value` →
    /// UInt64, `string_value` → String, `bytes_value` → Bytes, and so on.
    pub fn inferred_from(raw: Option<&Raw>) -> DataType {
        match raw {
            None => DataType::Unknown,
            Some(Raw::IntValue(_)) => DataType::UInt32,
            Some(Raw::LongValue(_)) => DataType::UInt64,
            Some(Raw::FloatValue(_)) => DataType::Float,
            Some(Raw::DoubleValue(_)) => DataType::Double,
            Some(Raw::BooleanValue(_)) => DataType::Boolean,
            Some(Raw::StringValue(_)) => DataType::String,
            Some(Raw::BytesValue(_)) => DataType::Bytes,
            Some(Raw::DatasetValue(_)) => DataType::DataSet,
            Some(Raw::TemplateValue(_)) => DataType::Template,
            Some(Raw::ExtensionValue(_)) => DataType::Unknown,
        }
    }
}

/// A decoded metric value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Int8.
    Int8(i8),
    /// Int16.
    Int16(i16),
    /// Int32.
    Int32(i32),
    /// Int64.
    Int64(i64),
    /// UInt8.
    UInt8(u8),
    /// UInt16.
    UInt16(u16),
    /// UInt32.
    UInt32(u32),
    /// UInt64.
    UInt64(u64),
    /// Float.
    Float(f32),
    /// Double.
    Double(f64),
    /// Boolean.
    Boolean(bool),
    /// String.
    String(String),
    /// Text.
    Text(String),
    /// UUID, as the text sent.
    Uuid(String),
    /// DateTime, ms since the epoch.
    DateTime(u64),
    /// Bytes.
    Bytes(Vec<u8>),
    /// `is_null` was set.
    Null,
    /// A type this codec does not decode (DataSet, Template, File, PropertySet, arrays,
    /// extensions, unknown codes): kept so the metric is reported, not an error.
    Unsupported(DataType),
}

impl Value {
    /// The value as a number: every integer type, Float and Double. Booleans, strings,
    /// DateTime, bytes, null and unsupported values give `None`.
    pub fn as_f64(&self) -> Option<f64> {
        Some(match *self {
            Value::Int8(v) => f64::from(v),
            Value::Int16(v) => f64::from(v),
            Value::Int32(v) => f64::from(v),
            Value::Int64(v) => v as f64,
            Value::UInt8(v) => f64::from(v),
            Value::UInt16(v) => f64::from(v),
            Value::UInt32(v) => f64::from(v),
            Value::UInt64(v) => v as f64,
            Value::Float(v) => f64::from(v),
            Value::Double(v) => v,
            _ => return None,
        })
    }

    /// The value of a Boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Boolean(b) => Some(b),
            _ => None,
        }
    }

    /// The text of a String, Text or UUID.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Text(s) | Value::Uuid(s) => Some(s),
            _ => None,
        }
    }

    /// The data type this value is encoded as (`None` for [`Value::Null`]).
    pub fn datatype(&self) -> Option<DataType> {
        Some(match self {
            Value::Int8(_) => DataType::Int8,
            Value::Int16(_) => DataType::Int16,
            Value::Int32(_) => DataType::Int32,
            Value::Int64(_) => DataType::Int64,
            Value::UInt8(_) => DataType::UInt8,
            Value::UInt16(_) => DataType::UInt16,
            Value::UInt32(_) => DataType::UInt32,
            Value::UInt64(_) => DataType::UInt64,
            Value::Float(_) => DataType::Float,
            Value::Double(_) => DataType::Double,
            Value::Boolean(_) => DataType::Boolean,
            Value::String(_) => DataType::String,
            Value::Text(_) => DataType::Text,
            Value::Uuid(_) => DataType::Uuid,
            Value::DateTime(_) => DataType::DateTime,
            Value::Bytes(_) => DataType::Bytes,
            Value::Unsupported(t) => *t,
            Value::Null => return None,
        })
    }
}

/// Why one metric's value could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not null, yet no value field.
    #[error("{datatype:?} metric has no value and is_null is not set")]
    Missing {
        /// The metric's type.
        datatype: DataType,
    },
    /// The value is in a field that cannot carry the type.
    #[error("{datatype:?} metric carries its value in {field}")]
    WrongField {
        /// The metric's type.
        datatype: DataType,
        /// The proto field used.
        field: &'static str,
    },
    /// An integer outside the type's range.
    #[error("{datatype:?} metric value {raw} is out of range")]
    OutOfRange {
        /// The metric's type.
        datatype: DataType,
        /// The value on the wire.
        raw: u64,
    },
}

/// Raw integer and the width of the field it came in (32 for `int_value`, 64 for `long_value`).
fn raw_int(raw: &Raw) -> Option<(u64, u32)> {
    match *raw {
        Raw::IntValue(v) => Some((u64::from(v), 32)),
        Raw::LongValue(v) => Some((v, 64)),
        _ => None,
    }
}

/// A signed integer of `bits` bits sent in a field of `field_bits` bits. Two encodings are in
/// use: two's complement at the type's width (the specification and Tahu's Python helper:
/// Int8 −1 is 255) and sign-extended to the field width (a host casting the value to a
/// 32- or 64-bit int: Int8 −1 is 0xFFFF_FFFF). Both decode.
fn signed(raw: u64, field_bits: u32, bits: u32) -> Option<i64> {
    let half = 1i64 << (bits - 1);
    if bits < 64 && raw < (1u64 << bits) {
        let v = raw as i64;
        return Some(if v >= half { v - (half << 1) } else { v });
    }
    let v = if field_bits == 32 {
        i64::from(raw as u32 as i32)
    } else {
        raw as i64
    };
    (bits == 64 || (-half..half).contains(&v)).then_some(v)
}

/// Reads a metric's value as `datatype`. Integers are accepted from `int_value` or
/// `long_value` (encoders differ; the range is checked), Float/Double from either float field.
pub fn value_of(datatype: DataType, is_null: bool, raw: Option<&Raw>) -> Result<Value, ValueError> {
    use DataType as T;
    if is_null {
        return Ok(Value::Null);
    }
    let Some(raw) = raw else {
        return if datatype.is_scalar() {
            Err(ValueError::Missing { datatype })
        } else {
            Ok(Value::Unsupported(datatype))
        };
    };
    let wrong = || ValueError::WrongField {
        datatype,
        field: raw.field_name(),
    };
    let int = |bits: u32, is_signed: bool| -> Result<i128, ValueError> {
        let (v, field_bits) = raw_int(raw).ok_or_else(wrong)?;
        let out = if is_signed {
            signed(v, field_bits, bits).map(i128::from)
        } else {
            (bits == 64 || v < (1u64 << bits)).then_some(i128::from(v))
        };
        out.ok_or(ValueError::OutOfRange { datatype, raw: v })
    };
    // The range was checked by `int`, so these conversions cannot fail.
    let cast = |v: i128| -> Result<Value, ValueError> {
        let bad = || ValueError::OutOfRange {
            datatype,
            raw: v as u64,
        };
        Ok(match datatype {
            T::Int8 => Value::Int8(i8::try_from(v).map_err(|_| bad())?),
            T::Int16 => Value::Int16(i16::try_from(v).map_err(|_| bad())?),
            T::Int32 => Value::Int32(i32::try_from(v).map_err(|_| bad())?),
            T::Int64 => Value::Int64(i64::try_from(v).map_err(|_| bad())?),
            T::UInt8 => Value::UInt8(u8::try_from(v).map_err(|_| bad())?),
            T::UInt16 => Value::UInt16(u16::try_from(v).map_err(|_| bad())?),
            T::UInt32 => Value::UInt32(u32::try_from(v).map_err(|_| bad())?),
            T::UInt64 => Value::UInt64(u64::try_from(v).map_err(|_| bad())?),
            _ => Value::DateTime(u64::try_from(v).map_err(|_| bad())?),
        })
    };
    match datatype {
        T::Int8 => cast(int(8, true)?),
        T::Int16 => cast(int(16, true)?),
        T::Int32 => cast(int(32, true)?),
        T::Int64 => cast(int(64, true)?),
        T::UInt8 => cast(int(8, false)?),
        T::UInt16 => cast(int(16, false)?),
        T::UInt32 => cast(int(32, false)?),
        T::UInt64 | T::DateTime => cast(int(64, false)?),
        T::Float => match *raw {
            Raw::FloatValue(v) => Ok(Value::Float(v)),
            Raw::DoubleValue(v) => Ok(Value::Float(v as f32)),
            _ => Err(wrong()),
        },
        T::Double => match *raw {
            Raw::DoubleValue(v) => Ok(Value::Double(v)),
            Raw::FloatValue(v) => Ok(Value::Double(f64::from(v))),
            _ => Err(wrong()),
        },
        T::Boolean => match *raw {
            Raw::BooleanValue(b) => Ok(Value::Boolean(b)),
            _ => Err(wrong()),
        },
        T::String | T::Text | T::Uuid => match raw {
            Raw::StringValue(s) => Ok(match datatype {
                T::String => Value::String(s.clone()),
                T::Text => Value::Text(s.clone()),
                _ => Value::Uuid(s.clone()),
            }),
            _ => Err(wrong()),
        },
        T::Bytes => match raw {
            Raw::BytesValue(b) => Ok(Value::Bytes(b.clone())),
            _ => Err(wrong()),
        },
        other => Ok(Value::Unsupported(other)),
    }
}

/// Builds a protobuf metric carrying `value` in the field the specification assigns to its
/// type (signed integers two's complement at the type's width, as in `int_value` 255 for
/// Int8 −1). [`Value::Null`] sets `is_null` with `datatype`; [`Value::Unsupported`] writes
/// the type and no value. `datatype` is ignored for other values (their own type is used).
pub fn encode_metric(
    name: Option<&str>,
    alias: Option<u64>,
    datatype: DataType,
    value: &Value,
) -> proto::Metric {
    let raw = match value {
        Value::Int8(v) => Some(Raw::IntValue(u32::from(*v as u8))),
        Value::Int16(v) => Some(Raw::IntValue(u32::from(*v as u16))),
        Value::Int32(v) => Some(Raw::IntValue(*v as u32)),
        Value::Int64(v) => Some(Raw::LongValue(*v as u64)),
        Value::UInt8(v) => Some(Raw::IntValue(u32::from(*v))),
        Value::UInt16(v) => Some(Raw::IntValue(u32::from(*v))),
        Value::UInt32(v) => Some(Raw::IntValue(*v)),
        Value::UInt64(v) | Value::DateTime(v) => Some(Raw::LongValue(*v)),
        Value::Float(v) => Some(Raw::FloatValue(*v)),
        Value::Double(v) => Some(Raw::DoubleValue(*v)),
        Value::Boolean(v) => Some(Raw::BooleanValue(*v)),
        Value::String(s) | Value::Text(s) | Value::Uuid(s) => Some(Raw::StringValue(s.clone())),
        Value::Bytes(b) => Some(Raw::BytesValue(b.clone())),
        Value::Null | Value::Unsupported(_) => None,
    };
    proto::Metric {
        name: name.map(str::to_owned),
        alias,
        timestamp: None,
        datatype: Some(value.datatype().unwrap_or(datatype).code()),
        is_historical: None,
        is_transient: None,
        is_null: matches!(value, Value::Null).then_some(true),
        value: raw,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn lim() -> Limits {
        Limits::default()
    }

    #[test]
    fn datatype_codes_round_trip() {
        for c in 0..40 {
            assert_eq!(DataType::from_code(c).code(), c);
        }
        assert_eq!(DataType::from_code(15), DataType::Uuid);
        assert_eq!(DataType::from_code(17), DataType::Bytes);
        assert_eq!(DataType::from_code(34), DataType::DateTimeArray);
        assert_eq!(DataType::from_code(35), DataType::Other(35));
    }

    #[test]
    fn every_value_round_trips_through_the_wire() {
        let values = [
            Value::Int8(-128),
            Value::Int8(-1),
            Value::Int8(127),
            Value::Int16(-32768),
            Value::Int32(i32::MIN),
            Value::Int64(i64::MIN),
            Value::Int64(-1),
            Value::UInt8(255),
            Value::UInt16(65535),
            Value::UInt32(u32::MAX),
            Value::UInt64(u64::MAX),
            Value::Float(1.5),
            Value::Double(-2.25e300),
            Value::Boolean(true),
            Value::String("héllo".into()),
            Value::Text("long text".into()),
            Value::Uuid("0f8fad5b-d9cb-469f-a165-70867728950e".into()),
            Value::DateTime(1_700_000_000_123),
            Value::Bytes(vec![0, 1, 255]),
        ];
        let p = proto::Payload {
            timestamp: Some(1),
            seq: Some(0),
            metrics: values
                .iter()
                .enumerate()
                .map(|(i, v)| encode_metric(Some(&format!("m{i}")), None, DataType::Unknown, v))
                .collect(),
            ..Default::default()
        };
        let back = decode(&encode(&p), &lim()).unwrap();
        assert_eq!(back, p);
        for (m, v) in back.metrics.iter().zip(&values) {
            let dt = DataType::from_code(m.datatype.unwrap());
            assert_eq!(&value_of(dt, false, m.value.as_ref()).unwrap(), v);
        }
    }

    #[test]
    fn signed_integers_accept_both_encodings() {
        let i = |v: u32| Raw::IntValue(v);
        assert_eq!(
            value_of(DataType::Int8, false, Some(&i(255))),
            Ok(Value::Int8(-1))
        );
        assert_eq!(
            value_of(DataType::Int8, false, Some(&i(0xFFFF_FFFF))),
            Ok(Value::Int8(-1))
        );
        assert_eq!(
            value_of(DataType::Int16, false, Some(&i(0xFFFF_8000))),
            Ok(Value::Int16(i16::MIN))
        );
        assert_eq!(
            value_of(DataType::Int8, false, Some(&i(256))),
            Err(ValueError::OutOfRange {
                datatype: DataType::Int8,
                raw: 256
            })
        );
        assert_eq!(
            value_of(DataType::Int8, false, Some(&Raw::LongValue(u64::MAX))),
            Ok(Value::Int8(-1))
        );
        assert_eq!(
            value_of(DataType::UInt8, false, Some(&i(256))),
            Err(ValueError::OutOfRange {
                datatype: DataType::UInt8,
                raw: 256
            })
        );
        // UInt32 in long_value, as Tahu's Java encoder writes it.
        assert_eq!(
            value_of(DataType::UInt32, false, Some(&Raw::LongValue(7))),
            Ok(Value::UInt32(7))
        );
        assert!(value_of(DataType::UInt32, false, Some(&Raw::LongValue(1 << 32))).is_err());
        assert_eq!(
            value_of(
                DataType::Int32,
                false,
                Some(&Raw::LongValue((-5i64) as u64))
            ),
            Ok(Value::Int32(-5))
        );
    }

    #[test]
    fn wrong_field_missing_null_and_unsupported() {
        let e = value_of(
            DataType::Boolean,
            false,
            Some(&Raw::StringValue("x".into())),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Boolean metric carries its value in string_value"
        );
        assert!(matches!(
            value_of(DataType::Int32, false, Some(&Raw::FloatValue(1.0))),
            Err(ValueError::WrongField { .. })
        ));
        assert_eq!(
            value_of(DataType::Double, false, None),
            Err(ValueError::Missing {
                datatype: DataType::Double
            })
        );
        assert_eq!(value_of(DataType::Double, true, None), Ok(Value::Null));
        assert_eq!(
            value_of(
                DataType::DataSet,
                false,
                Some(&Raw::DatasetValue(vec![8, 1]))
            ),
            Ok(Value::Unsupported(DataType::DataSet))
        );
        assert_eq!(
            value_of(DataType::Template, false, None),
            Ok(Value::Unsupported(DataType::Template))
        );
        assert_eq!(
            value_of(DataType::Other(99), false, Some(&Raw::IntValue(1))),
            Ok(Value::Unsupported(DataType::Other(99)))
        );
    }

    #[test]
    fn as_f64_and_friends() {
        assert_eq!(Value::Int8(-3).as_f64(), Some(-3.0));
        assert_eq!(Value::UInt64(10).as_f64(), Some(10.0));
        assert_eq!(Value::Float(0.5).as_f64(), Some(0.5));
        assert_eq!(Value::Boolean(true).as_f64(), None);
        assert_eq!(Value::Boolean(true).as_bool(), Some(true));
        assert_eq!(Value::Text("a".into()).as_str(), Some("a"));
        assert_eq!(Value::String("1".into()).as_f64(), None);
    }

    #[test]
    fn malformed_inputs_are_errors_with_a_position() {
        // Truncated key, truncated varint, huge declared length, wrong wire type, groups.
        let cases: [(&[u8], &str); 7] = [
            (&[0x80], "truncated field key"),
            (&[0x08, 0xff], "field 1: truncated varint"),
            (
                &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2],
                "field 2 declares 4294967295 bytes but 2 remain",
            ),
            (
                &[0x0a, 0x00],
                "field 1 (timestamp) has wire type 2, expected 0",
            ),
            (
                &[0x10, 0x01],
                "field 2 (metrics) has wire type 0, expected 2",
            ),
            (&[0x33, 0x34], "field 6: unsupported wire type 3"),
            (&[0x00], "invalid field number 0"),
        ];
        for (bytes, want) in cases {
            let e = decode(bytes, &lim()).unwrap_err();
            assert!(e.to_string().contains(want), "{bytes:?}: {e}");
            assert_eq!(e.reason(), "malformed_protobuf");
        }
        // 11-byte varint.
        let mut long = vec![0x08];
        long.extend([0xff; 10]);
        long.push(0x01);
        assert!(decode(&long, &lim()).is_err());
        // Inside a metric: name is not UTF-8, and a truncated inner field.
        let bad_name = [0x12, 0x03, 0x0a, 0x01, 0xff];
        let e = decode(&bad_name, &lim()).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
        let inner_trunc = [0x12, 0x02, 0x0a, 0x05];
        assert!(decode(&inner_trunc, &lim()).is_err());
        // Wrong wire type inside a metric (alias as length-delimited).
        let inner_wire = [0x12, 0x02, 0x12, 0x00];
        assert!(decode(&inner_wire, &lim()).is_err());
    }

    #[test]
    fn unknown_fields_and_extensions_are_skipped() {
        let p = proto::Payload {
            timestamp: Some(5),
            ..Default::default()
        };
        let mut bytes = encode(&p);
        bytes.extend([0x30, 0x01, 0x3a, 0x01, 0x41]); // fields 6 (varint) and 7 (bytes)
        // A metric with metadata (8) and properties (9), which the codec skips.
        bytes.extend([0x12, 0x06, 0x0a, 0x01, b'a', 0x42, 0x01, 0x00]);
        let back = decode(&bytes, &lim()).unwrap();
        assert_eq!(back.timestamp, Some(5));
        assert_eq!(back.metrics.len(), 1);
        assert_eq!(back.metrics[0].name.as_deref(), Some("a"));
    }

    #[test]
    fn limits_are_named() {
        let small = Limits {
            max_payload_bytes: 4,
            max_metrics_per_payload: 2,
            ..Limits::default()
        };
        let e = decode(&[0; 5], &small).unwrap_err();
        assert_eq!(
            e.to_string(),
            "payload is 5 bytes, the limit max_payload_bytes is 4"
        );
        let small = Limits {
            max_metrics_per_payload: 2,
            ..Limits::default()
        };
        let e = decode(&[0x12, 0x00, 0x12, 0x00, 0x12, 0x00], &small).unwrap_err();
        assert_eq!(e.reason(), "too_many_metrics");
        assert!(e.to_string().contains("max_metrics_per_payload"), "{e}");
        assert_eq!(scan(&[0x12, 0x00, 0x12, 0x00], &small), Ok(2));
    }
}
