"""django-q2 tasks: thin wrappers that take an id and call a service."""

from __future__ import annotations

import uuid

from generation.queue import sweep_stale_generations
from generation.rollups import rollup_advance
from generation.runner import generation_run


def run_generation(generation_id: str) -> str:
    return generation_run(generation_id=uuid.UUID(generation_id))


def sweep() -> dict[str, int]:
    return sweep_stale_generations()


def rollup() -> dict[str, object]:
    return rollup_advance()
