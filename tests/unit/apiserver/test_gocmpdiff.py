"""go-cmp's cmp.Diff report of internal structs (validation/rules/gocmpdiff.py). The corpus cases
pod-update-immutable-restartpolicy, pod-patch-*-invalid and pvc-spec-update check it against a real
kube-apiserver; these check the same rules on other fields: context and folding of equal fields,
-/+ pairs of leaves and linear chains, recursion into changed structs and slices, key alignment,
multi-line removed values."""

from __future__ import annotations

import copy
from typing import Any

from runtime.apiserver.validation.rules.gocmpdiff import cmp_diff


def _report(*lines: str) -> str:
    """go-cmp's layout: a 2-character marker ("  ", "- ", "+ " with a non-breaking space), then a tab
    for each 4 leading spaces written here."""
    out = []
    for line in lines:
        marker, rest = line[:2], line[2:]
        body = rest.lstrip(" ")
        tabs = "\t" * ((len(rest) - len(body)) // 4)
        out.append((marker[0] if marker[0] in "-+" else "\u00a0") + "\u00a0" + tabs + body)
    return "\n".join(out) + "\n"


_POD: dict[str, Any] = {
    "containers": [
        {
            "name": "app",
            "image": "nginx:1.25",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }
    ],
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 30,
    "dnsPolicy": "ClusterFirst",
    "nodeSelector": {"zone": "a"},
    "securityContext": {},
    "schedulerName": "default-scheduler",
}


def test_equal_values_have_no_report() -> None:
    assert cmp_diff(_POD, copy.deepcopy(_POD), "core.PodSpec") == ""


def test_changed_scalars_pointers_and_maps_print_as_pairs_with_two_fields_of_context() -> None:
    new = copy.deepcopy(_POD)
    new["dnsPolicy"] = "Default"
    new["terminationGracePeriodSeconds"] = 60
    new["nodeSelector"]["zone"] = "b"
    assert cmp_diff(_POD, new, "core.PodSpec") == _report(
        "  core.PodSpec{",
        "      ... // 3 identical fields",
        "      EphemeralContainers:           nil,",
        '      RestartPolicy:                 "Always",',
        "-     TerminationGracePeriodSeconds: &30,",
        "+     TerminationGracePeriodSeconds: &60,",
        "      ActiveDeadlineSeconds:         nil,",
        '-     DNSPolicy:                     "ClusterFirst",',
        '+     DNSPolicy:                     "Default",',
        '-     NodeSelector:                  map[string]string{"zone": "a"},',
        '+     NodeSelector:                  map[string]string{"zone": "b"},',
        '      ServiceAccountName:            "",',
        "      AutomountServiceAccountToken:  nil,",
        "      ... // 22 identical fields",
        "  }",
    )


def test_a_change_in_the_last_field_keeps_context_only_before_it() -> None:
    new = copy.deepcopy(_POD)
    new["containers"][0]["tty"] = True
    assert cmp_diff(_POD, new, "core.PodSpec") == _report(
        "  core.PodSpec{",
        "      Volumes:        nil,",
        "      InitContainers: nil,",
        "      Containers: []core.Container{",
        "          {",
        "              ... // 21 identical fields",
        "              Stdin:     false,",
        "              StdinOnce: false,",
        "-             TTY:       false,",
        "+             TTY:       true,",
        "          },",
        "      },",
        "      EphemeralContainers: nil,",
        '      RestartPolicy:       "Always",',
        "      ... // 28 identical fields",
        "  }",
    )


def test_a_removed_value_past_80_columns_goes_multiline_an_added_element_is_only_inserted() -> None:
    old = copy.deepcopy(_POD)
    old["containers"][0]["env"] = [
        {"name": "A_VARIABLE", "value": "first value here"},
        {"name": "B_VARIABLE", "value": "second value here"},
    ]
    new = copy.deepcopy(old)
    del new["containers"][0]["env"]
    new["containers"].append({"name": "side", "image": "busybox"})
    assert cmp_diff(old, new, "core.PodSpec") == _report(
        "  core.PodSpec{",
        "      Volumes:        nil,",
        "      InitContainers: nil,",
        "      Containers: []core.Container{",
        "          {",
        "              ... // 5 identical fields",
        "              Ports:   nil,",
        "              EnvFrom: nil,",
        "-             Env: []core.EnvVar{",
        '-                 {Name: "A_VARIABLE", Value: "first value here"},',
        '-                 {Name: "B_VARIABLE", Value: "second value here"},',
        "-             },",
        "+             Env:          nil,",
        "              Resources:    {},",
        "              ResizePolicy: nil,",
        "              ... // 14 identical fields",
        "          },",
        '+         {Name: "side", Image: "busybox"},',
        "      },",
        "      EphemeralContainers: nil,",
        '      RestartPolicy:       "Always",',
        "      ... // 28 identical fields",
        "  }",
    )


def test_a_nested_struct_prints_its_type_and_identical_values_elide_zero_fields() -> None:
    old = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    new = {**old, "resources": {"requests": {"storage": "1Gi"}, "limits": {"storage": "2Gi"}}}
    assert cmp_diff(old, new, "core.PersistentVolumeClaimSpec") == _report(
        "  core.PersistentVolumeClaimSpec{",
        '      AccessModes: {"ReadWriteOnce"},',
        "      Selector:    nil,",
        "      Resources: core.ResourceRequirements{",
        "-         Limits: nil,",
        "+         Limits: core.ResourceList{",
        '+             s"storage": {i: resource.int64Amount{value: 2147483648}, '
        's: "2Gi", Format: "BinarySI"},',
        "+         },",
        '          Requests: {s"storage": {i: {...}, s: "1Gi", Format: "BinarySI"}},',
        "          Claims:   nil,",
        "      },",
        '      VolumeName:       "",',
        "      StorageClassName: nil,",
        "      ... // 3 identical fields",
        "  }",
    )
