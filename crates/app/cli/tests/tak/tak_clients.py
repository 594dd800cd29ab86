#!/usr/bin/env python3
"""Real TAK clients against a running Rampart node, for tests/tak.rs.

The clients are built from PyPI `pytak` (its CLITool/TXWorker/RXWorker over
`pytak.protocol_factory`, events from `pytak.gen_cot_xml`) and `takproto` (TAK protocol v1
encoding and decoding), as a TAK client would use them. Hostile peers that no library would
produce (malformed XML, slowloris, a receiver that never reads) are plain sockets.

Usage: tak_clients.py SCENARIO --tcp HOST:PORT [--tls HOST:PORT] [--udp HOST:PORT]
                      [--http URL] [--data DIR]

Every scenario asserts what a client must see, and prints one JSON object on stdout with
what was observed, for the Rust test to check against the server's HTTP API and metrics.
A failed expectation exits non-zero with the reason on stderr.
"""

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
import urllib.request
import uuid
import warnings
import xml.etree.ElementTree as ET
from configparser import ConfigParser
from datetime import datetime, timedelta, timezone

warnings.filterwarnings("ignore")  # pytak warns about optional extras and disabled TLS checks

import pytak  # noqa: E402
import takproto  # noqa: E402

logging.getLogger("pytak").setLevel(logging.WARNING)
for _name in ("pytak.classes", "pytak.client_functions"):
    logging.getLogger(_name).setLevel(logging.WARNING)

# How long a client waits for something it must receive.
TIMEOUT = float(os.environ.get("TAK_TEST_TIMEOUT", "8"))
# How long a client listens for something it must NOT receive, after a later marker arrived.
QUIET = 0.3

CONTROL_PREFIX = "t-x-"
SLOW = 'rampart_cot_disconnects_total{reason="slow_consumer"}'


class Failure(Exception):
    """An expectation did not hold."""


def check(cond, message):
    if not cond:
        raise Failure(message)


def iso(dt):
    return dt.strftime(pytak.W3C_XML_DATETIME)


# ---------------------------------------------------------------------------------------------
# Events, as ATAK/pytak make them


def pli(uid, callsign, lat, lon, battery=87, speed=4.5, course=90.0, stale=120, hae=25.0):
    """An ATAK-style position report (SA), built on pytak.gen_cot_xml."""
    event = pytak.gen_cot_xml(
        lat=lat,
        lon=lon,
        ce=5.0,
        hae=hae,
        le=9999999.0,
        uid=uid,
        stale=stale,
        cot_type="a-f-G-U-C",
        callsign=callsign,
    )
    detail = event.find("detail")
    contact = detail.find("contact")
    contact.set("endpoint", "*:-1:stcp")
    ET.SubElement(
        detail,
        "takv",
        {"os": "34", "version": "5.1.0", "device": "PYTAK", "platform": "ATAK-CIV"},
    )
    ET.SubElement(detail, "__group", {"role": "Team Member", "name": "Cyan"})
    ET.SubElement(detail, "status", {"battery": str(battery)})
    ET.SubElement(detail, "track", {"course": str(course), "speed": str(speed)})
    ET.SubElement(detail, "precisionlocation", {"altsrc": "GPS", "geopointsrc": "GPS"})
    return pytak.serialize_cot(event)


def geochat(sender_uid, sender_callsign, text, to_uid=None, to_callsign=None):
    """A GeoChat message (b-t-f); directed to one callsign when `to_callsign` is set."""
    msg_id = str(uuid.uuid4())
    room = to_callsign or "All Chat Rooms"
    room_id = to_uid or "All Chat Rooms"
    event = pytak.gen_cot_xml(
        lat=50.85,
        lon=4.35,
        uid=f"GeoChat.{sender_uid}.{room}.{msg_id}",
        stale=86400,
        cot_type="b-t-f",
    )
    event.set("how", "h-g-i-g-o")
    detail = event.find("detail")
    chat = ET.SubElement(
        detail,
        "__chat",
        {
            "parent": "RootContactGroup",
            "groupOwner": "false",
            "messageId": msg_id,
            "chatroom": room,
            "id": room_id,
            "senderCallsign": sender_callsign,
        },
    )
    ET.SubElement(chat, "chatgrp", {"uid0": sender_uid, "uid1": room_id, "id": room_id})
    ET.SubElement(detail, "link", {"uid": sender_uid, "type": "a-f-G-U-C", "relation": "p-p"})
    remarks = ET.SubElement(
        detail,
        "remarks",
        {"source": f"BAO.F.ATAK.{sender_uid}", "to": room_id, "time": pytak.cot_time()},
    )
    remarks.text = text
    if to_callsign:
        marti = ET.SubElement(detail, "marti")
        ET.SubElement(marti, "dest", {"callsign": to_callsign})
    return pytak.serialize_cot(event)


