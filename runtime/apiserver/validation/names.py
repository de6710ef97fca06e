"""Name, label-key and label-value validation with apimachinery's messages (util/validation).

Selectors, and metadata validation in general, reject exactly what Kubernetes rejects and say so in
the same words, because clients and tests match on them.
"""

from __future__ import annotations

import re

INT_RE = re.compile(r"^[+-]?[0-9]+$")  # strconv.ParseInt(s, 10, 64): no spaces, no underscores
_QNAME_CHAR = "[A-Za-z0-9]"
_QNAME_EXT = "[-A-Za-z0-9_.]"
_QNAME_FMT = f"({_QNAME_CHAR}{_QNAME_EXT}*)?{_QNAME_CHAR}"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")

_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{_QNAME_FMT}')"
)


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName: `[prefix/]name`, as label and annotation keys must be."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name " + _QNAME_MSG + " with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QNAME_RE.match(name):  # an empty name gets both messages, as in Go
        errs.append("name part " + _QNAME_MSG)
    return errs


_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    f"validation is '{_DNS1123_SUBDOMAIN_FMT}')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    f"'12345', regex used for validation is '{_LABEL_VALUE_FMT}')"
)


def dns1123_subdomain_errors(value: str) -> list[str]:
    return _length_and_format(value, 253, _DNS1123_SUBDOMAIN_RE, _DNS1123_SUBDOMAIN_MSG)


def label_value_errors(value: str) -> list[str]:
    return _length_and_format(value, 63, _LABEL_VALUE_RE, _LABEL_VALUE_MSG)


_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_RE = re.compile(f"^{_DNS1035_FMT}$")
_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL}$")
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: the message, the examples, the regular expression."""
    shown = ",  or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {shown}, regex used for validation is '{fmt}')"


_DNS1123_LABEL_MSG = regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character",
    _DNS1123_LABEL,
    "my-name",
    "123-abc",
)

_DNS1035_MSG = regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character",
    _DNS1035_FMT,
    "my-name",
    "abc-123",
)

_CONFIG_KEY_MSG = regex_error(
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
    _CONFIG_KEY_FMT,
    "key.name",
    "KEY_NAME",
    "key-name",
)


def max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def _length_and_format(value: str, limit: int, pattern: re.Pattern[str], message: str) -> list[str]:
    """The two checks of most util/validation functions: at most `limit` characters, and the format."""
    errs = [max_len(limit)] if len(value) > limit else []
    if not pattern.match(value):
        errs.append(message)
    return errs


def dns1123_label_errors(value: str) -> list[str]:
    return _length_and_format(value, 63, _DNS1123_LABEL_RE, _DNS1123_LABEL_MSG)


def dns1035_label_errors(value: str) -> list[str]:
    return _length_and_format(value, 63, _DNS1035_RE, _DNS1035_MSG)


def config_key_errors(value: str) -> list[str]:
    """IsConfigMapKey: ConfigMap and Secret keys."""
    errs = _length_and_format(value, 253, _CONFIG_KEY_RE, _CONFIG_KEY_MSG)
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs
