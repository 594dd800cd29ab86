"""Sparkplug B oracle: Eclipse Tahu's Python helper (`sparkplug_b.py`, shipped in PyPI package
sparkplug-b-packets as module `sparkplub_b_packets`) encodes an edge node session (NBIRTH,
DBIRTH, DDATA and NDATA by alias only, a seq gap, DDEATH, NDEATH) with random values of every
scalar datatype; Google's protobuf runtime, with Tahu's compiled sparkplug_b.proto, decodes the
bytes again. Prints one JSON object per message: topic, payload hex and what was decoded, the
names of alias-only metrics resolved from the births and signed integers read two's complement
at their width as the specification says. The decoded values are checked against the values
given to the encoder before anything is printed.

Usage: sparkplug_oracle.py SEED
"""

import json
import random
import struct
import sys

import sparkplub_b_packets.core.sparkplug_b as tahu
from sparkplub_b_packets.core.sparkplug_b import MetricDataType as T
from sparkplub_b_packets.core.sparkplug_b_pb2 import Payload

rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
GROUP, NODE, DEVICE = "plant-1", "edge-7", "pump-3"
T0 = 1_700_000_000_000 + rng.randrange(10**9)

SIGNED = {T.Int8: 8, T.Int16: 16, T.Int32: 32, T.Int64: 64}
UNSIGNED = {T.UInt8: 8, T.UInt16: 16, T.UInt32: 32, T.UInt64: 64}
SCALARS = [*SIGNED, *UNSIGNED, T.Float, T.Double, T.Boolean, T.String, T.Text, T.UUID,
           T.DateTime, T.Bytes]
NAMES = {v: k for k, v in vars(T).items() if isinstance(v, int)}


def rand_value(dt):
    if dt in SIGNED:
        b = SIGNED[dt]
        return rng.choice([-(2 ** (b - 1)), -1, 2 ** (b - 1) - 1, rng.randrange(-(2 ** (b - 1)), 2 ** (b - 1))])
    if dt in UNSIGNED:
        b = UNSIGNED[dt]
        return rng.choice([0, 2**b - 1, rng.randrange(2**b)])
    if dt == T.Float:
        return struct.unpack("<f", struct.pack("<f", rng.uniform(-1e6, 1e6)))[0]
    if dt == T.Double:
        return rng.uniform(-1e300, 1e300)
    if dt == T.Boolean:
        return rng.random() < 0.5
    if dt in (T.String, T.Text):
        return "".join(rng.choice("abcXYZ é/°-_ 0123") for _ in range(rng.randrange(0, 12)))
    if dt == T.UUID:
        return "%08x-%04x-4%03x-a%03x-%012x" % tuple(rng.randrange(16**n) for n in (8, 4, 3, 3, 12))
    if dt == T.DateTime:
        return T0 - rng.randrange(10**8)
    if dt == T.Bytes:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 9)))
    raise ValueError(dt)


def read_value(m, dt):
    """The value of a decoded protobuf metric as the specification's type `dt`."""
    if m.is_null:
        return None
    field = m.WhichOneof("value")
    raw = getattr(m, field)
    if dt in SIGNED:
        b = SIGNED[dt]
        raw &= (1 << b) - 1
        return raw - (1 << b) if raw >= 1 << (b - 1) else raw
    return raw


def to_json(v):
    if isinstance(v, bytes):
        return {"hex": v.hex()}
    if isinstance(v, float):
        # The exact bits: JSON parsers may round the last digit of a decimal.
        return {"f64": struct.pack(">d", v).hex()}
    return v


class Session:
    def __init__(self):
        self.names = {}  # (scope, alias) -> name
        self.types = {}  # (scope, name) -> datatype

    def emit(self, kind, topic, payload, sent, scope):
        raw = payload.SerializeToString()
        decoded = Payload.FromString(raw)
        metrics = []
        for m, value in zip(decoded.metrics, sent):
            name = m.name if m.HasField("name") else self.names[(scope, m.alias)]
            dt = m.datatype if m.HasField("datatype") else self.types[(scope, name)]
            if kind.endswith("BIRTH"):
                if m.HasField("alias"):
                    self.names[(scope, m.alias)] = name
                self.types[(scope, name)] = dt
            got = read_value(m, dt)
            assert got == value or (value is None and m.is_null), (kind, name, got, value)
            metrics.append({
                "name": name,
                "alias": m.alias if m.HasField("alias") else None,
                "datatype": dt,
                "value": to_json(got),
                "is_null": m.is_null,
                "is_historical": m.is_historical,
                "timestamp": m.timestamp if m.HasField("timestamp") else None,
            })
        print(json.dumps({
            "kind": kind,
            "topic": topic,
            "hex": raw.hex(),
            "seq": decoded.seq if decoded.HasField("seq") else None,
            "timestamp": decoded.timestamp if decoded.HasField("timestamp") else None,
            "metrics": metrics,
        }))


def payload(ts, seq):
    p = Payload()
    p.timestamp = ts
    if seq is not None:
        p.seq = seq
    return p


def birth(p, prefix, first_alias, out):
    """One metric per scalar type with an alias, plus a null one."""
    for i, dt in enumerate(SCALARS):
        v = rand_value(dt)
        tahu.addMetric(p, f"{prefix}/{NAMES[dt].lower()}", first_alias + i, dt, v, timestamp=T0)
        out.append((first_alias + i, dt, v))
    tahu.addNullMetric(p, f"{prefix}/nothing", first_alias + len(SCALARS), T.Double)
    return [v for _, _, v in out] + [None]


def data(p, born, k):
    """k random birth metrics by alias only; every other one also without its datatype."""
    sent = []
    for alias, dt, _ in rng.sample(born, k):
        v = rand_value(dt)
        m = tahu.addMetric(p, None, alias, dt, v, timestamp=T0 + rng.randrange(1000))
        if rng.random() < 0.5:
            m.ClearField("datatype")
        if rng.random() < 0.2:
            m.is_historical = True
        sent.append(v)
    return sent


s = Session()
node_t = f"spBv1.0/{GROUP}/%s/{NODE}"
dev_t = f"spBv1.0/{GROUP}/%s/{NODE}/{DEVICE}"
bd_seq = rng.randrange(256)

p = payload(T0, 0)
tahu.addMetric(p, "bdSeq", None, T.Int64, bd_seq, timestamp=T0)
node_born = []
sent = [bd_seq] + birth(p, "node", 1, node_born)
s.emit("NBIRTH", node_t % "NBIRTH", p, sent, "node")

p = payload(T0 + 1, 1)
dev_born = []
s.emit("DBIRTH", dev_t % "DBIRTH", p, birth(p, "dev", 100, dev_born), "dev")

seq = 2
for _ in range(3):
    p = payload(T0 + 2, seq)
    s.emit("DDATA", dev_t % "DDATA", p, data(p, dev_born, 5), "dev")
    seq += 1
    p = payload(T0 + 3, seq)
    s.emit("NDATA", node_t % "NDATA", p, data(p, node_born, 4), "node")
    seq += 1
# A lost message: seq jumps by 2.
p = payload(T0 + 4, (seq + 1) % 256)
s.emit("DDATA", dev_t % "DDATA", p, data(p, dev_born, 2), "dev")
s.emit("DDEATH", dev_t % "DDEATH", payload(T0 + 5, (seq + 2) % 256), [], "dev")
p = payload(T0 + 6, None)
tahu.addMetric(p, "bdSeq", None, T.Int64, bd_seq, timestamp=T0 + 6)
s.emit("NDEATH", node_t % "NDEATH", p, [bd_seq], "node")
