"""Every kind the API server serves has its lightkube-models module in runtime/kube/models.py, and the
definitions built from them cover every served kind (a missing module would drop its kinds silently)."""

from __future__ import annotations

from runtime.apiserver.openapi import defs
from runtime.apiserver.registry.resources import builtin_types
from runtime.kube.models import MODELS


def test_every_served_kind_has_its_model_module() -> None:
    missing = {
        f"{rt.group or 'core'}/{rt.version} {rt.kind}"
        for rt in builtin_types()
        if defs.module_for(rt.group, rt.version) not in MODELS
    }
    assert not missing, missing


def test_definitions_cover_every_served_kind() -> None:
    served = [(rt.group, rt.version, rt.kind) for rt in builtin_types()]
    built = defs.builtin_definitions(defs.kinds_of(served))
    absent = [k for g, v, k in served if defs.definition_name(defs.module_for(g, v), k) not in built]
    assert not absent, absent
