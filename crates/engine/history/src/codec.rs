//! Record encoding: how reports become bytes inside a segment, and back.
//!
//! This module owns the per-segment dictionaries and the compact position record. A segment is
//! a sequence of records (the frames around them are [`crate::format`]'s business):
//!
//! - `0x81` **string**: `len varint, utf-8 bytes`; defines string id `n` (0, 1, 2, … per segment).
//!   Types, `how`, classifications, groups, provenance, attribute names and id sources are
//!   strings, so each is spelled out once per segment.
//! - `0x82` **stream**: defines stream id `n` for one distinct (uid, type, how, callsign, label,
//!   provenance) tuple: `uid (len, bytes)`, `type (0 | string id + 1)`, `how (0 | id + 1)`,
//!   `callsign (0 | len + 1, bytes)`, `label (0 | groups + 1, classification id, group ids…)`,
//!   `provenance source id, identity id`.
//! - `0x00..=0x7F` **position**: the first byte is a flag set (bit 7 clear):
//!   `flags, stream varint, [flags2 if MORE], time, lat, lon, [hae], [ce], [le], [course],
//!   [speed], [stale], [start], [attributes], [id]`.
//!
//! Position fields are deltas against the previous record *of the same stream in the same
//! segment* (zigzag varints), which is what makes a moving entity cost ~14 bytes a report:
//! a stream is decoded from its first record in the segment onwards, both by replay (in file
//! order) and by track queries (following the stream's offsets).
//!
//! Quantisation (what a stored report comes back as, see [`quantize`]):
//! lat/lon to 1e-7 degree (~1 cm), hae/ce/le to 0.1 m, course to 0.1 degree, speed to 1 cm/s.
//! Times, attributes, ids, strings and which optional fields were present are kept exactly.

use std::collections::HashMap;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use rampart_model::{AttrValue, Label, Provenance, Report, ReportId, Text, Timestamp, Uid};

use crate::HistoryError;

/// First byte of a string definition record.
pub(crate) const REC_STRING: u8 = 0x81;
/// First byte of a stream definition record.
pub(crate) const REC_STREAM: u8 = 0x82;

// Position flags, first byte (bit 7 is clear for positions, set for dictionary records).
const F_HAE: u8 = 0x01;
const F_CE: u8 = 0x02;
const F_LE: u8 = 0x04;
const F_COURSE: u8 = 0x08;
const F_SPEED: u8 = 0x10;
/// `stale - time` is a whole, non-negative number of seconds, stored in seconds (1 byte for 60 s).
const F_STALE_S: u8 = 0x20;
/// A second flag byte follows the stream number.
const F_MORE: u8 = 0x40;
// Second flag byte: the rare fields.
const G_STALE_MS: u8 = 0x01;
const G_START: u8 = 0x02;
const G_ATTRS: u8 = 0x04;
const G_ID_KEY: u8 = 0x08;
const G_ID_SEQ: u8 = 0x10;
const G_KNOWN: u8 = 0x1F;

const ATTR_NUM: u8 = 0;
const ATTR_TEXT: u8 = 1;

/// Sentinel for "no next stream" in the encoder's hash and uid chains.
const NONE: u32 = u32::MAX;

// ---------------------------------------------------------------------------------------------
// Quantisation

