"""Stream tunnels between the cloud's stream endpoint and an edge (kedge peers only; issue 19).

A ``kubectl logs/exec/attach/port-forward`` session reaches the edge in two steps:

1. The cloud sends the edge, over its existing link, one unreliable message ``open_message`` (group
   ``stream``, operation ``open``, resource ``stream/<session id>``) whose content says what to serve:
   ``{"kind": "logs"|"exec"|"attach"|"portforward", "namespace", "pod", "uid", "container",
   "options": {...}}``.
2. The edge dials ``wss://<hub>/<projectID>/<node>/streams/<session id>`` with its node certificate
   (the hub checks that the certificate's node is the node the session was opened for) and the session
   runs on that websocket alone: its own TCP connection, so TCP's and the websocket's flow control hold
   a busy session back without delaying the node's pod and status messages on the main link.

Frames on the tunnel websocket are binary, the first byte the channel, as Kubernetes' channel
protocol: STDIN 0, STDOUT 1, STDERR 2 (also the port-forward's data both ways on STDOUT), CONTROL 3
(JSON: ``{"type": "ready"}`` once the edge found what to serve, ``{"type": "error", "code", "message"}``,
``{"type": "exit", "code", "message"}``), RESIZE 4 (JSON ``{"Width", "Height"}``), and CLOSE 5 (the
client closed its stdin; port-forward: its write side). A normal websocket close ends the session.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from runtime.protocol.message import Message, new_message

GROUP_STREAM = "stream"
OP_OPEN = "open"
SRC_STREAM = "cloudstream"
RESOURCE_PREFIX = "stream/"

STDIN, STDOUT, STDERR, CONTROL, RESIZE, CLOSE = 0, 1, 2, 3, 4, 5
KINDS = ("logs", "exec", "attach", "portforward")


class TunnelError(Exception):
    """A frame or an open request that breaks the rules above."""


@dataclass
class OpenRequest:
    """What one session serves; ``sid`` names its tunnel."""

    sid: str
    kind: str
    namespace: str
    pod: str
    uid: str = ""
    container: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def new_sid() -> str:
    return secrets.token_hex(16)


def open_message(req: OpenRequest) -> Message:
    content = {
        "kind": req.kind,
        "namespace": req.namespace,
        "pod": req.pod,
        "uid": req.uid,
        "container": req.container,
        "options": req.options,
    }
    return new_message(SRC_STREAM, GROUP_STREAM, OP_OPEN, RESOURCE_PREFIX + req.sid, content)


def is_open(msg: Message) -> bool:
    return msg.group == GROUP_STREAM and msg.operation == OP_OPEN and msg.resource.startswith(RESOURCE_PREFIX)


def parse_open(msg: Message) -> OpenRequest:
    """The request an open message carries; TunnelError when it is not one."""
    sid = msg.resource[len(RESOURCE_PREFIX) :]
    c = msg.content if isinstance(msg.content, dict) else {}
    kind, ns, pod = c.get("kind"), c.get("namespace"), c.get("pod")
    if not sid.isalnum() or kind not in KINDS or not isinstance(ns, str) or not isinstance(pod, str):
        raise TunnelError(f"bad stream open message {msg.resource!r}: {c!r:.200}")
    opts = c.get("options")
    return OpenRequest(
        sid,
        kind,
        ns,
        pod,
        str(c.get("uid") or ""),
        str(c.get("container") or ""),
        opts if isinstance(opts, dict) else {},
    )


def stream_path(project: str, node: str, sid: str) -> str:
    return f"/{project}/{node}/streams/{sid}"


def parse_stream_path(path: str) -> tuple[str, str, str] | None:
    """``/<projectID>/<node>/streams/<sid>`` → (project, node, sid)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) == 4 and parts[2] == "streams" and parts[0] and parts[1] and parts[3].isalnum():
        return parts[0], parts[1], parts[3]
    return None


def frame(channel: int, data: bytes) -> bytes:
    return bytes((channel,)) + data


def control_payload(type_: str, **fields: Any) -> bytes:
    return json.dumps({"type": type_, **fields}).encode()


def control(type_: str, **fields: Any) -> bytes:
    """A whole CONTROL frame (channel byte included)."""
    return frame(CONTROL, control_payload(type_, **fields))


def split(data: bytes | str) -> tuple[int, bytes]:
    """(channel, payload) of one tunnel frame; TunnelError for a text or empty frame."""
    if isinstance(data, str) or not data:
        raise TunnelError("tunnel frames are binary and start with a channel byte")
    return data[0], bytes(data[1:])


def parse_control(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise TunnelError(f"control frame is not JSON: {payload[:80]!r}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise TunnelError(f"control frame without a type: {payload[:80]!r}")
    return doc
