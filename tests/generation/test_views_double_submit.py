"""The New batch form cannot be double-submitted: a one-time token leads a second POST to the first batch."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.idempotency import form_token_claim
from generation.models import Batch
from tests.generation.test_views import form_data


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def token_of(page) -> str:
    match = re.search(r'name="submit_token" value="([^"]+)"', page.content.decode())
    assert match, "the form carries a one-time token"
    return match.group(1)


def test_the_form_carries_a_fresh_token_and_a_cache_checkbox_on(owner_client):
    first = owner_client.get(reverse("generation:batch_new"))
    second = owner_client.get(reverse("generation:batch_new"))
    assert token_of(first) != token_of(second)
    assert re.search(r'<input type="checkbox" name="cache"[^>]* checked', first.content.decode())
    assert 'data-busy-label="' in first.content.decode()


def test_a_second_post_of_the_same_token_opens_the_batch_already_made(owner_client):
    token = token_of(owner_client.get(reverse("generation:batch_new")))
    first = owner_client.post(reverse("generation:batch_new"), form_data(submit_token=token, cache="on"))
    second = owner_client.post(reverse("generation:batch_new"), form_data(submit_token=token, cache="on"))
    batch = Batch.objects.get()
    assert first["Location"] == second["Location"] == reverse("generation:batch_detail", args=[batch.pk])
    assert batch.parameters["cache"] is True


def test_another_token_makes_another_batch(owner_client):
    for _ in range(2):
        token = token_of(owner_client.get(reverse("generation:batch_new")))
        owner_client.post(reverse("generation:batch_new"), form_data(submit_token=token))
    assert Batch.objects.count() == 2


def test_an_unchecked_cache_box_opts_the_batch_out(owner_client):
    owner_client.post(reverse("generation:batch_new"), form_data(seed="7"))
    assert Batch.objects.get().parameters["cache"] is False


def test_a_form_with_errors_keeps_its_token_usable(owner_client):
    token = token_of(owner_client.get(reverse("generation:batch_new")))
    invalid = owner_client.post(reverse("generation:batch_new"), form_data(prompts="", submit_token=token))
    assert invalid.status_code == 200
    assert token_of(invalid) == token  # the corrected form is posted with the same token
    fixed = owner_client.post(reverse("generation:batch_new"), form_data(submit_token=token))
    assert fixed.status_code == 302
    assert Batch.objects.count() == 1


def test_a_post_while_the_first_is_still_running_goes_to_the_history(owner_client, owner, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.1
    claim = form_token_claim(user_id=owner.pk, form="new-batch", token="tok-1")  # the first POST, running
    assert claim is not None and claim.ours
    response = owner_client.post(reverse("generation:batch_new"), form_data(submit_token="tok-1"))
    assert response["Location"] == reverse("generation:batch_list")
    assert not Batch.objects.exists()


def test_tokens_belong_to_their_user(client, owner, other_user):
    client.force_login(owner)
    client.post(reverse("generation:batch_new"), form_data(submit_token="shared"))
    client.force_login(other_user)
    client.post(reverse("generation:batch_new"), form_data(submit_token="shared"))
    assert sorted(Batch.objects.values_list("owner__username", flat=True)) == ["other", "owner"]


def test_cached_images_carry_a_badge_on_the_batch_and_image_pages(owner_client, make_batch):
    make_batch(prompts=["a red fox"], seed=7)
    batch = make_batch(prompts=["a red fox"], seed=7)
    generation = batch.generations.get()
    assert generation.cached
    tiles = owner_client.get(reverse("generation:batch_detail", args=[batch.pk])).content.decode()
    assert 'class="status cached-badge"' in tiles
    page = owner_client.get(reverse("generation:generation_detail", args=[generation.pk])).content.decode()
    assert 'class="status cached-badge"' in page
    assert "Saved US$" in page
    fresh = make_batch(prompts=["a green owl"], seed=7)
    fresh_page = owner_client.get(reverse("generation:batch_detail", args=[fresh.pk])).content.decode()
    assert 'cached-badge"' not in fresh_page.split('id="grid"')[1]
