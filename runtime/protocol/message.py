"""The KubeEdge beehive message envelope (design.md §4), as a plain dataclass.

Shape on the wire: ``{"header": {...}, "route": {...}, "content": ...}``. Go's ``omitempty`` decides
which keys appear: ``msg_id`` and ``timestamp`` always (even in the all-empty frame edgecore sends when
it stops), ``parent_msg_id``, ``resourceversion``, ``sync``, ``type`` only when set; every route key
only when non-empty; ``content`` always (``null`` when absent). Route fields are free-form strings —
this module never judges them; validation of *structure* lives in ``codec``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# Operations (beehive model constants plus the ones KubeEdge modules use).
OP_INSERT = "insert"
OP_UPDATE = "update"
OP_PATCH = "patch"
OP_DELETE = "delete"
OP_QUERY = "query"
OP_GET = "get"
OP_RESPONSE = "response"
OP_ERROR = "error"  # beehive ResponseErrorOperation
OP_UPLOAD = "upload"
OP_KEEPALIVE = "keepalive"

# Groups.
GROUP_RESOURCE = "resource"
GROUP_TWIN = "twin"
GROUP_USER = "user"
GROUP_META = "meta"
GROUP_FUNC = "func"

# Sources: cloud side, then edge side.
SRC_EDGECONTROLLER = "edgecontroller"
SRC_DEVICECONTROLLER = "devicecontroller"
SRC_CLOUDHUB = "cloudhub"
SRC_EDGED = "edged"
SRC_METAMANAGER = "metamanager"
SRC_META = "meta"
SRC_TWIN = "twin"
SRC_WEBSOCKET = "websocket"  # edgehub's name on the wire
SRC_EVENTBUS = "eventbus"

ACK_CONTENT = "OK"
KEEPALIVE_CONTENT = "ping"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Message:
    """One KubeEdge message. Mutable on purpose: senders tweak a fresh message before encoding."""

    msg_id: str = ""
    parent_msg_id: str = ""
    timestamp: int = 0  # milliseconds since the epoch
    resourceversion: str = ""
    sync: bool = False
    source: str = ""
    group: str = ""
    operation: str = ""
    resource: str = ""
    content: Any = None
    # Rarely used beehive fields, kept so foreign frames round-trip unchanged.
    destination: str = ""
    message_type: str = field(default="", repr=False)

    @property
    def is_response(self) -> bool:
        return self.operation == OP_RESPONSE or bool(self.parent_msg_id)

    def to_dict(self) -> dict[str, Any]:
        """The wire shape, with Go's omitempty rules applied (see module docstring)."""
        header: dict[str, Any] = {"msg_id": self.msg_id}
        if self.parent_msg_id:
            header["parent_msg_id"] = self.parent_msg_id
        header["timestamp"] = self.timestamp
        if self.resourceversion:
            header["resourceversion"] = self.resourceversion
        if self.sync:
            header["sync"] = True
        if self.message_type:
            header["type"] = self.message_type
        route: dict[str, str] = {}
        for key, value in (
            ("source", self.source),
            ("destination", self.destination),
            ("group", self.group),
            ("operation", self.operation),
            ("resource", self.resource),
        ):
            if value:
                route[key] = value
        return {"header": header, "route": route, "content": self.content}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        """Build from an already-validated wire dict (``codec.decode`` validates; this trusts)."""
        h = d.get("header") or {}
        r = d.get("route") or {}
        return cls(
            msg_id=h.get("msg_id", ""),
            parent_msg_id=h.get("parent_msg_id", ""),
            timestamp=h.get("timestamp", 0),
            resourceversion=h.get("resourceversion", ""),
            sync=h.get("sync", False),
            message_type=h.get("type", ""),
            source=r.get("source", ""),
            destination=r.get("destination", ""),
            group=r.get("group", ""),
            operation=r.get("operation", ""),
            resource=r.get("resource", ""),
            content=d.get("content"),
        )


def new_message(
    source: str,
    group: str,
    operation: str,
    resource: str,
    content: Any = None,
    *,
    parent_msg_id: str = "",
    resourceversion: str = "",
) -> Message:
    """A fresh request/notification: uuid4 id, timestamp now (ms)."""
    return Message(
        msg_id=str(uuid.uuid4()),
        parent_msg_id=parent_msg_id,
        timestamp=now_ms(),
        resourceversion=resourceversion,
        source=source,
        group=group,
        operation=operation,
        resource=resource,
        content=content,
    )


def response_to(
    req: Message,
    content: Any,
    *,
    source: str = SRC_EDGECONTROLLER,
    group: str = GROUP_RESOURCE,
    resourceversion: str = "",
) -> Message:
    """The cloud's answer to an edge request (recorded: source edgecontroller, group resource)."""
    return new_message(
        source,
        group,
        OP_RESPONSE,
        req.resource,
        content,
        parent_msg_id=req.msg_id,
        resourceversion=resourceversion,
    )


def ack(msg: Message, *, source: str | None = None, group: str | None = None) -> Message:
    """The edge's "OK" for a cloud→edge message.

    Like beehive's NewRespByMessage, the ack copies the original's source and group (recorded:
    edgecontroller/resource for pods, devicecontroller/resource for devices); pass them to override.
    """
    return new_message(
        msg.source if source is None else source,
        msg.group if group is None else group,
        OP_RESPONSE,
        msg.resource,
        ACK_CONTENT,
        parent_msg_id=msg.msg_id,
    )


def error_to(
    req: Message, reason: str, *, source: str = SRC_EDGECONTROLLER, group: str = GROUP_RESOURCE
) -> Message:
    """A refusal: beehive's ResponseErrorOperation ("error"), content = the reason text."""
    return new_message(source, group, OP_ERROR, req.resource, reason, parent_msg_id=req.msg_id)


def keepalive() -> Message:
    """The edgehub application keepalive, exactly as recorded (sent every 15 s)."""
    return new_message(SRC_WEBSOCKET, GROUP_RESOURCE, OP_KEEPALIVE, "node", KEEPALIVE_CONTENT)


# ---------------------------------------------------------------- response content shapes
# The cloud answers node, lease and podpatch requests with {"Object": <obj|null>, "Err": null |
# {"ErrStatus": <metav1.Status>}} and configmap/secret/token queries with the bare object
# (design.md §4 table); the edge must accept both.


def failure_status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A metav1.Status for a failed request, in the recorded field order."""
    status: dict[str, Any] = {"metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if details:
        status["details"] = details
    status["code"] = code
    return status


def object_result(obj: Any, status: dict[str, Any] | None = None) -> dict[str, Any]:
    """The wrapped response content: the object, or null plus the error status."""
    return {"Object": obj, "Err": None if status is None else {"ErrStatus": status}}


def split_result(content: Any) -> tuple[Any, dict[str, Any] | None]:
    """(object, error status or None) from either response form. Never raises.

    Bare content (an object, "OK", a string) comes back as (content, None). A non-Status ``Err``
    (Go marshals other error types as ``{}``) becomes a generic 500 status so it is never mistaken
    for success.
    """
    wrapped = isinstance(content, dict) and ("Object" in content or "Err" in content)
    if not wrapped or "kind" in content:
        return content, None
    err = content.get("Err")
    if err is None:
        return content.get("Object"), None
    status = err.get("ErrStatus") if isinstance(err, dict) else None
    if not isinstance(status, dict):
        status = failure_status(500, "InternalError", f"error from peer: {err!r:.200}")
    return content.get("Object"), status
