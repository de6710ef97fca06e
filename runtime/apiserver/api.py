"""The server's state shared by every handler: kinds, objects, credentials and hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.apiserver.registry.resources import Registry
from runtime.apiserver.registry.storage import Store

Obj = dict[str, Any]
MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's MaxRequestBodyBytes


@dataclass
class Api:
    registry: Registry
    store: Store
    admin_token: str
    server_url: str = ""
    signer: Any = None  # auth.TokenSigner
    # Namespace deletion: None → the server removes the namespace's objects itself; a controller that
    # owns the Terminating phase sets this to a callable and the server only marks the namespace.
    namespace_finalizer: Callable[[str], Awaitable[None]] | None = None
    bookmark_interval: float = 60.0
    # Whether the embedded control plane runs beside the server: only then does a write of a kind it
    # does not run get the `stored only` warning (without it nothing runs, as on a bare kube-apiserver).
    control_plane: bool = False
    # /readyz checks beside the server's own, by name: None while fine, else what fails
    checks: dict[str, Callable[[], str | None]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
