#!/usr/bin/env python3
"""Security labels on the TAK edge, for tests/labels_cot.rs: real pytak clients (the ones in
tak_clients.py) over cot-tls with per-CN PKCS#12 bundles and over cot-tcp, against a node that
enforces labels (`[auth] required = true`) and labels every cot-udp report SECRET//NATO.

Clients (their clearances come from the node's `[cot.clearances]`):
  alice  cot-tls, CN alice: SECRET + NATO
  carol  cot-tls, CN carol: CONFIDENTIAL
  dave   cot-tls, CN dave: not listed, so the lowest level
  anon   cot-tcp: the anonymous clearance

Events:
  tcp-unclass   PLI from a cot-tcp client (cot-tcp default: UNCLASSIFIED), relayed verbatim
  udp-secret    PLI over cot-udp (cot-udp default: SECRET//NATO), relayed verbatim
  http-secret   report posted over HTTP labelled SECRET//NATO, reaching TAK via the bridge
  http-unclass  report posted over HTTP without a label (UNCLASSIFIED), via the bridge

  sos-secret    report posted labelled SECRET//NATO with the SOS flag: its alert is SECRET//NATO
  sos-unclass   unlabelled report with the SOS flag: its alert is UNCLASSIFIED

Usage: labels_clients.py {live,snapshot,alerts} --tcp A --tls A --udp A --http URL --data DIR --token T

Each scenario asserts what every client must and must not receive, and prints JSON with the
uids each client saw. A failed expectation exits non-zero with the reason on stderr.
"""

import argparse
import asyncio
import json
import os
import socket
import sys
import urllib.error
import urllib.request

import pytak

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tak_clients import QUIET, Client, Failure, check, pli, tcp_client  # noqa: E402

SECRET_UIDS = {"udp-secret", "http-secret"}
UNCLASS_UIDS = {"tcp-unclass", "http-unclass"}
CLEARED = {"alice"}
UNCLEARED = {"carol", "dave", "anon"}


async def tls_client(args, cn):
    """A pytak client over mutual TLS with the bundle issued to `cn`."""
    pki = os.path.join(args.data, "pki")
    c = await Client.connect(
        cn,
        f"tls://{args.tls}",
        PYTAK_TLS_CLIENT_CERT=os.path.join(pki, "issued", cn, f"{cn}.p12"),
        PYTAK_TLS_CLIENT_PASSWORD="atakatak",
        PYTAK_TLS_CLIENT_CAFILE=os.path.join(pki, "ca.crt"),
    )
    await c.joined()
    return c


async def receivers(args):
    out = {}
    for cn in ("alice", "carol", "dave"):
        out[cn] = await tls_client(args, cn)
    out["anon"] = await tcp_client(args, "anon")
    return out


def udp_send(args, data):
    host, port = args.udp.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(data, (host, int(port)))
    sock.close()


