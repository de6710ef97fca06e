"""Where templates/ lives: beside the source tree, or unpacked by PyInstaller (build.spec adds it)."""

from __future__ import annotations

import sys
from pathlib import Path


def templates_dir() -> Path:
    bundled = getattr(sys, "_MEIPASS", None)
    if bundled:
        return Path(bundled) / "templates"
    return Path(__file__).resolve().parent.parent / "templates"
