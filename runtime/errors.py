"""kedge's error tree. Every failure a user can act on is one of these; the CLI maps them to exit codes.

    KedgeError                  exit 1   anything kedge understood but could not do
    ├── ConfigError             exit 2   bad config file, key or --set value (names file, key, type)
    ├── UsageError              exit 2   flags that contradict each other
    ├── PreflightFailed         exit 3   named checks failed before anything changed
    ├── Unreachable             exit 4   cloud, Kubernetes API or Docker engine not answering
    ├── AuthError               exit 5   token or certificate refused
    ├── PartialFailure          exit 6   a multi-step undo (reset) finished with errors
    ├── ProtocolError                    a frame that is not a KubeEdge message (see protocol.codec)
    ├── NotFound / Conflict              objects missing or changed underneath us
    ├── StatusError                      an embedded API server answer sent as a `kind: Status` body
    ├── Refused                          a peer's request the cloud answers with an HTTP refusal
    └── listen.AddressInUse              a port kedge must listen on is taken (names it and the fix)

Each error carries `hint`, one line naming the fix, and its message names the endpoint, file or object.
"""

from __future__ import annotations


class KedgeError(Exception):
    """Base of every error kedge raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(KedgeError):
    """A config file, key or override is wrong."""


class UsageError(KedgeError):
    """The command line asks for something contradictory."""


class PreflightFailed(KedgeError):
    """One or more named preflight checks failed; `failed` lists their names, `checks` every check run
    (name, verdict, detail, hint) so `-o json` carries the reasons."""

    def __init__(
        self,
        message: str,
        *,
        failed: list[str] | None = None,
        hint: str | None = None,
        checks: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.failed = failed or []
        self.checks = checks or []


class Unreachable(KedgeError):
    """An endpoint (cloud, Kubernetes API, Docker engine, broker) did not answer."""


class AuthError(KedgeError):
    """A token or certificate was refused."""


class PartialFailure(KedgeError):
    """Work finished, but some steps failed; `errors` lists them."""

    def __init__(self, message: str, *, errors: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errors = errors or []


class ProtocolError(KedgeError):
    """Input that is not a valid KubeEdge message."""


class NotFound(KedgeError):
    """An object that should exist does not."""


class Conflict(KedgeError):
    """An object changed underneath us or already exists."""


class StorageFull(KedgeError):
    """A local database could not commit: its disk is full. Nothing was stored (and so not acked)."""


class Refused(KedgeError):
    """A request from a peer (an edge) that the cloud refuses; answered with HTTP ``status`` and the
    message as the reason: 403 for what the node may not do (edge requests), 400/401 for a bad
    certificate request (bootstrap). Never leaves the server, so it has no exit code of its own."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status
