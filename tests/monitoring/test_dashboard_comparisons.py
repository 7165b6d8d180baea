"""The staff dashboard's A/B comparison table: every user's comparisons per configuration."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from generation import comparisons
from generation.comparisons import ArmRequest, wilson_interval

pytestmark = pytest.mark.django_db

ARMS = [ArmRequest(provider="local", width=256, height=256), ArmRequest(provider="local", width=768, height=768)]


def compare(user: Any, prompts: list[str], run_queue: Any) -> Any:
    spec = comparisons.check_comparison_request(prompts=prompts, arms=ARMS, user_id=user.pk)
    with run_queue():
        comparison = comparisons.comparison_create(owner=user, spec=spec)
    return comparisons.comparison_get(user=user, comparison_id=comparison.pk)


def test_staff_see_configurations_across_users(client: Client, staff, owner, other_user, run_queue) -> None:
    mine, theirs = compare(owner, ["a", "b"], run_queue), compare(other_user, ["c"], run_queue)
    comparisons.comparison_vote(comparison=mine, prompt_index=0, winner=1)
    comparisons.comparison_vote(comparison=mine, prompt_index=1, winner=1)
    comparisons.comparison_vote(comparison=theirs, prompt_index=0, winner=0)
    client.force_login(staff)

    rows = client.get("/monitoring/data?range=hour").json()["tables"]["comparisons"]

    large = next(row for row in rows if row["size"] == "768x768")
    assert (large["comparisons"], large["votes"], large["wins"], large["images_done"]) == (2, 3, 2, 3)
    assert large["win_rate"] == pytest.approx(2 / 3)
    assert (large["win_rate_low"], large["win_rate_high"]) == pytest.approx(wilson_interval(2, 3))
    assert large["failure_rate"] == 0.0 and large["latency_p50_ms"] is not None
    page = client.get("/monitoring/").content.decode()
    assert 'id="table-comparisons"' in page


def test_no_comparisons_is_an_empty_table(client: Client, staff) -> None:
    client.force_login(staff)
    assert client.get("/monitoring/data?range=hour").json()["tables"]["comparisons"] == []
