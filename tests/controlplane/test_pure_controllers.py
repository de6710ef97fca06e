"""Pure rules of the controllers: rollout arithmetic, template hashes, selectors, deletion order,
condition taints and NoExecute eviction timing."""

from __future__ import annotations

import datetime
from typing import Any

from runtime.apiserver.controllers.deployments import resolve, template_hash
from runtime.apiserver.controllers.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    desired_condition_taints,
    eviction_delay,
)
from runtime.apiserver.controllers.replicasets import _deletion_rank, selector_matches


def test_surge_rounds_up_unavailable_down() -> None:
    assert resolve("25%", 3, True) == 1 and resolve("25%", 3, False) == 0
    assert resolve("25%", 10, True) == 3 and resolve("25%", 10, False) == 2
    assert resolve(None, 4, True) == 1  # default 25 %
    assert resolve(2, 10, False) == 2


def test_template_hash_is_stable_safe_and_collision_aware() -> None:
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}}
    h = template_hash(t)
    assert h == template_hash({"spec": t["spec"], "metadata": t["metadata"]})  # key order irrelevant
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert template_hash(t, 1) != h
    t2 = {**t, "spec": {"containers": [{"name": "c", "image": "b"}]}}
    assert template_hash(t2) != h


def test_label_selector() -> None:
    labels = {"app": "web", "tier": "fe"}
    assert selector_matches({"matchLabels": {"app": "web"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "db"}}, labels)
    exprs = [
        {"key": "tier", "operator": "In", "values": ["fe", "be"]},
        {"key": "x", "operator": "DoesNotExist"},
    ]
    assert selector_matches({"matchExpressions": exprs}, labels)
    assert not selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}, labels
    )
    assert not selector_matches({}, labels)  # an empty selector selects nothing for a controller


def pod(name: str, node: str | None, phase: str, ready: bool, created: str) -> dict[str, Any]:
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    spec = {"nodeName": node} if node else {}
    meta = {"name": name, "creationTimestamp": created}
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "conditions": conds}}


def test_scale_down_order() -> None:
    pods = [
        pod("ready-old", "n", "Running", True, "2026-01-01T00:00:00Z"),
        pod("ready-new", "n", "Running", True, "2026-01-02T00:00:00Z"),
        pod("not-ready", "n", "Running", False, "2026-01-01T00:00:00Z"),
        pod("pending", "n", "Pending", False, "2026-01-01T00:00:00Z"),
        pod("unscheduled", None, "Pending", False, "2026-01-01T00:00:00Z"),
    ]
    order = [p["metadata"]["name"] for p in sorted(pods, key=_deletion_rank)]
    assert order == ["unscheduled", "pending", "not-ready", "ready-new", "ready-old"]


def node(ready: str | None) -> dict[str, Any]:
    conds = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"status": {"conditions": conds}}


def test_condition_taints() -> None:
    assert desired_condition_taints(node("True")) == set()
    assert desired_condition_taints(node("Unknown")) == {
        (UNREACHABLE, "NoSchedule"),
        (UNREACHABLE, "NoExecute"),
    }
    assert desired_condition_taints(node("False")) == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
    assert desired_condition_taints(node(None)) == set()  # never reported: the grace period decides


def test_eviction_delay() -> None:
    now = datetime.datetime(2026, 1, 1, 0, 0, 10, tzinfo=datetime.UTC).timestamp()
    taint = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}
    schedule = {"key": UNREACHABLE, "effect": "NoSchedule"}

    def tol(**kw: Any) -> dict[str, Any]:
        return {"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", **kw}]}}

    assert eviction_delay({"spec": {}}, [taint], now) == 0.0  # not tolerated: now
    assert eviction_delay(tol(effect="NoExecute", tolerationSeconds=300), [taint], now) == 290.0
    assert eviction_delay(tol(effect="NoExecute", tolerationSeconds=5), [taint], now) == 0.0  # overdue
    assert eviction_delay(tol(effect="NoExecute"), [taint], now) is None  # forever
    assert eviction_delay({"spec": {}}, [schedule], now) is None  # NoSchedule never evicts


def test_stored_only_warning() -> None:
    from runtime.apiserver.controllers.kinds import stored_only_warning

    assert stored_only_warning("apps", "DaemonSet") == (
        '299 - "stored only: no DaemonSet controller in the embedded control plane"'
    )
    assert stored_only_warning("apps", "Deployment") is None
    assert stored_only_warning("", "Pod") is None
