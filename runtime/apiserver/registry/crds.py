"""CustomResourceDefinitions: a stored CRD starts serving its kind (every served version) at once,
gets its NamesAccepted/Established conditions like the real controllers set them, and when deleted its
objects are removed and its kind stops being served."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from runtime.apiserver.http.status_errors import invalid
from runtime.apiserver.registry import objects
from runtime.apiserver.registry.resources import Registry, ResourceType
from runtime.apiserver.registry.storage import Event, Store

Obj = dict[str, Any]
CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
log = logging.getLogger(__name__)


def types_of(crd: Obj) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = spec.get("versions") or []
    storage = next(
        (v.get("name") for v in versions if v.get("storage")), versions[0]["name"] if versions else ""
    )
    out = []
    for v in versions:
        if not v.get("served", True):
            continue
        subs = v.get("subresources") or {}
        sub_names = tuple(s for s in ("scale", "status") if s in subs)
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec.get("group", ""),
                version=v["name"],
                plural=names.get("plural", ""),
                kind=names.get("kind", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names.get("kind", "").lower(),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=sub_names,
                generation=True,
                crd=True,
                storage_version=storage,
                unconditional_update=False,
                printer_columns=v.get("additionalPrinterColumns"),
                schema=schema,
                extra={"scale": subs.get("scale")},
            )
        )
    return out


def validate_crd(crd: Obj, schema_causes: list[tuple[str, str, str]] | None = None) -> None:
    """The CRD's own fields, then `schema_causes` (validation/schema/structural.py's findings)."""
    meta, spec = crd.get("metadata") or {}, crd.get("spec") or {}
    name = meta.get("name", "")
    names = spec.get("names") or {}
    causes: list[tuple[str, str, str]] = []
    group, plural = spec.get("group", ""), names.get("plural", "")
    if not group:
        causes.append(("spec.group", "FieldValueRequired", "spec.group: Required value"))
    if not plural:
        causes.append(("spec.names.plural", "FieldValueRequired", "spec.names.plural: Required value"))
    if not names.get("kind"):
        causes.append(("spec.names.kind", "FieldValueRequired", "spec.names.kind: Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "spec.scope",
                "FieldValueNotSupported",
                f'spec.scope: Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", '
                '"Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            (
                "spec.versions",
                "FieldValueInvalid",
                "spec.versions: Invalid value: null: must have exactly one version marked as storage version",
            )
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            (
                "spec.versions",
                "FieldValueInvalid",
                "spec.versions: Invalid value: "
                f"{[v.get('name') for v in versions]}: "
                "must have exactly one version marked as storage version",
            )
        )
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'metadata.name: Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    causes += schema_causes or []
    if causes:
        raise invalid("CustomResourceDefinition", name, "apiextensions.k8s.io", causes)


class CrdController:
    """Keeps the registry in step with stored CRDs (wired as a store listener)."""

    def __init__(self, registry: Registry, store: Store) -> None:
        self.registry = registry
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def load(self) -> None:
        """Serve the stored CRDs; one the server cannot read is skipped and logged, never fatal: a
        restart must not depend on every stored object being understood."""
        for key, entry in self.store.data[CRD_KEY].items():
            try:
                self._register(entry.obj())
            except Exception:
                log.exception("stored CRD %s not served: cannot read it", key)

    def _register(self, crd: Obj) -> None:
        types = types_of(crd)
        if not types:
            return
        self.registry.remove_key(types[0].key)
        for rt in types:
            self.registry.add(rt)

    def __call__(self, ev: Event) -> None:
        if ev.res != CRD_KEY:
            return
        crd = ev.new.obj()
        if ev.type == "DELETED":
            types = types_of(crd)
            if types:
                self.registry.remove_key(types[0].key)
                self._spawn(self._purge(types[0].key))
            return
        self._register(crd)
        if not _established(crd):
            self._spawn(self._establish(crd["metadata"]["name"]))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _establish(self, name: str) -> None:
        entry = self.store.get(CRD_KEY, "", name)
        if entry is None:
            return
        crd = entry.obj()
        if _established(crd):
            return
        spec = crd.get("spec") or {}
        now = objects.now()
        status = crd.setdefault("status", {})
        status["acceptedNames"] = spec.get("names") or {}
        status["storedVersions"] = sorted({v["name"] for v in spec.get("versions") or [] if v.get("storage")})
        status["conditions"] = [
            {
                "type": "NamesAccepted",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ]
        crd["metadata"]["resourceVersion"] = str(self.store.next_rv())
        await self.store.commit([("MODIFIED", CRD_KEY, ("", name), crd)])

    async def _purge(self, key: str) -> None:
        changes = []
        for k, e in sorted(self.store.data[key].items()):
            o = e.obj()
            o["metadata"]["resourceVersion"] = str(self.store.next_rv())
            changes.append(("DELETED", key, k, o))
        if changes:
            await self.store.commit(changes)


def _established(crd: Obj) -> bool:
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )
