//! [`CotEvent`] ⇄ the model: events from TAK clients become [`Report`]s for the engine, and
//! entities from any source (HTTP, MQTT, NMEA …) become CoT events for TAK clients.
//!
//! Useful detail travels as report attributes under the names below (the `attr` module). A
//! TAK event must never be refused for an overlong or odd detail text, so texts are cleaned
//! (control characters become spaces) and truncated to the model's [`Limits`], and values
//! out of the model's ranges are omitted. Only what the model cannot do without (uid, type,
//! position, times) can make [`CotEvent::to_report`] fail.

use rampart_model::{
    AttrValue, Attributes, Defaults, Entity, FieldError, Limits, Report, Text, Timestamp,
};

use crate::event::{
    Contact, CotEvent, Detail, Group, Point, PrecisionLocation, Remarks, Status, Takv, Track,
    UNKNOWN_VALUE, UidDetail, is_unknown_value,
};

/// Report attribute names used for CoT detail, in the order they are filled (so when a
/// configured `max_attributes` is small, the first ones win).
pub mod attr {
    /// `status@battery`, number (percent).
    pub const BATTERY: &str = "battery";
    /// `__group@name` (team), text.
    pub const GROUP_NAME: &str = "group.name";
    /// `__group@role`, text.
    pub const GROUP_ROLE: &str = "group.role";
    /// `contact@endpoint`, text.
    pub const CONTACT_ENDPOINT: &str = "contact.endpoint";
    /// `contact@phone`, text.
    pub const CONTACT_PHONE: &str = "contact.phone";
    /// `takv@platform`, text.
    pub const TAKV_PLATFORM: &str = "takv.platform";
    /// `takv@version`, text.
    pub const TAKV_VERSION: &str = "takv.version";
    /// `takv@device`, text.
    pub const TAKV_DEVICE: &str = "takv.device";
    /// `takv@os`, text.
    pub const TAKV_OS: &str = "takv.os";
    /// `precisionlocation@geopointsrc`, text.
    pub const GEOPOINTSRC: &str = "precisionlocation.geopointsrc";
    /// `precisionlocation@altsrc`, text.
    pub const ALTSRC: &str = "precisionlocation.altsrc";
    /// `uid@Droid`, text.
    pub const DROID: &str = "uid.droid";
    /// `remarks` text, truncated to the text limit.
    pub const REMARKS: &str = "remarks";
    /// `emergency@type`, text.
    pub const EMERGENCY_TYPE: &str = "emergency.type";
    /// `emergency@cancel`, text (`true` when cancelled).
    pub const EMERGENCY_CANCEL: &str = "emergency.cancel";
    /// `__chat@chatroom`, text.
    pub const CHAT_ROOM: &str = "chat.chatroom";
    /// `__chat@senderCallsign`, text.
    pub const CHAT_SENDER: &str = "chat.sender_callsign";
    /// `__chat@id`, text.
    pub const CHAT_ID: &str = "chat.id";
    /// `__chat@messageId`, text.
    pub const CHAT_MESSAGE_ID: &str = "chat.message_id";
    /// Uid of the first `link` with relation `p-p` (who produced a marker or message), text.
    pub const LINK_PARENT_UID: &str = "link.parent_uid";
    /// `parent_callsign` of that link, text.
    pub const LINK_PARENT_CALLSIGN: &str = "link.parent_callsign";
    /// `event@access`, text.
    pub const ACCESS: &str = "access";
    /// `event@qos`, text.
    pub const QOS: &str = "qos";
    /// `event@opex`, text.
    pub const OPEX: &str = "opex";
    /// `event@caveat`, text.
    pub const CAVEAT: &str = "caveat";
    /// `event@releasableTo`, text.
    pub const RELEASABLE_TO: &str = "releasable_to";
}

/// `s` with control characters replaced by spaces and cut to at most `max` bytes on a
/// character boundary; `None` when nothing is left.
fn fit(s: &str, max: usize) -> Option<Text> {
    // Fast path: printable ASCII that fits is kept as is (one copy, no per-char pushes).
    if s.len() <= max && s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        // Of printable ASCII only the space is white space.
        return s.bytes().any(|b| b != b' ').then(|| Text::from(s));
    }
    let mut out = Text::default();
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    if out.trim().is_empty() {
        None
    } else {
        Some(out)
    }
}

