#!/usr/bin/env python3
"""What checking a custom resource against its CRD's structural schema costs, in process: a ~5 KB
KubeEdge Device (v1beta1, templates/crds/) through what a create does with it — prune unknown fields,
default, validate (schema, list invariants; the Device CRD has no CEL rules) — median µs of `--runs`
rounds of `--loops` each, one JSON line (issue 17: ≤ 300 µs). With `--cel`, the same for a small
schema with two CEL rules, to show what the rules add.

    .venv/bin/python scripts/bench/crd_validation.py [--runs 7] [--loops 500] [--cel]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from runtime.apiserver.validation.fieldtree import crd_tree, prune
from runtime.apiserver.validation.schema import customresource, defaulting

REPO = Path(__file__).resolve().parents[2]


def device_schema() -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "templates/crds/devices.kubeedge.io_devices.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def device(n_props: int) -> dict[str, Any]:
    props = [
        {
            "name": f"temperature-{i}",
            "desired": {"value": str(20 + i), "metadata": {"type": "int", "timestamp": "1700000000"}},
            "reportCycle": 10000,
            "collectCycle": 10000,
            "reportToCloud": True,
            "visitors": {
                "protocolName": "modbus",
                "configData": {"register": "HoldingRegister", "offset": i},
            },
            "pushMethod": {"mqtt": {"address": "tcp://127.0.0.1:1883", "topic": f"t/{i}", "qos": 1}},
        }
        for i in range(n_props)
    ]
    return {
        "apiVersion": "devices.kubeedge.io/v1beta1",
        "kind": "Device",
        "metadata": {"name": "thermo-1", "namespace": "default", "labels": {"model": "thermometer"}},
        "spec": {
            "deviceModelRef": {"name": "thermometer"},
            "nodeName": "edge-node-1",
            "protocol": {"protocolName": "modbus", "configData": {"slaveID": 1, "serialPort": "/dev/ttyS0"}},
            "properties": props,
        },
    }


CEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "min > max"},
                {"rule": "self.mode != 'manual' || has(self.owner)"},
            ],
            "properties": {
                "minReplicas": {"type": "integer", "default": 1},
                "maxReplicas": {"type": "integer", "default": 5},
                "mode": {"type": "string", "default": "auto"},
                "owner": {"type": "string"},
            },
        }
    },
}


def one_write(schema: dict[str, Any], obj: dict[str, Any]) -> None:
    unknown: list[str] = []
    prune(obj, crd_tree(schema), "", unknown)
    defaulting.default(obj, schema)
    errors = customresource.errors(schema, obj, None, "")
    assert not errors, errors


def measure(schema: dict[str, Any], obj: dict[str, Any], runs: int, loops: int) -> float:
    one_write(schema, copy.deepcopy(obj))  # compile and cache once, as a served CRD has
    samples = []
    for _ in range(runs):
        objs = [copy.deepcopy(obj) for _ in range(loops)]
        t = time.perf_counter()
        for o in objs:
            one_write(schema, o)
        samples.append((time.perf_counter() - t) / loops * 1e6)
    return round(statistics.median(samples), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--loops", type=int, default=500)
    ap.add_argument("--cel", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    obj = device(13)  # ≈5 KB of JSON
    out: dict[str, Any] = {
        "bench": "crd_validation",
        "device_bytes": len(json.dumps(obj)),
        "device_us_per_write": measure(device_schema(), obj, args.runs, args.loops),
    }
    if args.cel:
        cel_obj = {"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"mode": "auto"}}
        out["cel_2_rules_us_per_write"] = measure(CEL_SCHEMA, cel_obj, args.runs, args.loops)
    out["machine"] = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "loadavg_1m_at_start": load,
        "loadavg_1m_at_end": os.getloadavg()[0],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
