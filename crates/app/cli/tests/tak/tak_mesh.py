#!/usr/bin/env python3
"""TAK mesh SA (multicast) against a running Rampart node, for tests/tak_mesh.rs.

A mesh peer as ATAK is one: a socket that joined the group on 127.0.0.1 (IP_ADD_MEMBERSHIP)
and a sender multicasting out of 127.0.0.1 (IP_MULTICAST_IF), with datagrams encoded and
decoded by PyPI `takproto` (TAK protocol v1 mesh framing). Streaming clients are the pytak
clients of tak_clients.py.

Usage: tak_mesh.py --tcp HOST:PORT --group GROUP:PORT [--expect-out]

Prints one JSON object: what the streaming client got from the mesh, every datagram seen on
the group from a source other than this script's sender (decoded with takproto), and whether
the TCP sender got its own event back. With --expect-out it waits (up to TIMEOUT) for the TCP
client's event to appear on the group; either way it then listens QUIET_MESH more seconds.
"""

import argparse
import asyncio
import json
import socket
import struct
import sys
import threading
import time

from tak_clients import TIMEOUT, Failure, pli, proto_summary, tcp_client  # noqa: E402

import takproto  # noqa: E402

# How long to keep listening on the group for datagrams that must not come.
QUIET_MESH = 1.0
INTERFACE = "127.0.0.1"


class MeshListener:
    """Joins the group on 127.0.0.1 and records every datagram with its source."""

    def __init__(self, group, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        # The node's cot-mesh socket shares the port, as ATAK and WinTAK on one host do.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", port))
        mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(INTERFACE))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        s.settimeout(0.1)
        self.sock = s
        self.got = []  # (source "ip:port", bytes)
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data, src = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            with self.lock:
                self.got.append((f"{src[0]}:{src[1]}", data))

    def from_others(self, exclude):
        with self.lock:
            return [(src, d) for src, d in self.got if src != exclude]

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def decode(datagram):
    msg = takproto.parse_proto(bytearray(datagram))
    if msg is None or msg == -1:
        return {"undecodable": datagram.hex()}
    return proto_summary(msg)


async def run(args):
    group, port = args.group.rsplit(":", 1)
    port = int(port)
    listener = MeshListener(group, port)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(INTERFACE))
    sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sender.bind((INTERFACE, 0))
    sender_addr = "%s:%d" % sender.getsockname()
    try:
        bob = await tcp_client(args, "bob")
        alice = await tcp_client(args, "alice")

        # (a) A mesh peer's PLI, encoded by takproto, reaches the streaming clients.
        mesh = takproto.xml2proto(
            pli("ANDROID-mesh-peer", "MESHPEER", 59.3293, 18.0686, battery=61), takproto.TAKProtoVer.MESH
        )
        sender.sendto(bytes(mesh), (group, port))
        bob_got = await bob.wait_for(lambda e: e["uid"] == "ANDROID-mesh-peer", "the mesh peer's PLI")

        # (b) A TCP client's PLI, which the mesh proxy (when on) sends to the group.
        await alice.send(pli("ANDROID-alice-tcp", "ALICE", 60.1699, 24.9384, battery=71))
        await bob.wait_for(lambda e: e["uid"] == "ANDROID-alice-tcp", "alice's PLI")
        if args.expect_out:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                if any(
                    decode(d).get("uid") == "ANDROID-alice-tcp" for _, d in listener.from_others(sender_addr)
                ):
                    break
                await asyncio.sleep(0.05)
        # (c) Whatever else comes within QUIET_MESH (the mesh peer's PLI must not come back).
        await asyncio.sleep(QUIET_MESH)
        await alice.settle(QUIET_MESH)
        out = [{"from": src, **decode(d)} for src, d in listener.from_others(sender_addr)]
        own = [src for src, d in listener.got if src == sender_addr]
        result = {
            "sender": sender_addr,
            "bob_got": bob_got,
            "mesh_out": out,
            "own_datagrams_seen": len(own),
            "alice_uids": alice.uids(),
        }
        await alice.close()
        await bob.close()
        return result
    finally:
        sender.close()
        listener.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tcp", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--expect-out", action="store_true")
    p.add_argument("--deadline", type=float, default=40.0)
    args = p.parse_args()
    try:
        result = asyncio.run(asyncio.wait_for(run(args), args.deadline))
    except Failure as e:
        print(f"mesh: {e}", file=sys.stderr)
        sys.exit(1)
    except asyncio.TimeoutError:
        print(f"mesh: did not finish within {args.deadline}s", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