/// [`fit`] for a detail value: a [`Text`] that needs no change is cloned (a copy of its
/// inline bytes for short ones) rather than built again from its characters.
trait Fit {
    fn fit(&self, max: usize) -> Option<Text>;
}

impl Fit for str {
    fn fit(&self, max: usize) -> Option<Text> {
        fit(self, max)
    }
}

impl Fit for Text {
    fn fit(&self, max: usize) -> Option<Text> {
        if self.len() <= max && self.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return self.bytes().any(|b| b != b' ').then(|| self.clone());
        }
        fit(self, max)
    }
}

fn within(v: f64, lo: f64, hi: f64) -> Option<f64> {
    (v.is_finite() && (lo..=hi).contains(&v)).then_some(v)
}

/// The `attr` names in byte order: an attribute's index here is its slot in [`AttrSink`].
const SORTED: [&str; 26] = [
    attr::ACCESS,
    attr::BATTERY,
    attr::CAVEAT,
    attr::CHAT_ROOM,
    attr::CHAT_ID,
    attr::CHAT_MESSAGE_ID,
    attr::CHAT_SENDER,
    attr::CONTACT_ENDPOINT,
    attr::CONTACT_PHONE,
    attr::EMERGENCY_CANCEL,
    attr::EMERGENCY_TYPE,
    attr::GROUP_NAME,
    attr::GROUP_ROLE,
    attr::LINK_PARENT_CALLSIGN,
    attr::LINK_PARENT_UID,
    attr::OPEX,
    attr::ALTSRC,
    attr::GEOPOINTSRC,
    attr::QOS,
    attr::RELEASABLE_TO,
    attr::REMARKS,
    attr::TAKV_DEVICE,
    attr::TAKV_OS,
    attr::TAKV_PLATFORM,
    attr::TAKV_VERSION,
    attr::DROID,
];

/// The longest name in [`SORTED`].
const LONGEST_NAME: usize = {
    let mut i = 0;
    let mut max = 0;
    while i < SORTED.len() {
        if SORTED[i].len() > max {
            max = SORTED[i].len();
        }
        i += 1;
    }
    max
};

/// The slot of `name` in [`SORTED`], evaluated at compile time (`const { slot(..) }`).
const fn slot(name: &str) -> usize {
    let mut i = 0;
    while i < SORTED.len() {
        let s = SORTED[i].as_bytes();
        let n = name.as_bytes();
        if s.len() == n.len() {
            let mut j = 0;
            while j < s.len() && s[j] == n[j] {
                j += 1;
            }
            if j == s.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not an attr name")
}

/// Gathers attributes in fill order (so `max_attributes` keeps the first ones) into one slot
/// per name, in name order: every name is a distinct `attr` constant, so the map built from
/// the slots at the end holds what inserting one by one would, with no sort.
struct AttrSink<'l> {
    slots: [Option<AttrValue>; SORTED.len()],
    n: usize,
    limits: &'l Limits,
}

impl AttrSink<'_> {
    fn full(&self) -> bool {
        self.n >= self.limits.max_attributes
    }
    fn text<T: Fit + ?Sized>(&mut self, slot: usize, value: Option<&T>) {
        if self.full() {
            return;
        }
        if let Some(v) = value.and_then(|v| v.fit(self.limits.max_attribute_text_len)) {
            self.slots[slot] = Some(AttrValue::Text(v));
            self.n += 1;
        }
    }
    fn num(&mut self, slot: usize, value: Option<f64>) {
        if let Some(v) = value.filter(|v| v.is_finite())
            && !self.full()
        {
            self.slots[slot] = Some(AttrValue::Num(v));
            self.n += 1;
        }
    }
    /// The map, from the slots: already in order, so `from_iter`'s sort finds them sorted,
    /// and a vector of exactly the map's item type is reused by its collect (no copy).
    fn into_map(self) -> Attributes {
        let mut items = Vec::with_capacity(self.n);
        for (i, v) in self.slots.into_iter().enumerate() {
            if let Some(v) = v {
                items.push((Text::const_new(SORTED[i]), v));
            }
        }
        Attributes::from_iter(items)
    }
}

