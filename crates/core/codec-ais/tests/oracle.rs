//! Third-party oracle: pyais encodes random but valid messages of every supported type
//! (sentinels included) and decodes them again (`tests/oracle/ais_oracle.py`); this test
//! reassembles and decodes the same sentences and compares every field. The recorded public
//! samples in `tests/fixtures/public_samples.nmea` are checked the same way. The test fails —
//! never skips — when the Python environment is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use rampart_codec_ais::{
    AisMessage, Assembler, AssemblerConfig, Dimensions, StaticDataReport, decode_message,
};
use rampart_model::Timestamp;
use serde_json::Value;

fn python() -> PathBuf {
    let path = std::env::var_os("RAMPART_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target/pyenv/bin/python")
        });
    assert!(
        path.exists(),
        "the oracle interpreter {} is missing: run scripts/python-env (or set RAMPART_PYTHON)",
        path.display()
    );
    path
}

fn run_oracle(args: &[&str]) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/ais_oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("run the pyais oracle");
    assert!(
        out.status.success(),
        "pyais oracle failed (run scripts/python-env?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

struct Cmp<'a> {
    ctx: String,
    f: &'a Value,
}

impl Cmp<'_> {
    fn want(&self, name: &str) -> &Value {
        self.f
            .get(name)
            .unwrap_or_else(|| panic!("{}: pyais has no field {name}", self.ctx))
    }
    /// A scaled value; `sentinel` is pyais's raw "not available" value, which must be None here.
    fn num(&self, name: &str, got: Option<f64>, sentinel: Option<f64>, tol: f64) {
        let w = self.want(name).as_f64();
        match (got, w) {
            (None, Some(w)) if sentinel == Some(w) => {}
            (None, None) => {}
            (Some(g), Some(w)) if sentinel != Some(w) => {
                assert!(
                    (g - w).abs() <= tol,
                    "{}: {name}: {g} vs pyais {w}",
                    self.ctx
                )
            }
            (g, w) => panic!("{}: {name}: got {g:?}, pyais {w:?}", self.ctx),
        }
    }
    fn int(&self, name: &str, got: u64) {
        assert_eq!(Some(got), self.want(name).as_u64(), "{}: {name}", self.ctx);
    }
    fn flag(&self, name: &str, got: bool) {
        assert_eq!(Some(got), self.want(name).as_bool(), "{}: {name}", self.ctx);
    }
    fn text(&self, name: &str, got: &str) {
        assert_eq!(Some(got), self.want(name).as_str(), "{}: {name}", self.ctx);
    }
    fn dims(&self, d: &Dimensions) {
        self.int("to_bow", u64::from(d.to_bow));
        self.int("to_stern", u64::from(d.to_stern));
        self.int("to_port", u64::from(d.to_port));
        self.int("to_starboard", u64::from(d.to_starboard));
    }
    fn pos(&self, lon: Option<f64>, lat: Option<f64>) {
        // pyais rounds degrees to 6 decimals.
        self.num("lon", lon, Some(181.0), 1e-6);
        self.num("lat", lat, Some(91.0), 1e-6);
    }
}

