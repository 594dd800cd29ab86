"""Oracle for rampart-codec-adsb: decodes requests with pyModeS 3.6.1 and prints JSON lines.

Reads one request per line on stdin and prints exactly one JSON object per request, in order:

  M <hex>                                     -> pyModeS.decode(hex), selected fields
  A <even_hex> <odd_hex> <even|odd>           -> airborne pair position (newest parity given)
  S <even_hex> <odd_hex> <even|odd> <lat> <lon> -> surface pair position, reference lat/lon
  L <hex> <lat> <lon>                         -> local (reference) position of one frame

Positions are {"lat": .., "lon": ..} or {"lat": null, "lon": null} when pyModeS rejects the
pair. The Rust test (tests/oracle.rs) builds the requests and compares.
"""

import json
import sys

import pyModeS
from pyModeS.position import (
    airborne_position_pair,
    airborne_position_with_ref,
    surface_position_pair,
    surface_position_with_ref,
)

assert pyModeS.__version__ == "3.6.1", pyModeS.__version__

KEYS = (
    "df",
    "icao",
    "crc_valid",
    "typecode",
    "callsign",
    "category",
    "altitude",
    "cpr_format",
    "cpr_lat",
    "cpr_lon",
    "groundspeed",
    "track",
    "movement",
    "subtype",
    "airspeed",
    "airspeed_type",
    "heading",
    "vertical_rate",
    "vr_source",
    "geo_minus_baro",
    "emergency_state",
    "squawk",
)


def decode(hexstr):
    d = pyModeS.decode(hexstr)
    return {k: d[k] for k in KEYS if k in d}


def pos(result):
    if result is None:
        return {"lat": None, "lon": None}
    return {"lat": result[0], "lon": result[1]}


def main():
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        kind = parts[0]
        if kind == "M":
            out = decode(parts[1])
        elif kind in ("A", "S"):
            e, o = decode(parts[1]), decode(parts[2])
            newer = parts[3] == "even"
            args = (e["cpr_lat"], e["cpr_lon"], o["cpr_lat"], o["cpr_lon"])
            if kind == "A":
                out = pos(airborne_position_pair(*args, even_is_newer=newer))
            else:
                ref = (float(parts[4]), float(parts[5]))
                out = pos(
                    surface_position_pair(
                        *args, lat_ref=ref[0], lon_ref=ref[1], even_is_newer=newer
                    )
                )
        elif kind == "L":
            d = decode(parts[1])
            ref = (float(parts[2]), float(parts[3]))
            fn = (
                airborne_position_with_ref
                if 9 <= d["typecode"] <= 22
                else surface_position_with_ref
            )
            out = pos(fn(d["cpr_format"], d["cpr_lat"], d["cpr_lon"], *ref))
        else:
            raise SystemExit(f"unknown request {kind!r}")
        print(json.dumps(out))


if __name__ == "__main__":
    main()
