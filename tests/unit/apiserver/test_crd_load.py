"""Start-up never depends on every stored object being understood: a stored CRD the server cannot
read (a version without a name) is skipped and logged; the other stored CRDs are served."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from runtime.apiserver.registry.crds import CRD_KEY, CrdController
from runtime.apiserver.registry.db import Database
from runtime.apiserver.registry.resources import Registry
from runtime.apiserver.registry.storage import Store
from tests.fixtures.wait import eventually_async


def crd(group: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}", "resourceVersion": "1"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": versions,
        },
    }


async def test_an_unreadable_stored_crd_does_not_stop_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / "state.db")
    store = Store(db)
    store.load()
    store.start(asyncio.get_running_loop())
    good = crd("good.example.com", [{"name": "v1", "served": True, "storage": True}])
    bad = crd("bad.example.com", [{"served": True, "storage": True}])  # no name: unreadable
    await store.commit(
        [
            ("ADDED", CRD_KEY, ("", "widgets.bad.example.com"), bad),
            ("ADDED", CRD_KEY, ("", "widgets.good.example.com"), good),
        ]
    )
    store.close()
    restarted = Store(Database(tmp_path / "state.db"))
    restarted.load()
    registry = Registry()
    CrdController(registry, restarted).load()
    assert registry.get("good.example.com", "v1", "widgets") is not None
    assert "stored CRD" in caplog.text and "widgets.bad.example.com" in caplog.text
    restarted.close()


async def test_a_stored_crd_never_named_is_named_and_established_after_a_restart(tmp_path: Path) -> None:
    """A crash between a CRD's create and its naming step leaves it without names: the restarted
    server finishes the job; a stored CRD whose names were refused is not served."""
    db = Database(tmp_path / "state.db")
    store = Store(db)
    store.load()
    store.start(asyncio.get_running_loop())
    fresh = crd("fresh.example.com", [{"name": "v1", "served": True, "storage": True}])
    refused = crd("refused.example.com", [{"name": "v1", "served": True, "storage": True}])
    refused["status"] = {
        "acceptedNames": {"plural": "widgets", "kind": ""},
        "conditions": [{"type": "NamesAccepted", "status": "False", "reason": "KindConflict"}],
    }
    await store.commit(
        [
            ("ADDED", CRD_KEY, ("", "widgets.fresh.example.com"), fresh),
            ("ADDED", CRD_KEY, ("", "widgets.refused.example.com"), refused),
        ]
    )
    store.close()
    restarted = Store(Database(tmp_path / "state.db"))
    restarted.load()
    registry = Registry()
    controller = CrdController(registry, restarted)
    controller.load()
    restarted.listeners.append(controller)
    assert registry.get("refused.example.com", "v1", "widgets") is None
    restarted.start(asyncio.get_running_loop())
    controller.resume()

    async def established() -> bool:
        entry = restarted.get(CRD_KEY, "", "widgets.fresh.example.com")
        conds = (entry.obj().get("status") or {}).get("conditions") or [] if entry else []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    await eventually_async(established, 10, what="the stored CRD established")
    assert registry.get("fresh.example.com", "v1", "widgets") is not None
    named = restarted.get(CRD_KEY, "", "widgets.fresh.example.com")
    assert named is not None and named.obj()["status"]["acceptedNames"] == {
        "plural": "widgets",
        "kind": "Widget",
    }
    restarted.close()
