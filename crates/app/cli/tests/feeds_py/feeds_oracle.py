"""Third-party generators and checkers for the feed end-to-end tests (tests/feeds.rs).

Generators print one JSON document on stdout:

  nmea EPOCHS START_UNIX_S          pynmea2 renders GGA+RMC+VTG epochs of a moving receiver,
                                    one second apart from START_UNIX_S; pynmea2 parses them
                                    back and gives the expected fields of every epoch
  ais MMSI_BASE                     pyais encodes messages of types 1, 5 (two fragments), 18,
                                    24A/B, 21 and 27 for MMSIs from MMSI_BASE and decodes its
                                    own sentences
  ais-tagged COUNT SPAN_S START_S   COUNT type-1 sentences (distinct MMSIs) with tag-block
                                    c: stamps spread evenly over SPAN_S seconds
  ais-one JSON                      pyais encodes one message given as a JSON dict
  adsb HEX...                       pyModeS 3 decodes each frame (selected fields), and the
                                    even/odd pair position of the first two position frames

Checkers read a file and print a JSON summary (or exit non-zero naming the problem):

  check-geojson FILE                parsed and validated with the `geojson` package
  check-xml FILE                    parsed with xml.etree; every coordinate and id found
  check-csv FILE                    parsed with the csv module; rows as dicts
"""
import csv
import datetime
import json
import sys
import xml.etree.ElementTree as ET


def nmea_fields(deg, hemis):
    d = int(abs(deg))
    minutes = (abs(deg) - d) * 60
    return d, minutes, hemis[0] if deg >= 0 else hemis[1]


def nmea(epochs, start):
    import pynmea2

    out = []
    lat, lon = 59.329300, 18.068600
    for i in range(epochs):
        t = datetime.datetime.fromtimestamp(start + i, datetime.timezone.utc)
        hhmmss = t.strftime("%H%M%S") + ".00"
        ddmmyy = t.strftime("%d%m%y")
        la_d, la_m, ns = nmea_fields(lat, "NS")
        lo_d, lo_m, ew = nmea_fields(lon, "EW")
        la = f"{la_d:02d}{la_m:09.6f}"
        lo = f"{lo_d:03d}{lo_m:09.6f}"
        knots = f"{10.0 + i * 0.5:.1f}"
        course = f"{(40.0 + i * 3.3) % 360:.1f}"
        hdop = f"{0.8 + i * 0.1:.1f}"
        alt = f"{45.0 + i:.1f}"
        sep = "18.7"
        gga = pynmea2.GGA("GP", "GGA", (hhmmss, la, ns, lo, ew, "1", "09", hdop, alt, "M",
                                        sep, "M", "", ""))
        rmc = pynmea2.RMC("GP", "RMC", (hhmmss, "A", la, ns, lo, ew, knots, course, ddmmyy,
                                        "", "", "A"))
        vtg = pynmea2.VTG("GP", "VTG", (course, "T", "", "M", knots, "N",
                                        f"{float(knots) * 1.852:.1f}", "K", "A"))
        sentences = [str(gga), str(rmc), str(vtg)]
        g, r = pynmea2.parse(sentences[0]), pynmea2.parse(sentences[1])
        out.append({
            "sentences": sentences,
            "time": int((start + i) * 1000),
            "lat": g.latitude, "lon": g.longitude,
            "alt": float(g.altitude), "sep": float(g.geo_sep),
            "knots": float(r.spd_over_grnd), "course": float(r.true_course),
            "hdop": float(g.horizontal_dil),
        })
        lat += 0.00021
        lon += 0.00033
    print(json.dumps(out))


def plain(v):
    import enum

    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (int, float, str)):
        return v
    return None


def ais(base):
    from pyais import decode, encode_dict

    groups = []

    def add(data, seq=None):
        sentences = encode_dict(data, talker_id="AI", sentence_type="VDM", radio_channel="A",
                                seq_id=seq if seq is not None else 0)
        msg = decode(*sentences)
        fields = {k: plain(v) for k, v in msg.asdict().items()}
        groups.append({"type": data["msg_type"], "sentences": sentences, "fields": fields})

    cargo, yacht, buoy, far = base + 1, base + 2, base + 3, base + 4
    # A class A cargo ship: static data first (two fragments), then its position.
    add({"msg_type": 5, "mmsi": cargo, "callsign": "RMP01", "shipname": "RAMPART TRADER",
         "ship_type": 70, "to_bow": 100, "to_stern": 20, "to_port": 10, "to_starboard": 10,
         "draught": 7.5, "destination": "ROTTERDAM", "imo": 9123456}, seq=3)
    add({"msg_type": 1, "mmsi": cargo, "status": 0, "turn": 0, "speed": 12.3,
         "accuracy": True, "lon": 4.123456, "lat": 51.987654, "course": 215.4, "heading": 214,
         "second": 30})
    # A class B yacht: position, static parts A and B, then another position.
    add({"msg_type": 18, "mmsi": yacht, "speed": 5.4, "accuracy": False, "lon": 3.5,
         "lat": 51.5, "course": 90.0, "heading": 91, "second": 10, "cs": True})
    add({"msg_type": 24, "mmsi": yacht, "partno": 0, "shipname": "SEA BREEZE"})
    add({"msg_type": 24, "mmsi": yacht, "partno": 1, "ship_type": 37, "callsign": "PH1234",
         "vendorid": "ABC", "to_bow": 8, "to_stern": 4, "to_port": 2, "to_starboard": 2})
    add({"msg_type": 18, "mmsi": yacht, "speed": 6.1, "accuracy": True, "lon": 3.5012,
         "lat": 51.5021, "course": 77.7, "heading": 78, "second": 20, "cs": True})
    # An aid to navigation.
    add({"msg_type": 21, "mmsi": buoy, "aid_type": 14, "name": "NOORD HINDER",
         "accuracy": True, "lon": 2.8556, "lat": 52.0093, "virtual_aid": False,
         "off_position": False, "to_bow": 1, "to_stern": 1, "to_port": 1, "to_starboard": 1})
    # A long-range position (1/10 minute resolution).
    add({"msg_type": 27, "mmsi": far, "accuracy": False, "status": 0,
         "lon": 1234 / 600 * 10, "lat": 30000 / 600, "speed": 14, "course": 123, "gnss": True})
    print(json.dumps(groups))


