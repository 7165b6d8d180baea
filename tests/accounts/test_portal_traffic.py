"""Portal traffic is not API traffic: a person watching a batch never meets the 120/min token limit."""

from __future__ import annotations

from django.urls import reverse

from generation.models import Generation


def test_watching_a_150_image_batch_in_the_portal_never_gets_429(client, owner, make_batch, settings):
    """The numbers of the report: 82 progress polls, the tiles' JSON, 150 thumbnails and the pages,
    all within a minute and from one session, against the default 120/min API limit."""
    settings.API_RATE_LIMIT = "120/min"
    settings.PORTAL_RATE_LIMIT = "1200/min"
    batch = make_batch(prompts=[f"prompt {i}" for i in range(75)], images_per_prompt=2, width=256, height=256)
    assert batch.total == 150
    client.force_login(owner)
    statuses: list[int] = []
    for page in (1, 2, 3):
        statuses.append(client.get(reverse("generation:batch_detail", args=[batch.pk]), {"page": page}).status_code)
    for _ in range(82):
        statuses.append(client.get(reverse("api-batch-detail", args=[batch.pk])).status_code)
        statuses.append(client.get(reverse("api-batch-generations", args=[batch.pk]), {"page_size": 50}).status_code)
    for generation in Generation.objects.filter(batch=batch):
        statuses.append(client.get(reverse("api-generation-thumbnail", args=[generation.pk])).status_code)
        statuses.append(client.get(reverse("api-generation-image", args=[generation.pk])).status_code)
    assert len(statuses) == 3 + 164 + 300
    assert 429 not in statuses
    assert set(statuses) == {200}


def test_a_token_client_doing_the_same_is_held_to_the_api_limit(api, owner, make_batch, settings):
    settings.API_RATE_LIMIT = "120/min"
    batch = make_batch(prompts=["a fox"], width=256, height=256)
    statuses = [api.get(reverse("api-batch-detail", args=[batch.pk])).status_code for _ in range(121)]
    assert statuses[:120] == [200] * 120
    assert statuses[120] == 429


def test_the_portal_limit_is_what_a_session_meets_when_it_really_floods(client, owner, make_batch, settings):
    settings.PORTAL_RATE_LIMIT = "10/min"
    batch = make_batch(prompts=["a fox"], width=256, height=256)
    client.force_login(owner)
    generation = batch.generations.get()
    statuses = [client.get(reverse("api-generation-thumbnail", args=[generation.pk])).status_code for _ in range(11)]
    assert statuses[-1] == 429
    response = client.get(reverse("api-batch-detail", args=[batch.pk]))
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
