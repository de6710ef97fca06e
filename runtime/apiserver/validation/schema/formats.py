"""The string formats apiextensions validates (its strfmt registry); any other `format` (int32,
int64, float, double, …) is accepted without a check, as the real server drops it as unsupported."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable

_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_UUID_V = {
    v: re.compile(rf"^[0-9a-f]{{8}}-[0-9a-f]{{4}}-{v}[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}$", re.I)
    for v in "345"
}
_HOSTNAME = re.compile(
    r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_DURATION = re.compile(r"^(-?\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_BSON = re.compile(r"^[0-9a-fA-F]{24}$")


def _ip(version: int) -> Callable[[str], bool]:
    def check(v: str) -> bool:
        try:
            return ipaddress.ip_address(v).version == version
        except ValueError:
            return False

    return check


def _cidr(v: str) -> bool:
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        return False
    return "/" in v


def _byte(v: str) -> bool:
    try:
        base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _uri(v: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", v) is not None


CHECKS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda v: _BSON.match(v) is not None,
    "uri": _uri,
    "email": lambda v: _EMAIL.match(v) is not None,
    "hostname": lambda v: _HOSTNAME.match(v) is not None and len(v) <= 255,
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "cidr": _cidr,
    "mac": lambda v: _MAC.match(v) is not None,
    "uuid": lambda v: _UUID.match(v) is not None,
    "uuid3": lambda v: _UUID_V["3"].match(v) is not None,
    "uuid4": lambda v: _UUID_V["4"].match(v) is not None,
    "uuid5": lambda v: _UUID_V["5"].match(v) is not None,
    "hexcolor": lambda v: _HEXCOLOR.match(v) is not None,
    "byte": _byte,
    "date": lambda v: _DATE.match(v) is not None,
    "datetime": lambda v: _DATETIME.match(v) is not None,
    "date-time": lambda v: _DATETIME.match(v) is not None,
    "duration": lambda v: _DURATION.match(v) is not None,
}


def valid(fmt: str, v: str) -> bool:
    check = CHECKS.get(fmt)
    return check is None or check(v)
