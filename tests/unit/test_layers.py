"""Import layers as a test (style.md, kopf): design.md §2's dependency rules, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BANNED = {  # importer prefix -> import prefixes it must not use
    "runtime": ("kubeedge_cli",),
    "runtime.cloud": ("runtime.edge",),
    "runtime.edge": ("runtime.cloud",),
    "runtime.protocol": ("asyncio", "websockets", "runtime.cloud", "runtime.edge", "runtime.kube"),
}


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
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and n.args):
            continue
        f = n.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name not in ("import_module", "__import__"):
            continue
        arg = n.args[0]
        if isinstance(arg, ast.JoinedStr):
            arg = arg.values[0] if arg.values else arg
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            out.append(arg.value.rstrip("."))
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