/// `limits.validate(r)` for a report whose callsign, `how` and attributes were fitted here:
/// the callsign and the attribute values hold no control character and are within their
/// limits (so are finite numbers, and at most `max_attributes` of them), the `how` is within
/// its limit with no control character. So only the names' lengths are left to check, in the
/// order `validate` checks them (after every other field; label and id, checked last, are
/// unset here).
fn validate_fitted(limits: &Limits, r: &mut Report) -> Result<(), FieldError> {
    if r.label.is_some() || r.id.is_some() {
        return limits.validate(r);
    }
    let attrs = std::mem::take(&mut r.attributes);
    let callsign = r.callsign.take();
    let how = r.how.take();
    let rest = limits.validate(r);
    r.attributes = attrs;
    r.callsign = callsign;
    r.how = how;
    rest?;
    if LONGEST_NAME <= limits.max_attribute_key_len {
        return Ok(());
    }
    for k in r.attributes.keys() {
        if k.len() > limits.max_attribute_key_len {
            return Err(FieldError::new(
                "attributes",
                format!(
                    "too long: {} bytes, the limit is {}",
                    k.len(),
                    limits.max_attribute_key_len
                ),
            ));
        }
    }
    Ok(())
}

impl CotEvent {
    /// The report this event states, under the default [`Limits`].
    pub fn to_report(&self) -> Result<Report, FieldError> {
        self.to_report_with(&Limits::default())
    }

    /// The report this event states, fitted to and validated against `limits`. `label`, `id`
    /// and `provenance` are left for the receiving edge to set.
    pub fn to_report_with(&self, limits: &Limits) -> Result<Report, FieldError> {
        let p = &self.point;
        let d = &self.detail;
        let known = |v: f64| (!is_unknown_value(v)).then_some(v);
        let mut r = Report::new(&self.uid, p.lat, p.lon, self.time);
        r.cot_type = Some(self.cot_type.clone());
        r.callsign = self
            .callsign()
            .and_then(|c| fit(c, limits.max_callsign_len));
        r.hae = known(p.hae).and_then(|v| within(v, -12_000.0, 1.0e9));
        r.ce = known(p.ce).and_then(|v| within(v, 0.0, 1.0e9));
        r.le = known(p.le).and_then(|v| within(v, 0.0, 1.0e9));
        if let Some(t) = &d.track {
            // Some senders write -90 for 270; fold into [0, 360).
            r.course = t
                .course
                .filter(|c| c.is_finite())
                .map(|c| c.rem_euclid(360.0));
            r.speed = t.speed.and_then(|s| within(s, 0.0, 1.0e6));
        }
        // Truncating a `how` would change its meaning: omit an overlong one instead.
        r.how = self
            .how
            .as_ref()
            .filter(|h| h.len() <= limits.max_how_len && !h.chars().any(char::is_control))
            .cloned();
        r.start = self.start;
        // A stale before time is a broken sender: the event is stale on arrival.
        r.stale = Some(self.stale.max(self.time));

        let mut a = AttrSink {
            slots: Default::default(),
            n: 0,
            limits,
        };
        a.num(
            const { slot(attr::BATTERY) },
            d.status.as_ref().and_then(|s| s.battery).map(f64::from),
        );
        if let Some(g) = &d.group {
            a.text(const { slot(attr::GROUP_NAME) }, g.name.as_ref());
            a.text(const { slot(attr::GROUP_ROLE) }, g.role.as_ref());
        }
        if let Some(c) = &d.contact {
            a.text(const { slot(attr::CONTACT_ENDPOINT) }, c.endpoint.as_ref());
            a.text(const { slot(attr::CONTACT_PHONE) }, c.extra.get("phone"));
        }
        if let Some(t) = &d.takv {
            a.text(const { slot(attr::TAKV_PLATFORM) }, t.platform.as_ref());
            a.text(const { slot(attr::TAKV_VERSION) }, t.version.as_ref());
            a.text(const { slot(attr::TAKV_DEVICE) }, t.device.as_ref());
            a.text(const { slot(attr::TAKV_OS) }, t.os.as_ref());
        }
        if let Some(pl) = &d.precision_location {
            a.text(const { slot(attr::GEOPOINTSRC) }, pl.geopointsrc.as_ref());
            a.text(const { slot(attr::ALTSRC) }, pl.altsrc.as_ref());
        }
        a.text(
            const { slot(attr::DROID) },
            d.uid.as_ref().and_then(|u| u.droid.as_ref()),
        );
        a.text(
            const { slot(attr::REMARKS) },
            d.remarks.as_ref().map(|r| r.text.as_str()),
        );
        if let Some(e) = &d.emergency {
            a.text(
                const { slot(attr::EMERGENCY_TYPE) },
                e.emergency_type.as_ref(),
            );
            a.text(const { slot(attr::EMERGENCY_CANCEL) }, e.cancel.as_ref());
        }
        if let Some(c) = &d.chat {
            a.text(const { slot(attr::CHAT_ROOM) }, c.chatroom.as_ref());
            a.text(
                const { slot(attr::CHAT_SENDER) },
                c.sender_callsign.as_ref(),
            );
            a.text(const { slot(attr::CHAT_ID) }, c.id.as_ref());
            a.text(const { slot(attr::CHAT_MESSAGE_ID) }, c.message_id.as_ref());
        }
        if let Some(l) = d
            .links
            .iter()
            .find(|l| l.relation.as_deref() == Some("p-p"))
        {
            a.text(const { slot(attr::LINK_PARENT_UID) }, l.uid.as_ref());
            a.text(
                const { slot(attr::LINK_PARENT_CALLSIGN) },
                l.parent_callsign.as_ref(),
            );
        }
        a.text(const { slot(attr::ACCESS) }, self.access.as_ref());
        a.text(const { slot(attr::QOS) }, self.qos.as_ref());
        a.text(const { slot(attr::OPEX) }, self.opex.as_ref());
        a.text(const { slot(attr::CAVEAT) }, self.caveat.as_ref());
        a.text(
            const { slot(attr::RELEASABLE_TO) },
            self.releasable_to.as_ref(),
        );
        r.attributes = a.into_map();

        validate_fitted(limits, &mut r)?;
        Ok(r)
    }

