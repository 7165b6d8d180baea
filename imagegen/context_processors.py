"""Template context every page gets: the running release, shown in the footer."""

from __future__ import annotations

from django.http import HttpRequest

from imagegen import __version__


def version(request: HttpRequest) -> dict[str, str]:
    return {"imagegen_version": __version__}
