"""Resource strings (parse/build/node prefix) and the reconnect backoff schedule."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from runtime.backoff import backoff
from runtime.protocol import (
    Resource,
    add_node_prefix,
    build_resource,
    parse_resource,
    strip_node_prefix,
)

CAPTURE = Path(__file__).parent / "data" / "capture.jsonl"
RESOURCES = sorted(
    {json.loads(line)["msg"]["route"].get("resource", "") for line in CAPTURE.read_text().splitlines()} - {""}
)


@pytest.mark.parametrize("s", RESOURCES)
def test_capture_resources_parse_and_prefix(s: str) -> None:
    res = parse_resource(s)
    assert res is not None and str(res) == s
    prefixed = add_node_prefix("ke-edge-1", s)
    assert prefixed == f"node/ke-edge-1/{s}"
    assert strip_node_prefix(prefixed) == ("ke-edge-1", s)
    if s.count("/") == 2:
        assert build_resource(res.namespace, res.type, res.name) == s


def test_shapes() -> None:
    assert parse_resource("default/pod/nginx") == Resource("default", "pod", "nginx")
    node = parse_resource("null/node/edge-1")
    assert node == Resource("null", "node", "edge-1") and node.cluster_scoped and node.k8s_namespace is None
    assert parse_resource("node") == Resource("", "node", "")
    assert parse_resource("membership/detail") == Resource("", "membership", "detail")
    assert parse_resource("ns/t/a/b") == Resource("ns", "t", "a/b")
    assert parse_resource("default/pod/x").k8s_namespace == "default"  # type: ignore[union-attr]
    for bad in ("", "/", "/x", "a//b", "a/b/", "ns/t/", 5, None):
        assert parse_resource(bad) is None, bad  # type: ignore[arg-type]


def test_build_and_strip() -> None:
    assert build_resource(None, "node", "e1") == "null/node/e1"
    assert build_resource("", "nodepatch", "e1") == "null/nodepatch/e1"
    assert build_resource("kube-node-lease", "lease", "e1") == "kube-node-lease/lease/e1"
    assert str(Resource("default", "pod", "p")) == "default/pod/p"
    assert strip_node_prefix("node") == (None, "node")
    assert strip_node_prefix("node/x") == (None, "node/x")
    assert strip_node_prefix("node//default/pod/p") == (None, "node//default/pod/p")
    assert strip_node_prefix("default/pod/p") == (None, "default/pod/p")
    assert strip_node_prefix("node/e1/default/pod/p") == ("e1", "default/pod/p")


def test_backoff_grows_caps_and_jitters() -> None:
    plain = list(itertools.islice(backoff(jitter=0), 10))
    assert plain == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    jittered = list(itertools.islice(backoff(rng=random.Random(1)), 200))
    assert all(0 < d <= 30.0 for d in jittered)
    assert all(15.0 <= d for d in jittered[10:])  # jitter 0.5 at most halves the cap
    assert len(set(jittered[10:])) > 100  # edges do not reconnect in step
    with pytest.raises(ValueError):
        next(backoff(initial=0))
