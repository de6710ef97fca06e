"""Service allocation fills the fields a real service registry fills, with its error messages."""

from __future__ import annotations

import ipaddress
import random

import pytest

from runtime.apiserver.admission.create import AdmissionError, admit_create
from runtime.apiserver.admission.services import allocate_service


def svc(**spec: object) -> dict[str, object]:
    return admit_create(
        "services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}], **spec},
        },
    )


def test_cluster_ip_service() -> None:
    out = allocate_service(svc(), {"10.96.0.1"}, set(), rng=random.Random(1))
    spec = out["spec"]
    ip = spec["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12") and ip != "10.96.0.1"
    assert spec["clusterIPs"] == [ip]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert "nodePort" not in spec["ports"][0]


def test_node_port_and_requested_values() -> None:
    out = allocate_service(svc(type="NodePort", clusterIP="10.96.0.50"), set(), {30000}, rng=random.Random(2))
    assert out["spec"]["clusterIP"] == "10.96.0.50"
    assert 30001 <= out["spec"]["ports"][0]["nodePort"] <= 32767
    with pytest.raises(
        AdmissionError, match=r"failed to allocate IP 10\.96\.0\.50: provided IP is already allocated"
    ):
        allocate_service(svc(clusterIP="10.96.0.50"), {"10.96.0.50"}, set())
    with pytest.raises(AdmissionError, match=r"The range of valid IPs is 10.96.0.0/12") as exc:
        allocate_service(svc(clusterIP="192.168.1.1"), set(), set())
    assert exc.value.code == 422
    bad = svc(type="NodePort")
    bad["spec"]["ports"][0]["nodePort"] = 30080
    with pytest.raises(
        AdmissionError, match=r"spec.ports\[0\].nodePort: Invalid value: 30080: provided port is"
    ):
        allocate_service(bad, set(), {30080})


def test_headless_external_name_and_update_keeps_allocations() -> None:
    out = allocate_service(svc(clusterIP="None"), set(), set())
    assert out["spec"]["clusterIPs"] == ["None"] and out["spec"]["ipFamilyPolicy"] == "SingleStack"
    no_sel = svc(clusterIP="None")
    del no_sel["spec"]["selector"]
    assert allocate_service(no_sel, set(), set())["spec"]["ipFamilyPolicy"] == "RequireDualStack"
    ext = allocate_service(svc(type="ExternalName", externalName="example.com"), set(), set())
    assert "clusterIP" not in ext["spec"] and "ipFamilies" not in ext["spec"]
    first = allocate_service(svc(type="NodePort"), set(), set(), rng=random.Random(3))
    changed = svc(type="NodePort")  # an update that does not repeat the allocations
    again = allocate_service(
        changed, {first["spec"]["clusterIP"]}, {first["spec"]["ports"][0]["nodePort"]}, old=first
    )
    assert again["spec"]["clusterIP"] == first["spec"]["clusterIP"]
    assert again["spec"]["ports"][0]["nodePort"] == first["spec"]["ports"][0]["nodePort"]
