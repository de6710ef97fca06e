"""KubeEdge's device topics → twins, answers and reports (one ``handle(topic, payload)`` for both brokers).

Topics (device id ``<namespace>/<name>``, as edgecore): ``$hw/events/device/<id>/twin/update``
(→ ``/result``, ``/document``, ``/delta``), ``…/twin/get`` (→ ``/get/result``, then ``/update/delta``),
``…/state/update`` (→ ``/result``), ``$hw/events/node/<node>/membership/get`` (→ ``/result`` on this
node's topic, as edgecore answers whatever node was asked), ``$hw/events/upload/#`` (forwarded to the
cloud: operation ``upload``, group ``user``, source ``bus``, resource = the topic, content = the payload).
Better than edgecore (design.md §6): a bad payload is answered on the device's OWN result topic with
the request's event id when it can be read, unknown properties, wrong types, out-of-range values, an
unknown state and payloads over 32 KiB are rejected with a code and a reason, ``22`` equals ``22.0``
for a float, and the cloud's desired values reach devices as deltas.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from runtime.edge.devices import twins as tw
from runtime.edge.devices.store import Op, TwinStore
from runtime.protocol import Message, new_message

log = logging.getLogger("kedge.edge.devices")
MAX_PAYLOAD = 32 * 1024
DEVICE_PREFIX = "$hw/events/device/"
UPLOAD_PREFIX = "$hw/events/upload/"
Publish = Callable[[str, bytes], None]


def subscriptions(node: str) -> list[str]:
    """What the bridge needs from an external broker (edgecore's set, plus name-only ids to reject)."""
    return [
        "$hw/events/device/+/+/twin/+",
        "$hw/events/device/+/+/state/update",
        "$hw/events/device/+/twin/+",
        f"$hw/events/node/{node}/membership/get",
        "$hw/events/node/+/membership/get",
        "$hw/events/upload/#",
    ]


def now_ms() -> int:
    return int(time.time() * 1000)


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class Bridge:
    def __init__(self, node: str, store: TwinStore, publish: Publish, kick: Callable[[], None]) -> None:
        self.node, self.store, self.publish, self.kick = node, store, publish, kick
        self.specs: dict[str, tw.Spec] = {}
        self.upload_to_cloud: Callable[[Message], None] | None = None
        self.counts: dict[str, int] = {"updates": 0, "gets": 0, "states": 0, "memberships": 0, "uploads": 0}
        self.rejected: dict[int, int] = {}
        self.last_report: dict[str, float] = {}

    # ------------------------------------------------------------ dispatch

    async def handle(self, topic: str, payload: bytes) -> None:
        if topic.startswith(DEVICE_PREFIX):
            parts = topic[len(DEVICE_PREFIX) :].split("/")
            if len(parts) == 4 and parts[2:] == ["twin", "update"]:
                await self._update(f"{parts[0]}/{parts[1]}", topic, payload)
            elif len(parts) == 4 and parts[2:] == ["twin", "get"]:
                self._get(f"{parts[0]}/{parts[1]}", topic, payload)
            elif len(parts) == 4 and parts[2:] == ["state", "update"]:
                await self._state(f"{parts[0]}/{parts[1]}", topic, payload)
            elif len(parts) == 3 and parts[1] == "twin" and parts[2] in ("update", "get"):
                self._reject(topic + "/result", "", 404, f"device id {parts[0]!r} has no namespace: use "
                             f"$hw/events/device/<namespace>/<name>/twin/{parts[2]}")  # fmt: skip
        elif topic.startswith("$hw/events/node/") and topic.endswith("/membership/get"):
            self._membership(payload)
        elif topic.startswith(UPLOAD_PREFIX):
            self._upload(topic, payload)

    def _reject(self, topic: str, event_id: str, code: int, reason: str) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1
        self.publish(topic, _dumps(tw.error(event_id, code, reason, now_ms())))

    def _read(
        self, topic: str, payload: bytes, *, empty_ok: bool = False
    ) -> tuple[dict[str, Any], str] | None:
        """The request as a dict and its event id; rejects oversize and malformed payloads on ``topic``."""
        if len(payload) > MAX_PAYLOAD:
            self._reject(
                topic, "", 413, f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD} byte limit"
            )
            return None
        if empty_ok and not payload.strip():
            return {}, ""
        try:
            req = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            self._reject(topic, "", 400, f"the payload is not JSON: {exc}")
            return None
        if not isinstance(req, dict):
            self._reject(topic, "", 400, "the payload must be a JSON object")
            return None
        event_id = req.get("event_id")
        return req, event_id if isinstance(event_id, str) else ""

    def _begin(
        self, device: str, topic: str, payload: bytes, counter: str, unknown: str
    ) -> tuple[dict[str, Any], str, tw.Spec, str] | None:
        """Count, read and find the device of a device-topic request; rejections are published here."""
        self.counts[counter] += 1
        result_topic = topic + "/result"
        got = self._read(result_topic, payload)
        if got is None:
            return None
        req, event_id = got
        spec = self.specs.get(device)
        if spec is None:
            self._reject(result_topic, event_id, 404, unknown)
            return None
        return req, event_id, spec, result_topic

    # ------------------------------------------------------------ twin/update

    async def _update(self, device: str, topic: str, payload: bytes) -> None:
        begun = self._begin(
            device, topic, payload, "updates", "update rejected due to the device is not existed"
        )
        if begun is None:
            return
        req, event_id, spec, result_topic = begun
        ts = now_ms()
        try:
            upd = await self.apply(device, spec, req, event_id, ts)
        except tw.Rejected as exc:
            self._reject(result_topic, event_id, exc.code, exc.reason)
            return
        self.publish(result_topic, _dumps(upd.result))
        self.publish(topic + "/document", _dumps(upd.document))
        self.publish_delta(device, ts)

    async def apply(self, device: str, spec: tw.Spec, req: Any, event_id: str, ts: int) -> tw.Update:
        """Validate a twin update (``tw.Rejected``), store it with its reports; returns once committed.

        Shared by the MQTT topics and DMI's ReportDeviceStatus, so both paths check the same way."""
        twin = self.store.twins.setdefault(device, {})
        before = dict(twin)
        upd = tw.apply_update(twin, spec, req, ts)
        now = time.time()
        ops: list[Op] = [self.store.op_put_twin(device, upd.changed)]
        for prop, st in upd.changed.items():
            ops.append(self.store.op_report(device, prop, event_id or str(uuid.uuid4()), st, now))
        try:
            await self.store.write(self.store.chain(ops))
        except Exception:
            twin.clear()  # not stored: the device's twin stays as it was (apply_update replaced states)
            twin.update(before)
            raise
        self.last_report[device] = now
        self.kick()
        return upd

    def publish_delta(self, device: str, ts: int | None = None) -> bool:
        d = tw.delta(self.store.twins.get(device) or {}, ts or now_ms())
        if d is not None:
            self.publish(f"{DEVICE_PREFIX}{device}/twin/update/delta", _dumps(d))
        return d is not None

    # ------------------------------------------------------------ twin/get, state, membership

    def _get(self, device: str, topic: str, payload: bytes) -> None:
        begun = self._begin(device, topic, payload, "gets", f"Device {device} not found while getting twin")
        if begun is None:
            return
        _, event_id, _, result_topic = begun
        ts = now_ms()
        self.publish(result_topic, _dumps(tw.get_result(self.store.twins.get(device) or {}, event_id, ts)))
        self.publish_delta(device, ts)

    async def _state(self, device: str, topic: str, payload: bytes) -> None:
        unknown = f"device {device} is not a device of node {self.node}"
        begun = self._begin(device, topic, payload, "states", unknown)
        if begun is None:
            return
        req, event_id, spec, result_topic = begun
        state = req.get("state")
        if not isinstance(state, str) or state.lower() not in tw.STATES:
            self._reject(result_topic, event_id, 400, f"state {state!r} is not one of {', '.join(tw.STATES)}")
            return
        answer = await self.set_state(device, spec, state)
        self.publish(result_topic, _dumps(answer))
        if state.lower() in ("online", "ok"):
            self.publish_delta(device)  # a device back online learns what the cloud wants

    async def set_state(self, device: str, spec: tw.Spec, state: str) -> dict[str, Any]:
        """Store a device's state (one of ``tw.STATES``) and queue it for the cloud; returns the answer."""
        dev: dict[str, Any] = {"name": spec.name, "state": state}
        prev = self.store.states.get(device) or {}
        last_online = prev.get("lastOnlineTime", "")
        if state.lower() in ("online", "ok"):
            last_online = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            dev["lastOnlineTime"] = last_online
        event = str(uuid.uuid4())
        answer = {"event_id": event, "timestamp": now_ms(), "device": dev}
        now = time.time()
        self.store.states[device] = {"state": state, "lastOnlineTime": last_online, "updated": now}
        await self.store.write(
            self.store.chain(
                [
                    self.store.op_put_state(device, state, last_online),
                    self.store.op_report(device, "", event, answer, now),  # the cloud gets the same body
                ]
            )
        )
        self.last_report[device] = now
        self.kick()
        return answer

    def _membership(self, payload: bytes) -> None:
        self.counts["memberships"] += 1
        topic = f"$hw/events/node/{self.node}/membership/get/result"
        got = self._read(topic, payload, empty_ok=True)
        if got is None:
            return
        _, event_id = got
        devices = [
            {"id": d, "name": s.name, **({"description": s.description} if s.description else {}),
             "twin": {n: tw.public(st) for n, st in (self.store.twins.get(d) or {}).items()}}
            for d, s in sorted(self.specs.items())
        ]  # fmt: skip
        self.publish(topic, _dumps({"event_id": event_id, "timestamp": now_ms(), "devices": devices}))

    def _upload(self, topic: str, payload: bytes) -> None:
        self.counts["uploads"] += 1
        if self.upload_to_cloud is None:
            return
        content: Any = payload.decode("utf-8", errors="replace")
        self.upload_to_cloud(new_message("bus", "user", "upload", topic, content))

    def membership_updated(
        self, added: list[dict[str, Any]] | None, removed: list[dict[str, Any]] | None
    ) -> None:
        """Tell MQTT listeners about devices added to or removed from this node (as edgecore does)."""
        body = {
            "event_id": str(uuid.uuid4()),
            "timestamp": now_ms(),
            "added_devices": added or None,
            "removed_devices": removed or None,
        }
        self.publish(f"$hw/events/node/{self.node}/membership/updated", _dumps(body))
