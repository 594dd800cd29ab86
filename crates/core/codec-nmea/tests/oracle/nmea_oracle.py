"""Third-party oracle for rampart-codec-nmea: generates random but valid NMEA 0183
sentences, renders them (with checksum) with pynmea2, parses them back with pynmea2 and
prints one JSON line per sentence: {"sentence", "kind", "expect"}. The Rust test decodes the
sentence and compares every field with pynmea2's interpretation.

Usage: python nmea_oracle.py SEED COUNT_PER_TYPE
Also: python nmea_oracle.py --decode FILE  (pynmea2's reading of recorded sentences)
"""
import json
import random
import sys

import pynmea2

DECODE = sys.argv[1] == "--decode"
seed, count = (0, 0) if DECODE else (int(sys.argv[1]), int(sys.argv[2]))
rnd = random.Random(seed)
TALKERS = ["GP", "GN", "GL", "GA", "GB", "BD"]


def maybe(value, p_empty=0.1):
    return "" if rnd.random() < p_empty else value


def time_field():
    h, m, s = rnd.randrange(24), rnd.randrange(60), rnd.randrange(60)
    frac = rnd.choice(["", ".00", ".5", ".25", ".123"])
    return f"{h:02d}{m:02d}{s:02d}{frac}"


def lat_fields():
    deg, minutes = rnd.randrange(90), rnd.uniform(0, 59.99999)
    return f"{deg:02d}{minutes:0{3 + 5}.5f}"[:10], rnd.choice("NS")


def lon_fields():
    deg, minutes = rnd.randrange(180), rnd.uniform(0, 59.99999)
    return f"{deg:03d}{minutes:08.5f}", rnd.choice("EW")


def num(lo, hi, decimals):
    return f"{rnd.uniform(lo, hi):.{decimals}f}"


def ms(t):
    if t is None:
        return None
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def f(x):
    return None if x in (None, "") else float(x)


def i(x):
    return None if x in (None, "") else int(x)


def s(x):
    return None if x in (None, "") else str(x)


def pos(m):
    if not m.lat:
        return None
    return [m.latitude, m.longitude]


def gga():
    lat, ns = lat_fields()
    lon, ew = lon_fields()
    has_pos = rnd.random() > 0.1
    fields = (
        maybe(time_field()),
        lat if has_pos else "", ns if has_pos else "",
        lon if has_pos else "", ew if has_pos else "",
        str(rnd.randrange(9)), maybe(f"{rnd.randrange(40):02d}"), maybe(num(0.5, 30, 1)),
        maybe(num(-400, 9000, 1)), "M", maybe(num(-100, 100, 1)), "M",
        maybe(num(0, 99, 1), 0.7), maybe(f"{rnd.randrange(1024):04d}", 0.7),
    )
    return fields, lambda m: {
        "time": ms(m.timestamp), "position": pos(m), "fix_quality": i(m.gps_qual),
        "satellites": i(m.num_sats), "hdop": f(m.horizontal_dil), "altitude": f(m.altitude),
        "geoid_separation": f(m.geo_sep), "dgps_age": f(m.age_gps_data),
        "dgps_station": i(m.ref_station_id),
    }


def rmc():
    lat, ns = lat_fields()
    lon, ew = lon_fields()
    date = f"{rnd.randint(1, 28):02d}{rnd.randint(1, 12):02d}{rnd.randint(0, 60):02d}"
    fields = [
        maybe(time_field()), rnd.choice("AV"), lat, ns, lon, ew,
        maybe(num(0, 200, 2)), maybe(num(0, 359.99, 2)), maybe(date),
        *(rnd.choice([(num(0, 30, 1), rnd.choice("EW")), ("", "")])),
    ]
    if rnd.random() < 0.8:
        fields.append(rnd.choice("ADEFMNPRS"))
        if rnd.random() < 0.3:
            fields.append(rnd.choice("SCUV"))
    return tuple(fields), lambda m: {
        "time": ms(m.timestamp), "valid": m.status == "A", "position": pos(m),
        "speed_knots": f(m.spd_over_grnd), "course": f(m.true_course),
        "date": None if m.datestamp is None else [m.datestamp.year, m.datestamp.month, m.datestamp.day],
        "magnetic_variation": None if not m.mag_variation else
            float(m.mag_variation) * (1 if m.mag_var_dir == "E" else -1),
        "mode": s(getattr(m, "mode_indicator", None)),
    }


