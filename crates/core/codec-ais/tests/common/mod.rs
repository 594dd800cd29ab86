//! Test-only AIS encoder shared by the integration tests: fields → armored payload →
//! sentence(s).
#![allow(dead_code, clippy::unwrap_used)]

use rampart_codec_nmea::checksum;

/// A bit string being built.
#[derive(Default)]
pub struct Bits(pub Vec<bool>);
impl Bits {
    pub fn put(&mut self, v: i64, len: usize) -> &mut Self {
        for k in (0..len).rev() {
            self.0.push((v >> k) & 1 == 1);
        }
        self
    }
    pub fn text(&mut self, s: &str, chars: usize) -> &mut Self {
        for k in 0..chars {
            let c = s.as_bytes().get(k).copied().unwrap_or(b'@');
            let v = if c >= 64 { c - 64 } else { c };
            self.put(i64::from(v), 6);
        }
        self
    }
    pub fn armor(&self) -> (String, u8) {
        let fill = (6 - self.0.len() % 6) % 6;
        let mut bits = self.0.clone();
        bits.extend(std::iter::repeat_n(false, fill));
        let s = bits
            .chunks(6)
            .map(|c| {
                let v = c.iter().fold(0u8, |a, &b| (a << 1) | u8::from(b));
                char::from(if v < 40 { v + 48 } else { v + 56 })
            })
            .collect();
        (s, fill as u8)
    }
}

pub fn sentence(count: u8, number: u8, seq: &str, chan: &str, payload: &str, fill: u8) -> String {
    let body = format!("AIVDM,{count},{number},{seq},{chan},{payload},{fill}");
    format!("!{body}*{:02X}", checksum(body.as_bytes()))
}

pub fn single(b: &Bits) -> String {
    let (p, fill) = b.armor();
    sentence(1, 1, "", "A", &p, fill)
}

#[allow(clippy::too_many_arguments)]
pub fn type1(mmsi: i64, lon_deg: f64, lat_deg: f64, sog: i64, cog: i64, heading: i64) -> Bits {
    let mut b = Bits::default();
    b.put(1, 6)
        .put(0, 2)
        .put(mmsi, 30)
        .put(0, 4)
        .put(-128, 8)
        .put(sog, 10)
        .put(1, 1);
    b.put((lon_deg * 600_000.0).round() as i64, 28);
    b.put((lat_deg * 600_000.0).round() as i64, 27);
    b.put(cog, 12)
        .put(heading, 9)
        .put(30, 6)
        .put(0, 2)
        .put(0, 3)
        .put(0, 1)
        .put(0, 19);
    b
}

pub fn type5(mmsi: i64, name: &str, ship_type: i64, destination: &str) -> Bits {
    let mut b = Bits::default();
    b.put(5, 6)
        .put(0, 2)
        .put(mmsi, 30)
        .put(0, 2)
        .put(9_134_270, 30);
    b.text("3FOF8", 7).text(name, 20).put(ship_type, 8);
    b.put(225, 9).put(70, 9).put(1, 6).put(31, 6).put(1, 4);
    b.put(5, 4).put(15, 5).put(14, 5).put(0, 6).put(122, 8);
    b.text(destination, 20).put(0, 1).put(0, 1);
    b
}

pub fn two_fragments(b: &Bits, seq: &str) -> [String; 2] {
    let (p, fill) = b.armor();
    let (a, rest) = p.split_at(60);
    [
        sentence(2, 1, seq, "B", a, 0),
        sentence(2, 2, seq, "B", rest, fill),
    ]
}
