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
    add = get


def test_a_cache_that_is_down_only_means_computing(monkeypatch: Any) -> None:
    monkeypatch.setattr("imagegen.shared_cache.cache", DownCache())
    assert shared_figures("k", 10, lambda: "fresh") == "fresh"


def test_when_its_seconds_are_over_one_reader_refreshes_while_the_others_get_the_last_value(
    db: None, monkeypatch: Any
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("imagegen.shared_cache.time.time", lambda: clock[0])
    calls = []

    def compute() -> int:
        calls.append(1)
        if len(calls) == 2:  # while this reader refreshes, another one asks
            assert shared_figures("herd", 5, compute) == 1
        return len(calls)

    assert shared_figures("herd", 5, compute) == 1
    clock[0] += 6  # over its five seconds
    assert shared_figures("herd", 5, compute) == 2  # this reader refreshed; the one inside got 1
    assert shared_figures("herd", 5, compute) == 2  # fresh again
    assert len(calls) == 2


def test_a_refresh_that_never_finished_is_taken_over(db: None, monkeypatch: Any) -> None:
    from django.core.cache import cache

    clock = [1000.0]
    monkeypatch.setattr("imagegen.shared_cache.time.time", lambda: clock[0])
    assert shared_figures("dead", 5, lambda: "old") == "old"
    clock[0] += 6
    cache.add("dead:refreshing", 1)  # a reader claimed the refresh and died
    assert shared_figures("dead", 5, lambda: "new") == "old"
    cache.delete("dead:refreshing")  # its claim expires
    assert shared_figures("dead", 5, lambda: "new") == "new"
