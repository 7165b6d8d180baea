"""Output settings in the API: validation, renditions on the image, their files, and re-processing."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from generation.models import Batch, OutputJob, Rendition
from generation.output import read_exif_comment
from tests.fakeserver import Reply
from tests.generation.providerfakes import png_bytes, server

__all__ = ["server"]

OPENAI_PATH = "/v1/images/generations"


def error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def reprocess_url(batch) -> str:
    return f"/api/v1/batches/{batch.pk}/reprocess/"


@pytest.fixture
def done(make_batch):
    return make_batch(prompts=["a red fox", "藍色海洋 🌊"])


class TestCreateWithOutput:
    def test_output_is_stored_typed_and_each_image_gets_a_rendition(self, api, run_queue):
        output = {"format": "jpeg", "quality": 80, "resize": {"width": 64, "height": 64, "fit": "exact"}}
        with run_queue():
            response = api.post("/api/v1/batches/", {"prompts": ["a fox"], "output": output}, format="json")
        assert response.status_code == 201, response.json()
        stored = response.json()["parameters"]["output"]
        assert (stored["format"], stored["quality"], stored["metadata"]) == ("jpeg", 80, "embed")
        assert Rendition.objects.get().format == "jpeg"

    @pytest.mark.parametrize(
        ("output", "field"),
        [
            ({"format": "tiff"}, "output.format"),
            ({"format": "png", "quality": 50}, "output.quality"),
            ({"resize": {"width": 64, "height": 64, "fit": "stretch"}}, "output.resize.fit"),
            ({"resample_scale": 10}, "output.resample_scale"),
            ({"watermark": {"text": "x", "position": "left"}}, "output.watermark.position"),
            ({"metadata": "exif"}, "output.metadata"),
            ("jpeg", "output"),
        ],
    )
    def test_bad_output_is_a_400_naming_the_field(self, api, output, field):
        response = api.post("/api/v1/batches/", {"prompts": ["a fox"], "output": output}, format="json")
        assert response.status_code == 400
        body = error(response)
        assert body["code"] == "invalid_output"
        assert list(body["details"]) == [field]
        assert field in body["message"] or body["message"]

    def test_a_models_own_jpeg_output_format_is_delivered_as_a_jpeg(self, api, run_queue, server):
        """It used to be saved as PNG only: the original stays PNG and a JPEG rendition is made."""
        server.route("POST", OPENAI_PATH, Reply(200, {"data": [{"b64_json": base64.b64encode(png_bytes()).decode()}]}))
        payload = {
            "provider": "openai",
            "model": "gpt-image-1",
            "prompts": ["a fox"],
            "options": {"output_format": "jpeg"},
        }
        with run_queue():
            response = api.post("/api/v1/batches/", payload, format="json")
        assert response.json()["parameters"]["output"]["format"] == "jpeg"
        assert server.requests[0].json()["output_format"] == "jpeg"
        rendition = Rendition.objects.get()
        assert Image.open(rendition.file.open("rb")).format == "JPEG"


class TestRenditionsOnTheImage:
    def test_detail_lists_renditions_and_each_downloads(self, api, make_batch):
        batch = make_batch(prompts=["a fox"], output={"format": "webp", "resize": {"width": 32, "height": 32}})
        generation = batch.generations.get()
        body = api.get(f"/api/v1/generations/{generation.pk}/").json()
        [rendition] = body["renditions"]
        assert (rendition["format"], rendition["width"], rendition["height"]) == ("webp", 32, 32)
        response = api.get(rendition["url"] + "?download=1")
        assert response.status_code == 200
        assert response["Content-Type"] == "image/webp"
        assert "attachment" in response["Content-Disposition"]
        data = b"".join(response.streaming_content)
        assert len(data) == rendition["bytes"]
        assert Image.open(io.BytesIO(data)).size == (32, 32)

    def test_an_image_without_output_has_no_renditions(self, api, done):
        generation = done.generations.first()
        assert api.get(f"/api/v1/generations/{generation.pk}/").json()["renditions"] == []

    def test_another_users_rendition_file_is_404_and_anonymous_401(self, other_api, anon_api, make_batch):
        batch = make_batch(prompts=["a fox"], output={"format": "jpeg"})
        url = f"/api/v1/renditions/{Rendition.objects.get(generation__batch=batch).pk}/file/"
        assert other_api.get(url).status_code == 404
        assert anon_api.get(url).status_code == 401


class TestReprocess:
    def test_reprocess_makes_renditions_without_calling_the_provider(self, api, run_queue, server, settings):
        server.route("POST", OPENAI_PATH, Reply(200, {"data": [{"b64_json": base64.b64encode(png_bytes()).decode()}]}))
        payload = {"provider": "openai", "model": "dall-e-2", "prompts": ["a fox", "一隻貓"], "width": 256}
        with run_queue():
            batch_id = api.post("/api/v1/batches/", payload, format="json").json()["id"]
        calls = len(server.requests)
        assert calls == 2
        output = {"format": "jpeg", "quality": 70, "watermark": {"text": "© 範例", "position": "top-left"}}
        with run_queue():
            response = api.post(f"/api/v1/batches/{batch_id}/reprocess/", {"output": output}, format="json")
        assert response.status_code == 202
        assert (
            api.get(f"/api/v1/batches/{batch_id}/")
            .json()["urls"]["reprocess"]
            .endswith(f"/api/v1/batches/{batch_id}/reprocess/")
        )
        job = response.json()
        assert (job["total"], job["output"]["format"]) == (2, "jpeg")
        assert len(server.requests) == calls, "the provider was not called again"
        [progress] = api.get(f"/api/v1/batches/{batch_id}/reprocess/").json()
        assert (progress["done"], progress["failed"], progress["status"]) == (2, 0, "finished")
        for rendition in Rendition.objects.all():
            image = Image.open(rendition.file.open("rb"))
            assert image.format == "JPEG"
            assert read_exif_comment(image)["provider"] == "openai"

    def test_the_same_settings_twice_make_no_second_rendition(self, api, run_queue, done):
        for _ in range(2):
            with run_queue():
                response = api.post(reprocess_url(done), {"output": {"format": "webp"}}, format="json")
            assert response.status_code == 202
        assert Rendition.objects.count() == 2
        assert OutputJob.objects.count() == 2
        assert {job["status"] for job in api.get(reprocess_url(done)).json()} == {"finished"}

    def test_a_task_delivered_twice_makes_one_rendition(self, api, run_queue, done):
        from generation import tasks

        with run_queue():
            api.post(reprocess_url(done), {"output": {"format": "jpeg"}}, format="json")
        job = OutputJob.objects.get()
        generation = done.generations.first()
        assert tasks.reprocess_generation(str(job.pk), str(generation.pk)) == "done"
        assert Rendition.objects.filter(generation=generation).count() == 1

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({}, "validation_error"),
            ({"output": {"format": "bmp"}}, "invalid_output"),
            ({"output": {"format": "png"}}, "invalid_output"),
            ({"output": None}, "validation_error"),
        ],
    )
    def test_bad_input_is_a_400(self, api, done, body, code):
        response = api.post(reprocess_url(done), body, format="json")
        assert response.status_code == 400
        assert error(response)["code"] == code
        assert not OutputJob.objects.exists()

    def test_a_batch_without_finished_images_is_a_409(self, api, make_batch):
        batch = make_batch(run=False)
        response = api.post(reprocess_url(batch), {"output": {"format": "jpeg"}}, format="json")
        assert response.status_code == 409
        assert error(response)["code"] == "nothing_to_reprocess"

    def test_wrong_method_is_405(self, api, done):
        assert api.put(reprocess_url(done), {"output": {"format": "jpeg"}}, format="json").status_code == 405
        assert api.delete(reprocess_url(done)).status_code == 405

    def test_another_users_batch_is_404(self, other_api, done):
        response = other_api.post(reprocess_url(done), {"output": {"format": "jpeg"}}, format="json")
        assert response.status_code == 404
        assert other_api.get(reprocess_url(done)).status_code == 404
        assert not OutputJob.objects.exists()

    def test_anonymous_is_401(self, anon_api, done):
        response = anon_api.post(reprocess_url(done), {"output": {"format": "jpeg"}}, format="json")
        assert response.status_code == 401
        assert not OutputJob.objects.exists()

    def test_a_failed_image_is_counted_once(self, api, run_queue, done, monkeypatch):
        from generation import renditions, tasks

        monkeypatch.setattr(renditions, "output_render", lambda *a, **k: (_ for _ in ()).throw(OSError("boom")))
        with run_queue():
            api.post(reprocess_url(done), {"output": {"format": "jpeg"}}, format="json")
        job = OutputJob.objects.get()
        tasks.reprocess_generation(str(job.pk), str(done.generations.first().pk))
        [progress] = api.get(reprocess_url(done)).json()
        assert (progress["done"], progress["failed"], progress["status"]) == (0, 2, "finished")


@pytest.mark.django_db(transaction=True)
class TestGatewayOutputFormat:
    """The gateway waits for its batch, so the queue must run on commit: a transactional test."""

    def test_openai_output_format_and_compression_answer_with_that_format(self, api):
        body = {"prompt": "a red fox", "model": "local/procedural-v1", "size": "256x256"}
        response = api.post(
            "/v1/images/generations", {**body, "output_format": "jpeg", "output_compression": 40}, format="json"
        )
        assert response.status_code == 200, response.content
        answer = response.json()
        assert answer["output_format"] == "jpeg"
        image = Image.open(io.BytesIO(base64.b64decode(answer["data"][0]["b64_json"])))
        assert (image.format, image.size) == ("JPEG", (256, 256))
        output = Batch.objects.get().parameters["output"]
        assert (output["format"], output["quality"]) == ("jpeg", 40)
        assert Rendition.objects.get().format == "jpeg"
