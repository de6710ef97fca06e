"""Manifests whose apiVersion depends on the Kubernetes release: pick what the server serves.

templates/ carry each object at its newest apiVersion. Where supported releases serve different
versions of a group (FlowSchema: `flowcontrol.apiserver.k8s.io/v1` from 1.29 only, `v1beta3`
1.26 to 1.31), `for_server()` rewrites the object to the newest version the server's discovery
offers; the schema kedge uses is the same in each listed version. Objects whose version the server
does not serve at all come back as `Unserved` problems naming the object, the versions tried and
the releases that serve them, so preflight can refuse before anything is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_KUBERNETES = (1, 28)  # the oldest release kedge is tested against (docs/compatibility.md)
MIN_TEXT = f"{MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]}"


@dataclass(frozen=True)
class Version:
    version: str
    since: str  # first Kubernetes release serving it
    until: str = ""  # last release serving it ("" = still served)

    def releases(self) -> str:
        return f"{self.since} to {self.until}" if self.until else f"{self.since} and newer"


# group -> its versions kedge can write, newest first (the manifests are valid in each)
VERSIONED: dict[str, tuple[Version, ...]] = {
    "flowcontrol.apiserver.k8s.io": (Version("v1", "1.29"), Version("v1beta3", "1.26", "1.31")),
}


@dataclass(frozen=True)
class Unserved:
    ref: str  # kind.group/name
    wanted: tuple[str, ...]  # apiVersions tried
    releases: tuple[str, ...]  # which Kubernetes releases serve each ("" unknown)

    def describe(self) -> str:
        tried = ", ".join(
            f"{w} (Kubernetes {r})" if r else w for w, r in zip(self.wanted, self.releases, strict=True)
        )
        return f"{self.ref}: the server serves none of {tried}"


def ref(obj: dict[str, Any]) -> str:
    """kubectl-style `kind.group/name` (e.g. `deployment.apps/kedge-cloud`)."""
    group = obj.get("apiVersion", "").rpartition("/")[0]
    kind = obj.get("kind", "").lower()
    return f"{kind}.{group}/{obj['metadata']['name']}" if group else f"{kind}/{obj['metadata']['name']}"


def for_server(objs: list[dict[str, Any]], served: set[str]) -> tuple[list[dict[str, Any]], list[Unserved]]:
    """Each object at the newest apiVersion in `served` (group/version strings, `v1` for core)."""
    out: list[dict[str, Any]] = []
    problems: list[Unserved] = []
    for obj in objs:
        group = obj["apiVersion"].rpartition("/")[0]
        choices = VERSIONED.get(group)
        if choices is None:
            if obj["apiVersion"] not in served:
                problems.append(Unserved(ref(obj), (obj["apiVersion"],), ("",)))
            out.append(obj)
            continue
        wanted = tuple(f"{group}/{c.version}" for c in choices)
        pick = next((w for w in wanted if w in served), None)
        if pick is None:
            problems.append(Unserved(ref(obj), wanted, tuple(c.releases() for c in choices)))
            out.append(obj)
        else:
            out.append({**obj, "apiVersion": pick})
    return out, problems
