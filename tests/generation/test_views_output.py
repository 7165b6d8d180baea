"""Portal post-processing: the Output fieldset of a new batch, Re-process on the batch page, files on the image."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import Batch, OutputJob, Rendition
from tests.generation.test_views import form_data


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def done(make_batch):
    return make_batch(prompts=["a red fox", "藍色海洋 🌊"])


def reprocess_url(batch) -> str:
    return reverse("generation:batch_reprocess", args=[batch.pk])


class TestNewBatchOutput:
    def test_the_output_fieldset_is_collapsed_by_default(self, owner_client):
        html = owner_client.get(reverse("generation:batch_new")).content.decode()
        assert '<details class="output-settings">' in html
        assert 'name="output-format"' in html

    def test_output_settings_reach_the_batch_and_its_images(self, owner_client, run_queue):
        data = form_data(
            **{
                "output-format": "jpeg",
                "output-quality": "75",
                "output-resize_width": "128",
                "output-resize_height": "128",
                "output-resize_fit": "cover",
                "output-watermark_text": "© 範例",
                "output-watermark_position": "top-left",
                "output-watermark_opacity": "0.4",
                "output-metadata": "strip",
            }
        )
        with run_queue():
            response = owner_client.post(reverse("generation:batch_new"), data)
        assert response.status_code == 302
        output = Batch.objects.get().parameters["output"]
        assert output["resize"] == {"width": 128, "height": 128, "fit": "cover"}
        assert output["watermark"] == {"text": "© 範例", "position": "top-left", "opacity": 0.4}
        assert (output["format"], output["quality"], output["metadata"]) == ("jpeg", 75, "strip")
        assert Rendition.objects.count() == 2

    def test_a_form_without_output_inputs_asks_for_none(self, owner_client, run_queue):
        with run_queue():
            owner_client.post(reverse("generation:batch_new"), form_data())
        assert "output" not in Batch.objects.get().parameters
        assert not Rendition.objects.exists()

    def test_a_service_error_shows_on_its_input_and_the_fieldset_opens(self, owner_client):
        data = form_data(**{"output-format": "png", "output-quality": "50"})
        response = owner_client.post(reverse("generation:batch_new"), data)
        assert response.status_code == 200
        assert response.context["output_form"].errors["quality"]
        assert '<details class="output-settings" open>' in response.content.decode()
        assert not Batch.objects.exists()

    def test_half_a_resize_box_is_refused(self, owner_client):
        data = form_data(**{"output-format": "webp", "output-resize_width": "100"})
        response = owner_client.post(reverse("generation:batch_new"), data)
        assert response.context["output_form"].errors["resize_width"]


class TestReprocessPage:
    def test_reprocess_queues_renditions_and_the_page_shows_progress(self, owner_client, run_queue, done):
        with run_queue():
            response = owner_client.post(reprocess_url(done), {"output-format": "webp", "output-resample_scale": "2"})
        assert response.status_code == 302
        assert Rendition.objects.filter(format="webp", width=1024).count() == 2
        html = owner_client.get(reverse("generation:batch_detail", args=[done.pk])).content.decode()
        assert "2 of 2 done, 0 failed" in html

    def test_original_settings_are_refused_with_a_message(self, owner_client, done):
        response = owner_client.post(reprocess_url(done), {"output-format": "png"}, follow=True)
        assert not OutputJob.objects.exists()
        assert "original PNG" in response.content.decode()

    def test_bad_input_is_refused_with_a_message(self, owner_client, done):
        response = owner_client.post(reprocess_url(done), {"output-quality": "500"}, follow=True)
        assert not OutputJob.objects.exists()
        assert response.status_code == 200

    def test_get_is_not_allowed(self, owner_client, done):
        assert owner_client.get(reprocess_url(done)).status_code == 405

    def test_another_users_batch_is_404(self, client, other_user, done):
        client.force_login(other_user)
        assert client.post(reprocess_url(done), {"output-format": "jpeg"}).status_code == 404
        assert not OutputJob.objects.exists()

    def test_anonymous_is_sent_to_sign_in(self, client, done):
        response = client.post(reprocess_url(done), {"output-format": "jpeg"})
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]


class TestImagePage:
    def test_the_image_page_lists_renditions_with_download_links(self, owner_client, make_batch):
        batch = make_batch(prompts=["a fox"], output={"format": "webp", "resize": {"width": 64, "height": 64}})
        generation = batch.generations.get()
        rendition = generation.renditions.get()
        html = owner_client.get(reverse("generation:generation_detail", args=[generation.pk])).content.decode()
        assert f"/api/v1/renditions/{rendition.pk}/file/?download=1" in html
        assert "64 × 64" in html
        assert owner_client.get(f"/api/v1/renditions/{rendition.pk}/file/").status_code == 200