    /// The CoT event for a report, with the default [`Defaults`] for what it left out.
    pub fn from_report(r: &Report) -> CotEvent {
        Self::from_report_with(r, &Defaults::default())
    }

    /// The CoT event for a report; `defaults` fill in type, `how` and stale.
    pub fn from_report_with(r: &Report, defaults: &Defaults) -> CotEvent {
        build(Fields {
            uid: &r.uid,
            cot_type: r.cot_type.as_deref().unwrap_or(&defaults.cot_type),
            how: r.how.as_deref().unwrap_or(&defaults.how),
            callsign: r.callsign.as_deref(),
            time: r.time,
            start: r.start_or_default(),
            stale: r.stale_or_default(defaults),
            lat: r.lat,
            lon: r.lon,
            hae: r.hae,
            ce: r.ce,
            le: r.le,
            course: r.course,
            speed: r.speed,
            attributes: Some(&r.attributes),
        })
    }

    /// The CoT event for an entity of the live picture, so TAK clients see entities from
    /// every source.
    pub fn from_entity(e: &Entity) -> CotEvent {
        build(Fields {
            uid: &e.uid,
            cot_type: &e.cot_type,
            how: &e.how,
            callsign: e.callsign.as_deref(),
            time: e.time,
            start: e.start,
            stale: e.stale,
            lat: e.lat,
            lon: e.lon,
            hae: e.hae,
            ce: e.ce,
            le: e.le,
            course: e.course,
            speed: e.speed,
            attributes: e.attributes.as_deref(),
        })
    }
}

struct Fields<'a> {
    uid: &'a str,
    cot_type: &'a str,
    how: &'a str,
    callsign: Option<&'a str>,
    time: Timestamp,
    start: Timestamp,
    stale: Timestamp,
    lat: f64,
    lon: f64,
    hae: Option<f64>,
    ce: Option<f64>,
    le: Option<f64>,
    course: Option<f64>,
    speed: Option<f64>,
    attributes: Option<&'a Attributes>,
}

