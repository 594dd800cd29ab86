"""Third-party oracle for rampart-codec-ais: pyais ENCODES messages of every supported type
with random but valid field values (sentinels included), then DECODES its own sentences;
one JSON line per message: {"type", "sentences", "fields", "rot_raw"}. The Rust test
reassembles and decodes the sentences and compares every field.

Usage: python ais_oracle.py SEED COUNT_PER_TYPE
Also: python ais_oracle.py --decode FILE  (decodes recorded sentences, same output shape)
"""
import enum
import json
import random
import sys

from pyais import decode, encode_dict

SIXBIT = "@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_ !\"#$%&'()*+,-./0123456789:;<=>?"


def plain(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, bytes):
        return None
    return v


def out(msg_type, sentences, decoded, rot_raw=None):
    fields = {k: plain(v) for k, v in decoded.asdict().items()}
    print(json.dumps({"type": msg_type, "sentences": sentences, "fields": fields,
                      "rot_raw": rot_raw}))


if sys.argv[1] == "--decode":
    group = []
    for line in open(sys.argv[2]):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        group.append(line)
        count, number = line.split(",")[1:3]
        if number == count:
            msg = decode(*group)
            out(msg.msg_type, group, msg)
            group = []
    sys.exit(0)

seed, count = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(seed)


def mmsi():
    while True:
        m = rnd.randint(1, 999_999_999)
        if m // 10_000_000 != 98:  # auxiliary craft reuse type 24B dimension bits
            return m


def text(n):
    k = rnd.randint(0, n)
    return "".join(rnd.choice(SIXBIT) for _ in range(k))


def lon():
    return 181.0 if rnd.random() < 0.05 else rnd.uniform(-180, 180)


def lat():
    return 91.0 if rnd.random() < 0.05 else rnd.uniform(-90, 90)


def speed():
    return 102.3 if rnd.random() < 0.05 else rnd.randint(0, 1022) / 10


def course():
    return 360.0 if rnd.random() < 0.05 else rnd.randint(0, 3599) / 10


def heading():
    return 511 if rnd.random() < 0.2 else rnd.randint(0, 359)


def dims():
    return {"to_bow": rnd.randint(0, 511), "to_stern": rnd.randint(0, 511),
            "to_port": rnd.randint(0, 63), "to_starboard": rnd.randint(0, 63)}


def b():
    return rnd.random() < 0.5


def type123(t):
    r = rnd.choice([-128, 127, -127, 0, rnd.randint(-126, 126)])
    turn = float(r) if abs(r) >= 127 else (1 if r >= 0 else -1) * (r / 4.733) ** 2
    return {"msg_type": t, "repeat": rnd.randint(0, 3), "mmsi": mmsi(),
            "status": rnd.randint(0, 15), "turn": turn, "speed": speed(), "accuracy": b(),
            "lon": lon(), "lat": lat(), "course": course(), "heading": heading(),
            "second": rnd.randint(0, 63), "maneuver": rnd.randint(0, 2), "raim": b(),
            "radio": rnd.randint(0, 2**19 - 1)}, r


def type4():
    return {"msg_type": 4, "repeat": rnd.randint(0, 3), "mmsi": mmsi(),
            "year": rnd.randint(0, 16383), "month": rnd.randint(0, 15), "day": rnd.randint(0, 31),
            "hour": rnd.randint(0, 31), "minute": rnd.randint(0, 63), "second": rnd.randint(0, 63),
            "accuracy": b(), "lon": lon(), "lat": lat(), "epfd": rnd.randint(0, 15), "raim": b(),
            "radio": rnd.randint(0, 2**19 - 1)}, None


def type5():
    return {"msg_type": 5, "repeat": rnd.randint(0, 3), "mmsi": mmsi(),
            "ais_version": rnd.randint(0, 3), "imo": rnd.choice([0, rnd.randint(1, 2**30 - 1)]),
            "callsign": text(7), "shipname": text(20), "ship_type": rnd.randint(0, 99), **dims(),
            "epfd": rnd.randint(0, 15), "month": rnd.randint(0, 12), "day": rnd.randint(0, 31),
            "hour": rnd.randint(0, 24), "minute": rnd.randint(0, 60),
            "draught": rnd.randint(0, 255) / 10, "destination": text(20), "dte": b()}, None


def type18():
    return {"msg_type": 18, "repeat": rnd.randint(0, 3), "mmsi": mmsi(), "speed": speed(),
            "accuracy": b(), "lon": lon(), "lat": lat(), "course": course(),
            "heading": heading(), "second": rnd.randint(0, 63), "cs": b(), "display": b(),
            "dsc": b(), "band": b(), "msg22": b(), "assigned": b(), "raim": b(),
            "radio": rnd.randint(0, 2**20 - 1)}, None


def type19():
    return {"msg_type": 19, "repeat": rnd.randint(0, 3), "mmsi": mmsi(), "speed": speed(),
            "accuracy": b(), "lon": lon(), "lat": lat(), "course": course(),
            "heading": heading(), "second": rnd.randint(0, 63), "shipname": text(20),
            "ship_type": rnd.randint(0, 99), **dims(), "epfd": rnd.randint(0, 15), "raim": b(),
            "dte": b(), "assigned": b()}, None


def type21():
    name = text(20)
    ext = text(14) if len(name) == 20 else ""
    return {"msg_type": 21, "repeat": rnd.randint(0, 3), "mmsi": mmsi(),
            "aid_type": rnd.randint(0, 31), "name": name, "accuracy": b(), "lon": lon(),
            "lat": lat(), **dims(), "epfd": rnd.randint(0, 15), "second": rnd.randint(0, 63),
            "off_position": b(), "raim": b(), "virtual_aid": b(), "assigned": b(),
            "name_ext": ext}, None


def type24():
    if b():
        return {"msg_type": 24, "repeat": rnd.randint(0, 3), "mmsi": mmsi(), "partno": 0,
                "shipname": text(20)}, None
    return {"msg_type": 24, "repeat": rnd.randint(0, 3), "mmsi": mmsi(), "partno": 1,
            "ship_type": rnd.randint(0, 99), "vendorid": text(3), "model": rnd.randint(0, 15),
            "serial": rnd.randint(0, 2**20 - 1), "callsign": text(7), **dims()}, None


def type27():
    lo = 181.0 if rnd.random() < 0.05 else rnd.randint(-108000, 108000) / 600
    la = 91.0 if rnd.random() < 0.05 else rnd.randint(-54000, 54000) / 600
    return {"msg_type": 27, "repeat": rnd.randint(0, 3), "mmsi": mmsi(), "accuracy": b(),
            "raim": b(), "status": rnd.randint(0, 15), "lon": lo, "lat": la,
            "speed": rnd.randint(0, 63), "course": rnd.choice([511, rnd.randint(0, 359)]),
            "gnss": b()}, None


GENERATORS = [lambda: type123(1), lambda: type123(2), lambda: type123(3), type4, type5, type18,
              type19, type21, type24, type27]
for gen in GENERATORS:
    for _ in range(count):
        data, rot_raw = gen()
        kind = rnd.choice(["VDM", "VDM", "VDO"])
        channel = rnd.choice(["A", "B"])
        seq = rnd.randint(0, 9)
        sentences = encode_dict(data, talker_id="AI", sentence_type=kind, radio_channel=channel,
                                seq_id=seq)
        out(data["msg_type"], sentences, decode(*sentences), rot_raw)
