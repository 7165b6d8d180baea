"""Every provider test gets the fake remote of tests/generation/providerfakes.py."""

from tests.generation.providerfakes import server

__all__ = ["server"]