fn q_deg(v: f64) -> i64 {
    // `as` saturates (NaN → 0), so unvalidated input cannot panic here.
    (v * 1e7).round() as i64
}
fn q_dm(v: f64) -> i64 {
    (v * 10.0).round() as i64
}
fn q_course(v: f64) -> i64 {
    (v * 10.0).round() as i64
}
fn q_speed(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

/// `report` as it comes back from the store: lat/lon rounded to 1e-7 degree, hae, ce and le to
/// 0.1 m, course to 0.1 degree and speed to 0.01 m/s. Every other field is stored exactly.
pub fn quantize(report: &Report) -> Report {
    let mut r = report.clone();
    r.lat = q_deg(r.lat) as f64 / 1e7;
    r.lon = q_deg(r.lon) as f64 / 1e7;
    r.hae = r.hae.map(|v| q_dm(v) as f64 / 10.0);
    r.ce = r.ce.map(|v| q_dm(v).max(0) as f64 / 10.0);
    r.le = r.le.map(|v| q_dm(v).max(0) as f64 / 10.0);
    r.course = r.course.map(|v| q_course(v) as f64 / 10.0);
    r.speed = r.speed.map(|v| q_speed(v) as f64 / 100.0);
    r
}

// ---------------------------------------------------------------------------------------------
// Varints

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_zz(buf: &mut Vec<u8>, v: i64) {
    put_varint(buf, zigzag(v));
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// A decoding failure at byte `pos` of the buffer being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// Position within the buffer handed to the [`Reader`].
    pub pos: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// A bounds-checked cursor over bytes: every read can fail, none can panic.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    /// Next byte to read.
    pub pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` starting at `pos`.
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }

    /// True when every byte has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            pos: self.pos,
            reason,
        }
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("record runs past the end of its frame"))?;
        self.pos += 1;
        Ok(b)
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.err("varint longer than 10 bytes"));
            }
        }
    }

    fn zz(&mut self) -> Result<i64, DecodeError> {
        Ok(unzigzag(self.varint()?))
    }

    /// A varint that must fit a `u32` (ids).
    pub fn u32v(&mut self) -> Result<u32, DecodeError> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| self.err("id does not fit 32 bits"))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("length runs past the end of its frame"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn text(&mut self) -> Result<Text, DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length does not fit memory"))?;
        self.text_of_len(n)
    }

    fn text_of_len(&mut self, n: usize) -> Result<Text, DecodeError> {
        let start = self.pos;
        let b = self.bytes(n)?;
        std::str::from_utf8(b)
            .map(Text::from)
            .map_err(|_| DecodeError {
                pos: start,
                reason: "text is not UTF-8",
            })
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }
}

// ---------------------------------------------------------------------------------------------
// Delta state

/// The previous values of one stream, which its next record is a delta against.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Delta {
    time: i64,
    lat: i64,
    lon: i64,
    hae: i64,
    course: i64,
    speed: i64,
}

// ---------------------------------------------------------------------------------------------
// Encoder

/// The identity of a stream: the fields a position record does not carry.
struct StreamKey {
    uid: Uid,
    cot_type: Option<Text>,
    how: Option<Text>,
    callsign: Option<Text>,
    label: Option<Label>,
    provenance: Provenance,
}

impl StreamKey {
    fn matches(&self, r: &Report) -> bool {
        self.uid == r.uid
            && self.cot_type == r.cot_type
            && self.how == r.how
            && self.callsign == r.callsign
            && self.label == r.label
            && self.provenance == r.provenance
    }
}

/// One stream of the segment being written.
struct EncStream {
    key: StreamKey,
    delta: Delta,
    next_same_hash: u32,
    next_same_uid: u32,
    dict_offset: u32,
    offsets: Vec<u32>,
}

/// The dictionaries and index of the segment being written. Bounded by `max_dict` entries
/// (strings plus streams); when full the writer rolls to a new segment.
pub(crate) struct SegEncoder {
    hasher: RandomState,
    strings: HashMap<Text, u32, RandomState>,
    /// Segment offset of each string definition, by string id.
    pub string_offsets: Vec<u32>,
    by_hash: HashMap<u64, u32, RandomState>,
    by_uid: HashMap<Uid, u32, RandomState>,
    streams: Vec<EncStream>,
    max_dict: usize,
    scratch: Vec<u32>,
    /// Attribute names of the last report that had attributes, and their string ids. Reports
    /// from one producer carry the same names, so a match costs a few compares instead of a
    /// hash lookup per name. Bounded by one report's attribute count.
    attr_keys: Vec<Text>,
    attr_ids: Vec<u32>,
    /// The last string interned at each call site ([`Site`]) and its id: consecutive stream
    /// definitions mostly share type, how, label and provenance, so a compare replaces a hash
    /// lookup.
    recent: [Option<(Text, u32)>; SITES],
    /// Position records encoded.
    pub reports: u64,
    /// Smallest report time encoded (`i64::MAX` when none).
    pub min_time: i64,
    /// Largest report time encoded (`i64::MIN` when none).
    pub max_time: i64,
}

/// The call sites of [`SegEncoder::intern_at`], each with its own one-entry cache.
#[derive(Clone, Copy)]
enum Site {
    Type,
    How,
    Class,
    Group,
    Source,
    Identity,
    SeqSource,
}

/// Number of [`Site`]s.
const SITES: usize = 7;

/// A generous upper bound of a report's encoded size, checked before anything is written so a
/// report that cannot fit 32-bit offsets is refused whole. `attrs` is the attributes' part,
/// [`attr_bound`] summed (the caller computes it in its own pass over them).
fn size_bound(r: &Report, attrs: usize) -> usize {
    let label = r.label.as_ref().map_or(0, |l| {
        l.classification.len() + l.releasability.iter().map(|g| g.len() + 10).sum::<usize>()
    });
    let id = match &r.id {
        Some(ReportId::Key(k)) => k.len(),
        Some(ReportId::Seq { source, .. }) => source.len(),
        None => 0,
    } + 30;
    let strs = r.uid.len()
        + r.cot_type.as_ref().map_or(0, |s| s.len())
        + r.how.as_ref().map_or(0, |s| s.len())
        + r.callsign.as_ref().map_or(0, |s| s.len())
        + r.provenance.source.len()
        + r.provenance.identity.len();
    200 + label + attrs + id + strs
}

/// One attribute's part of [`size_bound`].
fn attr_bound(k: &Text, v: &AttrValue) -> usize {
    k.len()
        + 30
        + match v {
            AttrValue::Num(_) => 8,
            AttrValue::Text(t) => t.len(),
        }
}

impl SegEncoder {
    /// An empty encoder for a new segment holding at most `max_dict` strings plus streams.
    pub fn new(max_dict: usize) -> Self {
        SegEncoder {
            hasher: RandomState::default(),
            strings: HashMap::default(),
            string_offsets: Vec::new(),
            by_hash: HashMap::default(),
            by_uid: HashMap::default(),
            streams: Vec::new(),
            max_dict,
            scratch: Vec::new(),
            attr_keys: Vec::new(),
            attr_ids: Vec::new(),
            recent: Default::default(),
            reports: 0,
            min_time: i64::MAX,
            max_time: i64::MIN,
        }
    }

    /// Turns the encoder into the segment's index (dictionaries and delta state are dropped).
    pub fn into_index(self) -> crate::format::SegIndex {
        crate::format::SegIndex {
            streams: self
                .streams
                .into_iter()
                .map(|s| crate::format::IdxStream {
                    uid: s.key.uid,
                    dict_offset: s.dict_offset,
                    offsets: s.offsets,
                })
                .collect(),
            string_offsets: self.string_offsets,
            reports: self.reports,
            min_time: self.min_time,
            max_time: self.max_time,
            file_len: 0,
            valid_len: 0,
        }
    }

    /// `uid`'s streams in this segment: `(definition offset, record offsets)`.
    pub fn lookup(&self, uid: &str) -> Vec<(u32, Vec<u32>)> {
        self.streams_of(uid)
            .into_iter()
            .filter_map(|s| self.streams.get(s as usize))
            .map(|s| (s.dict_offset, s.offsets.clone()))
            .collect()
    }

    /// Stream ids of `uid` in this segment.
    pub fn streams_of(&self, uid: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut s = self.by_uid.get(uid).copied().unwrap_or(NONE);
        while let Some(st) = self.streams.get(s as usize) {
            out.push(s);
            s = st.next_same_uid;
        }
        out
    }

    fn intern(&mut self, s: &Text, buf: &mut Vec<u8>, base: u64) -> u32 {
        if let Some(&id) = self.strings.get(s) {
            return id;
        }
        let id = self.string_offsets.len() as u32;
        // Offsets fit u32: `encode` checked the bound before writing anything.
        self.string_offsets.push((base + buf.len() as u64) as u32);
        buf.push(REC_STRING);
        put_bytes(buf, s.as_bytes());
        self.strings.insert(s.clone(), id);
        id
    }

    /// [`SegEncoder::intern`] through the one-entry cache of call site `site`.
    fn intern_at(&mut self, site: Site, s: &Text, buf: &mut Vec<u8>, base: u64) -> u32 {
        if let Some((last, id)) = &self.recent[site as usize]
            && last == s
        {
            return *id;
        }
        let id = self.intern(s, buf, base);
        self.recent[site as usize] = Some((s.clone(), id));
        id
    }

    fn intern_opt(&mut self, site: Site, s: &Option<Text>, buf: &mut Vec<u8>, base: u64) -> u64 {
        match s {
            Some(s) => u64::from(self.intern_at(site, s, buf, base)) + 1,
            None => 0,
        }
    }

    fn find_stream(&self, h: u64, r: &Report) -> Option<u32> {
        let mut s = self.by_hash.get(&h).copied().unwrap_or(NONE);
        while let Some(st) = self.streams.get(s as usize) {
            if st.key.matches(r) {
                return Some(s);
            }
            s = st.next_same_hash;
        }
        None
    }

    /// Defines `r`'s stream, whose key hashes to `h`; `head` is the uid's newest stream
    /// (`NONE` for a uid new to the segment).
    fn define_stream(
        &mut self,
        h: u64,
        head: u32,
        r: &Report,
        buf: &mut Vec<u8>,
        base: u64,
    ) -> u32 {
        // Strings first: a stream record may only refer to strings defined before it.
        let ty = self.intern_opt(Site::Type, &r.cot_type, buf, base);
        let how = self.intern_opt(Site::How, &r.how, buf, base);
        let mut label_ids = std::mem::take(&mut self.scratch);
        label_ids.clear();
        if let Some(l) = &r.label {
            label_ids.push(self.intern_at(Site::Class, &l.classification, buf, base));
            for g in &l.releasability {
                label_ids.push(self.intern_at(Site::Group, g, buf, base));
            }
        }
        let src = self.intern_at(Site::Source, &r.provenance.source, buf, base);
        let ident = self.intern_at(Site::Identity, &r.provenance.identity, buf, base);

        let id = self.streams.len() as u32;
        let dict_offset = (base + buf.len() as u64) as u32;
        buf.push(REC_STREAM);
        put_bytes(buf, r.uid.as_bytes());
        put_varint(buf, ty);
        put_varint(buf, how);
        match &r.callsign {
            Some(c) => {
                put_varint(buf, c.len() as u64 + 1);
                buf.extend_from_slice(c.as_bytes());
            }
            None => put_varint(buf, 0),
        }
        if label_ids.is_empty() {
            put_varint(buf, 0);
        } else {
            put_varint(buf, label_ids.len() as u64); // = groups + 1
            for &l in &label_ids {
                put_varint(buf, u64::from(l));
            }
        }
        put_varint(buf, u64::from(src));
        put_varint(buf, u64::from(ident));
        self.scratch = label_ids;

        let next_same_hash = self.by_hash.insert(h, id).unwrap_or(NONE);
        // A uid new to the segment needs no second lookup.
        let held = if head == NONE {
            None
        } else {
            self.by_uid.get_mut(&r.uid)
        };
        let next_same_uid = match held {
            Some(head) => std::mem::replace(head, id),
            None => {
                self.by_uid.insert(r.uid.clone(), id);
                NONE
            }
        };
        self.streams.push(EncStream {
            key: StreamKey {
                uid: r.uid.clone(),
                cot_type: r.cot_type.clone(),
                how: r.how.clone(),
                callsign: r.callsign.clone(),
                label: r.label.clone(),
                provenance: r.provenance.clone(),
            },
            delta: Delta::default(),
            next_same_hash,
            next_same_uid,
            dict_offset,
            offsets: Vec::new(),
        });
        id
    }

    /// Appends `r` (and any dictionary records it needs) to `buf`, whose first byte lands at
    /// segment offset `base`. Returns `Ok(false)` without writing when the dictionary is full
    /// (the caller rolls to a new segment and retries).
    pub fn encode(
        &mut self,
        r: &Report,
        buf: &mut Vec<u8>,
        base: u64,
    ) -> Result<bool, HistoryError> {
        // One pass over the attributes: their size bound, and whether their names are the
        // last report's (whose string ids are then reused).
        let mut same_names = self.attr_keys.len() == r.attributes.len();
        let mut attrs = 0;
        for (i, (k, v)) in r.attributes.iter().enumerate() {
            attrs += attr_bound(k, v);
            same_names = same_names && self.attr_keys.get(i) == Some(k);
        }
        let bound = size_bound(r, attrs);
        if base + buf.len() as u64 + bound as u64 > u64::from(u32::MAX) {
            return Err(HistoryError::TooLarge(bound));
        }
        if self.reports > 0 {
            // Worst case of new dictionary entries this report can add; rolling a little early
            // near the limit keeps the check O(1) and never leaves a half-written report.
            let groups = r.label.as_ref().map_or(0, |l| l.releasability.len());
            let worst = 8 + groups + r.attributes.len();
            if self.strings.len() + self.streams.len() + worst > self.max_dict {
                return Ok(false);
            }
        }
        // Most reports continue their uid's newest stream: check it before hashing the key.
        let head = self.by_uid.get(&r.uid).copied().unwrap_or(NONE);
        let stream = match self.streams.get(head as usize) {
            Some(st) if st.key.matches(r) => head,
            _ => {
                let h = self.hasher.hash_one((
                    &r.uid,
                    &r.cot_type,
                    &r.how,
                    &r.callsign,
                    &r.label,
                    &r.provenance,
                ));
                match self.find_stream(h, r) {
                    Some(s) => s,
                    None => self.define_stream(h, head, r, buf, base),
                }
            }
        };
        // Attribute names and id sources are strings too; define them before the record.
        if !same_names && !r.attributes.is_empty() {
            let mut ids = std::mem::take(&mut self.attr_ids);
            ids.clear();
            self.attr_keys.clear();
            for k in r.attributes.keys() {
                ids.push(self.intern(k, buf, base));
                self.attr_keys.push(k.clone());
            }
            self.attr_ids = ids;
        }
        let seq_source = match &r.id {
            Some(ReportId::Seq { source, .. }) => {
                self.intern_at(Site::SeqSource, source, buf, base)
            }
            _ => 0,
        };

        let offset = (base + buf.len() as u64) as u32;
        let st = &mut self.streams[stream as usize];
        st.offsets.push(offset);
        let t = r.time.0;
        let lat = q_deg(r.lat);
        let lon = q_deg(r.lon);
        let mut f = 0u8;
        let mut g = 0u8;
        if r.hae.is_some() {
            f |= F_HAE;
        }
        if r.ce.is_some() {
            f |= F_CE;
        }
        if r.le.is_some() {
            f |= F_LE;
        }
        if r.course.is_some() {
            f |= F_COURSE;
        }
        if r.speed.is_some() {
            f |= F_SPEED;
        }
        let stale_d = r.stale.map(|s| s.0.wrapping_sub(t));
        match stale_d {
            Some(d) if d >= 0 && d % 1000 == 0 => f |= F_STALE_S,
            Some(_) => g |= G_STALE_MS,
            None => {}
        }
        if r.start.is_some() {
            g |= G_START;
        }
        if !r.attributes.is_empty() {
            g |= G_ATTRS;
        }
        match &r.id {
            Some(ReportId::Key(_)) => g |= G_ID_KEY,
            Some(ReportId::Seq { .. }) => g |= G_ID_SEQ,
            None => {}
        }
        if g != 0 {
            f |= F_MORE;
        }
        buf.push(f);
        put_varint(buf, u64::from(stream));
        if g != 0 {
            buf.push(g);
        }
        let d = &mut st.delta;
        put_zz(buf, t.wrapping_sub(d.time));
        put_zz(buf, lat.wrapping_sub(d.lat));
        put_zz(buf, lon.wrapping_sub(d.lon));
        d.time = t;
        d.lat = lat;
        d.lon = lon;
        if let Some(v) = r.hae {
            let v = q_dm(v);
            put_zz(buf, v.wrapping_sub(d.hae));
            d.hae = v;
        }
        if let Some(v) = r.ce {
            put_varint(buf, q_dm(v).max(0) as u64);
        }
        if let Some(v) = r.le {
            put_varint(buf, q_dm(v).max(0) as u64);
        }
        if let Some(v) = r.course {
            let v = q_course(v);
            put_zz(buf, v.wrapping_sub(d.course));
            d.course = v;
        }
        if let Some(v) = r.speed {
            let v = q_speed(v);
            put_zz(buf, v.wrapping_sub(d.speed));
            d.speed = v;
        }
        if let Some(sd) = stale_d {
            if f & F_STALE_S != 0 {
                put_varint(buf, (sd / 1000) as u64);
            } else {
                put_zz(buf, sd);
            }
        }
        if let Some(s) = r.start {
            put_zz(buf, s.0.wrapping_sub(t));
        }
        if !r.attributes.is_empty() {
            put_varint(buf, r.attributes.len() as u64);
            for ((_, v), &k) in r.attributes.iter().zip(self.attr_ids.iter()) {
                put_varint(buf, u64::from(k));
                match v {
                    AttrValue::Num(n) => {
                        buf.push(ATTR_NUM);
                        buf.extend_from_slice(&n.to_le_bytes());
                    }
                    AttrValue::Text(s) => {
                        buf.push(ATTR_TEXT);
                        put_bytes(buf, s.as_bytes());
                    }
                }
            }
        }
        match &r.id {
            Some(ReportId::Key(k)) => put_bytes(buf, k.as_bytes()),
            Some(ReportId::Seq { seq, .. }) => {
                put_varint(buf, u64::from(seq_source));
                put_varint(buf, *seq);
            }
            None => {}
        }
        self.reports += 1;
        self.min_time = self.min_time.min(t);
        self.max_time = self.max_time.max(t);
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------------
// Decoder

/// Resolves string ids while decoding.
pub(crate) trait Strings {
    /// The string with id `id`.
    fn string(&self, id: u32) -> Result<Text, DecodeError>;
}

impl Strings for Vec<Text> {
    fn string(&self, id: u32) -> Result<Text, DecodeError> {
        self.get(id as usize).cloned().ok_or(DecodeError {
            pos: 0,
            reason: "reference to an undefined string",
        })
    }
}

/// Reads a string definition's body (after its kind byte).
pub(crate) fn read_string_def(rd: &mut Reader<'_>) -> Result<Text, DecodeError> {
    rd.text()
}

fn opt_string(rd: &mut Reader<'_>, strings: &impl Strings) -> Result<Option<Text>, DecodeError> {
    match rd.u32v()? {
        0 => Ok(None),
        n => strings.string(n - 1).map(Some),
    }
}

/// Reads a stream definition's body (after its kind byte) into a template report carrying the
/// stream's shared fields.
pub(crate) fn read_stream_def(
    rd: &mut Reader<'_>,
    strings: &impl Strings,
) -> Result<Report, DecodeError> {
    let uid = rd.text()?;
    let cot_type = opt_string(rd, strings)?;
    let how = opt_string(rd, strings)?;
    let callsign = match rd.varint()? {
        0 => None,
        n => {
            let n = usize::try_from(n - 1).map_err(|_| DecodeError {
                pos: rd.pos,
                reason: "length does not fit memory",
            })?;
            Some(rd.text_of_len(n)?)
        }
    };
    let label = match rd.varint()? {
        0 => None,
        n => {
            let classification = strings.string(rd.u32v()?)?;
            // Each group costs at least one byte, which bounds the allocation by the frame.
            let groups = n - 1;
            let mut releasability = Vec::new();
            for _ in 0..groups {
                releasability.push(strings.string(rd.u32v()?)?);
            }
            Some(Label {
                classification,
                releasability,
            })
        }
    };
    let source = strings.string(rd.u32v()?)?;
    let identity = strings.string(rd.u32v()?)?;
    Ok(Report {
        uid,
        cot_type,
        callsign,
        how,
        label,
        provenance: Provenance { source, identity },
        ..Report::default()
    })
}

/// Reads the head of a position record whose flag byte (`flags`) was already read: the stream
/// id.
pub(crate) fn read_stream_id(rd: &mut Reader<'_>) -> Result<u32, DecodeError> {
    rd.u32v()
}

/// Reads the rest of a position record (after its flag byte and stream id), advancing `delta`.
/// The report is built from `template` only when `want(time)` says so; otherwise the record
/// is parsed (the delta chain needs it) and `None` is returned.
pub(crate) fn read_position(
    rd: &mut Reader<'_>,
    flags: u8,
    delta: &mut Delta,
    template: &Report,
    strings: &impl Strings,
    want: impl FnOnce(i64) -> bool,
) -> Result<(i64, Option<Report>), DecodeError> {
    let g = if flags & F_MORE != 0 {
        let g = rd.u8()?;
        if g & !G_KNOWN != 0 {
            return Err(DecodeError {
                pos: rd.pos - 1,
                reason: "unknown position flags",
            });
        }
        g
    } else {
        0
    };
    let d = delta;
    d.time = d.time.wrapping_add(rd.zz()?);
    d.lat = d.lat.wrapping_add(rd.zz()?);
    d.lon = d.lon.wrapping_add(rd.zz()?);
    let hae = if flags & F_HAE != 0 {
        d.hae = d.hae.wrapping_add(rd.zz()?);
        Some(d.hae as f64 / 10.0)
    } else {
        None
    };
    let ce = if flags & F_CE != 0 {
        Some(rd.varint()? as f64 / 10.0)
    } else {
        None
    };
    let le = if flags & F_LE != 0 {
        Some(rd.varint()? as f64 / 10.0)
    } else {
        None
    };
    let course = if flags & F_COURSE != 0 {
        d.course = d.course.wrapping_add(rd.zz()?);
        Some(d.course as f64 / 10.0)
    } else {
        None
    };
    let speed = if flags & F_SPEED != 0 {
        d.speed = d.speed.wrapping_add(rd.zz()?);
        Some(d.speed as f64 / 100.0)
    } else {
        None
    };
    let t = d.time;
    let stale = if flags & F_STALE_S != 0 {
        Some(t.wrapping_add((rd.varint()? as i64).wrapping_mul(1000)))
    } else if g & G_STALE_MS != 0 {
        Some(t.wrapping_add(rd.zz()?))
    } else {
        None
    };
    let start = if g & G_START != 0 {
        Some(t.wrapping_add(rd.zz()?))
    } else {
        None
    };
    let wanted = want(t);
    let mut attributes = rampart_model::Attributes::new();
    if g & G_ATTRS != 0 {
        let n = rd.varint()?;
        for _ in 0..n {
            let key = rd.u32v()?;
            let value = match rd.u8()? {
                ATTR_NUM => AttrValue::Num(rd.f64()?),
                ATTR_TEXT => AttrValue::Text(rd.text()?),
                _ => {
                    return Err(DecodeError {
                        pos: rd.pos - 1,
                        reason: "unknown attribute tag",
                    });
                }
            };
            if wanted {
                attributes.insert(strings.string(key)?, value);
            }
        }
    }
    let id = if g & G_ID_KEY != 0 {
        Some(ReportId::Key(rd.text()?))
    } else if g & G_ID_SEQ != 0 {
        let source = rd.u32v()?;
        let seq = rd.varint()?;
        if wanted {
            Some(ReportId::Seq {
                source: strings.string(source)?,
                seq,
            })
        } else {
            None
        }
    } else {
        None
    };
    if !wanted {
        return Ok((t, None));
    }
    // Built field by field (not `template.clone()` then overwritten): this is the hot path of
    // track queries and replay.
    let r = Report {
        uid: template.uid.clone(),
        cot_type: template.cot_type.clone(),
        callsign: template.callsign.clone(),
        lat: d.lat as f64 / 1e7,
        lon: d.lon as f64 / 1e7,
        hae,
        ce,
        le,
        course,
        speed,
        how: template.how.clone(),
        time: Timestamp(t),
        start: start.map(Timestamp),
        stale: stale.map(Timestamp),
        attributes,
        label: template.label.clone(),
        id,
        provenance: template.provenance.clone(),
    };
    Ok((t, Some(r)))
}

/// One record decoded in file order by [`SeqDecoder`].
// Items are consumed immediately; boxing the report would cost an allocation per replayed report.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Item {
    /// A string definition.
    String,
    /// A stream definition with this id.
    Stream(u32),
    /// A position record of `stream` at `time`; the report when it was asked for.
    Position {
        /// Stream id.
        stream: u32,
        /// Report time in ms.
        time: i64,
        /// The decoded report (when asked for).
        report: Option<Report>,
    },
}

/// Decodes one segment's records in file order, keeping its dictionaries and delta state.
/// Its memory is bounded by the segment it reads.
#[derive(Default)]
pub(crate) struct SeqDecoder {
    strings: Vec<Text>,
    streams: Vec<(Report, Delta)>,
}

impl SeqDecoder {
    /// The uid of stream `s` (after its definition was decoded).
    pub fn uid(&self, s: u32) -> Option<&Uid> {
        self.streams.get(s as usize).map(|(t, _)| &t.uid)
    }

    /// Decodes the next record; builds the report only when `want_report`.
    pub fn next(&mut self, rd: &mut Reader<'_>, want_report: bool) -> Result<Item, DecodeError> {
        self.next_if(rd, |_| want_report)
    }

    /// Decodes the next record; builds a position's report only when `want(time)` says so
    /// (a time-window scan skips building the reports outside its window).
    pub fn next_if(
        &mut self,
        rd: &mut Reader<'_>,
        want: impl FnOnce(i64) -> bool,
    ) -> Result<Item, DecodeError> {
        let kind = rd.u8()?;
        match kind {
            REC_STRING => {
                let s = read_string_def(rd)?;
                self.strings.push(s);
                Ok(Item::String)
            }
            REC_STREAM => {
                let t = read_stream_def(rd, &self.strings)?;
                self.streams.push((t, Delta::default()));
                Ok(Item::Stream(self.streams.len() as u32 - 1))
            }
            f if f & 0x80 == 0 => {
                let pos = rd.pos;
                let stream = read_stream_id(rd)?;
                let (template, delta) =
                    self.streams.get_mut(stream as usize).ok_or(DecodeError {
                        pos,
                        reason: "reference to an undefined stream",
                    })?;
                let (time, report) = read_position(rd, f, delta, template, &self.strings, want)?;
                Ok(Item::Position {
                    stream,
                    time,
                    report,
                })
            }
            _ => Err(DecodeError {
                pos: rd.pos - 1,
                reason: "unknown record kind",
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rampart_model::Attributes;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// A random report exercising every field and edge the encoding has to restore.
    pub(crate) fn random_report(rng: &mut SmallRng, t0: i64) -> Report {
        let pick = |rng: &mut SmallRng, xs: &[&str]| Text::from(xs[rng.random_range(0..xs.len())]);
        let uid = format!("uid-{}", rng.random_range(0..20));
        let time = t0 + rng.random_range(-5_000..60_000i64);
        let mut attributes = Attributes::new();
        if rng.random_bool(0.2) {
            for _ in 0..rng.random_range(1..4) {
                let k = pick(rng, &["fuel", "battery", "fw", "temp"]);
                let v = if rng.random_bool(0.5) {
                    AttrValue::Num(rng.random_range(-1e6..1e6))
                } else {
                    AttrValue::Text(pick(rng, &["", "v1.2", "ünïcode ✓", "x"]))
                };
                attributes.insert(k, v);
            }
        }
        Report {
            uid: uid.into(),
            cot_type: rng
                .random_bool(0.8)
                .then(|| pick(rng, &["a-f-G-U-C", "a-h-A", "a-n-S"])),
            callsign: rng
                .random_bool(0.7)
                .then(|| pick(rng, &["ALPHA", "BRAVO 2", ""])),
            lat: rng.random_range(-90.0..=90.0),
            lon: rng.random_range(-180.0..=180.0),
            hae: rng
                .random_bool(0.8)
                .then(|| rng.random_range(-12_000.0..20_000.0)),
            ce: rng.random_bool(0.3).then(|| rng.random_range(0.0..1000.0)),
            le: rng.random_bool(0.3).then(|| rng.random_range(0.0..1000.0)),
            course: rng.random_bool(0.8).then(|| rng.random_range(0.0..=360.0)),
            speed: rng.random_bool(0.8).then(|| rng.random_range(0.0..400.0)),
            how: rng.random_bool(0.8).then(|| pick(rng, &["m-g", "h-e"])),
            time: Timestamp(time),
            start: rng
                .random_bool(0.2)
                .then(|| Timestamp(time + rng.random_range(-3000..3000))),
            stale: match rng.random_range(0..4) {
                0 => None,
                1 => Some(Timestamp(time + 60_000)),
                2 => Some(Timestamp(time + rng.random_range(0..100_000))),
                _ => Some(Timestamp(time - rng.random_range(1..100))),
            },
            attributes,
            label: match rng.random_range(0..3) {
                0 => None,
                1 => Some(Label::unclassified()),
                _ => Some(Label {
                    classification: "SECRET".into(),
                    releasability: vec!["NATO".into(), "FVEY".into()],
                }),
            },
            id: match rng.random_range(0..3) {
                0 => None,
                1 => Some(ReportId::Key(format!("k-{}", rng.random::<u32>()).into())),
                _ => Some(ReportId::Seq {
                    source: pick(rng, &["radar", "ais"]),
                    seq: rng.random(),
                }),
            },
            provenance: Provenance::new(&pick(rng, &["http", "cot-tcp"]), &pick(rng, &["a", "b"])),
        }
    }

    fn decode_all(buf: &[u8], base: usize) -> Vec<Report> {
        let mut dec = SeqDecoder::default();
        let mut rd = Reader::new(buf, base);
        let mut out = Vec::new();
        while !rd.at_end() {
            if let Item::Position {
                report: Some(r), ..
            } = dec.next(&mut rd, true).unwrap()
            {
                out.push(r);
            }
        }
        out
    }

    #[test]
    fn repeated_attribute_names_reuse_their_ids() {
        // Runs of reports with the same names (the cached ids), changes of names, and reports
        // without attributes in between must all decode to what was encoded.
        let mut rng = SmallRng::seed_from_u64(7);
        let mut enc = SegEncoder::new(1 << 20);
        let mut buf = Vec::new();
        let names: [&[&str]; 4] = [&["a", "b"], &["a", "b", "c"], &[], &["b", "z"]];
        let mut reports = Vec::new();
        for i in 0..400 {
            let mut r = random_report(&mut rng, 1_700_000_000_000 + i * 1000);
            r.attributes = names[(i as usize / 3) % names.len()]
                .iter()
                .map(|k| (Text::from(*k), AttrValue::Num(i as f64)))
                .collect();
            reports.push(r);
        }
        for r in &reports {
            assert!(enc.encode(r, &mut buf, 0).unwrap());
        }
        let decoded = decode_all(&buf, 0);
        assert_eq!(decoded.len(), reports.len());
        for (d, r) in decoded.iter().zip(&reports) {
            assert_eq!(d, &quantize(r));
        }
        // Each name is defined once.
        assert_eq!(
            enc.strings.keys().filter(|k| k.len() == 1).count(),
            4,
            "a, b, c and z"
        );
    }

    #[test]
    fn round_trips_random_reports() {
        for seed in 0..20 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut enc = SegEncoder::new(1 << 20);
            // The buffer starts at segment offset 40 so offsets are not buffer positions.
            let mut buf = vec![0u8; 40];
            let reports: Vec<Report> = (0..2000)
                .map(|i| random_report(&mut rng, 1_700_000_000_000 + i * 1000))
                .collect();
            for r in &reports {
                assert!(enc.encode(r, &mut buf, 0).unwrap());
            }
            let decoded = decode_all(&buf, 40);
            assert_eq!(decoded.len(), reports.len());
            for (d, r) in decoded.iter().zip(&reports) {
                assert_eq!(d, &quantize(r), "seed {seed}");
            }
            // The index points at each stream's records, in order.
            let index = enc.into_index();
            assert_eq!(index.reports, 2000);
            let total: usize = index.streams.iter().map(|s| s.offsets.len()).sum();
            assert_eq!(total, 2000);
        }
    }

    #[test]
    fn quantisation_is_documented_precision() {
        let mut r = Report::new("u", 12.345_678_91, -98.765_432_19, Timestamp(1));
        r.hae = Some(123.456);
        r.course = Some(359.96);
        r.speed = Some(12.345);
        let q = quantize(&r);
        assert!((q.lat - r.lat).abs() <= 0.5e-7 + 1e-12);
        assert!((q.lon - r.lon).abs() <= 0.5e-7 + 1e-12);
        assert_eq!(q.hae, Some(123.5));
        assert_eq!(q.course, Some(360.0));
        assert_eq!(q.speed, Some(12.35));
        assert_eq!(quantize(&q), q, "quantising twice changes nothing");
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut enc = SegEncoder::new(1 << 20);
        let mut buf = Vec::new();
        for i in 0..200 {
            enc.encode(&random_report(&mut rng, i * 1000), &mut buf, 0)
                .unwrap();
        }
        for _ in 0..2000 {
            let mut b = buf.clone();
            for _ in 0..rng.random_range(1..5) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            b.truncate(rng.random_range(0..=b.len()));
            let mut dec = SeqDecoder::default();
            let mut rd = Reader::new(&b, 0);
            while !rd.at_end() {
                if dec.next(&mut rd, true).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn varints_round_trip_extremes() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = Vec::new();
            put_zz(&mut b, v);
            assert_eq!(Reader::new(&b, 0).zz().unwrap(), v);
        }
        let bad = [0xFFu8; 11];
        assert!(Reader::new(&bad, 0).varint().is_err());
    }

    #[test]
    fn full_dictionary_asks_for_a_new_segment() {
        let mut enc = SegEncoder::new(64);
        let mut buf = Vec::new();
        let mut refused = false;
        for i in 0..100 {
            let r = Report::new(&format!("u{i}"), 1.0, 2.0, Timestamp(i));
            if !enc.encode(&r, &mut buf, 0).unwrap() {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }
}
