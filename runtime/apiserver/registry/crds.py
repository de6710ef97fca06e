"""CustomResourceDefinitions: a stored CRD serves its kind (every served version) as soon as its names
are accepted, gets its NamesAccepted/Established conditions from in-server naming and establishing
steps (crdnames.py) like kube-apiserver's own controllers set them, and when deleted its objects are
removed and its kind stops being served."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from runtime.apiserver.http.status_errors import invalid
from runtime.apiserver.patch.apply import update_managed_fields
from runtime.apiserver.registry import crdnames, objects
from runtime.apiserver.registry.resources import Registry, ResourceType
from runtime.apiserver.registry.storage import Event, Store

Obj = dict[str, Any]
CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
CRD_API_VERSION = "apiextensions.k8s.io/v1"
STATUS_MANAGER = "kube-apiserver"  # the field manager of the naming and establishing steps' writes
log = logging.getLogger(__name__)


def types_of(crd: Obj) -> list[ResourceType]:
    """The kinds `crd` serves, under its accepted names once it has them (its requested ones before)."""
    spec = crd.get("spec") or {}
    accepted = crdnames.accepted_names(crd)
    names = accepted if accepted["plural"] else spec.get("names") or {}
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
    """Keeps the registry in step with stored CRDs (wired as a store listener), and runs the naming
    and establishing steps kube-apiserver runs inside itself, in every mode: a new CRD is answered
    with empty accepted names and no conditions; right after, the naming step accepts its names (or
    refuses them, NamesAccepted False, when another CRD of the group holds one) and serves its kinds,
    then the establishing step sets Established. Both are status writes by `kube-apiserver`."""

    def __init__(self, registry: Registry, store: Store) -> None:
        self.registry = registry
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def load(self) -> None:
        """Serve the stored CRDs; one the server cannot read is skipped and logged, never fatal: a
        restart must not depend on every stored object being understood."""
        for key, entry in self.store.data[CRD_KEY].items():
            try:
                if not crdnames.refused(entry.obj()):
                    self._register(entry.obj())
            except Exception:
                log.exception("stored CRD %s not served: cannot read it", key)

    def resume(self) -> None:
        """Once the store takes writes: name and establish the stored CRDs left half-way."""
        for (_, name), entry in sorted(self.store.data[CRD_KEY].items()):
            self._follow_up(name, entry.obj())

    def _register(self, crd: Obj) -> None:
        types = types_of(crd)
        if not types:
            return
        self.registry.remove_key(types[0].key)
        for rt in types:
            self.registry.add(rt)

    def _unregister(self, crd: Obj) -> None:
        types = types_of(crd)
        if types:
            self.registry.remove_key(types[0].key)

    def __call__(self, ev: Event) -> None:
        if ev.res != CRD_KEY:
            return
        crd = ev.new.obj()
        if ev.type == "DELETED":
            types = types_of(crd)
            if types:
                self.registry.remove_key(types[0].key)
                self._spawn(self._purge(types[0].key))
            self._requeue_group(crd, ev.key[1])
            return
        if crdnames.refused(crd):
            self._unregister(crd)
        elif crdnames.condition(crd, "NamesAccepted") or crdnames.condition(crd, "Established"):
            self._register(crd)
        self._follow_up(ev.key[1], crd)

    def _follow_up(self, name: str, crd: Obj) -> None:
        if not crdnames.names_settled(crd):
            self._spawn(self._name(name))
        elif crdnames.is_true(crd, "NamesAccepted") and not crdnames.is_true(crd, "Established"):
            self._spawn(self._establish(name))

    def _requeue_group(self, crd: Obj, name: str) -> None:
        """A CRD freed or took names: the others of its group are decided again."""
        group = (crd.get("spec") or {}).get("group")
        for (_, other), entry in sorted(self.store.data[CRD_KEY].items()):
            obj = entry.obj()
            if (
                other != name
                and (obj.get("spec") or {}).get("group") == group
                and not crdnames.names_settled(obj)
            ):
                self._spawn(self._name(other))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _name(self, name: str) -> None:
        """The naming controller's sync: runs to its write without awaiting, so steps queued one after
        another see each other's accepted names, and the kinds are served before the next request."""
        entry = self.store.get(CRD_KEY, "", name)
        if entry is None or crdnames.names_settled(crd := entry.obj()):
            return
        others = [e.obj() for e in self.store.data[CRD_KEY].values()]
        names, naming, establishing = crdnames.decide(crd, others)
        if crdnames.accepted_names(crd) == names and crdnames.equivalent(
            naming, crdnames.condition(crd, "NamesAccepted")
        ):
            return
        new = copy.deepcopy(crd)
        new.setdefault("status", {})["acceptedNames"] = names
        now = objects.now()
        crdnames.set_condition(new, naming, now)
        crdnames.set_condition(new, establishing, now)
        if naming["status"] == "True":
            self._register(new)
        await self._write(crd, new)
        self._requeue_group(new, name)

    async def _establish(self, name: str) -> None:
        entry = self.store.get(CRD_KEY, "", name)
        if entry is None:
            return
        crd = entry.obj()
        if not crdnames.is_true(crd, "NamesAccepted") or crdnames.is_true(crd, "Established"):
            return
        new = copy.deepcopy(crd)
        crdnames.set_condition(new, crdnames.established(), objects.now())
        await self._write(crd, new)

    async def _write(self, old: Obj, new: Obj) -> None:
        """A status update as kube-apiserver's own loopback client makes it (its managedFields entry)."""
        new = update_managed_fields(
            old, new, manager=STATUS_MANAGER, api_version=CRD_API_VERSION, subresource="status"
        )
        new["metadata"]["resourceVersion"] = str(self.store.next_rv())
        await self.store.commit([("MODIFIED", CRD_KEY, ("", new["metadata"]["name"]), new)])

    async def _purge(self, key: str) -> None:
        changes = []
        for k, e in sorted(self.store.data[key].items()):
            o = e.obj()
            o["metadata"]["resourceVersion"] = str(self.store.next_rv())
            changes.append(("DELETED", key, k, o))
        if changes:
            await self.store.commit(changes)