fn build(f: Fields<'_>) -> CotEvent {
    let empty = Attributes::new();
    let attrs = f.attributes.unwrap_or(&empty);
    let text = |k: &str| match attrs.get(k) {
        Some(AttrValue::Text(t)) if !t.is_empty() => Some(t.clone()),
        _ => None,
    };
    let mut ev = CotEvent::new(f.uid, f.cot_type, f.time, f.stale);
    ev.start = Some(f.start);
    ev.how = (!f.how.is_empty()).then(|| Text::from(f.how));
    ev.point = Point {
        lat: f.lat,
        lon: f.lon,
        hae: f.hae.unwrap_or(UNKNOWN_VALUE),
        ce: f.ce.unwrap_or(UNKNOWN_VALUE),
        le: f.le.unwrap_or(UNKNOWN_VALUE),
        extra_attrs: Vec::new(),
    };
    ev.access = text(attr::ACCESS);
    ev.qos = text(attr::QOS);
    ev.opex = text(attr::OPEX);
    ev.caveat = text(attr::CAVEAT);
    ev.releasable_to = text(attr::RELEASABLE_TO);
    let mut d = Detail::default();
    let endpoint = text(attr::CONTACT_ENDPOINT);
    let phone = text(attr::CONTACT_PHONE);
    if f.callsign.is_some() || endpoint.is_some() || phone.is_some() {
        let mut c = Contact {
            callsign: f.callsign.map(Text::from),
            endpoint,
            extra: Default::default(),
        };
        if let Some(p) = phone {
            c.extra.attrs.push(crate::Attr::new("phone", &p));
        }
        d.contact = Some(c);
    }
    let (name, role) = (text(attr::GROUP_NAME), text(attr::GROUP_ROLE));
    if name.is_some() || role.is_some() {
        d.group = Some(Group {
            name,
            role,
            extra: Default::default(),
        });
    }
    let takv = Takv {
        device: text(attr::TAKV_DEVICE),
        platform: text(attr::TAKV_PLATFORM),
        os: text(attr::TAKV_OS),
        version: text(attr::TAKV_VERSION),
        extra: Default::default(),
    };
    if takv != Takv::default() {
        d.takv = Some(takv);
    }
    if let Some(AttrValue::Num(b)) = attrs.get(attr::BATTERY)
        && b.is_finite()
        && *b >= 0.0
    {
        d.status = Some(Status {
            // Saturating float-to-int conversion: 150.4 → 150, 1e12 → u32::MAX.
            battery: Some(b.round() as u32),
            extra: Default::default(),
        });
    }
    if f.course.is_some() || f.speed.is_some() {
        d.track = Some(Track {
            course: f.course,
            speed: f.speed,
            extra: Default::default(),
        });
    }
    let (gp, alt) = (text(attr::GEOPOINTSRC), text(attr::ALTSRC));
    if gp.is_some() || alt.is_some() {
        d.precision_location = Some(PrecisionLocation {
            geopointsrc: gp,
            altsrc: alt,
            extra: Default::default(),
        });
    }
    if let Some(droid) = text(attr::DROID) {
        d.uid = Some(UidDetail {
            droid: Some(droid),
            extra: Default::default(),
        });
    }
    if let Some(t) = text(attr::REMARKS) {
        d.remarks = Some(Remarks {
            text: t.to_string(),
            ..Default::default()
        });
    }
    ev.detail = d;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_names_are_the_attr_names_in_order() {
        assert!(SORTED.windows(2).all(|w| w[0] < w[1]), "{SORTED:?}");
        let src = include_str!("report.rs");
        let module = &src[src.find("pub mod attr {").unwrap()..];
        let module = &module[..module.find("\n}").unwrap()];
        assert_eq!(module.matches("pub const").count(), SORTED.len());
        for (i, name) in SORTED.iter().enumerate() {
            assert_eq!(slot(name), i);
            assert!(module.contains(&format!("&str = \"{name}\";")), "{name}");
        }
        assert_eq!(LONGEST_NAME, attr::GEOPOINTSRC.len());
    }

    #[test]
    fn fit_cleans_and_truncates_on_char_boundaries() {
        assert_eq!(fit("a\u{1}b", 10).as_deref(), Some("a b"));
        assert_eq!(fit("ééé", 5).as_deref(), Some("éé"));
        assert_eq!(fit("\n\t", 5), None);
    }
}