def emergency(sender_uid, callsign, lat, lon):
    """ATAK's 911 alert."""
    event = pytak.gen_cot_xml(
        lat=lat, lon=lon, uid=f"{sender_uid}-9-1-1", stale=600, cot_type="b-a-o-tbl"
    )
    event.set("how", "h-e")
    detail = event.find("detail")
    ET.SubElement(detail, "link", {"uid": sender_uid, "type": "a-f-G-U-C", "relation": "p-p"})
    ET.SubElement(detail, "contact", {"callsign": f"{callsign}-Alert"})
    em = ET.SubElement(detail, "emergency", {"type": "911 Alert"})
    em.text = callsign
    return pytak.serialize_cot(event)


def ping(uid):
    """ATAK's keepalive (t-x-c-t)."""
    return pytak.gen_cot(uid=f"{uid}-ping", cot_type="t-x-c-t", lat=0.0, lon=0.0, stale=20)


def stale_event(uid, callsign):
    """A position report that went stale five minutes ago."""
    now = datetime.now(timezone.utc)
    event = pytak.gen_cot_xml(lat=1.0, lon=2.0, uid=uid, cot_type="a-f-G-U-C", callsign=callsign)
    event.set("time", iso(now - timedelta(minutes=10)))
    event.set("start", iso(now - timedelta(minutes=10)))
    event.set("stale", iso(now - timedelta(minutes=5)))
    return pytak.serialize_cot(event)


def takp_request(offer_uid, version=1):
    """The client's t-x-takp-q: switch the stream to TAK protocol `version`."""
    now = datetime.now(timezone.utc)
    return (
        f'<event version="2.0" uid="{offer_uid}" type="t-x-takp-q" how="m-g" '
        f'time="{iso(now)}" start="{iso(now)}" stale="{iso(now + timedelta(minutes=1))}">'
        '<point lat="0.0" lon="0.0" hae="0.0" ce="999999" le="999999"/>'
        f'<detail><TakControl><TakRequest version="{version}"/></TakControl></detail></event>'
    ).encode()


def summary(ev):
    """The fields the tests compare, from a CoT XML <event> element."""
    out = {"uid": ev.get("uid"), "type": ev.get("type"), "how": ev.get("how")}
    pt = ev.find("point")
    if pt is not None:
        out["lat"] = float(pt.get("lat"))
        out["lon"] = float(pt.get("lon"))
        out["hae"] = float(pt.get("hae"))
    detail = ev.find("detail")
    if detail is not None:
        c = detail.find("contact")
        if c is not None:
            out["callsign"] = c.get("callsign")
        s = detail.find("status")
        if s is not None and s.get("battery") is not None:
            out["battery"] = float(s.get("battery"))
        t = detail.find("track")
        if t is not None:
            out["speed"] = float(t.get("speed"))
            out["course"] = float(t.get("course"))
        r = detail.find("remarks")
        if r is not None:
            out["remarks"] = r.text
        e = detail.find("emergency")
        if e is not None:
            out["emergency"] = e.get("type")
        chat = detail.find("__chat")
        if chat is not None:
            out["chatroom"] = chat.get("chatroom")
            out["sender"] = chat.get("senderCallsign")
        tc = detail.find("TakControl")
        if tc is not None:
            out["control"] = [dict(child.attrib, tag=child.tag) for child in tc]
    return out


def proto_summary(msg):
    """The same fields from a takproto TakMessage."""
    ev = msg.cotEvent
    d = ev.detail
    out = {
        "uid": ev.uid,
        "type": ev.type,
        "how": ev.how,
        "lat": ev.lat,
        "lon": ev.lon,
        "hae": ev.hae,
        "sendTime": ev.sendTime,
        "staleTime": ev.staleTime,
    }
    if d.HasField("contact"):
        out["callsign"] = d.contact.callsign
    if d.HasField("status"):
        out["battery"] = float(d.status.battery)
    if d.HasField("track"):
        out["speed"] = d.track.speed
        out["course"] = d.track.course
    if d.HasField("group"):
        out["group"] = d.group.name
    if d.xmlDetail:
        out["xmlDetail"] = d.xmlDetail
    return out


def parse_xml_event(data):
    text = bytes(data).strip()
    if text.startswith(b"<?xml"):
        text = text[text.index(b"?>") + 2 :].strip()
    return ET.fromstring(text)


