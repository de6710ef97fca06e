"""The simulated devices of twin.py, in their own process: N paho-mqtt clients, one per Device, each
subscribed to its own ``twin/update/result``. Publishes ``twin/update`` round-robin at each rate of
``--rates`` for ``--seconds`` and measures publish → result received (perf_counter, same process).
Prints one JSON line per rate, then the last value sent per device and when the storm ended, then
keeps the clients connected for ``--hold`` seconds (the caller
measures the edge's memory with every device connected meanwhile).

    python scripts/bench/_simdevices.py --port P --devices 100 --rates 500,1000 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

import paho.mqtt.client as paho


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--prefix", default="bench-dev-")
    p.add_argument("--namespace", default="default")
    p.add_argument("--rates", default="500")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--hold", type=float, default=0.0)
    args = p.parse_args()
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    lock = threading.Lock()

    def on_message(_c: object, _u: object, m: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        try:
            eid = json.loads(m.payload)["event_id"]
        except (ValueError, KeyError):
            return
        with lock:
            got[eid] = now

    clients, topics = [], []
    last: dict[str, str] = {}

    def dev_name(i: int) -> str:
        return f"{args.prefix}{i % args.devices:03d}"

    for i in range(args.devices):
        name = f"{args.prefix}{i:03d}"
        base = f"$hw/events/device/{args.namespace}/{name}/twin/update"
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name, protocol=paho.MQTTv311)
        c.on_message = on_message
        c.connect(args.host, args.port, keepalive=60)
        c.loop_start()
        c.subscribe(base + "/result", qos=1)
        clients.append(c)
        topics.append(base)
    time.sleep(1.0)
    for rate in [int(r) for r in args.rates.split(",")]:
        n = int(rate * args.seconds)
        interval = 1.0 / rate
        t0 = time.perf_counter()
        for i in range(n):
            target = t0 + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            eid = f"{rate}-{i}"
            value = last[dev_name(i)] = f"{rate}.{i}"  # unique: the API's drain is timed to the last ones
            twin = {"temperature": {"actual": {"value": value}, "metadata": {"type": "float"}}}
            body = {"event_id": eid, "timestamp": int(time.time() * 1000), "twin": twin}
            dev = i % len(clients)
            sent[eid] = time.perf_counter()
            clients[dev].publish(topics[dev], json.dumps(body), qos=1)
        elapsed = time.perf_counter() - t0
        deadline = time.perf_counter() + 3.0
        while time.perf_counter() < deadline:
            with lock:
                if sum(1 for i in range(n) if f"{rate}-{i}" in got) == n:
                    break
            time.sleep(0.05)
        with lock:
            lat = [got[f"{rate}-{i}"] - sent[f"{rate}-{i}"] for i in range(n) if f"{rate}-{i}" in got]
        lost = n - len(lat)
        everything = lat + [float("inf")] * lost  # an unanswered update counts as over any limit
        print(json.dumps({
            "rate_target": rate, "rate_sent": round(n / elapsed, 1), "updates": n, "answered": len(lat),
            "p50_ms": pct(everything, 0.5), "p99_ms": pct(everything, 0.99),
            "max_ms": round(max(lat) * 1000, 2) if lat else None,
            "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else None,
        }), flush=True)  # fmt: skip
    # the storm is over: the last value each device sent, and when (wall clock, for the API's drain)
    print(json.dumps({"last": last, "ended": time.time()}), flush=True)
    print(json.dumps({"holding": args.devices}), flush=True)
    time.sleep(args.hold)
    for c in clients:
        c.disconnect()
        c.loop_stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
