"""Field errors as Kubernetes' field.ErrorList builds them, and the 422 Invalid Status made of them.

Each constructor mirrors one of apimachinery's `field.Invalid/Required/NotSupported/...`: it knows the
cause `reason` (FieldValueInvalid, ...) and prints the value the way Go's field errors do (strings
quoted, numbers bare, structs as the caller renders them with `GoText`). `invalid_error` renders the
list once: message `<Kind>.<group> "<name>" is invalid: <errors>` (brackets only for two or more
distinct messages, duplicates collapsed as utilerrors.NewAggregate does), details name, group, kind
and causes in the order the rules found them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from runtime.apiserver.http.status_errors import StatusError
from runtime.apiserver.http.status_errors import invalid as status_invalid


@dataclass(frozen=True, slots=True)
class GoText:
    """A value already printed as Go prints it (`map[string]string{"app":"b"}`, a struct's %#v)."""

    text: str


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str  # the cause reason: FieldValueInvalid, FieldValueRequired, ...
    detail: str  # what follows `<field>: `, e.g. `Invalid value: 70000: must be between ...`

    def message(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


def go_value(value: Any) -> str:
    """The value part of a field error: %q for strings, bare numbers and booleans, `null` for nil."""
    if isinstance(value, GoText):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def go_string_map(m: dict[str, Any] | None) -> GoText:
    """%#v of a map[string]string: keys sorted, `(nil)` for a missing map."""
    if m is None:
        return GoText("map[string]string(nil)")
    inner = ", ".join(f"{go_value(k)}:{go_value(str(v))}" for k, v in sorted(m.items()))
    return (
        GoText("map[string]string{" + inner.replace(", ", ",") + "}") if m else GoText("map[string]string{}")
    )


def go_int_or_string(v: Any) -> GoText:
    if isinstance(v, str):
        return GoText(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_value(v)}}}")
    return GoText(f'intstr.IntOrString{{Type:0, IntVal:{int(v or 0)}, StrVal:""}}')


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(field, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(
        field, "FieldValueRequired", f"Required value: {detail}" if detail else "Required value"
    )


def not_supported(field: str, value: Any, supported: list[str]) -> FieldError:
    values = ", ".join(go_value(s) for s in supported)
    return FieldError(
        field, "FieldValueNotSupported", f"Unsupported value: {go_value(value)}: supported values: {values}"
    )


def required_of(field: str, value: Any, supported: list[str]) -> list[FieldError]:
    """A required enum field: Required when empty, NotSupported when not one of `supported`."""
    if not value:
        return [required(field)]
    if value not in supported:
        return [not_supported(field, value, supported)]
    return []


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(field, "FieldValueDuplicate", f"Duplicate value: {go_value(value)}")


def not_found(field: str, value: Any) -> FieldError:
    return FieldError(field, "FieldValueNotFound", f"Not found: {go_value(value)}")


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(field, "FieldValueForbidden", f"Forbidden: {detail}")


def too_long(field: str, value: Any, limit: int) -> FieldError:
    return FieldError(field, "FieldValueTooLong", f"Too long: must have at most {limit} bytes")


def invalid_error(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    """422 Invalid for a non-empty error list, as apierrors.NewInvalid renders it."""
    return status_invalid(kind, name, group, [(e.field, e.reason, e.message()) for e in errors])
