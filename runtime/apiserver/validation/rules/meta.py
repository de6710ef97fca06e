"""Field-level identifier rules: label and annotation maps (ValidateObjectMeta), port names and
numbers, IPs, non-negative counts. The `is_*` names are util/validation's checks (names.py), each
returning Kubernetes' messages (empty when valid); the functions here wrap them into field errors."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Any

from runtime.apiserver.validation.names import (
    config_key_errors,
    dns1035_label_errors,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    max_len,
    qualified_name_errors,
)
from runtime.apiserver.validation.rules.fielderrors import FieldError, invalid, required, too_long

_PORT_NAME_CHARS = re.compile("^[-a-z0-9]+$")
_PORT_NAME_ALPHA = re.compile("[a-z]")
PORT_RANGE = "must be between 1 and 65535, inclusive"
ANNOTATIONS_MAX = 256 * 1024
is_qualified_name = qualified_name_errors
is_label_value = label_value_errors
is_dns1123_label = dns1123_label_errors
is_dns1123_subdomain = dns1123_subdomain_errors
is_dns1035_label = dns1035_label_errors
is_config_key = config_key_errors


def is_port_name(value: str) -> list[str]:
    """IsValidPortName: an IANA_SVC_NAME."""
    errs: list[str] = []
    if len(value) > 15:
        errs.append(max_len(15))
    if not _PORT_NAME_CHARS.match(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and not _PORT_NAME_ALPHA.search(value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


@functools.lru_cache(maxsize=256)
def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_port(value: Any) -> bool:
    return isinstance(value, int) and 1 <= value <= 65535


def port_num_or_name(value: Any, field: str) -> list[FieldError]:
    """ValidatePortNumOrName (an IntOrString targetPort)."""
    if isinstance(value, str):
        return [invalid(field, value, m) for m in is_port_name(value)]
    if not is_port(value):
        return [invalid(field, value, PORT_RANGE)]
    return []


def label_map(m: Any, field: str) -> list[FieldError]:
    """ValidateLabels: each key a qualified name, each value a label value (errors on the map's path)."""
    errs: list[FieldError] = []
    if not isinstance(m, dict):
        return errs
    for k, v in m.items():
        errs.extend(invalid(field, k, msg) for msg in is_qualified_name(k))
        if isinstance(v, str):
            errs.extend(invalid(field, v, msg) for msg in is_label_value(v))
    return errs


def annotation_map(m: Any, field: str) -> list[FieldError]:
    """ValidateAnnotations: keys are qualified names (compared in lower case); 256 KiB in total."""
    errs: list[FieldError] = []
    if not isinstance(m, dict):
        return errs
    size = 0
    for k, v in m.items():
        errs.extend(invalid(field, k, msg) for msg in is_qualified_name(k.lower()))
        size += len(k) + len(v if isinstance(v, str) else "")
    if size > ANNOTATIONS_MAX:
        errs.append(too_long(field, "", ANNOTATIONS_MAX))
    return errs


def object_meta(obj: dict[str, Any], path: str = "metadata") -> list[FieldError]:
    """The label and annotation part of ValidateObjectMeta (names are checked where they are set)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return []
    errs: list[FieldError] = []
    if "labels" in meta:
        errs += label_map(meta["labels"], f"{path}.labels")
    if "annotations" in meta:
        errs += annotation_map(meta["annotations"], f"{path}.annotations")
    return errs


def nonnegative(value: Any, field: str) -> list[FieldError]:
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return [invalid(field, value, "must be greater than or equal to 0")]
    return []


def required_string(value: Any, field: str) -> list[FieldError]:
    return [] if value else [required(field)]


def part(obj: Any, key: str) -> dict[str, Any]:
    """obj[key] when both are objects, else {} (rules read malformed input without failing)."""
    v = obj.get(key) if isinstance(obj, dict) else None
    return v if isinstance(v, dict) else {}