# ---------------------------------------------------------------------------------------------
# Clients


class Client:
    """A pytak client: CLITool.create_workers opens one connection through
    pytak.protocol_factory and runs its TXWorker and RXWorker on the tool's queues."""

    @classmethod
    async def connect(cls, name, url, **extra):
        parser = ConfigParser(interpolation=None)
        parser[name] = {"COT_URL": url, "PYTAK_NO_HELLO": "1", "MAX_IN_QUEUE": "100000", **extra}
        config = parser[name]
        tool = pytak.CLITool(config)
        await tool.create_workers(config)
        self = cls()
        self.name = name
        self.tool = tool
        self.workers = list(tool.tasks)
        tool.run_tasks()
        self.events = []  # summaries of everything received, in order
        return self

    async def send(self, data):
        await self.tool.tx_queue.put(data)

    def worker_state(self):
        """Why a pytak worker stopped, if one did."""
        dead = []
        for fut in self.tool.running_tasks:
            if fut.done():
                worker = type(getattr(fut, "_pytak_worker", fut)).__name__
                exc = None if fut.cancelled() else fut.exception()
                dead.append(f"{worker} stopped: {exc!r}")
        return f" ({'; '.join(dead)})" if dead else ""

    def _absorb(self, data):
        self.events.append(summary(parse_xml_event(data)))

    async def wait_for(self, pred, what, timeout=TIMEOUT):
        """Waits for a received event matching `pred`; returns it."""
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events[seen:]:
                if pred(ev):
                    return ev
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(
                    f"{self.name} did not receive {what} within {timeout}s{self.worker_state()}; got "
                    f"{len(self.events)} events, the last: "
                    f"{[(e['uid'], e['type']) for e in self.events[-10:]]}"
                )
            try:
                data = await asyncio.wait_for(self.tool.rx_queue.get(), left)
            except asyncio.TimeoutError:
                continue
            self._absorb(data)

    async def settle(self, seconds=QUIET):
        """Takes in whatever arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._absorb(await asyncio.wait_for(self.tool.rx_queue.get(), left))
            except asyncio.TimeoutError:
                break

    def uids(self, include_control=False):
        return [
            e["uid"]
            for e in self.events
            if include_control or not (e["type"] or "").startswith(CONTROL_PREFIX)
        ]

    async def joined(self):
        """Waits for the server's t-x-takp-v offer: the server has registered the client."""
        return await self.wait_for(lambda e: e["type"] == "t-x-takp-v", "the protocol offer")

    async def close(self):
        for fut in list(self.tool.running_tasks):
            fut.cancel()
        for w in self.workers:
            writer = getattr(w, "writer", None)
            if writer is not None and hasattr(writer, "close"):
                writer.close()


async def tcp_client(args, name):
    c = await Client.connect(name, f"tcp://{args.tcp}")
    await c.joined()
    return c


async def tls_client(args, name):
    # Mutual TLS: the PKCS#12 bundle the test issued from the node's CA, and the CA to
    # verify the server (its certificate names 127.0.0.1).
    pki = os.path.join(args.data, "pki")
    c = await Client.connect(
        name,
        f"tls://{args.tls}",
        PYTAK_TLS_CLIENT_CERT=os.path.join(pki, "issued", "pytak", "pytak.p12"),
        PYTAK_TLS_CLIENT_PASSWORD="atakatak",
        PYTAK_TLS_CLIENT_CAFILE=os.path.join(pki, "ca.crt"),
    )
    await c.joined()
    return c


