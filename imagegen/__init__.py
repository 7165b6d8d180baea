"""ImageGen project package: settings, root URLs and the WSGI/ASGI entry points."""

from __future__ import annotations

import tomllib
from pathlib import Path


def _version() -> str:
    """The release, from pyproject.toml (a source checkout) or the installed wheel's metadata."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagegen")
    except PackageNotFoundError:
        return "unknown"


__version__ = _version()
