"""Real MQTT clients (PyPI paho-mqtt 2.x) for Rampart's MQTT end-to-end tests.

Each scenario connects to the broker given by --host/--port, does one thing, asserts what
a client must see, and prints a JSON object with what it saw. Exit status 0 means the
client-side assertions held; the Rust test then checks the server side (API, metrics).
"""
import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.client import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TIMEOUT = 10.0


def client(args, client_id, v5, clean=True, expiry=None, will=None, user=None, token=None):
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else clean,
    )
    if user:
        c.username_pw_set(user, token)
    if will:
        c.will_set(will[0], will[1], qos=1)
    state = {"connack": None, "messages": [], "acks": {}, "subacks": []}
    done = threading.Event()

    def on_connect(cl, ud, flags, rc, props):
        state["connack"] = {"rc": int(rc.value) if hasattr(rc, "value") else int(rc),
                            "session_present": bool(flags.session_present)}
        done.set()

    def on_message(cl, ud, msg):
        up = []
        if msg.properties is not None and hasattr(msg.properties, "UserProperty"):
            up = list(msg.properties.UserProperty)
        state["messages"].append({"topic": msg.topic, "payload": msg.payload.decode("utf-8", "replace"),
                                  "qos": msg.qos, "retain": bool(msg.retain), "user": up})

    def on_publish(cl, ud, mid, rc, props):
        state["acks"][mid] = int(rc.value) if hasattr(rc, "value") else int(rc)

    def on_subscribe(cl, ud, mid, rcs, props):
        state["subacks"].append([int(r.value) for r in rcs])

    c.on_connect = on_connect
    c.on_message = on_message
    c.on_publish = on_publish
    c.on_subscribe = on_subscribe
    props = None
    kwargs = {}
    if v5:
        props = Properties(PacketTypes.CONNECT)
        if expiry is not None:
            props.SessionExpiryInterval = expiry
        kwargs["clean_start"] = clean
    c.connect(args.host, args.port, keepalive=30, properties=props, **kwargs)
    c.loop_start()
    if not done.wait(TIMEOUT):
        raise SystemExit(f"{client_id}: no CONNACK")
    return c, state


def wait(pred, timeout=TIMEOUT):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def publish_and_wait(c, state, topic, payload, qos=1, props=None, retain=False):
    info = c.publish(topic, payload, qos=qos, properties=props, retain=retain)
    if qos > 0:
        if not wait(lambda: info.mid in state["acks"]):
            raise SystemExit(f"no acknowledgement for {topic}")
        return state["acks"][info.mid]
    return 0


def stop(c):
    c.disconnect()
    c.loop_stop()


def device_report(args):
    """A device publishes reports; prints the PUBACK reason code of each."""
    c, st = client(args, f"{args.device}-client", args.v5, user=args.device, token=args.token)
    out = {"connack": st["connack"], "codes": []}
    if st["connack"]["rc"] != 0:
        print(json.dumps(out))
        return
    for payload in args.payload:
        out["codes"].append(publish_and_wait(c, st, args.topic, payload, qos=1))
    stop(c)
    print(json.dumps(out))


def persistent(args):
    """Phase `subscribe`: a persistent session subscribes and leaves. Phase `receive`: it comes
    back and collects what was queued meanwhile."""
    v5 = args.v5
    expiry = 3600 if v5 else None
    if args.phase == "subscribe":
        c, st = client(args, args.client_id, v5, clean=False, expiry=expiry)
        mid = c.subscribe(args.topic, qos=1)
        wait(lambda: st["subacks"])
        stop(c)
        print(json.dumps({"connack": st["connack"], "subacks": st["subacks"]}))
    elif args.phase == "publish":
        c, st = client(args, args.client_id + "-pub", v5)
        for i in range(args.count):
            publish_and_wait(c, st, args.topic.replace("#", "m"), f"msg-{i}", qos=1)
        stop(c)
        print(json.dumps({"published": args.count}))
    else:
        c, st = client(args, args.client_id, v5, clean=False, expiry=expiry)
        wait(lambda: len(st["messages"]) >= args.count)
        time.sleep(0.2)
        stop(c)
        print(json.dumps({"connack": st["connack"], "messages": st["messages"]}))