fn check(record: &Value, asm: &mut Assembler, now: Timestamp) -> u8 {
    let sentences: Vec<&str> = record["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let ctx = sentences.join(" ");
    let mut payload = None;
    for (k, s) in sentences.iter().enumerate() {
        let r = asm
            .feed(s.as_bytes(), now)
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(
            r.is_some(),
            k + 1 == sentences.len(),
            "{ctx}: completes on the last fragment"
        );
        payload = r;
    }
    let msg = decode_message(&payload.unwrap()).unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let c = Cmp {
        ctx,
        f: &record["fields"],
    };
    c.int("msg_type", u64::from(msg.msg_type()));
    c.int("mmsi", u64::from(msg.mmsi()));
    match &msg {
        AisMessage::Position(p) => {
            c.int("repeat", u64::from(p.repeat));
            c.int("status", u64::from(p.nav_status));
            if let Some(raw) = record["rot_raw"].as_i64() {
                assert_eq!(i64::from(p.rot_raw), raw, "{}: rot_raw", c.ctx);
            }
            match (p.rot_deg_per_min(), c.want("turn").as_f64()) {
                (Some(g), Some(w)) => assert_eq!(g.round(), w, "{}: turn", c.ctx),
                (None, Some(w)) => assert!(w.abs() >= 127.0, "{}: turn {w}", c.ctx),
                (g, w) => panic!("{}: turn {g:?} vs {w:?}", c.ctx),
            }
            c.num("speed", p.sog, Some(102.3), 1e-9);
            c.flag("accuracy", p.accuracy);
            c.pos(p.lon, p.lat);
            c.num("course", p.cog, Some(360.0), 1e-9);
            c.num("heading", p.heading.map(f64::from), Some(511.0), 0.0);
            c.int("second", u64::from(p.second));
            c.int("maneuver", u64::from(p.maneuver));
            c.flag("raim", p.raim);
            c.int("radio", u64::from(p.radio));
        }
        AisMessage::BaseStation(p) => {
            c.int("repeat", u64::from(p.repeat));
            c.int("year", u64::from(p.year));
            c.int("month", u64::from(p.month));
            c.int("day", u64::from(p.day));
            c.int("hour", u64::from(p.hour));
            c.int("minute", u64::from(p.minute));
            c.int("second", u64::from(p.second));
            c.flag("accuracy", p.accuracy);
            c.pos(p.lon, p.lat);
            c.int("epfd", u64::from(p.epfd));
            c.flag("raim", p.raim);
            c.int("radio", u64::from(p.radio));
        }
        AisMessage::StaticVoyage(s) => {
            c.int("repeat", u64::from(s.repeat));
            c.int("ais_version", u64::from(s.ais_version));
            c.num("imo", s.imo.map(f64::from), Some(0.0), 0.0);
            c.text("callsign", &s.callsign);
            c.text("shipname", &s.name);
            c.int("ship_type", u64::from(s.ship_type));
            c.dims(&s.dimensions);
            c.int("epfd", u64::from(s.epfd));
            c.num("month", s.eta.month.map(f64::from), Some(0.0), 0.0);
            c.num("day", s.eta.day.map(f64::from), Some(0.0), 0.0);
            c.num("hour", s.eta.hour.map(f64::from), Some(24.0), 0.0);
            c.num("minute", s.eta.minute.map(f64::from), Some(60.0), 0.0);
            c.num("draught", s.draught, Some(0.0), 1e-9);
            c.text("destination", &s.destination);
            c.flag("dte", s.dte);
        }
        AisMessage::ClassB(p) => {
            c.int("repeat", u64::from(p.repeat));
            c.num("speed", p.sog, Some(102.3), 1e-9);
            c.flag("accuracy", p.accuracy);
            c.pos(p.lon, p.lat);
            c.num("course", p.cog, Some(360.0), 1e-9);
            c.num("heading", p.heading.map(f64::from), Some(511.0), 0.0);
            c.int("second", u64::from(p.second));
            c.flag("cs", p.cs_unit);
            c.flag("display", p.display);
            c.flag("dsc", p.dsc);
            c.flag("band", p.band);
            c.flag("msg22", p.msg22);
            c.flag("assigned", p.assigned);
            c.flag("raim", p.raim);
            c.int("radio", u64::from(p.radio));
        }
        AisMessage::ExtendedClassB(p) => {
            c.int("repeat", u64::from(p.repeat));
            c.num("speed", p.sog, Some(102.3), 1e-9);
            c.flag("accuracy", p.accuracy);
            c.pos(p.lon, p.lat);
            c.num("course", p.cog, Some(360.0), 1e-9);
            c.num("heading", p.heading.map(f64::from), Some(511.0), 0.0);
            c.int("second", u64::from(p.second));
            c.text("shipname", &p.name);
            c.int("ship_type", u64::from(p.ship_type));
            c.dims(&p.dimensions);
            c.int("epfd", u64::from(p.epfd));
            c.flag("raim", p.raim);
            c.flag("dte", p.dte);
            c.flag("assigned", p.assigned);
        }
        AisMessage::AidToNavigation(a) => {
            c.int("repeat", u64::from(a.repeat));
            c.int("aid_type", u64::from(a.aid_type));
            let full =
                c.f.get("full_name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        format!(
                            "{}{}",
                            c.want("name").as_str().unwrap(),
                            c.want("name_ext").as_str().unwrap()
                        )
                    });
            assert_eq!(a.name.as_str(), full, "{}: name", c.ctx);
            c.flag("accuracy", a.accuracy);
            c.pos(a.lon, a.lat);
            c.dims(&a.dimensions);
            c.int("epfd", u64::from(a.epfd));
            c.int("second", u64::from(a.second));
            c.flag("off_position", a.off_position);
            c.flag("raim", a.raim);
            c.flag("virtual_aid", a.virtual_aid);
            c.flag("assigned", a.assigned);
        }
        AisMessage::StaticData(StaticDataReport::PartA { repeat, name, .. }) => {
            c.int("repeat", u64::from(*repeat));
            c.int("partno", 0);
            c.text("shipname", name);
        }
        AisMessage::StaticData(StaticDataReport::PartB {
            repeat,
            ship_type,
            vendor_id,
            model,
            serial,
            callsign,
            dimensions,
            mothership_mmsi,
            ..
        }) => {
            c.int("repeat", u64::from(*repeat));
            c.int("partno", 1);
            c.int("ship_type", u64::from(*ship_type));
            c.text("vendorid", vendor_id);
            c.int("model", u64::from(*model));
            c.int("serial", u64::from(*serial));
            c.text("callsign", callsign);
            assert_eq!(*mothership_mmsi, None, "{}", c.ctx);
            c.dims(dimensions);
        }
        AisMessage::LongRange(p) => {
            c.int("repeat", u64::from(p.repeat));
            c.flag("accuracy", p.accuracy);
            c.flag("raim", p.raim);
            c.int("status", u64::from(p.nav_status));
            // 1/10 minute resolution; pyais rounds to 6 decimals.
            c.pos(p.lon, p.lat);
            c.num("speed", p.sog.map(f64::from), Some(63.0), 0.0);
            c.num("course", p.cog.map(f64::from), Some(511.0), 0.0);
            c.flag("gnss", p.gnss_latency);
        }
    }
    msg.msg_type()
}

#[test]
fn matches_pyais_on_every_message_type() {
    let records = run_oracle(&["424242", "300"]);
    assert_eq!(records.len(), 10 * 300);
    let mut asm = Assembler::new(AssemblerConfig::default());
    let mut seen = std::collections::BTreeMap::new();
    for (k, r) in records.iter().enumerate() {
        let t = check(r, &mut asm, Timestamp(1_000_000 + k as i64));
        *seen.entry(t).or_insert(0) += 1;
    }
    let types: Vec<u8> = seen.keys().copied().collect();
    assert_eq!(
        types,
        [1, 2, 3, 4, 5, 18, 19, 21, 24, 27],
        "every type covered"
    );
    assert_eq!(asm.pending(), 0);
}

#[test]
fn matches_pyais_on_recorded_public_samples() {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/public_samples.nmea");
    let records = run_oracle(&["--decode", fixture.to_str().unwrap()]);
    assert!(records.len() >= 11, "{} samples", records.len());
    let mut asm = Assembler::new(AssemblerConfig::default());
    for r in &records {
        check(r, &mut asm, Timestamp(0));
    }
}
