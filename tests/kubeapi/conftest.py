"""Helpers for the Kubernetes API conformance tests: an HTTP client, kubectl, a fresh namespace.

Every test here states behaviour a real kube-apiserver shows; run against one with
KEDGE_TEST_KUBECONFIG=<kubeconfig> to check the test itself.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.apiserver import ApiServer

# Objects a cluster's controllers put into every namespace (root CA publisher); tests look past them.
CLUSTER_MADE = {"kube-root-ca.crt"}
# A schedulerName no scheduler serves: a pod that must stay unbound on a cluster with a scheduler.
UNSCHEDULED = "kedge-test-no-such-scheduler"


class Kube:
    """A thin httpx wrapper: paths in, (status, JSON) out."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=server.url,
            verify=ssl.create_default_context(cafile=str(server.ca_file)),
            timeout=30,
            headers={"Authorization": f"Bearer {server.token}"},
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ctype: str = "application/json",
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        content = None
        if body is not None:
            content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h = {"Content-Type": ctype, **(headers or {})}
        return self.http.request(method, path, content=content, params=params, headers=h)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, ctype: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, body, ctype=ctype, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, body, **kw)

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="session")
def kube(apiserver_session: ApiServer) -> Iterator[Kube]:
    k = Kube(apiserver_session)
    yield k
    k.close()


def ensure_default_sa(kube: Kube, ns: str) -> None:
    """Pods need the namespace's `default` ServiceAccount (the real ServiceAccount admission refuses
    them without it). kube-controller-manager creates it on a full cluster; a bare API server — the
    embedded one without controllers, or a real one alone — has none, so create it when absent
    (409: the controller won the race)."""
    path = f"/api/v1/namespaces/{ns}/serviceaccounts"
    if kube.get(f"{path}/default").status_code == 404:
        r = kube.post(path, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
        assert r.status_code in (201, 409), r.text


def require_controllers(kube: Kube, what: str) -> None:
    """Skip, saying so, when KEDGE_TEST_KUBECONFIG names a bare real API server (no
    kube-controller-manager: no leader-election Lease in kube-system) and the test needs `what`.
    The embedded server does that work itself, so it never skips."""
    if kube.server.embedded:
        return
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"
    if kube.get(lease).status_code == 404:
        pytest.skip(
            f"needs kube-controller-manager ({what}); KEDGE_TEST_KUBECONFIG names an API server without it"
        )


@pytest.fixture
def ns(kube: Kube) -> Iterator[str]:
    """A fresh namespace per test (with its `default` ServiceAccount), deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    r = kube.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    ensure_default_sa(kube, name)
    yield name
    kube.delete(f"/api/v1/namespaces/{name}")


class Kubectl:
    def __init__(self, server: ApiServer, cache: Path) -> None:
        self.kubeconfig = server.kubeconfig
        self.cache = cache
        self.binary = shutil.which("kubectl")

    def argv(self, *args: str) -> list[str]:
        """The kubectl command line for `args`, on this server's kubeconfig and a private cache."""
        if self.binary is None:
            pytest.fail("kubectl is not installed (scripts/test.sh installs it)")
        return [self.binary, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache), *args]

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(self.argv(*args), input=input, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed ({res.returncode}):\n{res.stderr}\n{res.stdout}")
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """kubectl running in the background (`wait`, `get -w`); text stdout and stderr are piped."""
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def kubectl(apiserver_session: ApiServer, tmp_path: Path) -> Kubectl:
    return Kubectl(apiserver_session, tmp_path / "kubectl-cache")


def deployment(
    name: str,
    replicas: int | None = 1,
    image: str = "nginx:1.25",
    containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Deployment whose selector matches its template: one container `app` running `image`, or
    `containers`; without spec.replicas when `replicas` is None."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": ({} if replicas is None else {"replicas": replicas})
        | {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": containers or [{"name": "app", "image": image}]},
            },
        },
    }


def pod(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}], **spec},
    }
    return body


def configmap(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **meta}, "data": data or {}}


def custom_resource_definition(
    group: str, kind: str, versions: list[dict[str, Any]], scope: str = "Namespaced", **names: Any
) -> dict[str, Any]:
    """A CRD `<kind>s.<group>` (plural and singular from `kind`, more `names` as given)."""
    plural, singular = f"{kind.lower()}s", kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "singular": singular, "kind": kind, **names},
            "versions": versions,
        },
    }


def gadget_crd(group: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A namespaced CRD `gadgets.<group>` (kind Gadget), version v1 with `schema`."""
    v1 = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    return custom_resource_definition(group, "Gadget", [v1])
