"""/healthz, /livez and /readyz the way kube-apiserver answers them, with named checks.

`ok` when every check passes; `?verbose` lists them (`[+]ping ok` … `readyz check passed`); a failing
check answers 500 with the list and `readyz check failed`; `?exclude=name` skips one
(`[+]name excluded: ok`); `/readyz/<name>` asks one check. The server's own checks always pass (the
process answers); /readyz adds `Api.checks` — the embedded controllers, `controller/<name>`. The real
server withholds failure reasons; kedge gives them to authenticated callers (`kedge status`) only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

PATHS = ("/healthz", "/livez", "/readyz")
Check = Callable[[], str | None]


def _own() -> str | None:
    return None


def answer(
    path: str, query: Mapping[str, str], excluded: list[str], extra: Mapping[str, Check], authenticated: bool
) -> tuple[int, str]:
    """(HTTP status, text/plain body) for a health path; `excluded` is every `exclude` value."""
    root, _, single = path.lstrip("/").partition("/")
    checks: dict[str, Check] = {"ping": _own, "log": _own}
    if root == "readyz":
        checks.update(extra)
    if single:
        if single not in checks:
            return 404, "404 page not found\n"
        problem = checks[single]()
        return (200, "ok") if problem is None else (500, f"internal server error: {problem}\n")
    lines, failed = [], False
    for name, check in checks.items():
        if name in excluded:
            lines.append(f"[+]{name} excluded: ok")
            continue
        problem = check()
        if problem is None:
            lines.append(f"[+]{name} ok")
        else:
            failed = True
            lines.append(f"[-]{name} failed: {problem if authenticated else 'reason withheld'}")
    report = "".join(f"{line}\n" for line in lines)
    if failed:
        return 500, f"{report}{root} check failed\n"
    if "verbose" not in query:
        return 200, "ok"
    return 200, f"{report}{root} check passed\n"
