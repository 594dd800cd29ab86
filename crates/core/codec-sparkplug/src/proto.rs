//! The Sparkplug B `Payload` and `Metric` protobuf messages, as hand-written `prost` structs
//! (no `protoc` at build time).
//!
//! Field names, numbers and types follow Eclipse Tahu's `sparkplug_b.proto` (proto2, package
//! `org.eclipse.tahu.protobuf`); `proto/sparkplug_b.proto` in this crate restates it. proto2
//! `optional` scalars are `Option`s, so presence is kept (a metric with `alias` 0 is not a
//! metric without alias).
//!
//! Deliberate departures, all wire-compatible:
//! - `dataset_value`, `template_value` and `extension_value` are kept as the raw bytes of the
//!   sub-message (a length-delimited field either way): the codec reports them as unsupported,
//!   and not parsing them keeps nested templates from costing recursion or memory;
//! - `metadata` (8) and `properties` (9) are not declared, so they are skipped like unknown
//!   fields, as are the payload's extensions (6 and up).

/// A Sparkplug B payload: what every NBIRTH, NDATA, NCMD, NDEATH, DBIRTH, DDATA, DCMD and
/// DDEATH message carries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// Sending time, ms since the epoch.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// Sequence number, 0..=255 wrapping (absent in NDEATH and commands).
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
    /// Optional UUID of the payload's schema.
    #[prost(string, optional, tag = "4")]
    pub uuid: Option<String>,
    /// Optional application-specific body.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub body: Option<Vec<u8>>,
}

/// One metric of a payload.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Metric name; may be left out in DATA/CMD messages when an alias was given at birth.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Alias assigned at birth.
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// Acquisition time, ms since the epoch.
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// A `DataType` code (see [`crate::DataType`]); required at birth.
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// Historical value: not the current state.
    #[prost(bool, optional, tag = "5")]
    pub is_historical: Option<bool>,
    /// Transient value: not to be stored.
    #[prost(bool, optional, tag = "6")]
    pub is_transient: Option<bool>,
    /// Explicit null value.
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// The value.
    #[prost(
        oneof = "metric::Value",
        tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19"
    )]
    pub value: Option<metric::Value>,
}

/// The `value` oneof of [`Metric`].
pub mod metric {
    /// Which field of the `value` oneof carries the metric's value.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `int_value`: Int8/16/32 (two's complement) and UInt8/16/32.
        #[prost(uint32, tag = "10")]
        IntValue(u32),
        /// `long_value`: Int64 (two's complement), UInt64 and DateTime.
        #[prost(uint64, tag = "11")]
        LongValue(u64),
        /// `float_value`.
        #[prost(float, tag = "12")]
        FloatValue(f32),
        /// `double_value`.
        #[prost(double, tag = "13")]
        DoubleValue(f64),
        /// `boolean_value`.
        #[prost(bool, tag = "14")]
        BooleanValue(bool),
        /// `string_value`: String, Text and UUID.
        #[prost(string, tag = "15")]
        StringValue(String),
        /// `bytes_value`: Bytes, File and the array types.
        #[prost(bytes = "vec", tag = "16")]
        BytesValue(Vec<u8>),
        /// `dataset_value`, kept as the encoded `DataSet` message.
        #[prost(bytes = "vec", tag = "17")]
        DatasetValue(Vec<u8>),
        /// `template_value`, kept as the encoded `Template` message.
        #[prost(bytes = "vec", tag = "18")]
        TemplateValue(Vec<u8>),
        /// `extension_value`, kept as the encoded `MetricValueExtension` message.
        #[prost(bytes = "vec", tag = "19")]
        ExtensionValue(Vec<u8>),
    }

    impl Value {
        /// The proto field name, for error messages.
        pub fn field_name(&self) -> &'static str {
            match self {
                Value::IntValue(_) => "int_value",
                Value::LongValue(_) => "long_value",
                Value::FloatValue(_) => "float_value",
                Value::DoubleValue(_) => "double_value",
                Value::BooleanValue(_) => "boolean_value",
                Value::StringValue(_) => "string_value",
                Value::BytesValue(_) => "bytes_value",
                Value::DatasetValue(_) => "dataset_value",
                Value::TemplateValue(_) => "template_value",
                Value::ExtensionValue(_) => "extension_value",
            }
        }
    }
}
