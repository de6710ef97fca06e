"""How a Kubernetes API call is spelled: selectors, query parameters, patch content types, DeleteOptions.

Pure functions with no connection behind them, so the transport (runtime/kube/transport.py) and the
verbs (runtime/kube/client.py) build requests the same way and the spelling is testable without a
server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from runtime.kube.resources import Res

PatchKind = Literal["merge", "strategic", "json", "apply"]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
Selector = Mapping[str, str] | str | None
Propagation = Literal["Foreground", "Background", "Orphan"]


def selector(sel: Selector) -> str | None:
    """`{"a": "b"}` → `a=b`; a string is passed as is (full label/field selector syntax)."""
    if sel is None or isinstance(sel, str):
        return sel or None
    return ",".join(f"{k}={v}" if v != "" else k for k, v in sel.items()) or None


def query(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters as the API server reads them: unset (None) ones left out, booleans as `true`."""
    return {k: _param(v) for k, v in (params or {}).items() if v is not None}


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def selectors(labels: Selector, fields: Selector) -> dict[str, str | None]:
    """The labelSelector/fieldSelector query parameters of a list, watch or collection delete."""
    return {"labelSelector": selector(labels), "fieldSelector": selector(fields)}


def typed(res: Res, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` naming its apiVersion and kind, set in place (list items and watch events leave them out)."""
    obj.setdefault("apiVersion", res.api_version)
    obj.setdefault("kind", res.kind)
    return obj


def with_type(res: Res, obj: Mapping[str, Any]) -> dict[str, Any]:
    """A body that names its apiVersion and kind (callers may leave them out; the server may not)."""
    return typed(res, dict(obj))


def delete_options(
    *, grace_period: int | None = None, propagation: Propagation | None = None
) -> dict[str, Any]:
    """The DeleteOptions body single and collection deletes send (unset fields left out)."""
    opts: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace_period is not None:
        opts["gracePeriodSeconds"] = grace_period
    if propagation is not None:
        opts["propagationPolicy"] = propagation
    return opts
