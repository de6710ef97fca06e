"""Decode-time defaults of pods and pod specs (SetDefaults_Pod, SetDefaults_PodSpec, SetDefaults_Container
and the volume sources'), and the image tag as the real server reads it; defaults.py applies
default_pod_spec to every pod template.
"""

from __future__ import annotations

from typing import Any

from runtime.apiserver.admission.typed import typed_pod
from runtime.quantity import QuantityError, canonical_quantity

Obj = dict[str, Any]


def image_tag(image: str) -> str:
    """parsers.ParseImageName's tag: "latest" when neither tag nor digest is given."""
    if "@" in image:
        name = image.split("@", 1)[0]
        digest = True
    else:
        name, digest = image, False
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def default_resources(res: Obj | None) -> None:
    if not res:
        return
    for key in ("limits", "requests"):
        if isinstance(res.get(key), dict):
            for name, q in res[key].items():
                try:
                    res[key][name] = canonical_quantity(q)
                except QuantityError:
                    pass  # validation (the core's) rejects it


def _default_probe(p: Obj | None) -> None:
    if not isinstance(p, dict):
        return
    for k, v in (
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ):
        if not p.get(k):
            p[k] = v
    http = p.get("httpGet")
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        if not http.get("scheme"):
            http["scheme"] = "HTTP"


def _default_env(c: Obj) -> None:
    for env in c.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"


def default_container(c: Obj) -> None:
    """SetDefaults_Container plus the nested defaults (ports, probes, env fieldRefs, resources)."""
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = "Always" if image_tag(str(c.get("image", ""))) == "latest" else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    if not isinstance(c.get("resources"), dict):
        c["resources"] = {}
    default_resources(c["resources"])
    for port in c.get("ports") or []:
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    _default_env(c)


def _default_volume(v: Obj) -> None:
    sources = [k for k in v if k != "name"]
    if not sources:
        v["emptyDir"] = {}
    for kind in ("secret", "configMap", "downwardAPI", "projected"):
        src = v.get(kind)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = 420
    if isinstance(v.get("hostPath"), dict) and v["hostPath"].get("type") is None:
        v["hostPath"]["type"] = ""
    for item in (v.get("downwardAPI") or {}).get("items") or []:
        ref = item.get("fieldRef")
        if isinstance(ref, dict) and not ref.get("apiVersion"):
            ref["apiVersion"] = "v1"
    for src in (v.get("projected") or {}).get("sources") or []:
        sat = src.get("serviceAccountToken")
        if isinstance(sat, dict) and sat.get("expirationSeconds") is None:
            sat["expirationSeconds"] = 3600
        for item in (src.get("downwardAPI") or {}).get("items") or []:
            ref = item.get("fieldRef")
            if isinstance(ref, dict) and not ref.get("apiVersion"):
                ref["apiVersion"] = "v1"


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec (also applied to workload templates)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # v1 keeps the deprecated serviceAccount in step with serviceAccountName (conversion).
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    elif spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                default_container(c)
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            _default_volume(v)


def default_pod(pod: Obj) -> None:
    """SetDefaults_Pod: requests from limits, enableServiceLinks, host-network ports (pods only)."""
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            res = c.get("resources") or {}
            if isinstance(res.get("limits"), dict):
                req = res.setdefault("requests", {})
                for name, q in res["limits"].items():
                    req.setdefault(name, q)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    typed_pod(pod)
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                for port in c.get("ports") or []:
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
