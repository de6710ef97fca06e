"""shared_strings: the cloud's per-node objects share their keys and short values, and stay equal."""

from __future__ import annotations

import json

from runtime.cloud.controllers.compact import SHORT, shared_strings

NODE = json.dumps(
    {
        "metadata": {"name": "n1", "labels": {"kubernetes.io/arch": "amd64"}, "managedFields": [{"f:x": {}}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "images": ["x" * (SHORT + 1)]},
    }
)


def test_equal_and_shared() -> None:
    a, b = json.loads(NODE), json.loads(NODE)
    assert next(iter(a["status"])) is not next(iter(b["status"]))  # json.loads copies every string
    ca, cb = shared_strings(a), shared_strings(b)
    assert ca == a and cb == b and list(ca["metadata"]) == list(a["metadata"])  # same content, same order
    assert next(iter(ca["status"])) is next(iter(cb["status"]))  # keys shared
    assert ca["status"]["conditions"][0]["status"] is cb["status"]["conditions"][0]["status"]  # short values
    assert ca["status"]["images"][0] is not cb["status"]["images"][0]  # long ones left alone