def vtg():
    fields = (
        maybe(num(0, 359.9, 1)), "T", maybe(num(0, 359.9, 1)), "M",
        maybe(num(0, 100, 2)), "N", maybe(num(0, 185, 2)), "K", rnd.choice("ADEN"),
    )
    return fields, lambda m: {
        "course_true": f(m.true_track), "course_magnetic": f(m.mag_track),
        "speed_knots": f(m.spd_over_grnd_kts), "speed_kmh": f(m.spd_over_grnd_kmph),
        "mode": s(m.faa_mode),
    }


def gll():
    lat, ns = lat_fields()
    lon, ew = lon_fields()
    fields = (lat, ns, lon, ew, maybe(time_field()), rnd.choice("AV"), rnd.choice("ADEN"))
    return fields, lambda m: {
        "position": pos(m), "time": ms(m.timestamp), "valid": m.status == "A",
        "mode": s(m.faa_mode),
    }


def gsa():
    prns = [maybe(f"{rnd.randint(1, 96):02d}", 0.4) for _ in range(12)]
    fields = (rnd.choice("AM"), str(rnd.randint(1, 3)), *prns,
              maybe(num(0.5, 20, 1)), maybe(num(0.5, 20, 1)), maybe(num(0.5, 20, 1)))
    return fields, lambda m: {
        "selection_mode": s(m.mode), "fix_type": i(m.mode_fix_type),
        "satellites": [i(getattr(m, f"sv_id{k:02d}")) for k in range(1, 13)],
        "pdop": f(m.pdop), "hdop": f(m.hdop), "vdop": f(m.vdop),
    }


def gsv():
    total = rnd.randint(1, 4)
    number = rnd.randint(1, total)
    nsat = rnd.randint(1, 4)
    fields = [str(total), str(number), f"{rnd.randint(0, 16):02d}"]
    for _ in range(nsat):
        fields += [f"{rnd.randint(1, 96):02d}", maybe(f"{rnd.randint(0, 90):02d}"),
                   maybe(f"{rnd.randint(0, 359):03d}"), maybe(f"{rnd.randint(0, 99):02d}", 0.3)]

    def expect(m):
        sats = []
        for k in range(1, 5):
            prn = i(getattr(m, f"sv_prn_num_{k}", None))
            sats.append(None if prn is None else [
                prn, i(getattr(m, f"elevation_deg_{k}")), i(getattr(m, f"azimuth_{k}")),
                i(getattr(m, f"snr_{k}"))])
        return {"total": i(m.num_messages), "number": i(m.msg_num),
                "in_view": i(m.num_sv_in_view), "satellites": sats}
    return tuple(fields), expect


def zda():
    fields = (maybe(time_field()), f"{rnd.randint(1, 28):02d}", f"{rnd.randint(1, 12):02d}",
              str(rnd.randint(1990, 2090)), maybe(f"{rnd.randint(-13, 13):02d}"),
              maybe(f"{rnd.randint(0, 59):02d}"))
    return fields, lambda m: {
        "time": ms(m.timestamp), "date": [i(m.year), i(m.month), i(m.day)],
        "zone_hours": i(m.local_zone), "zone_minutes": i(m.local_zone_minutes),
    }


GENERATORS = {"GGA": gga, "RMC": rmc, "VTG": vtg, "GLL": gll, "GSA": gsa, "GSV": gsv, "ZDA": zda}
if DECODE:
    # The expectation functions do not depend on the generated fields.
    expectations = {kind: gen()[1] for kind, gen in GENERATORS.items()}
    for line in open(sys.argv[2]):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parsed = pynmea2.parse(line, check=True)
        print(json.dumps({"sentence": line, "kind": parsed.sentence_type,
                          "talker": parsed.talker,
                          "expect": expectations[parsed.sentence_type](parsed)}))
    sys.exit(0)

for kind, gen in GENERATORS.items():
    for _ in range(count):
        fields, expect = gen()
        msg = getattr(pynmea2, kind)(rnd.choice(TALKERS), kind, tuple(fields))
        sentence = msg.render()
        parsed = pynmea2.parse(sentence, check=True)
        print(json.dumps({"sentence": sentence, "kind": kind, "talker": parsed.talker,
                          "expect": expect(parsed)}))
