"""Comparison portal pages: list, new (2–4 configurations), side by side with votes and the summary."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from generation.models import Batch, Comparison, ComparisonVote

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def form_data(**overrides):
    data = {
        "name": "Sizes",
        "prompts": "a red fox\n一隻藍色的貓 🐱\n",
        "seed": "",
        "arm0_model": "local:procedural-v1",
        "arm0_size": "256x256",
        "arm1_model": "local:procedural-v1",
        "arm1_size": "512x512",
        "arm2_model": "",
        "arm3_model": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def comparison(owner_client, run_queue):
    with run_queue():
        owner_client.post(reverse("comparisons:comparison_new"), form_data())
    return Comparison.objects.get()


def test_anonymous_visitors_are_sent_to_log_in(client):
    for name in ("comparisons:comparison_list", "comparisons:comparison_new"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_new_form_offers_four_configurations_two_in_use(owner_client):
    response = owner_client.get(reverse("comparisons:comparison_new"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="card cmp-arm-fields"') == 4
    assert html.count('data-unused="true"') == 2


def test_creating_makes_the_comparison_and_opens_it(owner_client, run_queue):
    with run_queue():
        response = owner_client.post(reverse("comparisons:comparison_new"), form_data(arm2_model="local:procedural-v1"))
    comparison = Comparison.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("comparisons:comparison_detail", args=[comparison.pk])
    assert comparison.arms.count() == 3 and Batch.objects.filter(source="portal").count() == 3


def test_an_arms_error_is_shown_on_that_arms_field(owner_client):
    response = owner_client.post(reverse("comparisons:comparison_new"), form_data(arm1_options='{"steps": 3}'))
    assert response.status_code == 200
    assert response.context["form"].errors["arm1_options"][0].startswith("Configuration 2: ")
    response = owner_client.post(reverse("comparisons:comparison_new"), form_data(arm1_options="[1]"))
    assert "arm1_options" in response.context["form"].errors
    assert Comparison.objects.count() == 0


def test_the_side_by_side_page_votes_and_summary(owner_client, comparison):
    url = reverse("comparisons:comparison_detail", args=[comparison.pk])
    html = owner_client.get(url).content.decode()
    assert html.count('class="cmp-cell"') == 4 and "一隻藍色的貓 🐱" in html
    response = owner_client.post(
        reverse("comparisons:comparison_vote", args=[comparison.pk]), {"prompt_index": "1", "winner": "0"}
    )
    assert response["Location"] == f"{url}#prompt-2"
    assert ComparisonVote.objects.values_list("winner__index", flat=True).get() == 0
    owner_client.post(
        reverse("comparisons:comparison_vote", args=[comparison.pk]), {"prompt_index": "1", "winner": "tie"}
    )
    assert ComparisonVote.objects.get().winner is None
    html = owner_client.get(url).content.decode()
    assert 'class="cmp-cell cmp-winner"' not in html and html.count('aria-pressed="true"') == 1
    assert "50% <span" in html  # a tie is half a win for each


def test_a_bad_vote_shows_a_message_not_an_error(owner_client, comparison):
    response = owner_client.post(
        reverse("comparisons:comparison_vote", args=[comparison.pk]), {"prompt_index": "x", "winner": "0"}, follow=True
    )
    assert response.status_code == 200 and ComparisonVote.objects.count() == 0
    response = owner_client.post(
        reverse("comparisons:comparison_vote", args=[comparison.pk]), {"prompt_index": "9", "winner": "0"}, follow=True
    )
    assert response.status_code == 200 and ComparisonVote.objects.count() == 0


def test_another_users_comparison_is_404(client, other_user, comparison):
    client.force_login(other_user)
    assert client.get(reverse("comparisons:comparison_detail", args=[comparison.pk])).status_code == 404
    vote = client.post(
        reverse("comparisons:comparison_vote", args=[comparison.pk]), {"prompt_index": "0", "winner": "0"}
    )
    assert vote.status_code == 404
    assert client.get(reverse("comparisons:comparison_detail", args=[uuid.uuid4()])).status_code == 404


def test_the_list_shows_my_comparisons(owner_client, comparison):
    html = owner_client.get(reverse("comparisons:comparison_list")).content.decode()
    assert "Sizes" in html and "local/procedural-v1 256×256" in html


def test_vote_needs_post(owner_client, comparison):
    assert owner_client.get(reverse("comparisons:comparison_vote", args=[comparison.pk])).status_code == 405


def test_cancelling_from_the_page_cancels_the_configurations(owner_client, other_user):
    owner_client.post(reverse("comparisons:comparison_new"), form_data())  # nobody runs the queue: both wait
    comparison = Comparison.objects.get()
    detail = reverse("comparisons:comparison_detail", args=[comparison.pk])
    assert 'id="cancel-comparison"' in owner_client.get(detail).content.decode()
    url = reverse("comparisons:comparison_cancel", args=[comparison.pk])
    assert owner_client.get(url).status_code == 405
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.post(url).status_code == 404
    page = owner_client.post(url, follow=True).content.decode()
    assert set(Batch.objects.values_list("status", flat=True)) == {"cancelled"}
    assert 'id="cancel-comparison"' not in page