def v5_features(args):
    """MQTT 5: shared subscriptions share the load, user properties pass through, a will is
    published on an abnormal close, a refused subscription gets its reason code."""
    out = {}
    a, sa = client(args, "share-a", True)
    b, sb = client(args, "share-b", True)
    a.subscribe("$share/g/work/#", qos=1)
    b.subscribe("$share/g/work/#", qos=1)
    w, sw = client(args, "watcher", True)
    w.subscribe("status/#", qos=1)
    w.subscribe("rampart/#", qos=1)  # anonymous clients may not: reason code
    wait(lambda: len(sa["subacks"]) == 1 and len(sb["subacks"]) == 1 and len(sw["subacks"]) == 2)
    out["watcher_subacks"] = sw["subacks"]
    p, sp = client(args, "producer", True)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("origin", "test")
    for i in range(10):
        publish_and_wait(p, sp, f"work/{i}", f"job-{i}", qos=1, props=props)
    wait(lambda: len(sa["messages"]) + len(sb["messages"]) >= 10)
    out["share_a"] = len(sa["messages"])
    out["share_b"] = len(sb["messages"])
    out["user_properties"] = (sa["messages"] + sb["messages"])[0]["user"]
    # A will: the client's socket is closed without DISCONNECT.
    d, sd = client(args, "dies", True, will=("status/dies", "gone"))
    d._sock.close()  # abnormal close, as a crash would
    wait(lambda: any(m["topic"] == "status/dies" for m in sw["messages"]))
    out["will"] = [m["payload"] for m in sw["messages"] if m["topic"] == "status/dies"]
    for x in (a, b, w, p):
        stop(x)
    print(json.dumps(out))


def commands(args):
    """A device with a persistent session subscribes to its command topic and leaves (phase
    `subscribe`), then comes back, receives its commands and acknowledges them (`serve`)."""
    cid = f"{args.device}-cmd"
    c, st = client(args, cid, args.v5, clean=False, expiry=3600 if args.v5 else None,
                   user=args.device, token=args.token)
    if args.phase == "subscribe":
        c.subscribe(f"rampart/v1/{args.device}/cmd", qos=1)
        wait(lambda: st["subacks"])
        stop(c)
        print(json.dumps({"subacks": st["subacks"]}))
        return
    wait(lambda: len(st["messages"]) >= args.count)
    seen = []
    for m in st["messages"]:
        cmd = json.loads(m["payload"])
        seen.append(cmd)
        ack = json.dumps({"id": cmd["id"], "status": "ok", "message": "done " + cmd["command"]})
        publish_and_wait(c, st, f"rampart/v1/{args.device}/cmd/ack", ack, qos=1)
    stop(c)
    print(json.dumps({"commands": seen}))


def entities(args):
    """A device subscribed to entity topics sees an update the test makes over HTTP."""
    c, st = client(args, f"{args.device}-ent", args.v5, user=args.device, token=args.token)
    c.subscribe("rampart/v1/entities/#", qos=0)
    wait(lambda: st["subacks"])
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()  # the test posts a report, then writes a line
    wait(lambda: any(args.uid in m["topic"] for m in st["messages"]))
    stop(c)
    print(json.dumps({"messages": st["messages"]}))


