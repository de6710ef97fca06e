"""Import layers as a test (style.md, kopf): design.md §2's dependency rules, checked on the source."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BANNED = {  # importer prefix -> import prefixes it must not use
    "runtime": ("kubeedge_cli",),
    "runtime.cloud": ("runtime.edge",),
    "runtime.edge": ("runtime.cloud",),
    "runtime.protocol": ("asyncio", "websockets", "runtime.cloud", "runtime.edge", "runtime.kube"),
    # kubectl's stream protocols, shared by whoever terminates them (the cloud's stream endpoint, tests)
    "runtime.streams": ("runtime.cloud", "runtime.edge", "runtime.apiserver", "runtime.kube"),
}


@functools.cache
def _modules(package: str) -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted((REPO / package).rglob("*.py")):
        mod = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out.append((mod, ast.parse(path.read_text(), filename=str(path))))
    return out


def _imports(tree: ast.Module) -> list[str]:
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    return names + _dynamic_imports(tree)


def _dynamic_imports(tree: ast.Module) -> list[str]:
    """Modules named in importlib.import_module / __import__ calls (their literal part: an f-string's
    leading text), so an import by name cannot slip around the rules below."""
    out = []
    for n in _import_calls(tree):
        arg = n.args[0]
        if isinstance(arg, ast.JoinedStr):
            arg = arg.values[0] if arg.values else arg
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            out.append(arg.value.rstrip("."))
    return out


def _import_calls(tree: ast.Module) -> list[ast.Call]:
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and n.args:
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                out.append(n)
    return out


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_packages_exist() -> None:  # a layer test over zero files would pass vacuously
    assert len(_modules("runtime")) >= 5
    assert len(_modules("kubeedge_cli")) >= 3


def test_import_layers() -> None:
    bad = []
    for mod, tree in _modules("runtime"):
        for importer, banned in BANNED.items():
            if _matches(mod, (importer,)):
                bad += [f"{mod} imports {n}" for n in _imports(tree) if _matches(n, banned)]
    assert not bad, "\n".join(bad)


def test_only_runtime_kube_imports_lightkube() -> None:
    bad = [
        f"{mod} imports {n}"
        for package in ("runtime", "kubeedge_cli")
        for mod, tree in _modules(package)
        if not _matches(mod, ("runtime.kube",))
        for n in _imports(tree)
        if _matches(n, ("lightkube",))
    ]
    assert not bad, "\n".join(bad)


def test_absolute_imports_only() -> None:  # relative imports would slip past the checks above
    bad = [
        f"{mod}: from {'.' * n.level}{n.module or ''} import ..."
        for package in ("runtime", "kubeedge_cli")
        for mod, tree in _modules(package)
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.level > 0
    ]
    assert not bad, "\n".join(bad)


def test_checker_catches_a_violation() -> None:
    tree = ast.parse("import asyncio\nfrom runtime.edge.hub import x\nfrom lightkube import Client\n")
    names = _imports(tree)
    assert [n for n in names if _matches(n, BANNED["runtime.protocol"])] == ["asyncio", "runtime.edge.hub"]
    assert [n for n in names if _matches(n, ("lightkube",))] == ["lightkube"]


def test_checker_catches_imports_by_name() -> None:
    tree = ast.parse(
        "import importlib\n"
        "def f(m):\n"
        "    importlib.import_module(f'lightkube.models.{m}')\n"
        "    __import__('runtime.edge.hub')\n"
    )
    names = _imports(tree)
    assert [n for n in names if _matches(n, ("lightkube",))] == ["lightkube.models"]
    assert [n for n in names if _matches(n, BANNED["runtime.cloud"])] == ["runtime.edge.hub"]


# ---------------------------------------------------------------- explicit wiring (style.md, kopf)

PROJECT = ("runtime", "kubeedge_cli", "tests", "scripts")


def _string_imports(tree: ast.Module) -> list[str]:
    """import_module / __import__ calls that name a project module, or whose module is not a literal at
    all (a name from a variable or a "module:function" table could be any module)."""
    out = []
    for n in _import_calls(tree):
        arg = n.args[0]
        lead = arg.values[0] if isinstance(arg, ast.JoinedStr) and arg.values else arg
        if not (isinstance(lead, ast.Constant) and isinstance(lead.value, str)):
            out.append(f"line {n.lineno}: import by a computed name")
        elif _matches(lead.value.rstrip("."), PROJECT):
            out.append(f"line {n.lineno}: import of {lead.value!r} by name")
    return out


def test_no_imports_by_name() -> None:
    """A component is imported where it is used, never found through a string (style.md: explicit
    wiring); what imports what stays visible to readers, mypy, PyInstaller and the rules above."""
    bad = [
        f"{mod} {what}"
        for package in PROJECT
        for mod, tree in _modules(package)
        for what in _string_imports(tree)
    ]
    assert not bad, "\n".join(bad)


MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque", "ChainMap",
                 "WeakKeyDictionary", "WeakValueDictionary", "WeakSet"}  # fmt: skip
MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "remove",
            "discard", "clear", "appendleft", "extendleft"}  # fmt: skip

# Module-level state that functions change, allowed by name: each memoises a pure function (what it
# holds follows from its key alone, so no running component's state lives there), or is named as open.
ALLOWED_MODULE_STATE = {
    "runtime.apiserver.patch.createfields._LIST_TYPES",  # memo: list type of (struct, field), from OpenAPI
    "runtime.apiserver.patch.fieldsets._KEY_MEMO",  # memo: JSON text of a list key, bounded (8192)
    "runtime.apiserver.registry.objects._NOW",  # memo: the current second's RFC 3339 text
}


def _is_mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        f = value.func
        return (
            f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        ) in MUTABLE_CALLS
    return False


def _module_state(tree: ast.Module) -> set[str]:
    """Names bound at module level to a dict/list/set display, comprehension or container call."""
    out = set()
    for n in tree.body:
        if isinstance(n, ast.Assign) and _is_mutable(n.value):
            out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and _is_mutable(n.value):
            out.add(n.target.id)
    return out


def _mutated_in_functions(tree: ast.Module, names: set[str]) -> set[str]:
    """Which of ``names`` a function body changes: ``x[k] = v``, ``del x[k]``, ``x |= ...``,
    ``x.append/add/setdefault/...(...)`` (a function's own local of that name does not count)."""
    out = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        local = {a.arg for a in ast.walk(fn) if isinstance(a, ast.arg)}
        local |= {
            t.id
            for n in ast.walk(fn)
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        for n in ast.walk(fn):
            sites: list[ast.expr] = []
            if isinstance(n, ast.Assign | ast.Delete):
                sites += [t.value for t in n.targets if isinstance(t, ast.Subscript)]
            elif isinstance(n, ast.AugAssign):
                sites += [n.target.value if isinstance(n.target, ast.Subscript) else n.target]
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in MUTATORS:
                sites.append(n.func.value)
            out |= {s.id for s in sites if isinstance(s, ast.Name) and s.id in names and s.id not in local}
    return out


def _registries(mod: str, tree: ast.Module) -> list[str]:
    found = _mutated_in_functions(tree, _module_state(tree))
    return sorted(f"{mod}.{name}" for name in found if f"{mod}.{name}" not in ALLOWED_MODULE_STATE)


def test_no_module_level_registries() -> None:
    """No process-wide registries (kopf's lesson; several clouds and edges run in one test process):
    a module-level dict/list/set that functions fill or change at run time — e.g. hubs keyed by id(ctx)
    — is state a component should own and pass on. Constants built at import time are fine."""
    bad = [
        r
        for package in ("runtime", "kubeedge_cli")
        for mod, tree in _modules(package)
        for r in _registries(mod, tree)
    ]
    assert not bad, "module-level state changed at run time (pass it in instead):\n" + "\n".join(bad)
    allowed = {
        f"{mod}.{name}"
        for package in ("runtime",)
        for mod, tree in _modules(package)
        for name in _module_state(tree)
    }
    assert ALLOWED_MODULE_STATE <= allowed, f"stale entries: {ALLOWED_MODULE_STATE - allowed}"


def test_checkers_catch_a_registry_and_an_import_by_name() -> None:
    tree = ast.parse(
        "import importlib\n"
        "_hubs: dict[int, object] = {}\n"
        "_seen = set()\n"
        "TABLE = {'a': 1}\n"
        "TABLE['b'] = 2\n"  # filled at import time: a constant
        "TASKS = ['runtime.cloud.hub:serve']\n"
        "def serve(ctx, hub):\n"
        "    _hubs[id(ctx)] = hub\n"
        "    _seen.add(ctx)\n"
        "    importlib.import_module(TASKS[0].partition(':')[0])\n"
        "    importlib.import_module('runtime.cloud.hub')\n"
        "    importlib.import_module('json')\n"
        "def local():\n"
        "    TABLE = {}\n"
        "    TABLE['c'] = 3\n"
    )
    assert _registries("m", tree) == ["m._hubs", "m._seen"]
    assert _string_imports(tree) == [
        "line 10: import by a computed name",
        "line 11: import of 'runtime.cloud.hub' by name",
    ]
