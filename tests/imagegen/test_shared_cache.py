"""imagegen/shared_cache.py: a result computed once and shared for a few seconds; a cache outage only costs time."""

from __future__ import annotations

from typing import Any

from imagegen.shared_cache import shared_figures


def test_a_result_is_reused_within_its_seconds_and_computed_each_time_at_zero(db: None) -> None:
    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert shared_figures("k", 10, compute) == 1
    assert shared_figures("k", 10, compute) == 1
    assert shared_figures("k", 0, compute) == 2
    assert shared_figures("k", 0, compute) == 3


class DownCache:
    def get(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    set = get


def test_a_cache_that_is_down_only_means_computing(monkeypatch: Any) -> None:
    monkeypatch.setattr("imagegen.shared_cache.cache", DownCache())
    assert shared_figures("k", 10, lambda: "fresh") == "fresh"