def sparkplug(args):
    """An edge node publishes a Sparkplug B session with Eclipse Tahu's encoder (PyPI
    sparkplug-b-packets): NDEATH as its will, NBIRTH and DBIRTH with names and aliases, then
    DDATA by alias only. Positions ride in Latitude/Longitude metrics."""
    import sparkplub_b_packets.core.sparkplug_b as tahu
    from sparkplub_b_packets.core.sparkplug_b import MetricDataType as T

    group, node, dev = "plant-1", "edge-7", "pump-3"
    death = tahu.getNodeDeathPayload()
    c, st = client(args, "edge-7-host", False, user=args.device, token=args.token,
                   will=(f"spBv1.0/{group}/NDEATH/{node}", bytearray(death.SerializeToString())))
    nb = tahu.getNodeBirthPayload()
    tahu.addMetric(nb, "Latitude", 1, T.Double, 59.33)
    tahu.addMetric(nb, "Longitude", 2, T.Double, 18.06)
    tahu.addMetric(nb, "Node/Temperature", 3, T.Float, 21.5)
    tahu.addMetric(nb, "Node/Online", 4, T.Boolean, True)
    publish_and_wait(c, st, f"spBv1.0/{group}/NBIRTH/{node}", bytearray(nb.SerializeToString()), qos=1)
    db = tahu.getDeviceBirthPayload()
    tahu.addMetric(db, "Latitude", 10, T.Double, 59.40)
    tahu.addMetric(db, "Longitude", 11, T.Double, 18.10)
    tahu.addMetric(db, "Pressure", 12, T.Int32, -5)
    tahu.addMetric(db, "Model", 13, T.String, "P-300")
    publish_and_wait(c, st, f"spBv1.0/{group}/DBIRTH/{node}/{dev}", bytearray(db.SerializeToString()), qos=1)
    dd = tahu.getDdataPayload()
    tahu.addMetric(dd, None, 12, T.Int32, 7)
    publish_and_wait(c, st, f"spBv1.0/{group}/DDATA/{node}/{dev}", bytearray(dd.SerializeToString()), qos=1)
    stop(c)
    print(json.dumps({"ok": True}))


def mtls(args):
    """A device connects over mqtts with its client certificate (no password), publishes a
    report, then stays connected until the server closes the connection (its certificate
    revoked) or --wait seconds pass."""
    import ssl

    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"{args.device}-tls",
                    protocol=mqtt.MQTTv5 if args.v5 else mqtt.MQTTv311)
    if args.cert:
        c.tls_set(ca_certs=args.ca, certfile=args.cert, keyfile=args.key, cert_reqs=ssl.CERT_REQUIRED)
    else:
        c.tls_set(ca_certs=args.ca, cert_reqs=ssl.CERT_REQUIRED)
    c.tls_insecure_set(True)  # the server certificate names localhost; we dial 127.0.0.1
    st = {"connack": None, "acks": {}, "disconnected": None}
    done = threading.Event()

    def on_connect(cl, ud, flags, rc, props):
        st["connack"] = int(rc.value) if hasattr(rc, "value") else int(rc)
        done.set()

    def on_publish(cl, ud, mid, rc, props):
        st["acks"][mid] = int(rc.value) if hasattr(rc, "value") else int(rc)

    def on_disconnect(cl, ud, flags, rc, props):
        st["disconnected"] = time.time()
        done.set()

    c.on_connect = on_connect
    c.on_publish = on_publish
    c.on_disconnect = on_disconnect
    try:
        c.connect(args.host, args.port, keepalive=60)
    except Exception as e:  # a refused TLS handshake may fail right here
        print(json.dumps({"connected": False, "error": str(e)}))
        return
    c.loop_start()
    done.wait(TIMEOUT)
    if st["connack"] != 0:
        c.loop_stop()
        print(json.dumps({"connected": False, "connack": st["connack"]}))
        return
    info = c.publish(f"rampart/v1/{args.device}/report", args.payload[0], qos=1)
    wait(lambda: info.mid in st["acks"])
    print(json.dumps({"connected": True, "ack": st["acks"].get(info.mid)}), flush=True)
    start = time.time()
    wait(lambda: st["disconnected"] is not None, timeout=args.wait)
    c.loop_stop()
    gone = st["disconnected"]
    print(json.dumps({"disconnected": gone is not None,
                      "after_s": (gone - start) if gone else None}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--v5", action="store_true")
    ap.add_argument("--device")
    ap.add_argument("--token")
    ap.add_argument("--topic")
    ap.add_argument("--payload", action="append", default=[])
    ap.add_argument("--client-id")
    ap.add_argument("--phase")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--uid")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--wait", type=float, default=15.0)
    args = ap.parse_args()
    {
        "device-report": device_report,
        "persistent": persistent,
        "v5-features": v5_features,
        "commands": commands,
        "entities": entities,
        "sparkplug": sparkplug,
        "mtls": mtls,
    }[args.scenario](args)


if __name__ == "__main__":
    main()
