"""`x-kubernetes-validations` CEL rules: compiled once per CRD schema, evaluated on every write.

CEL engine: `common-expression-language` (Python bindings of the Rust `cel` crate), imported only
when a schema has rules. Chosen over cel-python 0.5.0 after measuring both here: its parser is
generated from the same ANTLR grammar as cel-go's, so a rule that does not compile is refused with
cel-go's very text (`Syntax error: mismatched input '>' expecting {...}` with the caret lines), which
cel-python's lark parser cannot give; a rule evaluates in 2-30 µs against cel-python's 70-270 µs; it
adds one native wheel (its typer/rich/pygments needs are kedge's already, prompt_toolkit is new)
where cel-python brings lark, pendulum, google-re2 and jmespath. Both cover `self`, `oldSelf`,
has(), size(), string matching and the list macros the rules use.

Differences from kube-apiserver, documented in docs/compatibility.md: rules are parsed, not type-checked
against the schema (an undeclared field is a runtime `no such key`, not a compile error); no cost
estimation or runtime budget; of the Kubernetes CEL libraries, the string (lowerAscii, upperAscii,
trim, split, join, replace, indexOf), list (isSorted, sum, min, max), regex (find, findAll), URL
(isURL) and quantity (celquantity.py) functions are here, sets and the rest are not; runtime error
texts are cel-rust's.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runtime.apiserver.validation.schema import celquantity

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    rule: Obj  # the x-kubernetes-validations entry
    program: Any
    message_program: Any | None
    uses_old_self: bool


class CompileError(Exception):
    """A rule or messageExpression that does not parse; the text is cel-go's."""


def compile_expression(text: str) -> Any:
    import cel  # the engine: loaded with the first CRD that has rules (≈0.2 s once)

    try:
        return cel.compile(text)
    except ValueError as exc:
        raise CompileError(_cel_go_text(str(exc))) from exc


def _cel_go_text(msg: str) -> str:
    """cel-rust says `Failed to parse expression '…': ERROR: …` and indents its source lines with
    `| `; cel-go's error is the `ERROR: …` part with ` | ` lines."""
    at = msg.find("ERROR: ")
    body = msg[at:] if at >= 0 else msg
    return re.sub(r"(?m)^\| ", " | ", body)


def compile_rule(rule: Obj) -> Compiled:
    program = compile_expression(str(rule.get("rule", "")))
    expr = rule.get("messageExpression")
    message_program = compile_expression(str(expr)) if expr else None
    return Compiled(rule, program, message_program, "oldSelf" in program.variables())


def evaluate(compiled: Compiled, value: Any, old: Any) -> tuple[bool, str]:
    """(passed, error text): the text is the failure message, or a runtime error's."""
    variables: Obj = {"self": value}
    if compiled.uses_old_self:
        variables["oldSelf"] = old
    rule = compiled.rule
    try:
        ok = compiled.program.execute(_context(variables))
    except Exception as exc:  # the engine's runtime errors: no such key, overflow, division by zero
        return False, f"{exc} evaluating rule: {_rule_text(rule)}"
    if ok is True:
        return True, ""
    if ok is not False:
        return False, f"rule did not evaluate to a bool evaluating rule: {_rule_text(rule)}"
    detail = _rule_text(rule)
    if compiled.message_program is not None:
        try:
            text = compiled.message_program.execute(_context(variables))
        except Exception:  # kube logs a failing messageExpression and keeps the static message
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text:
            detail = text
    return False, detail


def _rule_text(rule: Obj) -> str:
    message = str(rule.get("message") or "").strip()
    return message or f"failed rule: {str(rule.get('rule', '')).strip()}"


def _context(variables: Obj) -> Any:
    import cel

    return cel.Context(variables=variables, functions=_library())


# A part of Kubernetes' CEL libraries (k8s.io/apiserver/pkg/cel/library), as receiver-first functions.


def _index_of(s: Any, sub: Any) -> int:
    return s.index(sub) if isinstance(s, list) and sub in s else (s.find(sub) if isinstance(s, str) else -1)


def _is_url(s: str) -> bool:
    try:
        parts = urlsplit(s)
    except ValueError:
        return False
    return bool(parts.scheme) and (bool(parts.netloc) or s.startswith(parts.scheme + ":/"))


def _find_all(s: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m.group(0) for m in re.finditer(pattern, s)]
    return found if limit < 0 else found[:limit]


def _find(s: str, pattern: str) -> str:
    m = re.search(pattern, s)
    return m.group(0) if m else ""


@functools.cache
def _library() -> dict[str, Any]:
    return {
        "lowerAscii": lambda s: s.lower(),
        "upperAscii": lambda s: s.upper(),
        "trim": lambda s: s.strip(),
        "split": lambda s, sep, n=-1: s.split(sep) if n < 0 else s.split(sep, n - 1) if n else [],
        "join": lambda items, sep="": sep.join(items),
        "replace": lambda s, old, new, n=-1: s.replace(old, new, n),
        "indexOf": _index_of,
        "isSorted": lambda items: all(a <= b for a, b in itertools.pairwise(items)),
        "sum": lambda items: sum(items),
        "min": lambda items: min(items),
        "max": lambda items: max(items),
        "find": _find,
        "findAll": _find_all,
        "isURL": _is_url,
        **celquantity.functions(),
    }
