"""The one place where kedge's typed errors become process exit codes (design.md §7)."""

from __future__ import annotations

from runtime.errors import (
    AuthError,
    ConfigError,
    PartialFailure,
    PreflightFailed,
    Unreachable,
    UsageError,
)

OK, ERROR, USAGE, PREFLIGHT, UNREACHABLE, AUTH, PARTIAL = 0, 1, 2, 3, 4, 5, 6

EXIT_CODES: dict[type[BaseException], int] = {
    ConfigError: USAGE,
    UsageError: USAGE,
    PreflightFailed: PREFLIGHT,
    Unreachable: UNREACHABLE,
    AuthError: AUTH,
    PartialFailure: PARTIAL,
}


def exit_code_for(exc: BaseException) -> int:
    """Most specific registered class in the exception's MRO wins; anything else is 1."""
    return next((EXIT_CODES[c] for c in type(exc).__mro__ if c in EXIT_CODES), ERROR)