def http_post(args, reports):
    req = urllib.request.Request(
        args.http + "/api/v1/reports",
        data=json.dumps(reports).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {args.token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            check(r.status in (200, 201, 202), f"POST /api/v1/reports answered {r.status}")
    except urllib.error.HTTPError as e:
        raise Failure(f"POST /api/v1/reports answered {e.code}: {e.read().decode(errors='replace')}")


def report(uid, lat, label=None):
    r = {
        "uid": uid,
        "type": "a-h-G",
        "callsign": uid.upper(),
        "lat": lat,
        "lon": 5.0,
        "how": "h-e",
        "time": pytak.cot_time(),
    }
    if label:
        r["label"] = label
    return r


SECRET_NATO = {"classification": "SECRET", "releasability": ["NATO"]}


async def feed(args, sender, watcher):
    """Sends the four events; `watcher` (cleared SECRET+NATO) must see each, so that when this
    returns every one has been routed (or cached)."""
    await sender.send(pli("tcp-unclass", "TCPUNCLASS", 50.1, 4.1))
    await watcher.wait_for(lambda e: e["uid"] == "tcp-unclass", "tcp-unclass")
    udp_send(args, pli("udp-secret", "UDPSECRET", 50.2, 4.2))
    await watcher.wait_for(lambda e: e["uid"] == "udp-secret", "udp-secret")
    # The secret report first: the bridge routes deltas in order, so a client that has the
    # unclassified one has already been offered (or refused) the secret one.
    http_post(args, [report("http-secret", 50.3, SECRET_NATO)])
    await watcher.wait_for(lambda e: e["uid"] == "http-secret", "http-secret")
    http_post(args, [report("http-unclass", 50.4)])
    await watcher.wait_for(lambda e: e["uid"] == "http-unclass", "http-unclass")


async def expect(clients, sender, marker):
    """Sends a marker after everything else; once each client has it (and a quiet moment has
    passed), checks what it saw."""
    await sender.send(pli(marker, "MARKER", 50.5, 4.5))
    seen = {}
    for name, c in clients.items():
        await c.wait_for(lambda e: e["uid"] == marker, f"{marker} ({name})")
        for uid in UNCLASS_UIDS:
            await c.wait_for(lambda e, uid=uid: e["uid"] == uid, f"{uid} ({name})")
        await c.settle(QUIET)
        uids = set(c.uids())
        seen[name] = sorted(uids - {marker})
        if name in CLEARED:
            missing = SECRET_UIDS - uids
            check(not missing, f"{name} (SECRET+NATO) did not receive {sorted(missing)}: {sorted(uids)}")
        else:
            leaked = SECRET_UIDS & uids
            check(not leaked, f"{name} received {sorted(leaked)} above its clearance: {sorted(uids)}")
    return seen


async def scenario_live(args):
    """Connected clients receive, as they happen, only the events they are cleared for."""
    clients = await receivers(args)
    sender = await tcp_client(args, "sender")
    await feed(args, sender, clients["alice"])
    seen = await expect(clients, sender, "marker-live")
    for c in list(clients.values()) + [sender]:
        await c.close()
    return seen


async def scenario_snapshot(args):
    """Clients joining after the events get the picture they are cleared for."""
    sender = await tcp_client(args, "sender")
    watcher = await tls_client(args, "alice")
    await feed(args, sender, watcher)
    await watcher.close()
    clients = await receivers(args)
    seen = await expect(clients, sender, "marker-join")
    for c in list(clients.values()) + [sender]:
        await c.close()
    return seen


def alert_about(callsign):
    """Matches the CoT of an alert raised about `callsign` (its message names it)."""
    return lambda e: (e["uid"] or "").startswith("rampart-alert-") and callsign in (
        e.get("remarks") or ""
    )


async def scenario_alerts(args):
    """SOS alerts, rendered as CoT, carry their entity's label: an alert about a SECRET//NATO
    entity reaches only alice; one about an unclassified entity reaches everyone."""
    clients = await receivers(args)
    http_post(args, [dict(report("sos-secret", 50.6, SECRET_NATO), attributes={"sos": 1})])
    secret = await clients["alice"].wait_for(alert_about("SOS-SECRET"), "the SECRET alert")
    http_post(args, [dict(report("sos-unclass", 50.7), attributes={"sos": 1})])
    seen = {}
    for name, c in clients.items():
        await c.wait_for(alert_about("SOS-UNCLASS"), f"the UNCLASSIFIED alert ({name})")
        await c.settle(QUIET)
        alerts = sorted(
            e["remarks"] for e in c.events if (e["uid"] or "").startswith("rampart-alert-")
        )
        seen[name] = alerts
        leaked = [a for a in alerts if "SOS-SECRET" in a]
        if name in CLEARED:
            check(leaked, f"{name} (SECRET+NATO) did not receive the SECRET alert: {alerts}")
        else:
            check(not leaked, f"{name} received the SECRET alert: {alerts}")
    for c in clients.values():
        await c.close()
    return {"secret_alert": secret, "alerts": seen}


SCENARIOS = {"live": scenario_live, "snapshot": scenario_snapshot, "alerts": scenario_alerts}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    for flag in ("--tcp", "--tls", "--udp", "--http", "--data", "--token"):
        p.add_argument(flag, required=True)
    p.add_argument("--deadline", type=float, default=60.0)
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