def tag(payload):
    cs = 0
    for ch in payload:
        cs ^= ord(ch)
    return f"\\{payload}*{cs:02X}\\"


def ais_tagged(count, span, start):
    from pyais import decode, encode_dict

    lines, mmsis = [], []
    for i in range(count):
        mmsi = 219000000 + i
        data = {"msg_type": 1, "mmsi": mmsi, "status": 0, "speed": 8.0 + i % 10,
                "accuracy": True, "lon": 10.0 + i * 0.01, "lat": 55.0 + i * 0.01,
                "course": float(i * 7 % 360), "heading": i * 7 % 360, "second": 0}
        [sentence] = encode_dict(data, talker_id="AI", sentence_type="VDM", radio_channel="B")
        decode(sentence)
        t = start + (span * i) // max(count - 1, 1)
        lines.append(tag(f"s:rampart,c:{t}") + sentence)
        mmsis.append({"mmsi": mmsi, "lat": data["lat"], "lon": data["lon"]})
    print(json.dumps({"lines": lines, "vessels": mmsis}))


def adsb(frames):
    import pyModeS
    from pyModeS.position import airborne_position_pair

    assert pyModeS.__version__ == "3.6.1", pyModeS.__version__
    keys = ("df", "icao", "crc_valid", "typecode", "callsign", "altitude", "cpr_format",
            "cpr_lat", "cpr_lon", "groundspeed", "track")
    decoded = []
    for f in frames:
        d = pyModeS.decode(f)
        decoded.append({k: d[k] for k in keys if k in d})
    pos = [d for d in decoded if d.get("cpr_format") is not None]
    pair = None
    if len(pos) >= 2:
        # The first even and odd frames of the first address that sent positions.
        icao = pos[0]["icao"]
        mine = [d for d in pos if d["icao"] == icao]
        even = next(i for i, d in enumerate(mine) if d["cpr_format"] == 0)
        odd = next(i for i, d in enumerate(mine) if d["cpr_format"] == 1)
        e, o = mine[even], mine[odd]
        p = airborne_position_pair(e["cpr_lat"], e["cpr_lon"], o["cpr_lat"], o["cpr_lon"],
                                   even_is_newer=even > odd)
        pair = None if p is None else {"lat": p[0], "lon": p[1]}
    print(json.dumps({"frames": decoded, "pair": pair}))


def check_geojson(path):
    import geojson

    with open(path, encoding="utf-8") as fh:
        obj = geojson.load(fh)
    if not obj.is_valid:
        raise SystemExit(f"invalid GeoJSON: {obj.errors()}")
    features = obj["features"] if obj["type"] == "FeatureCollection" else [obj]
    out = []
    for f in features:
        geom = f["geometry"]
        out.append({"id": f.get("id"), "geometry": geom["type"],
                    "coordinates": geom["coordinates"],
                    "properties": dict(f.get("properties") or {})})
    print(json.dumps({"type": obj["type"], "features": out}))


def local(tag_name):
    return tag_name.rsplit("}", 1)[-1]


def check_xml(path):
    root = ET.parse(path).getroot()
    coords, points, texts = [], [], []
    for el in root.iter():
        name = local(el.tag)
        if name == "coordinates" and el.text and el.text.strip():
            # KML: whitespace-separated lon,lat[,alt] tuples.
            for tup in el.text.split():
                coords.append([float(x) for x in tup.split(",")])
        if name == "coord" and el.text and el.text.strip():
            # gx:coord: one "lon lat alt" tuple.
            coords.append([float(x) for x in el.text.split()])
        if name in ("trkpt", "wpt", "point"):
            points.append({"lat": float(el.get("lat")), "lon": float(el.get("lon"))})
        if name in ("name", "event") or el.get("uid") or el.get("id"):
            texts.append((el.text or "").strip() or el.get("uid") or el.get("id") or "")
    print(json.dumps({"root": local(root.tag), "namespace": root.tag.partition("}")[0][1:],
                      "coordinates": coords, "points": points, "names": texts}))


def check_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    print(json.dumps({"rows": rows}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "nmea":
        nmea(int(args[0]), int(args[1]))
    elif cmd == "ais":
        ais(int(args[0]))
    elif cmd == "ais-one":
        from pyais import encode_dict

        print(json.dumps(encode_dict(json.loads(args[0]), talker_id="AI", sentence_type="VDM")))
    elif cmd == "ais-tagged":
        ais_tagged(int(args[0]), int(args[1]), int(args[2]))
    elif cmd == "adsb":
        adsb(args)
    elif cmd == "check-geojson":
        check_geojson(args[0])
    elif cmd == "check-xml":
        check_xml(args[0])
    elif cmd == "check-csv":
        check_csv(args[0])
    else:
        raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main()
