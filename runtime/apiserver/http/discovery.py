"""Legacy (non-aggregated) discovery exactly as kube-apiserver serves it, cached per registry change.

kubectl 1.32 first asks for aggregated discovery (Accept: ...as=APIGroupDiscoveryList); answering plain
`application/json` makes it fall back to these documents, which is what a server without aggregated
discovery does.
"""

from __future__ import annotations

import platform
from typing import Any

import orjson

from runtime import __version__
from runtime.apiserver.registry.resources import Registry

Obj = dict[str, Any]
KUBE_MINOR = "32"


def version_info() -> Obj:
    return {
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": f"v1.{KUBE_MINOR}.0-kedge.{__version__}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "gc",
        "platform": f"linux/{_arch()}",
    }


def _arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


class Discovery:
    def __init__(self, registry: Registry, extra: dict[tuple[str, str], list[Obj]] | None = None) -> None:
        self.registry = registry
        self.extra = extra or {}  # (group, version) -> resources served outside the registry (metrics)
        self._cache: dict[str, bytes | None] = {}
        self._gen = -1

    def document(self, path: str, server_address: str) -> bytes | None:
        """The discovery document at path, or None when the path is not a discovery path."""
        if self._gen != self.registry.generation:
            self._cache.clear()
            self._gen = self.registry.generation
        key = path.rstrip("/") or "/"
        if key not in self._cache:
            self._cache[key] = self._build(key, server_address)
        return self._cache[key]

    def _build(self, path: str, addr: str) -> bytes | None:
        reg = self.registry
        parts = [p for p in path.split("/") if p]
        if parts == ["api"]:
            return orjson.dumps(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
                }
            )
        if parts == ["api", "v1"]:
            return self._resources("", "v1", core=True)
        if parts == ["apis"]:
            groups = [self._group(g, vs) for g, vs in self._group_versions().items()]
            return orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if len(parts) == 2 and parts[0] == "apis":
            vs = self._group_versions().get(parts[1])
            if not vs:
                return None
            return orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], vs)})
        if len(parts) == 3 and parts[0] == "apis":
            if not reg.in_group_version(parts[1], parts[2]) and (parts[1], parts[2]) not in self.extra:
                return None
            return self._resources(parts[1], parts[2], core=False)
        return None

    def _group_versions(self) -> dict[str, list[str]]:
        out = self.registry.group_versions()
        for group, version in self.extra:
            vs = out.setdefault(group, [])
            if version not in vs:
                vs.append(version)
        return out

    @staticmethod
    def _group(group: str, versions: list[str]) -> Obj:
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": vs, "preferredVersion": vs[0]}

    def _resources(self, group: str, version: str, core: bool) -> bytes:
        resources: list[Obj] = []
        for rt in self.registry.in_group_version(group, version):
            resources.extend(rt.discovery_entries())
        resources.extend(self.extra.get((group, version), ()))
        doc: Obj = {"kind": "APIResourceList"}
        if not core:
            doc["apiVersion"] = "v1"
        doc["groupVersion"] = f"{group}/{version}" if group else version
        doc["resources"] = resources
        return orjson.dumps(doc)
