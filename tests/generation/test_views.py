"""Portal pages: history, new batch (typed or uploaded prompts), batch progress and image details."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from generation.models import Batch, BatchSource


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def other_client(client, other_user):
    client.force_login(other_user)
    return client


def form_data(**overrides):
    data = {
        "name": "",
        "model": "local:procedural-v1",
        "prompts": "a red fox\n一隻藍色的貓 🐱\n",
        "negative_prompt": "",
        "size": "512x512",
        "images_per_prompt": "1",
        "seed": "",
    }
    data.update(overrides)
    return data


class TestAnonymous:
    @pytest.mark.parametrize("name", ["generation:batch_list", "generation:batch_new"])
    def test_pages_redirect_to_login(self, client, db, name):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))

    def test_login_page_logs_in_and_lands_on_history(self, client, owner):
        from tests.conftest import PASSWORD

        response = client.post(reverse("accounts:login"), {"username": "owner", "password": PASSWORD})
        assert response.status_code == 302 and response["Location"] == reverse("generation:batch_list")

    def test_wrong_password_shows_a_form_error(self, client, owner):
        response = client.post(reverse("accounts:login"), {"username": "owner", "password": "x"})
        assert response.status_code == 200
        assert response.context["form"].errors


class TestNewBatch:
    def test_form_offers_configured_models_and_sizes(self, owner_client):
        response = owner_client.get(reverse("generation:batch_new"))
        assert response.status_code == 200
        content = response.content.decode()
        assert 'value="local:procedural-v1"' in content
        assert 'value="1024x1024"' in content
        assert 'id="providers-data"' in content

    def test_submitting_prompts_queues_a_batch_and_opens_it(self, owner_client, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(reverse("generation:batch_new"), form_data(images_per_prompt="2"))
        batch = Batch.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("generation:batch_detail", args=[batch.pk])
        assert (batch.total, batch.source, batch.name) == (4, BatchSource.PORTAL, "a red fox")

    def test_prompts_can_come_from_an_uploaded_file(self, owner_client):
        upload = SimpleUploadedFile("prompts.txt", "\ufeff山水畫\nfrom file\n".encode())
        owner_client.post(reverse("generation:batch_new"), {**form_data(prompts=""), "prompts_file": upload})
        assert list(Batch.objects.get().generations.values_list("prompt", flat=True)) == ["山水畫", "from file"]

    def test_a_file_that_is_not_utf8_is_a_form_error(self, owner_client):
        upload = SimpleUploadedFile("prompts.txt", "山水".encode("big5"))
        response = owner_client.post(reverse("generation:batch_new"), {**form_data(), "prompts_file": upload})
        assert "prompts_file" in response.context["form"].errors
        assert Batch.objects.count() == 0

    def test_a_file_with_nul_bytes_is_a_form_error(self, owner_client):
        upload = SimpleUploadedFile("p.txt", b"a cat\x00\na dog\n", content_type="text/plain")
        response = owner_client.post(reverse("generation:batch_new"), {**form_data(prompts=""), "prompts_file": upload})
        assert response.status_code == 200
        assert "NUL" in str(response.context["form"].errors["prompts_file"])
        assert not Batch.objects.exists()

    def test_no_prompts_is_a_form_error_and_keeps_the_input(self, owner_client):
        response = owner_client.post(reverse("generation:batch_new"), form_data(prompts="  \n", name="kept"))
        assert response.status_code == 200
        assert "prompts" in response.context["form"].errors
        assert 'value="kept"' in response.content.decode()

    def test_missing_prompts_are_reported_alongside_other_field_errors(self, owner_client):
        response = owner_client.post(reverse("generation:batch_new"), form_data(prompts="", seed="-5"))
        errors = response.context["form"].errors
        assert "prompts" in errors and "seed" in errors

    def test_labels_have_no_trailing_colon(self, owner_client):
        content = owner_client.get(reverse("generation:batch_new"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert ">Prompts</label>" in content and "Prompts:" not in content

    def test_a_service_error_lands_on_its_field(self, owner_client):
        response = owner_client.post(reverse("generation:batch_new"), form_data(prompts="a {broken", template="on"))
        assert "prompts" in response.context["form"].errors
        assert Batch.objects.count() == 0

    def test_an_unknown_model_is_a_form_error(self, owner_client):
        response = owner_client.post(reverse("generation:batch_new"), form_data(model="dalle:x"))
        assert "model" in response.context["form"].errors


class TestBatchPages:
    def test_history_lists_my_batches_and_searches_prompts(self, owner_client, make_batch, other_user):
        make_batch(name="貓咪", prompts=["一隻貓"], run=False)
        make_batch(name="dogs", prompts=["a dog"], run=False)
        make_batch(other_user, name="not mine", run=False)
        content = owner_client.get(reverse("generation:batch_list")).content.decode()
        assert "貓咪" in content and "dogs" in content and "not mine" not in content
        searched = owner_client.get(reverse("generation:batch_list"), {"q": "貓"}).content.decode()
        assert "貓咪" in searched and "dogs" not in searched

    def test_a_nul_byte_in_the_search_is_ignored(self, owner_client, make_batch):
        make_batch(prompts=["a red fox"])
        response = owner_client.get(reverse("generation:batch_list"), {"q": "fox\x00"})
        assert response.status_code == 200 and len(response.context["batches"]) == 1

    def test_page_links_keep_the_search_url_encoded(self, owner_client, make_batch):
        for number in range(21):
            make_batch(name=f"cats & dogs {number}", prompts=["a cat"])
        response = owner_client.get(reverse("generation:batch_list"), {"q": "cats & dogs"})
        cursor = response.context["next_cursor"]
        assert len(response.context["batches"]) == 20 and response.context["total"] == 21
        assert f'href="?q=cats+%26+dogs&amp;cursor={cursor}"' in response.content.decode()
        older = owner_client.get(reverse("generation:batch_list"), {"q": "cats & dogs", "cursor": cursor})
        assert [b.name for b in older.context["batches"]] == ["cats & dogs 0"]
        assert older.context["next_cursor"] is None and 'href="?q=cats+%26+dogs"' in older.content.decode()

    def test_a_mangled_page_link_shows_the_first_page(self, owner_client, make_batch):
        make_batch(name="only", run=False)
        response = owner_client.get(reverse("generation:batch_list"), {"cursor": "not-a-cursor"})
        assert response.status_code == 200 and [b.name for b in response.context["batches"]] == ["only"]

    def test_history_dates_are_labelled_as_creation_time_in_chinese(self, owner_client, make_batch):
        make_batch(run=False)
        content = owner_client.get(reverse("generation:batch_list"), HTTP_ACCEPT_LANGUAGE="zh-TW").content.decode()
        assert "建立時間" in content and "建立者" not in content

    def test_cancelled_tiles_show_only_the_translated_status(self, owner_client, make_batch):
        from generation.services import batch_cancel

        batch = batch_cancel(batch=make_batch(run=False))
        content = owner_client.get(reverse("generation:batch_detail", args=[batch.pk]), HTTP_ACCEPT_LANGUAGE="zh-TW")
        html = content.content.decode()
        assert "已取消" in html and "<small>cancelled</small>" not in html

    def test_batch_page_shows_progress_and_thumbnails(self, owner_client, make_batch):
        batch = make_batch()
        content = owner_client.get(reverse("generation:batch_detail", args=[batch.pk])).content.decode()
        assert 'role="progressbar"' in content
        assert content.count(reverse("api-generation-thumbnail", args=[batch.generations.first().pk])) == 1
        assert 'data-active="false"' in content

    def test_image_page_shows_prompt_seed_and_parameters(self, owner_client, make_batch):
        generation = make_batch(seed=1234).generations.first()
        content = owner_client.get(reverse("generation:generation_detail", args=[generation.pk])).content.decode()
        assert generation.prompt in content and "1234" in content
        assert reverse("api-generation-image", args=[generation.pk]) in content

    def test_cancel_from_the_portal(self, owner_client, make_batch):
        batch = make_batch(run=False)
        response = owner_client.post(reverse("generation:batch_cancel", args=[batch.pk]))
        assert response.status_code == 302
        batch.refresh_from_db()
        assert batch.status == "cancelled"

    def test_cancel_a_finished_batch_shows_a_message(self, owner_client, make_batch):
        batch = make_batch()
        response = owner_client.post(reverse("generation:batch_cancel", args=[batch.pk]), follow=True)
        assert "Only a queued, running or paused batch can be cancelled." in response.content.decode()

    def test_retry_from_the_portal(self, owner_client, make_batch):
        from generation.services import batch_cancel

        batch = batch_cancel(batch=make_batch(run=False))
        owner_client.post(reverse("generation:batch_retry", args=[batch.pk]))
        batch.refresh_from_db()
        assert batch.status == "queued"

    def test_actions_need_post(self, owner_client, make_batch):
        batch = make_batch(run=False)
        assert owner_client.get(reverse("generation:batch_cancel", args=[batch.pk])).status_code == 405

    @pytest.mark.parametrize("name", ["generation:batch_detail", "generation:batch_cancel", "generation:batch_retry"])
    def test_another_users_batch_is_404(self, other_client, make_batch, name):
        batch = make_batch(run=False)
        method = other_client.get if name == "generation:batch_detail" else other_client.post
        assert method(reverse(name, args=[batch.pk])).status_code == 404
        batch.refresh_from_db()
        assert batch.status == "queued"

    def test_another_users_image_page_is_404(self, other_client, make_batch):
        generation = make_batch().generations.first()
        assert other_client.get(reverse("generation:generation_detail", args=[generation.pk])).status_code == 404

    def test_unknown_batch_is_404(self, owner_client):
        assert owner_client.get(reverse("generation:batch_detail", args=[uuid.uuid4()])).status_code == 404


class TestEngineControls:
    def test_pause_and_resume_from_the_portal(self, owner_client, make_batch):
        batch = make_batch(run=False)
        page = owner_client.post(reverse("generation:batch_pause", args=[batch.pk]), follow=True).content.decode()
        assert "Batch paused" in page and 'id="resume-form"' in page
        batch.refresh_from_db()
        assert batch.status == "paused"
        page = owner_client.post(reverse("generation:batch_resume", args=[batch.pk]), follow=True).content.decode()
        assert "Batch resumed." in page

    def test_pausing_a_finished_batch_says_why_not(self, owner_client, make_batch):
        batch = make_batch()
        page = owner_client.post(reverse("generation:batch_pause", args=[batch.pk]), follow=True).content.decode()
        assert "Only a queued or running batch can be paused." in page

    def test_retry_one_image_from_its_page(self, owner_client, make_batch):
        from generation.services import batch_cancel

        batch = batch_cancel(batch=make_batch(run=False))
        generation = batch.generations.first()
        page = owner_client.get(reverse("generation:generation_detail", args=[generation.pk])).content.decode()
        assert "Retry this image" in page
        response = owner_client.post(reverse("generation:generation_retry", args=[generation.pk]))
        assert response.status_code == 302
        generation.refresh_from_db()
        assert generation.status in ("pending", "succeeded")

    def test_another_users_batch_cannot_be_paused(self, client, other_user, make_batch):
        batch = make_batch(run=False)
        client.force_login(other_user)
        assert client.post(reverse("generation:batch_pause", args=[batch.pk])).status_code == 404

    def test_high_priority_is_offered_to_staff_only(self, owner_client, client, staff):
        form = owner_client.get(reverse("generation:batch_new")).content.decode()
        assert 'name="priority"' in form and '<option value="2"' not in form
        client.force_login(staff)
        assert '<option value="2"' in client.get(reverse("generation:batch_new")).content.decode()

    def test_a_queued_batch_shows_its_place_in_line(self, owner_client, make_batch):
        from generation.models import WorkerNode

        WorkerNode.objects.create(id="node:x:1:a", host="x", pid=1, workers=2)
        make_batch(run=False)
        second = make_batch(run=False)
        page = owner_client.get(reverse("generation:batch_detail", args=[second.pk])).content.decode()
        assert "In line: 1 of your batches go first." in page
        assert 'id="eta" data-seconds=' in page


def test_retry_all_from_the_portal_includes_permanent_failures(owner_client, make_batch):
    from generation.models import Generation

    batch = make_batch(run=False, prompts=["a"])
    Generation.objects.filter(batch=batch).update(status="failed", error_code="content_filtered", error_permanent=True)
    from generation import lifecycle

    lifecycle.batch_refresh(batch_id=batch.pk)
    page = owner_client.post(reverse("generation:batch_retry", args=[batch.pk]), follow=True).content.decode()
    assert "no failed or cancelled images to retry" in page
    owner_client.post(reverse("generation:batch_retry", args=[batch.pk]), {"include_permanent": "1"})
    assert batch.generations.get().status in ("pending", "succeeded")