class ProtoClient:
    """A client that negotiates TAK protocol v1 and then speaks stream-framed protobuf,
    encoded and decoded with takproto."""

    def __init__(self, name, reader, writer):
        self.name = name
        self.reader = reader
        self.writer = writer
        self.messages = []
        self.xml_events = []

    @classmethod
    async def connect(cls, name, addr):
        host, port = addr.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(name, reader, writer)

    async def read_xml(self, control_type):
        """Reads XML events until one of `control_type`; others (the current picture, queued
        at connect) are kept in `self.xml_events`."""
        while True:
            data = await asyncio.wait_for(self.reader.readuntil(b"</event>"), TIMEOUT)
            ev = summary(parse_xml_event(data))
            if ev["type"] == control_type:
                return ev
            check(not ev["type"].startswith(CONTROL_PREFIX), f"unexpected control event {ev}")
            self.xml_events.append(ev)

    async def negotiate(self):
        # The offer comes first, before the current picture.
        data = await asyncio.wait_for(self.reader.readuntil(b"</event>"), TIMEOUT)
        offer = summary(parse_xml_event(data))
        check(offer["type"] == "t-x-takp-v", f"first event is not the offer: {offer}")
        versions = [c.get("version") for c in offer.get("control", []) if c["tag"] == "TakProtocolSupport"]
        check("1" in versions, f"offer does not include version 1: {offer}")
        self.writer.write(takp_request(offer["uid"]))
        await self.writer.drain()
        answer = await self.read_xml("t-x-takp-r")
        status = [c.get("status") for c in answer.get("control", []) if c["tag"] == "TakResponse"]
        check(status == ["true"], f"negotiation refused: {answer}")
        return offer, answer

    async def send_xml(self, xml):
        self.writer.write(takproto.xml2proto(xml, takproto.TAKProtoVer.STREAM))
        await self.writer.drain()

    async def read_message(self):
        """One stream-framed message: 0xbf, varint length, TakMessage."""
        magic = await self.reader.readexactly(1)
        check(magic == b"\xbf", f"stream frame starts with {magic!r}, not 0xbf")
        varint = b""
        while True:
            b = await self.reader.readexactly(1)
            varint += b
            if b[0] & 0x80 == 0:
                break
        length = 0
        for i, b in enumerate(varint):
            length |= (b & 0x7F) << (7 * i)
        body = await self.reader.readexactly(length)
        msg = takproto.parse_proto(bytearray(magic + varint + body))
        check(msg is not None and msg != -1, "takproto could not parse a stream frame")
        return msg

    async def wait_for(self, pred, what, timeout=TIMEOUT):
        for s in self.messages:
            if pred(s):
                return s
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                msg = await asyncio.wait_for(self.read_message(), max(left, 0.01))
            except asyncio.TimeoutError:
                raise Failure(
                    f"{self.name} did not receive {what}; got {[m['uid'] for m in self.messages]}"
                ) from None
            s = proto_summary(msg)
            self.messages.append(s)
            if pred(s):
                return s

    def close(self):
        self.writer.close()


async def raw_socket(addr, rcvbuf=None):
    host, port = addr.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return sock


async def closed_by_server(sock, timeout=TIMEOUT):
    """True when the server closes `sock` (EOF or reset) within `timeout`; reads and drops
    whatever the server sent before."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), left)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except asyncio.TimeoutError:
            return False
        if not data:
            return True
    return False


def http_post(base, reports):
    now = pytak.cot_time()
    reports = [dict(r, time=r.get("time", now)) for r in reports]
    req = urllib.request.Request(
        f"{base}/api/v1/reports",
        data=json.dumps(reports).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        check(r.status == 200, f"POST /api/v1/reports answered {r.status}")
        return json.loads(r.read())


async def http_entity(base, uid, timeout=TIMEOUT):
    """Waits until entity `uid` exists over HTTP; returns its properties."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/entities/{uid}", timeout=2) as r:
                return json.loads(r.read())["properties"]
        except urllib.error.HTTPError:
            await asyncio.sleep(0.05)
    raise Failure(f"entity {uid} never appeared over HTTP")


def metrics_text(base):
    with urllib.request.urlopen(f"{base}/metrics", timeout=TIMEOUT) as r:
        return r.read().decode()


def metric(base, series):
    for line in metrics_text(base).splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def wait_metric(base, series, at_least, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(base, series) >= at_least:
            return True
        await asyncio.sleep(0.1)
    return False


async def exchange(sender, receiver, uid, callsign):
    """`sender` sends a PLI and `receiver` gets it: the connection pair still works."""
    await sender.send(pli(uid, callsign, 10.0, 20.0))
    await receiver.wait_for(lambda e: e["uid"] == uid, f"{uid} from {sender.name}")


# ---------------------------------------------------------------------------------------------
# Scenarios


async def scenario_pli(args):
    """Two pytak clients over cot-tcp see each other's PLI, never their own."""
    alice = await tcp_client(args, "alice")
    bob = await tcp_client(args, "bob")
    await alice.send(pli("ANDROID-alice", "ALICE", 50.8503, 4.3517, battery=87, speed=1.5, course=127.0))
    got_by_bob = await bob.wait_for(lambda e: e["uid"] == "ANDROID-alice", "ALICE's PLI")
    await bob.send(pli("ANDROID-bob", "BOB", 50.86, 4.36, battery=42))
    got_by_alice = await alice.wait_for(lambda e: e["uid"] == "ANDROID-bob", "BOB's PLI")
    await alice.settle()
    await bob.settle()
    check("ANDROID-alice" not in alice.uids(), f"ALICE got her own event back: {alice.uids()}")
    check("ANDROID-bob" not in bob.uids(), f"BOB got his own event back: {bob.uids()}")
    # A second report from ALICE moves her for BOB.
    await alice.send(pli("ANDROID-alice", "ALICE", 50.9, 4.4, battery=86))
    moved = await bob.wait_for(
        lambda e: e["uid"] == "ANDROID-alice" and abs(e["lat"] - 50.9) < 1e-6, "ALICE's second PLI"
    )
    await alice.close()
    await bob.close()
    return {
        "bob_got": got_by_bob,
        "alice_got": got_by_alice,
        "moved": moved,
        "alice_uids": alice.uids(),
        "bob_uids": bob.uids(),
    }


async def scenario_proto(args):
    """A client negotiates TAK protocol v1, then speaks stream-framed protobuf with XML peers."""
    xml = await tcp_client(args, "xml")
    pb = await ProtoClient.connect("proto", args.tcp)
    offer, answer = await pb.negotiate()
    # Its PLI, as protobuf, reaches the XML client as XML.
    await pb.send_xml(pli("ANDROID-proto", "PROTO", -33.8688, 151.2093, battery=55, speed=3.25, course=45.0))
    xml_got = await xml.wait_for(lambda e: e["uid"] == "ANDROID-proto", "the protobuf client's PLI")
    # The XML client's PLI reaches the protobuf client as stream-framed protobuf.
    await xml.send(pli("ANDROID-xml", "XMLER", 48.8566, 2.3522, battery=64, speed=2.5, course=180.0))
    pb_got = await pb.wait_for(lambda m: m["uid"] == "ANDROID-xml", "the XML client's PLI")
    # A keepalive after the switch is answered in protobuf.
    await pb.send_xml(ping("ANDROID-proto"))
    pong = await pb.wait_for(lambda m: m["type"] == "t-x-c-t-r", "a protobuf pong")
    # No echo: the XML client sends a marker; the protobuf client must not have got its own.
    await xml.send(pli("ANDROID-marker", "MARK", 1.0, 1.0))
    await pb.wait_for(lambda m: m["uid"] == "ANDROID-marker", "the marker")
    check(
        all(m["uid"] != "ANDROID-proto" for m in pb.messages),
        f"the protobuf client got its own event back: {[m['uid'] for m in pb.messages]}",
    )
    pb.close()
    await xml.close()
    return {"offer": offer, "answer": answer, "xml_got": xml_got, "proto_got": pb_got, "pong": pong}


async def scenario_chat(args):
    """GeoChat to all, and a directed GeoChat that only its addressee receives."""
    alice = await tcp_client(args, "alice")
    bob = await tcp_client(args, "bob")
    carol = await tcp_client(args, "carol")
    # Callsigns are learnt from each client's PLI.
    await alice.send(pli("ANDROID-alice", "ALICE", 50.85, 4.35))
    await bob.send(pli("ANDROID-bob", "BOB", 50.86, 4.36))
    await carol.send(pli("ANDROID-carol", "CAROL", 50.87, 4.37))
    for c, others in ((alice, ("bob", "carol")), (bob, ("alice", "carol")), (carol, ("alice", "bob"))):
        for o in others:
            await c.wait_for(lambda e, o=o: e["uid"] == f"ANDROID-{o}", f"{o}'s PLI")
    text = 'Rally at CP Bravo & wait <10 min> — "ok"? ünïcödé'
    await alice.send(geochat("ANDROID-alice", "ALICE", text))
    bob_all = await bob.wait_for(lambda e: e["type"] == "b-t-f", "the GeoChat")
    carol_all = await carol.wait_for(lambda e: e["type"] == "b-t-f", "the GeoChat")
    check(bob_all["remarks"] == text, f"remarks changed: {bob_all['remarks']!r}")
    check(carol_all["remarks"] == text, f"remarks changed: {carol_all['remarks']!r}")
    # Directed to BOB, then a broadcast marker: CAROL gets the marker but never the direct one.
    secret = "for BOB only"
    await alice.send(geochat("ANDROID-alice", "ALICE", secret, to_uid="ANDROID-bob", to_callsign="BOB"))
    direct = await bob.wait_for(lambda e: e.get("remarks") == secret, "the directed GeoChat")
    await alice.send(geochat("ANDROID-alice", "ALICE", "marker"))
    await carol.wait_for(lambda e: e.get("remarks") == "marker", "the marker chat")
    await bob.wait_for(lambda e: e.get("remarks") == "marker", "the marker chat")
    await carol.settle()
    check(
        all(e.get("remarks") != secret for e in carol.events),
        "CAROL received a GeoChat directed to BOB",
    )
    check(all(e["type"] != "b-t-f" for e in alice.events), "ALICE got her own chat back")
    for c in (alice, bob, carol):
        await c.close()
    return {"broadcast": bob_all, "direct": direct, "text": text, "chat_uid": bob_all["uid"]}


async def scenario_emergency(args):
    """A 911 alert reaches the other clients."""
    alice = await tcp_client(args, "alice")
    bob = await tcp_client(args, "bob")
    await alice.send(pli("ANDROID-alice", "ALICE", 50.85, 4.35))
    await bob.wait_for(lambda e: e["uid"] == "ANDROID-alice", "ALICE's PLI")
    await alice.send(emergency("ANDROID-alice", "ALICE", 50.85, 4.35))
    alert = await bob.wait_for(lambda e: e["type"] == "b-a-o-tbl", "the 911 alert")
    check(alert["emergency"] == "911 Alert", f"alert type: {alert}")
    await alice.close()
    await bob.close()
    return {"alert": alert}


async def scenario_ping(args):
    """t-x-c-t is answered with a pong to the sender only."""
    alice = await tcp_client(args, "alice")
    bob = await tcp_client(args, "bob")
    await alice.send(ping("ANDROID-alice"))
    pong = await alice.wait_for(lambda e: e["type"] == "t-x-c-t-r", "a pong")
    await alice.send(pli("ANDROID-alice", "ALICE", 1.0, 2.0))
    await bob.wait_for(lambda e: e["uid"] == "ANDROID-alice", "the marker PLI")
    check(
        all(not e["type"].startswith("t-x-c-t") for e in bob.events),
        f"BOB saw the ping or pong: {bob.events}",
    )
    await alice.close()
    await bob.close()
    return {"pong": pong}


async def scenario_late(args):
    """A late joiner gets the current picture: the latest non-stale event of every entity,
    including one posted over HTTP, but no stale one."""
    alice = await tcp_client(args, "alice")
    await alice.send(pli("ANDROID-late-a", "LATE-A", 10.0, 20.0, battery=10))
    await alice.send(pli("ANDROID-late-a", "LATE-A", 11.0, 21.0, battery=11))
    await alice.send(stale_event("ANDROID-late-stale", "STALE"))
    http_post(
        args.http,
        [{"uid": "http-late", "type": "a-h-G", "callsign": "HTTPER", "lat": -12.5, "lon": 130.8, "how": "h-e"}],
    )
    # The HTTP entity reaches the connected client as CoT (so it is in the server's cache).
    via_bridge = await alice.wait_for(lambda e: e["uid"] == "http-late", "the HTTP-posted entity")
    await http_entity(args.http, "ANDROID-late-a")
    carol = await Client.connect("carol", f"tcp://{args.tcp}")
    # Everything queued at join precedes a marker sent afterwards.
    await carol.joined()
    await alice.send(pli("ANDROID-late-marker", "MARK", 0.5, 0.5))
    await carol.wait_for(lambda e: e["uid"] == "ANDROID-late-marker", "the marker")
    late_a = [e for e in carol.events if e["uid"] == "ANDROID-late-a"]
    http = [e for e in carol.events if e["uid"] == "http-late"]
    check(len(late_a) == 1, f"late joiner got ANDROID-late-a {len(late_a)} times: {carol.events}")
    check(late_a[0]["lat"] == 11.0 and late_a[0]["battery"] == 11.0, f"not the latest: {late_a[0]}")
    check(len(http) == 1, f"late joiner got http-late {len(http)} times: {carol.events}")
    check("ANDROID-late-stale" not in carol.uids(), f"late joiner got a stale event: {carol.uids()}")
    await alice.close()
    await carol.close()
    return {"via_bridge": via_bridge, "late": carol.events}


async def scenario_tls(args):
    """pytak over tls:// (not verifying the self-signed certificate) reaches a cot-tcp client,
    and the other way round."""
    tcp = await tcp_client(args, "tcp")
    tls = await tls_client(args, "tls")
    await tls.send(pli("ANDROID-tls", "TLSER", 35.68, 139.69, battery=77))
    got = await tcp.wait_for(lambda e: e["uid"] == "ANDROID-tls", "the TLS client's PLI")
    await tcp.send(pli("ANDROID-tcp", "TCPER", 35.69, 139.70))
    back = await tls.wait_for(lambda e: e["uid"] == "ANDROID-tcp", "the TCP client's PLI")
    await tls.close()
    await tcp.close()
    return {"tcp_got": got, "tls_got": back}


async def scenario_udp(args):
    """pytak over udp+wo:// (XML) and a takproto mesh datagram reach streaming clients."""
    tcp = await tcp_client(args, "tcp")
    udp = await Client.connect("udp", f"udp+wo://{args.udp}")
    await udp.send(pli("ANDROID-udp-xml", "UDPXML", -1.28, 36.82, battery=33))
    xml_got = await tcp.wait_for(lambda e: e["uid"] == "ANDROID-udp-xml", "the UDP XML PLI")
    host, port = args.udp.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mesh = takproto.xml2proto(pli("ANDROID-udp-mesh", "UDPMESH", -1.29, 36.83, battery=34), takproto.TAKProtoVer.MESH)
    sock.sendto(bytes(mesh), (host, int(port)))
    sock.close()
    mesh_got = await tcp.wait_for(lambda e: e["uid"] == "ANDROID-udp-mesh", "the mesh PLI")
    await udp.close()
    await tcp.close()
    return {"xml_got": xml_got, "mesh_got": mesh_got}


async def scenario_robust(args):
    """Hostile connections are closed one by one while two clients keep working."""
    w1 = await tcp_client(args, "w1")
    w2 = await tcp_client(args, "w2")
    await exchange(w1, w2, "ANDROID-w-0", "W1")
    loop = asyncio.get_running_loop()
    closed = {}

    async def hostile(name, payload):
        sock = await raw_socket(args.tcp)
        await loop.sock_sendall(sock, payload)
        closed[name] = await closed_by_server(sock)
        sock.close()

    # Malformed XML (mismatched end tag), garbage between events, an event over 4096 bytes.
    await hostile(
        "malformed_xml",
        b'<event version="2.0" uid="bad" type="a-f-G" how="m-g"><point lat="1" lon="2"></detail></event>',
    )
    await hostile("garbage", b"\x00\x01GET / HTTP/1.1\r\n\r\n")
    big = pli("ANDROID-big", "BIG", 1.0, 1.0).replace(b"</detail>", b"<remarks>" + b"x" * 5000 + b"</remarks></detail>")
    await hostile("too_large", big)
    await exchange(w2, w1, "ANDROID-w-1", "W2")

    # Slowloris: half an event, then a byte every half second; closed after frame_timeout (2 s).
    sock = await raw_socket(args.tcp)
    start = time.monotonic()
    await loop.sock_sendall(sock, b'<event version="2.0" uid="slow" type="a-f-G" how="m-g"')
    drip_closed = False
    for _ in range(12):
        try:
            await loop.sock_sendall(sock, b" ")
        except (BrokenPipeError, ConnectionResetError):
            drip_closed = True
            break
        if await closed_by_server(sock, 0.5):
            drip_closed = True
            break
    slow_after = time.monotonic() - start
    sock.close()
    closed["frame_timeout"] = drip_closed
    check(drip_closed, "the slowloris connection was never closed")
    check(1.5 <= slow_after <= 5.0, f"slowloris closed after {slow_after:.1f}s, expected about 2s")
    await exchange(w1, w2, "ANDROID-w-2", "W1")
    # The witnesses leave: from here on the (single-threaded) Python side only has to keep up
    # with the flood on one reading connection.
    await w1.close()
    await w2.close()

    # A receiver that never reads, while a flood goes out: it is cut off (without it reading
    # anything, so its socket buffers stay full); a reading client gets every event. The flood
    # is bigger than what the kernel buffers of the stuck connection absorb (a few MiB).
    slow_before = metric(args.http, SLOW)
    run = uuid.uuid4().hex[:6]
    stuck = await raw_socket(args.tcp, rcvbuf=4096)
    fast = await tcp_client(args, "fast")
    flooder = await tcp_client(args, "flooder")
    pad = "p" * args.pad
    t0 = time.monotonic()
    n = 0
    sent_bytes = 0
    cut_at = None
    # The flood goes out as fast as the reading client takes it, in bursts of `--burst` events;
    # it continues for a while after the cut-off so the fast client is shown to get everything.
    while n < args.flood and (cut_at is None or n < cut_at + 200):
        last = None
        for _ in range(args.burst):
            event = pli(f"ANDROID-flood-{run}-{n}", f"F{n}", 10.0 + n * 1e-4, 20.0, battery=n % 100).replace(
                b"</detail>", f"<remarks>{pad}</remarks></detail>".encode()
            )
            sent_bytes += len(event)
            await flooder.send(event)
            last = f"ANDROID-flood-{run}-{n}"
            n += 1
        await fast.wait_for(lambda e, last=last: e["uid"] == last, last)
        if cut_at is None and n % (args.burst * 8) == 0 and metric(args.http, SLOW) > slow_before:
            cut_at = n
    flood_secs = time.monotonic() - t0
    cut = await wait_metric(args.http, SLOW, slow_before + 1, 5)
    cut_secs = time.monotonic() - t0
    check(cut, f"the stuck receiver was not disconnected as a slow consumer after {sent_bytes} bytes")
    got = [e["uid"] for e in fast.events if e["uid"].startswith(f"ANDROID-flood-{run}-")]
    check(len(got) == n and len(set(got)) == n, f"fast client got {len(got)} of {n} flood events")
    closed["slow_consumer"] = await closed_by_server(stuck, 5)
    stuck.close()
    # The flooder and the fast reader still work, both ways, and newcomers are served.
    await exchange(flooder, fast, "ANDROID-w-3", "FLOODER")
    await exchange(fast, flooder, "ANDROID-w-4", "FAST")
    w3 = await tcp_client(args, "w3")
    await exchange(w3, fast, "ANDROID-w-5", "W3")
    for c in (fast, flooder, w3):
        await c.close()
    for name, was_closed in closed.items():
        check(was_closed, f"the {name} connection was not closed by the server")
    return {"closed": closed, "flood": n, "flood_bytes": sent_bytes, "cut_at": cut_at, "flood_secs": flood_secs, "slowloris_secs": slow_after, "cut_secs": cut_secs}


async def scenario_channels(args):
    """cot-tcp clients (channel blue) and cot-tls clients (channel red) do not see each other;
    HTTP-originated entities reach both."""
    t1 = await tcp_client(args, "t1")
    t2 = await tcp_client(args, "t2")
    l1 = await tls_client(args, "l1")
    l2 = await tls_client(args, "l2")
    # Within a channel, as usual.
    await exchange(t1, t2, "ANDROID-blue-1", "BLUE1")
    await exchange(l1, l2, "ANDROID-red-1", "RED1")
    await http_entity(args.http, "ANDROID-blue-1")
    await http_entity(args.http, "ANDROID-red-1")
    # Both were routed before they were folded; an HTTP entity published now comes after them.
    http_post(args.http, [{"uid": "http-both", "type": "a-f-G", "callsign": "HQ", "lat": 1.5, "lon": 2.5}])
    for c in (t1, t2, l1, l2):
        await c.wait_for(lambda e: e["uid"] == "http-both", "the HTTP entity")
        await c.settle(0.1)
    check("ANDROID-red-1" not in t1.uids() + t2.uids(), f"blue clients saw red: {t1.uids()} {t2.uids()}")
    check("ANDROID-blue-1" not in l1.uids() + l2.uids(), f"red clients saw blue: {l1.uids()} {l2.uids()}")
    # Late joiners only get their channel's picture, plus HTTP entities.
    t3 = await tcp_client(args, "t3")
    await t1.send(pli("ANDROID-blue-marker", "BM", 0.0, 0.0))
    await t3.wait_for(lambda e: e["uid"] == "ANDROID-blue-marker", "the marker")
    check("ANDROID-blue-1" in t3.uids() and "http-both" in t3.uids(), f"t3 picture: {t3.uids()}")
    check("ANDROID-red-1" not in t3.uids(), f"late blue joiner saw red: {t3.uids()}")
    for c in (t1, t2, t3, l1, l2):
        await c.close()
    return {"t1": t1.uids(), "l1": l1.uids(), "t3": t3.uids()}


SCENARIOS = {
    "pli": scenario_pli,
    "proto": scenario_proto,
    "chat": scenario_chat,
    "emergency": scenario_emergency,
    "ping": scenario_ping,
    "late": scenario_late,
    "tls": scenario_tls,
    "udp": scenario_udp,
    "robust": scenario_robust,
    "channels": scenario_channels,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--tcp")
    p.add_argument("--tls")
    p.add_argument("--udp")
    p.add_argument("--http")
    p.add_argument("--data")
    p.add_argument("--flood", type=int, default=5000)
    p.add_argument("--burst", type=int, default=8)
    p.add_argument("--pad", type=int, default=3000)
    p.add_argument("--deadline", type=float, default=50.0)
    args = p.parse_args()

    async def run():
        return await asyncio.wait_for(SCENARIOS[args.scenario](args), args.deadline)

    try:
        result = asyncio.run(run())
    except Failure as e:
        print(f"{args.scenario}: {e}", file=sys.stderr)
        sys.exit(1)
    except asyncio.TimeoutError:
        print(f"{args.scenario}: did not finish within {args.deadline}s", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
